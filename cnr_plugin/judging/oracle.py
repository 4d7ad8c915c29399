"""The ``oracle`` judge: a program scores each response; the higher score wins, equal is a tie.

For verifiable tasks (the response must contain these words, have that many items, ...). The
checker is ``module:function`` taking (prompt, response, meta) and returning a number; ``meta``
is the item's ``meta`` field. A checker raises when ``meta`` lacks what it needs: the judge runs
it on every original response before any generation, so such an item stops the run up front.
Built-in checkers live in this module.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from cnr_plugin.evaluation.judging import JudgeBase
from cnr_plugin.formats.base import prompt_text

from .base import JudgePair, Verdict
from .config import JudgeConfig, JudgeConfigError


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


class OracleJudge(JudgeBase):
    #: the checker reads the item's meta: it is part of every verdict's identity
    reads = frozenset({"prompt", "a", "b", "meta"})
    #: a checker's code can change between runs: verdicts are recomputed, never cached
    cacheable = False

    def __init__(self, config: JudgeConfig):
        if not config.checker:
            raise JudgeConfigError("the oracle judge needs `checker:` (e.g. keywords, or my_module:score)")
        self.config = config
        self.checker = load_checker(config.checker)

    def check_item(self, item: Any) -> None:
        """The checker must be able to score the item's original response."""
        try:
            float(self.checker(prompt_text(item.prompt), item.response, item.meta))
        except Exception as exc:
            raise JudgeConfigError(f"oracle checker {self.config.checker!r} cannot score the original response: "
                                   f"{type(exc).__name__}: {exc}") from None

    def judge_one(self, pair: JudgePair) -> Verdict:
        prompt = prompt_text(pair.prompt)  # a checker reads text (a conversation as marked turns)
        a = self.checker(prompt, pair.a, pair.meta)
        b = self.checker(prompt, pair.b, pair.meta)
        return Verdict("A" if a > b else "B" if b > a else "tie", "ok", f"A={a} B={b}")
