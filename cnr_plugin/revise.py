"""The critique-and-revise loop: K iterations, each one batch through the reviser.

Iteration 1 critiques and revises the original response; each later iteration works on the
previous revision. A generation that cannot be parsed keeps the previous response for the next
iteration and is counted. Shared by the lm-eval wrapper model and ``cnr revise``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from tqdm.auto import tqdm

from .cache import Cache, make_key
from .formats import CnRFormat, Prompted

LOG = logging.getLogger("cnr_plugin.revise")


@dataclass(frozen=True)
class Item:
    """A (prompt, original response) pair to be revised."""

    id: str
    prompt: str
    response: str
    system: str | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Step:
    iteration: int
    response: str          # what this iteration critiqued
    generation: str
    critique: str | None
    revision: str | None   # None when the generation could not be parsed
    problem: str | None
    result: str            # the response after this iteration (the revision, or `response` kept)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Backend(Protocol):
    """Generates one completion per request, as one batch."""

    identity: str

    def generate(self, requests: Sequence[Prompted]) -> list[str]: ...


def revise(items: Sequence[Item], fmt: CnRFormat, backend: Backend, iterations: int, *,
           examples: Sequence[Any] = (), cache: Cache | None = None, progress: bool = True) -> dict[str, list[Step]]:
    """Run ``iterations`` rounds of critique and revision over ``items``."""
    current = {it.id: it.response for it in items}
    steps: dict[str, list[Step]] = {it.id: [] for it in items}
    for k in tqdm(range(1, iterations + 1), desc="cnr revise", unit="iteration", disable=not progress):
        requests = [fmt.prompt(it.prompt, current[it.id], system=it.system, examples=examples) for it in items]
        keys = [make_key("revision", backend.identity, r.text, r.messages) for r in requests]
        generations: list[str | None] = [cache.get("revision", key) if cache else None for key in keys]
        missing = [i for i, g in enumerate(generations) if g is None]
        if missing:
            fresh = backend.generate([requests[i] for i in missing])
            for i, text in zip(missing, fresh):
                generations[i] = text
                if cache:
                    cache.put("revision", keys[i], text)
        n_bad = 0
        for it, gen in zip(items, generations):
            parsed = fmt.parse(gen or "")
            before = current[it.id]
            if parsed.ok:
                current[it.id] = parsed.revision  # type: ignore[assignment]
            else:
                n_bad += 1
            steps[it.id].append(Step(k, before, gen or "", parsed.critique, parsed.revision, parsed.problem,
                                     current[it.id]))
        if n_bad:
            LOG.warning("cnr: iteration %d: %d of %d generations had no usable revision; the previous response "
                        "is kept for them", k, n_bad, len(items))
    return steps


class OpenAIBackend:
    """An OpenAI-compatible server as the reviser: completions for text, chat for messages."""

    def __init__(self, base_url: str, model: str, *, api_key: str = "no-key", max_tokens: int = 512,
                 stop: Sequence[str] = (), concurrency: int = 8, timeout_s: float = 120.0, max_retries: int = 6,
                 temperature: float = 0.0):
        import openai

        self.client = openai.OpenAI(base_url=base_url, api_key=api_key, timeout=timeout_s, max_retries=max_retries)
        self.model, self.max_tokens, self.stop = model, max_tokens, list(stop)[:4]
        self.concurrency, self.temperature = concurrency, temperature
        self.identity = f"openai:{base_url}:{model}:{max_tokens}:{temperature}"

    def _one(self, req: Prompted) -> str:
        common = dict(model=self.model, max_tokens=self.max_tokens, temperature=self.temperature)
        if req.messages is not None:
            out = self.client.chat.completions.create(messages=req.messages, **common)
            return out.choices[0].message.content or ""
        out = self.client.completions.create(prompt=req.text, stop=self.stop or None, **common)
        return out.choices[0].text

    def generate(self, requests: Sequence[Prompted]) -> list[str]:
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(self._one, requests))
