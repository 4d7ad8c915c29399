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

    prompt: str
    a: str
    b: str
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Verdict:
    winner: Winner | None
    status: Status
    raw: str = ""
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"winner": self.winner, "status": self.status, "raw": self.raw, "error": self.error}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Verdict:
        return cls(d.get("winner"), d["status"], d.get("raw", ""), d.get("error"))


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
    values = {"prompt": pair.prompt, "response_a": pair.a, "response_b": pair.b}
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
