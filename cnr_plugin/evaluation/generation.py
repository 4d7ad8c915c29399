"""Cached generation and the critique-and-revise loop.

Iteration 1 critiques and revises the original response; each later iteration works on the
previous revision. A generation that cannot be parsed keeps the previous response for the next
iteration and is counted. Every generation is cached as soon as it exists, keyed by everything
the generator reads (its identity and decoding settings, and the request), so a crashed or
repeated run never generates the same thing twice. Used by the lm-eval wrapper model,
``cnr revise`` and ``cnr annotate responses``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from tqdm.auto import tqdm

from cnr_plugin.cache import Cache, Claims, make_key, several_processes
from cnr_plugin.costs import Tally, usage_of
from cnr_plugin.errors import CnRError
from cnr_plugin.formats import CnRFormat, Prompted
from cnr_plugin.formats.base import CHARS_PER_TOKEN, estimate_tokens


LOG = logging.getLogger("cnr_plugin.evaluation")


class GenerationError(CnRError):
    """The reviser (or answering model) failed after its retries; what finished is cached."""


class OversizedError(CnRError):
    """An input longer than the reviser can take."""


@dataclass(frozen=True)
class Item:
    """A (prompt, original response) pair to be revised; texts are byte-exact."""

    id: str
    prompt: str | list[dict[str, str]]  # text, or the conversation before the response
    response: str
    system: str | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def from_record(cls, record: Any) -> Item:
        """The item of a (prompt, response) record (:class:`cnr_plugin.records.ResponseRecord` or alike)."""
        return cls(str(record.id), record.prompt, record.response, record.system, record.meta or {})


@dataclass(frozen=True)
class Step:
    iteration: int
    response: str          # what this iteration critiqued
    generation: str
    critique: str | None
    revision: str | None   # None when the generation could not be parsed
    problem: str | None
    result: str            # the response after this iteration (the revision, or `response` kept)
    stopped: bool = False  # the item had stopped before: nothing was asked of the reviser
    stop_signal: str | None = None  # "unchanged" | "no_cons": this iteration stopped the item
    accepted: bool | None = None    # accept=judge: whether the judge let the revision replace `response`

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Backend(Protocol):
    """Generates one completion per request. ``identity`` names everything that decides a
    generation besides the request (model, its files, decoding settings): it is part of the
    cache key."""

    identity: str

    def generate(self, requests: Sequence[Prompted]) -> list[str]: ...


def request_key(namespace: str, identity: str, request: Prompted, salt: str | None = None) -> str:
    parts: tuple[Any, ...] = (namespace, identity, request.text, request.messages)
    return make_key(*parts, salt) if salt is not None else make_key(*parts)


def cached_text(value: Any) -> tuple[str, dict[str, int] | None]:
    """A cached generation and the tokens it took (older caches kept the text alone)."""
    if isinstance(value, dict):
        return value["text"], value.get("usage")
    return value, None


def cached_generate(backend: Backend, requests: Sequence[Prompted], cache: Cache | None,
                    namespace: str = "revision", *, salts: Sequence[str] | None = None,
                    tally: Tally | None = None) -> tuple[list[str], int]:
    """Generations for ``requests``: from the cache where there, else from ``backend`` (cached as
    each arrives when the backend reports them one by one). A request that occurs several times
    (items with the same prompt and response) is sent once: its key is everything the generation
    reads, so the copies would get the same text, as they would from the cache on a re-run.
    ``salts`` (one per request, e.g. the item id: ``sampling: per_item``) enter the key, so equal
    requests with different salts are generated separately. ``tally`` counts calls, tokens (from
    the server's ``usage`` where the backend reports it) and what the cache saved.
    Returns the generations and the number of requests sent."""
    keys = [request_key(namespace, backend.identity, r, salts[i] if salts is not None else None)
            for i, r in enumerate(requests)]
    out: list[str | None] = []
    seen: set[str] = set()
    for key in keys:
        value = cache.get("revision", key) if cache else None
        text, usage = cached_text(value) if value is not None else (None, None)
        if text is not None and tally is not None and key not in seen:
            tally.hit(usage)
        seen.add(key)
        out.append(text)
    positions: dict[str, list[int]] = {}  # each distinct missing request -> where it occurs
    for i, g in enumerate(out):
        if g is None:
            positions.setdefault(keys[i], []).append(i)
    if not positions:
        return out, 0  # type: ignore[return-value]

    def send(order: list[str]) -> None:
        def done(j: int, text: str, usage: dict[str, int] | None = None) -> None:
            for i in positions[order[j]]:
                out[i] = text
            if tally is not None:
                tally.call(usage)
            if cache is not None:
                cache.put("revision", order[j], {"text": text, "usage": usage} if usage is not None else text)

        todo = [requests[positions[key][0]] for key in order]
        if not todo:
            return
        if tally is not None:
            tally.start()
        try:
            if getattr(backend, "reports_each", False):
                backend.generate(todo, on_done=done)  # type: ignore[call-arg]
            else:
                for j, text in enumerate(backend.generate(todo)):
                    done(j, text)
        finally:
            if tally is not None:
                tally.stop()

    if cache is None or not several_processes():
        send(list(positions))
        return out, len(positions)  # type: ignore[return-value]
    # several processes share the cache (a data-parallel run): a request is sent by the one that
    # claims it first, and the others read its generation from the cache
    sent: list[str] = []

    def send_mine(order: list[str]) -> None:
        send(order)
        sent.extend(order)

    read = Claims(cache, "revision").share(list(positions), send_mine, lambda k: cache.get("revision", k))
    for key, value in read.items():
        text, usage = cached_text(value)
        for i in positions[key]:
            out[i] = text
        if tally is not None:
            tally.hit(usage)
    return out, len(sent)  # type: ignore[return-value]


def request_text(request: Prompted) -> str:
    if request.messages is None:
        return request.text or ""
    return "\n".join(m["content"] for m in request.messages)


def check_lengths(items: Sequence[Item], fmt: CnRFormat, *, max_tokens: int, policy: str,
                  count_tokens: Callable[[str], int] | None = None, examples: Sequence[Any] = (),
                  source: str = "responses") -> tuple[list[Item], list[str]]:
    """Items whose first request fits ``max_tokens``, and the ids of those that do not.

    ``policy`` error: any oversized item stops the run in one line naming the ids; skip: they are
    left out and returned. Later iterations revise revisions of similar length, so the first
    request is what is checked."""
    count = count_tokens or estimate_tokens
    unit = "tokens" if count_tokens else f"tokens (estimated as characters / {CHARS_PER_TOKEN})"
    kept: list[tuple[Item, int]] = []
    over: list[tuple[Item, int]] = []
    for it in items:
        n = count(request_text(fmt.prompt(it.prompt, it.response, system=it.system, examples=examples)))
        (over if n > max_tokens else kept).append((it, n))
    if over and policy == "error":
        ids = ", ".join(f"{it.id} ({n})" for it, n in over[:10]) + (" ..." if len(over) > 10 else "")
        raise OversizedError(f"{source}: {len(over)} item(s) are longer than max_input_tokens={max_tokens} {unit}: "
                             f"{ids}; shorten them, raise max_input_tokens, or set oversized: skip")
    if over:
        LOG.warning("cnr: %d item(s) longer than %d %s are left out: %s", len(over), max_tokens, unit,
                    ", ".join(it.id for it, _ in over))
    return [it for it, _ in kept], [it.id for it, _ in over]


#: decides, for a batch of (item, previous text, revision, iteration), which revisions replace the previous text
Gate = Callable[[Sequence[tuple[Item, str, str, int]]], list[bool]]


def stop_signal(fmt: CnRFormat, stop_when: str, before: str, critique: str | None, revision: str | None) -> str | None:
    """Whether this iteration's output stops the item (``stop_when``: never | unchanged | no_cons)."""
    if stop_when == "unchanged" and revision == before:
        return "unchanged"
    if stop_when == "no_cons" and fmt.no_cons(critique):
        return "no_cons"
    return None


def revise(items: Sequence[Item], fmt: CnRFormat, backend: Backend, iterations: int, *,
           examples: Sequence[Any] = (), cache: Cache | None = None, progress: bool = True,
           stop_when: str = "never", gate: Gate | None = None, sampling: str = "shared",
           tally: Tally | None = None) -> dict[str, list[Step]]:
    """Run ``iterations`` rounds of critique and revision over ``items``.

    ``stop_when`` (never | unchanged | no_cons): an item whose revision equals its input, or whose
    critique names no problem, keeps its text and is not sent to the reviser again (``no_cons``
    keeps the input, not the revision). ``gate`` (accept: judge): a revision replaces the previous
    text only where the gate says so; a rejected one leaves the text as it was. ``sampling``:
    shared (items with the same request share one generation) or per_item (each item its own:
    the item id enters the cache key). ``tally``: the reviser's calls and tokens."""
    current = {it.id: it.response for it in items}
    stopped: set[str] = set()
    steps: dict[str, list[Step]] = {it.id: [] for it in items}
    for k in tqdm(range(1, iterations + 1), desc="cnr revise", unit="iteration", disable=not progress):
        active = [it for it in items if it.id not in stopped]
        requests = [fmt.prompt(it.prompt, current[it.id], system=it.system, examples=examples) for it in active]
        salts = [it.id for it in active] if sampling == "per_item" else None
        generations, _ = cached_generate(backend, requests, cache, salts=salts, tally=tally) if requests else ([], 0)
        pending: list[tuple[Item, str, str, int]] = []
        parsed_by_id = {}
        for it, gen in zip(active, generations):
            parsed = fmt.parse(gen)
            parsed_by_id[it.id] = (gen, parsed)
            if parsed.ok and stop_signal(fmt, stop_when, current[it.id], parsed.critique, parsed.revision) is None:
                pending.append((it, current[it.id], parsed.revision, k))  # type: ignore[arg-type]
        verdicts = dict(zip((p[0].id for p in pending), gate(pending))) if gate and pending else {}
        n_bad = 0
        for it in items:
            before = current[it.id]
            if it.id in stopped:
                steps[it.id].append(Step(k, before, "", None, None, None, before, stopped=True))
                continue
            gen, parsed = parsed_by_id[it.id]
            signal = stop_signal(fmt, stop_when, before, parsed.critique, parsed.revision) if parsed.ok else None
            accepted = verdicts.get(it.id) if gate and parsed.ok and signal is None else None
            if not parsed.ok:
                n_bad += 1
            elif signal is not None:
                stopped.add(it.id)  # keeps `before`: the reviser said there is nothing to change
            elif accepted is not False:
                current[it.id] = parsed.revision  # type: ignore[assignment]
            steps[it.id].append(Step(k, before, gen, parsed.critique, parsed.revision, parsed.problem,
                                     current[it.id], stop_signal=signal, accepted=accepted))
        if n_bad:
            LOG.warning("cnr: iteration %d: %d of %d generations had no usable revision; the previous response "
                        "is kept for them", k, n_bad, len(active))
    return steps


class OpenAIBackend:
    """An OpenAI-compatible server as the reviser: completions for text, chat for messages.

    Each completion is reported as it arrives (``reports_each``), so the cache keeps it even if a
    later request fails for good."""

    reports_each = True

    def __init__(self, base_url: str, model: str, *, api_key: str = "no-key", max_tokens: int = 512,
                 stop: Sequence[str] = (), concurrency: int = 8, timeout_s: float = 120.0, max_retries: int = 6,
                 temperature: float = 0.0, role: str = "reviser", command: str = "cnr revise"):
        from cnr_plugin.endpoints import make_client

        self.client = make_client(base_url, api_key, timeout_s=timeout_s, max_retries=max_retries, command=command)
        self.base_url, self.role, self.max_retries = base_url, role, max_retries
        self.model, self.max_tokens, self.stop = model, max_tokens, list(stop)[:4]
        self.concurrency, self.temperature = concurrency, temperature
        self.identity = f"openai:{base_url}:{model}:{max_tokens}:{temperature}:{self.stop}"

    def check_reachable(self) -> None:
        from cnr_plugin.endpoints import check_reachable

        check_reachable(self.client, self.base_url, self.role)

    def _one(self, req: Prompted) -> tuple[str, dict[str, int] | None]:
        common = dict(model=self.model, max_tokens=self.max_tokens, temperature=self.temperature)
        if req.messages is not None:
            out = self.client.chat.completions.create(messages=req.messages, **common)
            return out.choices[0].message.content or "", usage_of(out)
        out = self.client.completions.create(prompt=req.text, stop=self.stop or None, **common)
        return out.choices[0].text, usage_of(out)

    def generate(self, requests: Sequence[Prompted],
                 on_done: Callable[[int, str, dict[str, int] | None], None] | None = None) -> list[str]:
        import openai

        from cnr_plugin.endpoints import describe_failure

        out: list[str] = [""] * len(requests)
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            futures = {pool.submit(self._one, req): i for i, req in enumerate(requests)}
            failed: list[str] = []
            for fut in as_completed(futures):
                i = futures[fut]
                try:
                    out[i], usage = fut.result()
                except openai.APIError as exc:
                    failed.append(describe_failure(exc, self.max_retries))
                    continue
                if on_done is not None:
                    on_done(i, out[i], usage)
        if failed:
            raise GenerationError(f"{self.role} at {self.base_url}: {len(failed)} of {len(requests)} requests failed "
                                  f"({failed[0]}); the {len(requests) - len(failed)} "
                                  "that succeeded are cached: run the same command again to resume")
        return out
