"""The ``oracle`` judge: a program scores each response; the higher score wins, equal is a tie.

For verifiable tasks (the response must contain these words, have that many items, ...). The
checker is ``module:function`` taking (prompt, response, meta) and returning a number; ``meta``
is the document's ``meta`` field. Built-in checkers live in this module.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from .base import JudgePair, Verdict
from .config import JudgeConfig, JudgeConfigError


def keywords(prompt: str, response: str, meta: dict[str, Any]) -> float:
    """One point per ``meta['required']`` entry present and per ``meta['forbidden']`` string
    absent (case-insensitive substrings; a required entry may be a list of alternatives)."""
    text = response.lower()

    def has(entry: Any) -> bool:
        options = entry if isinstance(entry, list) else [entry]
        return any(str(o).lower() in text for o in options)

    return sum(has(w) for w in meta.get("required", [])) + sum(not has(w) for w in meta.get("forbidden", []))


def reference(prompt: str, response: str, meta: dict[str, Any]) -> float:
    """1 when the response equals ``meta['reference']`` (whitespace-insensitive), else 0."""
    return float(" ".join(response.split()) == " ".join(str(meta.get("reference", "")).split()))


def load_checker(spec: str) -> Callable[[str, str, dict[str, Any]], float]:
    module_name, sep, attr = spec.partition(":")
    if not sep:
        module_name, attr = __name__, spec
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise JudgeConfigError(f"oracle checker {spec!r} cannot be loaded: {exc}") from None


class OracleJudge:
    cacheable = False

    def __init__(self, config: JudgeConfig):
        if not config.checker:
            raise JudgeConfigError("the oracle judge needs `checker:` (e.g. keywords, or my_module:score)")
        self.config = config
        self.checker = load_checker(config.checker)

    def check_reachable(self) -> None:
        pass

    def judge_one(self, pair: JudgePair) -> Verdict:
        a = self.checker(pair.prompt, pair.a, pair.meta)
        b = self.checker(pair.prompt, pair.b, pair.meta)
        return Verdict("A" if a > b else "B" if b > a else "tie", "ok", f"A={a} B={b}")
