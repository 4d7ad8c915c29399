"""What a judge is: the protocol, the base class with its own options model, what it sees
(:class:`JudgePair`), what it answers (:class:`Verdict`), and how answers are read.

Nothing here imports the evaluation layer: :mod:`cnr_plugin.evaluation` runs judges, judges do not
know it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from cnr_plugin.errors import CnRError

Winner = Literal["A", "B", "tie"]
Status = Literal["ok", "unparsed", "failed"]
#: what a judge may read of a pair
PAIR_FIELDS = frozenset({"prompt", "a", "b", "meta"})


class JudgeConfigError(CnRError, ValueError):
    """A judge that cannot be used: its YAML (the message names the file and the key), its
    endpoint, or an item it cannot judge."""


class JudgeOptions(BaseModel):
    """A judge's own options (the keys of a judge YAML besides the shared ones).

    A judge declares a subclass as its ``Options``; the YAML is validated against it (an unknown
    key is an error with a suggestion). Every field enters the cache key of the judge's verdicts
    except those named in ``not_in_key`` (timeouts, retries, where the API key is read from:
    settings that cannot change a verdict). Validation is strict: ``"5"`` or ``true`` for a number
    is an error naming the key, not a silent 5 or 1."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    not_in_key: ClassVar[frozenset[str]] = frozenset()

    def fingerprint(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude=set(self.not_in_key))


@runtime_checkable
class Judge(Protocol):
    """A pairwise judge, registered by its class through ``register_judges``.

    ``name``: what ``judge:`` in a judge YAML selects; ``Options``: the pydantic model of its own
    options (validated, and hashed into its verdicts' cache key); ``reads``: the fields of a
    :class:`JudgePair` the verdict depends on; ``cacheable``: verdicts may be kept across runs;
    ``check_reachable()`` and ``check_item(item)`` raise :class:`JudgeConfigError` before any
    generation. A judge with ``batched`` true is given all the run's pairs at once through
    ``judge_batch(pairs, keys, state, progress)`` (``state``: get/put/clear of what it must keep
    to resume). Subclass :class:`JudgeBase` for the safe defaults."""

    name: ClassVar[str]
    Options: ClassVar[type[JudgeOptions]]
    reads: ClassVar[frozenset[str]]
    cacheable: ClassVar[bool]

    def check_reachable(self) -> None: ...

    def check_item(self, item: Any) -> None: ...

    def judge_one(self, pair: JudgePair) -> Verdict: ...


class JudgeBase:
    """Safe defaults for judges: no options, reads everything, is not cached, accepts every item.

    ``__init__`` receives the validated options (an instance of ``Options``) as ``self.options``."""

    name: ClassVar[str] = ""
    Options: ClassVar[type[JudgeOptions]] = JudgeOptions
    reads: ClassVar[frozenset[str]] = PAIR_FIELDS
    cacheable: ClassVar[bool] = False
    #: judges pairs as one job (``judge_batch(pairs, keys, state, progress)``) instead of one call each
    batched: bool = False

    def __init__(self, options: JudgeOptions | None = None):
        self.options = options if options is not None else self.Options()

    def check_reachable(self) -> None:
        pass

    def check_item(self, item: Any) -> None:
        pass

    def judge_one(self, pair: JudgePair) -> Verdict:
        raise NotImplementedError


def judge_reads(judge: Any) -> frozenset[str]:
    """The fields a judge reads, checked against what a pair has."""
    reads = frozenset(getattr(judge, "reads", PAIR_FIELDS))
    if not reads <= PAIR_FIELDS:
        raise JudgeConfigError(f"judge {type(judge).__name__} declares reads={sorted(reads)}; "
                               f"allowed: {sorted(PAIR_FIELDS)}")
    return reads


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
    #: tokens the call took, from the server's ``usage``: {"in": ..., "out": ...}; None when not reported
    usage: dict[str, int] | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"winner": self.winner, "status": self.status, "raw": self.raw, "error": self.error}
        if self.probs is not None:
            out["probs"] = self.probs
        if self.usage is not None:
            out["usage"] = self.usage
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Verdict:
        return cls(d.get("winner"), d["status"], d.get("raw", ""), d.get("error"), d.get("probs"), d.get("usage"))


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
