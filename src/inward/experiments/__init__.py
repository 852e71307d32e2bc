"""Experiments: each a small function from a spec and stores to records and tables."""
