"""Pairwise judging: what a judge sees, what it answers, and how answers are read."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

Winner = Literal["A", "B", "tie"]
Status = Literal["ok", "unparsed", "failed"]


@dataclass(frozen=True)
class JudgePair:
    """One comparison in one position order: is ``a`` or ``b`` the better response to ``prompt``?"""

    prompt: str | list[dict[str, str]]  # text, or the conversation before the responses
    a: str
    b: str
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Verdict:
    winner: Winner | None
    status: Status
    raw: str = ""
    error: str | None = None
    #: verdict: probability — P(A), P(B), P(tie) read from the verdict token (they sum to 1)
    probs: dict[str, float] | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"winner": self.winner, "status": self.status, "raw": self.raw, "error": self.error}
        if self.probs is not None:
            out["probs"] = self.probs
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Verdict:
        return cls(d.get("winner"), d["status"], d.get("raw", ""), d.get("error"), d.get("probs"))


_VERDICT_TOKEN = re.compile(r'^[\s"\'\[\]{}:]*(A|B|C|t|ti|tie)[\s"\'\[\]{}]*$')


def verdict_probs(tokens: list[Any]) -> dict[str, float] | None:
    """P(A), P(B), P(tie) from OpenAI-style token log-probabilities: the first token that reads as a
    verdict (``A``, ``B``, ``tie`` or ``C``, quotes and brackets aside) and its top alternatives,
    renormalised over the verdicts. None when no token reads as a verdict."""
    import math

    def label(text: str) -> str | None:
        m = _VERDICT_TOKEN.match(text)
        if not m:
            return None
        return {"A": "A", "B": "B"}.get(m.group(1), "tie")

    for tok in tokens:
        if label(_get(tok, "token")) is None:
            continue
        mass = {"A": 0.0, "B": 0.0, "tie": 0.0}
        for alt in _get(tok, "top_logprobs") or [{"token": _get(tok, "token"), "logprob": _get(tok, "logprob")}]:
            which = label(_get(alt, "token"))
            if which is not None:
                mass[which] += math.exp(_get(alt, "logprob"))
        total = sum(mass.values())
        return {k: v / total for k, v in mass.items()} if total > 0 else None
    return None


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


VERDICT_JSON_SCHEMA = {
    "type": "object",
    "properties": {"winner": {"type": "string", "enum": ["A", "B", "tie"]}},
    "required": ["winner"],
    "additionalProperties": False,
}
_BRACKETS = re.compile(r"\[\[(A|B|tie|C)\]\]")
_PLACEHOLDER = re.compile(r"\{(prompt|response_a|response_b)\}")


def render_judge_prompt(template: str, pair: JudgePair) -> str:
    """Fill ``{prompt}``, ``{response_a}``, ``{response_b}`` in one pass, so braces or
    placeholder names inside the texts are left as they are."""
    from cnr_plugin.formats.base import prompt_text

    values = {"prompt": prompt_text(pair.prompt), "response_a": pair.a, "response_b": pair.b}
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def parse_verdict(reply: str, verdict_format: str) -> Verdict:
    """Read the judge's reply strictly: the whole reply must be the verdict.

    The compared texts cannot steer this: a ``[[A]]`` or ``"winner": "B"`` quoted from them
    inside a longer reply makes the reply unparsed, never a verdict.
    """
    text = reply.strip()
    if verdict_format == "json":
        try:
            obj = json.loads(text)
        except json.JSONDecodeError:
            return Verdict(None, "unparsed", reply, "reply is not a JSON object")
        if isinstance(obj, dict) and set(obj) == {"winner"} and obj["winner"] in ("A", "B", "tie"):
            return Verdict(obj["winner"], "ok", reply)
        return Verdict(None, "unparsed", reply, 'reply is not {"winner": "A" | "B" | "tie"}')
    m = _BRACKETS.fullmatch(text)
    if m:
        return Verdict("tie" if m.group(1) in ("tie", "C") else m.group(1), "ok", reply)  # type: ignore[arg-type]
    return Verdict(None, "unparsed", reply, "reply is not exactly [[A]], [[B]] or [[tie]]")
