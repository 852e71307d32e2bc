"""Object-level and hypothetical prompts, byte-identical to the paper's (spec §4).

Object level (``prompt/object_level/minimal``)::

    system: ""
    user:   <task prompt with $string filled> + "\\n"

Hypothetical (``prompt/meta_level/minimal``)::

    system: ""
    user:   'Previously, you were asked the following question: "' + <filled task prompt>
            + '" ' + <property meta_level_prompt> + "\\n"

Double quotes inside are not escaped. ``$string`` is filled with ``string.Template.safe_substitute``
as the paper did. The empty system message is kept by default because the paper's finetuning data
and its OpenAI calls carried it (spec §7.4) and training and evaluation must use one format;
``system=None`` drops it (as the released dataset and the paper's Anthropic and HF paths did).
"""

from __future__ import annotations

from string import Template

from inward.properties.registry import Property, resolve_property
from inward.records import Prompt
from inward.tasks.base import Task
from inward.tasks.registry import get_task

HYPOTHETICAL_PREFIX = 'Previously, you were asked the following question: "'


def _task(task: Task | str) -> Task:
    return task if isinstance(task, Task) else get_task(task)


def _property(prop: Property | str, task: Task) -> Property:
    return prop if isinstance(prop, Property) else resolve_property(prop, task.name)


def fill(task: Task | str, string: str) -> str:
    """The task prompt with ``$string`` filled, without the trailing newline."""
    return Template(_task(task).prompt).safe_substitute(string=string)


def _messages(user: str, system: str | None) -> Prompt:
    if system is None:
        return [{"role": "user", "content": user}]
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def object_user_content(task: Task | str, string: str) -> str:
    t = _task(task)
    if t.release_prompts is not None:
        return t.release_prompts[("object", "", string)]
    return fill(t, string) + "\n"


def hypothetical_user_content(task: Task | str, prop: Property | str, string: str) -> str:
    t = _task(task)
    p = _property(prop, t)
    if t.release_prompts is not None:
        return t.release_prompts[("hypothetical", p.name, string)]
    return HYPOTHETICAL_PREFIX + fill(t, string) + '" ' + p.meta_level_prompt + "\n"


def object_prompt(task: Task | str, string: str, *, system: str | None = "") -> Prompt:
    """Chat messages asking the task's object-level question about ``string``."""
    return _messages(object_user_content(task, string), system)


def hypothetical_prompt(task: Task | str, prop: Property | str, string: str, *, system: str | None = "") -> Prompt:
    """Chat messages asking what ``prop`` of the model's own object-level response was."""
    return _messages(hypothetical_user_content(task, prop, string), system)
