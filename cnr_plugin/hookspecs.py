"""pluggy hook specifications of cnr-plugin (project name ``cnr``).

A plugin is a module or object with functions marked ``@cnr_plugin.hookimpl``, registered by
an entry point of group ``cnr_plugin``::

    # pyproject.toml of your package
    [project.entry-points.cnr_plugin]
    my_format = "my_package.cnr_format"

The built-in formats and judges (``cnr_plugin/default_plugins/``) are registered the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("cnr")
hookimpl = pluggy.HookimplMarker("cnr")


@hookspec
def register_formats(register: Callable[[Any], None]) -> None:
    """Register CnR text formats.

    Call ``register(fmt)`` with an instance of a :class:`cnr_plugin.formats.CnRFormat`
    subclass for each format. Its ``name`` is what ``cnr_format:`` in an axolotl config and
    ``format`` in the evaluation metadata select. Names must be unique across plugins.
    """


@hookspec
def register_judges(register: Callable[[Any], None]) -> None:
    """Register pairwise judges.

    Call ``register(JudgeClass)`` for each judge: a class with ``name`` (what ``judge:`` in a judge
    YAML selects; unique across plugins), ``Options`` (a :class:`cnr_plugin.judges.JudgeOptions`
    subclass: the judge's own YAML keys, validated, and hashed into its verdicts' cache key except
    those it names in ``not_in_key``) and ``judge_one(pair) -> Verdict``; it is built as
    ``JudgeClass(options)``. Subclass :class:`cnr_plugin.judges.JudgeBase` for the defaults:
    ``reads`` (the fields of the pair its verdict depends on: ``prompt``, ``a``, ``b``, ``meta``;
    default all), ``cacheable`` (default False), ``check_reachable()`` and ``check_item(item)``
    (called before any generation; raise ``JudgeConfigError``). Position orders, caching,
    concurrency and scoring are done around it by :class:`cnr_plugin.evaluation.JudgeRunner`.
    """
