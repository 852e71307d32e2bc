"""inward: measure whether language models can introspect.

A reimplementation of "Looking Inward: Language Models Can Learn About Themselves by
Introspection" (Binder, Chua et al., 2024). See README.md for the data flow.
"""

__version__ = "0.1.0"
