"""The ``oracle`` judge: a program scores each response; the higher score wins, equal is a tie.

For verifiable tasks (the response must contain these words, have that many items, ...). The
checker is ``module:function`` taking (prompt, response, meta) and returning a number; ``meta``
is the item's ``meta`` field. A checker raises when ``meta`` lacks what it needs: the judge runs
it on every original response before any generation, so such an item stops the run up front.
Built-in checkers live in this module.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import Field

from cnr_plugin.formats.base import prompt_text

from .base import JudgeBase, JudgeConfigError, JudgeOptions, JudgePair, Verdict


def keywords(prompt: str, response: str, meta: dict[str, Any]) -> float:
    """One point per ``meta['required']`` entry present and per ``meta['forbidden']`` string
    absent (case-insensitive substrings; a required entry may be a list of alternatives)."""
    if not meta.get("required") and not meta.get("forbidden"):
        raise KeyError("meta has neither 'required' nor 'forbidden' keywords")
    text = response.lower()

    def has(entry: Any) -> bool:
        options = entry if isinstance(entry, list) else [entry]
        return any(str(o).lower() in text for o in options)

    return sum(has(w) for w in meta.get("required", [])) + sum(not has(w) for w in meta.get("forbidden", []))


def reference(prompt: str, response: str, meta: dict[str, Any]) -> float:
    """1 when the response equals ``meta['reference']`` (whitespace-insensitive), else 0."""
    if "reference" not in meta:
        raise KeyError("meta has no 'reference'")
    return float(" ".join(response.split()) == " ".join(str(meta["reference"]).split()))


def load_checker(spec: str) -> Callable[[str, str, dict[str, Any]], float]:
    module_name, sep, attr = spec.partition(":")
    if not sep:
        module_name, attr = __name__, spec
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise JudgeConfigError(f"oracle checker {spec!r} cannot be loaded: {exc}") from None


class OracleOptions(JudgeOptions):
    """Options of the ``oracle`` judge."""

    checker: str | None = Field(None, description="'module:function' scoring (prompt, response, meta), or the "
                                "name of a built-in checker (keywords, reference)")
    thread_safe: bool = Field(False, description="the checker may run in several judge threads at once; by default "
                              "the judge calls it one at a time, so a checker with module state (a lazily loaded "
                              "model, the global random) gives the same verdicts at any concurrency")

    not_in_key: ClassVar[frozenset[str]] = frozenset({"thread_safe"})


class OracleJudge(JudgeBase):
    name = "oracle"
    Options = OracleOptions
    #: the checker reads the item's meta: it is part of every verdict's identity
    reads = frozenset({"prompt", "a", "b", "meta"})
    #: a checker's code can change between runs: verdicts are recomputed, never cached
    cacheable = False
    options: OracleOptions

    def __init__(self, options: OracleOptions):
        super().__init__(options)
        if not options.checker:
            raise JudgeConfigError("the oracle judge needs `checker:` (e.g. keywords, or my_module:score)")
        self.checker = load_checker(options.checker)
        self._lock = contextlib.nullcontext() if options.thread_safe else threading.Lock()

    def check_item(self, item: Any) -> None:
        """The checker must be able to score the item's original response."""
        try:
            float(self.checker(prompt_text(item.prompt), item.response, item.meta))
        except Exception as exc:
            raise JudgeConfigError(f"oracle checker {self.options.checker!r} cannot score the original response: "
                                   f"{type(exc).__name__}: {exc}") from None

    def judge_one(self, pair: JudgePair) -> Verdict:
        prompt = prompt_text(pair.prompt)  # a checker reads text (a conversation as marked turns)
        with self._lock:
            a = self.checker(prompt, pair.a, pair.meta)
            b = self.checker(prompt, pair.b, pair.meta)
        return Verdict("A" if a > b else "B" if b > a else "tie", "ok", f"A={a} B={b}")
