"""What a run cost: calls, tokens in and out (from the server's ``usage``), money at a stated
price, time per 1000 calls, and what the cache saved.

A reply without ``usage`` (a local judge, an lm-eval model, a server that does not send it) is
counted as a call of 0 tokens, and the report says how many such calls there were, so a total is
never silently short. A cache hit is no call: its tokens (as they were when first made, kept with
the cached result) are reported as saved, with what they would have cost.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Price(BaseModel):
    """Price of a model's tokens, in money per million tokens (``price: {input: 2.5, output: 10}``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: float = Field(ge=0, description="per million input (prompt) tokens")
    output: float = Field(ge=0, description="per million output (completion) tokens")

    def cost(self, tokens_in: int, tokens_out: int) -> float:
        return (tokens_in * self.input + tokens_out * self.output) / 1e6


def usage_of(reply: Any) -> dict[str, int] | None:
    """``{"in": prompt tokens, "out": completion tokens}`` of an OpenAI-style reply (object or
    dict), None when it carries no usage."""
    usage = reply.get("usage") if isinstance(reply, dict) else getattr(reply, "usage", None)
    if usage is None:
        return None
    get = usage.get if isinstance(usage, dict) else (lambda k: getattr(usage, k, None))
    tokens_in, tokens_out = get("prompt_tokens"), get("completion_tokens")
    if tokens_in is None and tokens_out is None:
        return None
    return {"in": int(tokens_in or 0), "out": int(tokens_out or 0)}


@dataclass
class Tally:
    """Calls and tokens of one role (judge or reviser) over a run; thread-safe."""

    role: str
    calls: int = 0
    cached: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    no_usage: int = 0
    saved_in: int = 0
    saved_out: int = 0
    seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    _started: float | None = field(default=None, repr=False, compare=False)

    def call(self, usage: dict[str, int] | None, answered: bool = True) -> None:
        """One call made; ``answered``: the server replied (a failed call has no usage to miss)."""
        with self._lock:
            self.calls += 1
            if usage is None:
                self.no_usage += answered
            else:
                self.tokens_in += usage["in"]
                self.tokens_out += usage["out"]

    def hit(self, usage: dict[str, int] | None) -> None:
        with self._lock:
            self.cached += 1
            if usage is not None:
                self.saved_in += usage["in"]
                self.saved_out += usage["out"]

    def start(self) -> None:
        self._started = time.monotonic()

    def stop(self) -> None:
        if self._started is not None:
            self.seconds += time.monotonic() - self._started
            self._started = None

    def report(self, price: Price | None = None) -> dict[str, Any]:
        """The figures written beside a run's results (cost fields only with a price)."""
        out: dict[str, Any] = {"role": self.role, "calls": self.calls, "cached": self.cached,
                               "tokens_in": self.tokens_in, "tokens_out": self.tokens_out,
                               "calls_without_usage": self.no_usage,
                               "saved_tokens_in": self.saved_in, "saved_tokens_out": self.saved_out,
                               "seconds": round(self.seconds, 3),
                               "seconds_per_1000_calls": round(1000 * self.seconds / self.calls, 1) if self.calls else None}
        if price is not None:
            out.update(price=price.model_dump(), cost=price.cost(self.tokens_in, self.tokens_out),
                       saved_cost=price.cost(self.saved_in, self.saved_out))
        return out


def describe(report: dict[str, Any]) -> str:
    """One line of a tally's report, for the command line."""
    parts = [f"{report['calls']} calls", f"{report['tokens_in']:,} tokens in", f"{report['tokens_out']:,} out"]
    if report.get("calls_without_usage"):
        parts.append(f"{report['calls_without_usage']} calls reported no usage (counted as 0 tokens)")
    if "cost" in report:
        parts.append(f"cost {report['cost']:.4f}")
    if report.get("seconds_per_1000_calls") is not None:
        parts.append(f"{report['seconds_per_1000_calls']:.1f} s per 1000 calls")
    saved = f"{report['cached']} from cache"
    if report["cached"]:
        saved += f" (saved {report['saved_tokens_in']:,} tokens in, {report['saved_tokens_out']:,} out"
        saved += f", {report['saved_cost']:.4f})" if "saved_cost" in report else ")"
    return f"{report['role']}: {', '.join(parts)}; {saved}"
