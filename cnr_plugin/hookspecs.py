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
def register_judges(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Register pairwise judges.

    Call ``register(name, factory)``; ``factory(config)`` gets the validated judge YAML
    (:class:`cnr_plugin.judging.JudgeConfig`) and returns an object that follows
    :class:`cnr_plugin.evaluation.Judge` (subclass :class:`cnr_plugin.evaluation.JudgeBase` for
    its defaults): ``judge_one(pair) -> Verdict``; ``reads``, the fields of the pair its verdict
    depends on (``prompt``, ``a``, ``b``, ``meta``; default all), which make the verdict's
    identity for deduplication and the cache; ``cacheable`` (default False); ``check_reachable()``
    and ``check_item(item)``, called before any generation (raise ``JudgeConfigError``). ``name``
    is what the ``judge:`` key of a judge YAML selects. Position orders, caching, concurrency and
    scoring are done around it by :class:`cnr_plugin.evaluation.JudgeRunner`.
    """
