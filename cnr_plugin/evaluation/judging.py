"""Judging revisions: verdict identity, the runner, and the one pipeline (the judges themselves
are :mod:`cnr_plugin.judges`).

A verdict is a function of the judge's settings and of what the judge reads of a pair. The judge
declares the latter (``reads``), and both the in-run dedupe key and the cache key are made of
exactly that, so two items that differ only in what an oracle reads (``meta``) are never given
each other's verdict. Only parsed verdicts are cached; failed and unparsed ones are asked again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

from cnr_plugin.cache import Cache, Claims, make_key, several_processes
from cnr_plugin.costs import Tally
from cnr_plugin.errors import CnRError
from cnr_plugin.judges import JudgeConfig, JudgeConfigError, JudgePair, Verdict, judge_reads, load_judge_config, make_judge

from .diagnostics import diagnose, from_judged
from .generation import Item
from .stats import length_controlled, win_rate

LOG = logging.getLogger("cnr_plugin.evaluation")


def verdict_key(config: JudgeConfig, judge: Any, pair: JudgePair) -> str:
    """Everything a verdict depends on: the judge and its options (less those it keeps out of the
    key), the judge's class, and the fields of the pair it reads."""
    reads = judge_reads(judge)
    impl = f"{type(judge).__module__}.{type(judge).__qualname__}"
    return make_key("judge", config.fingerprint(), impl, {f: getattr(pair, f) for f in sorted(reads)})


@dataclass(frozen=True)
class Comparison:
    """Is ``revision`` better than ``baseline`` (the original, or the previous revision)?"""

    item_id: str
    iteration: int
    against: str  # "original" | "previous"
    prompt: str | list[dict[str, str]]
    revision: str
    baseline: str
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def pairs(self) -> tuple[JudgePair, JudgePair]:
        """Both position orders: revision shown first, then baseline shown first."""
        return (JudgePair(self.prompt, self.revision, self.baseline, self.meta),
                JudgePair(self.prompt, self.baseline, self.revision, self.meta))


def iteration_comparisons(item: Item, results: Sequence[tuple[int, str]],
                          compare_previous: bool = False) -> list[Comparison]:
    """The comparisons of one item: each iteration's result against the original response and,
    with ``compare_previous``, against the previous iteration's result."""
    out, previous = [], item.response
    for iteration, text in results:
        out.append(Comparison(item.id, iteration, "original", item.prompt, text, item.response, item.meta))
        if compare_previous and iteration > 1:
            out.append(Comparison(item.id, iteration, "previous", item.prompt, text, previous, item.meta))
        previous = text
    return out


@dataclass(frozen=True)
class Judged:
    comparison: Comparison
    forward: Verdict   # A = revision
    backward: Verdict  # A = baseline
    score: float | None  # revision's score: win 1, tie 0.5, loss 0; None when excluded
    status: str  # ok | failed | unparsed

    def as_dict(self) -> dict[str, Any]:
        c = self.comparison
        return {"item_id": c.item_id, "iteration": c.iteration, "against": c.against, "score": self.score,
                "status": self.status, "forward": self.forward.as_dict(), "backward": self.backward.as_dict()}


def score_orders(forward: Verdict, backward: Verdict, disagreement: str = "tie") -> tuple[float | None, str]:
    """The revision's score from both orders; failed or unparsed orders exclude the comparison.

    With probabilities in both orders (``verdict: probability``) the score is the expected outcome,
    P(revision better) + P(tie) / 2, averaged over the two orders: a position bias adds to one
    order what it takes from the other."""
    for v in (forward, backward):
        if v.status != "ok":
            return None, v.status
    if forward.probs is not None and backward.probs is not None:
        s_fwd = forward.probs["A"] + forward.probs["tie"] / 2
        s_bwd = backward.probs["B"] + backward.probs["tie"] / 2
        return (s_fwd + s_bwd) / 2, "ok"
    s_fwd = {"A": 1.0, "tie": 0.5, "B": 0.0}[forward.winner]  # type: ignore[index]
    s_bwd = {"B": 1.0, "tie": 0.5, "A": 0.0}[backward.winner]  # type: ignore[index]
    if s_fwd == s_bwd:
        return s_fwd, "ok"
    return (0.5 if disagreement == "tie" else (s_fwd + s_bwd) / 2), "ok"


class BatchState:
    """Where a batch judge keeps the batch it submitted (the cache's ``batch`` table, by the set of
    verdicts asked: :attr:`key`), so a stopped run resumes that batch instead of submitting it again.

    ``clear()`` after the results are read does not delete the row yet: the runner deletes it in the
    same transaction that saves the batch's verdicts (:meth:`JudgeRunner.judge_pairs`), so a kill
    between the two can neither lose the batch id nor lose the verdicts."""

    def __init__(self, cache: Cache | None, key: str):
        self.cache, self.key = cache, key
        self._memory: dict[str, Any] | None = None
        #: the judge read the batch back: the row goes with the verdicts
        self.done = False

    def get(self) -> dict[str, Any] | None:
        if self.done:
            return None
        return self.cache.get("batch", self.key) if self.cache is not None else self._memory

    def put(self, value: dict[str, Any]) -> None:
        self.done = False
        if self.cache is not None:
            self.cache.put("batch", self.key, value)
        else:
            self._memory = value

    def clear(self) -> None:
        self.done = True
        self._memory = None


class JudgeRunner:
    """Judges comparisons with one judge: deduplicated and cached by verdict identity,
    concurrent (or as one batch, for a judge in batch mode), with a progress bar. A judge that
    raises gives a ``failed`` verdict for that pair. ``tally`` counts calls, tokens and time."""

    def __init__(self, judge: Any, config: JudgeConfig, cache: Cache | None = None, progress: bool = True):
        self.judge, self.config, self.cache, self.progress = judge, config, cache, progress
        self.calls = 0
        self.cache_hits = 0
        self.tally = Tally("judge")

    def _judge_one(self, pair: JudgePair) -> Verdict:
        try:
            return self.judge.judge_one(pair)
        except Exception as exc:  # one pair's error is counted, never the end of the run
            return Verdict(None, "failed", "", f"judge error: {type(exc).__name__}: {exc}")

    def _record(self, key: str, verdict: Verdict, found: dict[str, Verdict], use_cache: bool) -> None:
        self.calls += 1
        self.tally.call(verdict.usage, answered=verdict.status != "failed")
        found[key] = verdict
        if use_cache and verdict.status == "ok":  # failed and unparsed are asked again next run
            self.cache.put("judge", key, verdict.as_dict())  # type: ignore[union-attr]

    def _judge_batch(self, todo: dict[str, JudgePair], found: dict[str, Verdict], use_cache: bool) -> None:
        """One batch job for ``todo``: its verdicts that parsed are saved, and its batch id dropped, in one
        transaction (a kill before it resumes the same batch; after it, the cache answers)."""
        state = BatchState(self.cache if use_cache else None, make_key("batch", sorted(todo)))
        verdicts = self.judge.judge_batch(list(todo.values()), list(todo), state, progress=self.progress)
        for key, verdict in zip(todo, verdicts):
            self._record(key, verdict, found, use_cache=False)
        if use_cache:
            self.cache.write([("judge", key, v.as_dict()) for key, v in zip(todo, verdicts)  # type: ignore[union-attr]
                              if v.status == "ok"], [("batch", state.key)] if state.done else [])

    def judge_pairs(self, pairs: Sequence[JudgePair]) -> list[Verdict]:
        use_cache = self.cache is not None and bool(getattr(self.judge, "cacheable", False))
        keys = [verdict_key(self.config, self.judge, p) for p in pairs]
        found: dict[str, Verdict] = {}
        todo: dict[str, JudgePair] = {}
        for key, pair in zip(keys, pairs):
            if key in found or key in todo:
                continue
            cached = self.cache.get("judge", key) if use_cache else None  # type: ignore[union-attr]
            if cached is not None:
                found[key] = Verdict.from_dict(cached)
                self.cache_hits += 1
                self.tally.hit(found[key].usage)
            else:
                todo[key] = pair
        self.tally.start()
        if todo and getattr(self.judge, "batched", False):
            self._judge_batch(todo, found, use_cache)
        elif todo and use_cache and several_processes():
            self._judge_shared(todo, found)
        elif todo:
            self._judge_threads(todo, found, use_cache)
        self.tally.stop()
        return [found[k] for k in keys]

    def _judge_threads(self, todo: dict[str, JudgePair], found: dict[str, Verdict], use_cache: bool) -> None:
        if not todo:
            return
        bar = tqdm(total=len(todo), desc="cnr judge", unit="call", disable=not self.progress,
                   postfix={"cache hits": self.cache_hits})
        with ThreadPoolExecutor(max_workers=self.config.concurrency) as pool:
            futures = {pool.submit(self._judge_one, pair): key for key, pair in todo.items()}
            for fut in as_completed(futures):
                self._record(futures[fut], fut.result(), found, use_cache)
                bar.update(1)
        bar.close()

    def _judge_shared(self, todo: dict[str, JudgePair], found: dict[str, Verdict]) -> None:
        """Several processes share the cache (a data-parallel run): each verdict is asked by the
        process that claims it first; the others read it from the cache (:class:`Claims`)."""
        cache = self.cache
        assert cache is not None
        read = Claims(cache, "judge").share(
            list(todo), lambda keys: self._judge_threads({k: todo[k] for k in keys}, found, use_cache=True),
            lambda k: cache.get("judge", k))
        for key, value in read.items():
            found[key] = Verdict.from_dict(value)
            self.cache_hits += 1
            self.tally.hit(found[key].usage)

    def judge_comparisons(self, comparisons: Sequence[Comparison]) -> list[Judged]:
        pairs = [p for c in comparisons for p in c.pairs()]
        verdicts = self.judge_pairs(pairs)
        out = []
        for i, c in enumerate(comparisons):
            fwd, bwd = verdicts[2 * i], verdicts[2 * i + 1]
            score, status = score_orders(fwd, bwd, self.config.disagreement)
            out.append(Judged(c, fwd, bwd, score, status))
        return out


class JudgeGate:
    """``accept: judge``: revision i replaces revision i-1 only if the judge prefers it in both
    position orders (a tie, a disagreement, a failed or unparsed verdict keep the previous text).
    Its verdicts go through the same runner, keys and cache as the win-rate judging."""

    def __init__(self, judge: Any, config: JudgeConfig, cache: Cache | None = None, progress: bool = False):
        self.runner = JudgeRunner(judge, config, cache, progress=progress)
        #: item id -> verdicts this gate used for it (two per gated revision)
        self.judgments: dict[str, int] = {}

    def __call__(self, candidates: Sequence[tuple[Item, str, str, int]]) -> list[bool]:
        comparisons = [Comparison(it.id, k, "previous", it.prompt, new, old, it.meta) for it, old, new, k in candidates]
        for c in comparisons:
            self.judgments[c.item_id] = self.judgments.get(c.item_id, 0) + 2
        return [j.forward.status == j.backward.status == "ok" and j.forward.winner == "A" and j.backward.winner == "B"
                for j in self.runner.judge_comparisons(comparisons)]

    @property
    def calls(self) -> int:
        return self.runner.calls


class TooManyFailures(CnRError):
    """More comparisons failed or went unparsed than ``max_failed_fraction`` allows."""


def summarize(judged: Sequence[Judged], max_failed_fraction: float = 1.0, seed: int = 0) -> dict[str, Any]:
    """Win rate per iteration (and against), with bootstrap CIs (seeded by ``seed``) and the
    excluded counts."""
    by: dict[tuple[str, int], list[Judged]] = {}
    for j in judged:
        by.setdefault((j.comparison.against, j.comparison.iteration), []).append(j)
    rows = []
    for (against, it), js in sorted(by.items()):
        ok = [j for j in js if j.score is not None]
        wr = win_rate([j.score for j in ok], seed=seed)
        lc = length_controlled([(j.score, len(j.comparison.revision), len(j.comparison.baseline))  # type: ignore[misc]
                                for j in ok], seed=seed)
        rows.append({"against": against, "iteration": it, "n": len(js), "n_judged": wr["n"],
                     "n_failed": sum(j.status == "failed" for j in js),
                     "n_unparsed": sum(j.status == "unparsed" for j in js),
                     "winrate": wr["winrate"], "ci95": wr["ci95"],
                     "lc_winrate": lc["winrate"], "lc_ci95": lc["ci95"]})
    n_bad = sum(j.score is None for j in judged)
    if n_bad:
        LOG.warning("cnr: %d of %d comparisons are excluded from the win rates (%d failed, %d unparsed verdicts)",
                    n_bad, len(judged), sum(j.status == "failed" for j in judged),
                    sum(j.status == "unparsed" for j in judged))
    # the first error in the comparisons' own order (not in the order the answers came back)
    first = next((v.error for j in judged for v in (j.forward, j.backward) if v.status != "ok" and v.error), None)
    said = f" (first error: {first})" if first else ""
    if judged and n_bad == len(judged):
        raise TooManyFailures("no comparison could be judged" + said)
    if judged and n_bad / len(judged) > max_failed_fraction:
        raise TooManyFailures(f"{n_bad} of {len(judged)} judge comparisons failed or were unparsed, more than "
                              f"max_failed_fraction={max_failed_fraction}: the win rates would not mean much{said}")
    return {"rows": rows, "n_comparisons": len(judged), "n_excluded": n_bad, "seed": seed,
            "judge_diagnostics": diagnose(from_judged(judged))}


def prepare_judge(spec: Any, items: Sequence[Item] = (), source: str = "responses") -> tuple[JudgeConfig, Any]:
    """Load and build the judge, check that it answers and that it can judge every item:
    everything that can fail about judging fails here, before any generation."""
    config = load_judge_config(spec)
    judge = make_judge(config)
    if config.check_reachable:
        judge.check_reachable()
    check = getattr(judge, "check_item", None)
    if check is not None:
        for item in items:
            try:
                check(item)
            except CnRError as exc:
                raise JudgeConfigError(f"{source}: item {item.id!r}: {exc}") from None
    return config, judge


def text_metrics(judge: Any, items: Sequence[Item], results: Mapping[str, Sequence[tuple[int, str]]]
                 ) -> dict[str, dict[int, dict[str, tuple[float, float]]]]:
    """A judge's own figures of each text (``judge.text_metrics(prompt, text, meta)``, e.g. IFEval's
    accuracies), for every item's original (iteration 0) and each iteration's result; {} for a
    judge without them. Values are (numerator, denominator), so they add up over items."""
    from cnr_plugin.formats.base import prompt_text

    score = getattr(judge, "text_metrics", None)
    if score is None:
        return {}
    out: dict[str, dict[int, dict[str, tuple[float, float]]]] = {}
    for it in items:
        prompt = prompt_text(it.prompt)
        out[it.id] = {0: score(prompt, it.response, it.meta)}
        for k, text in results[it.id]:
            out[it.id][k] = score(prompt, text, it.meta)
    return out


def text_metric_shares(per_item: Mapping[str, Mapping[Any, Mapping[str, Sequence[float]]]]) -> dict[str, dict[str, float]]:
    """Per iteration ("0" = the originals): each figure's numerators over its denominators, summed over items."""
    sums: dict[str, dict[str, list[float]]] = {}
    for per in per_item.values():
        for k, figures in per.items():
            for name, (num, den) in figures.items():
                acc = sums.setdefault(str(k), {}).setdefault(name, [0.0, 0.0])
                acc[0] += num
                acc[1] += den
    return {k: {name: num / den for name, (num, den) in figures.items() if den}
            for k, figures in sorted(sums.items(), key=lambda kv: int(kv[0]))}


@dataclass
class Evaluation:
    """What judging a run gives: every comparison judged, the summary, and the judge's costs
    (``usage``: :meth:`cnr_plugin.costs.Tally.report`)."""

    judged: list[Judged]
    summary: dict[str, Any]
    calls: int
    cache_hits: int
    usage: dict[str, Any] = field(default_factory=dict)
    #: the judge's own figures per item and iteration (:func:`text_metrics`), e.g. IFEval's accuracies
    text_metrics: dict[str, dict[int, dict[str, tuple[float, float]]]] = field(default_factory=dict)

    def by_item(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for j in self.judged:
            out.setdefault(j.comparison.item_id, []).append(j.as_dict())
        return out


def judge_revisions(items: Sequence[Item], results: Mapping[str, Sequence[tuple[int, str]]], config: JudgeConfig,
                    judge: Any = None, *, cache: Cache | None = None, compare_previous: bool = False,
                    progress: bool = True, seed: int = 0) -> Evaluation:
    """Judge every iteration's result of every item against its original (both orders) and
    summarise: the one judging pipeline of ``cnr_winrate``, ``cnr judge`` and annotation."""
    judge = judge if judge is not None else make_judge(config)
    comparisons = [c for it in items for c in iteration_comparisons(it, results[it.id], compare_previous)]
    runner = JudgeRunner(judge, config, cache, progress=progress)
    judged = runner.judge_comparisons(comparisons)
    summary = summarize(judged, config.max_failed_fraction, seed=seed)
    per_text = text_metrics(judge, items, results)
    if per_text:
        summary["text_metrics"] = {"judge": config.judge, "by_iteration": text_metric_shares(per_text)}
    LOG.info("cnr: %d judge calls, %d cache hits", runner.calls, runner.cache_hits)
    return Evaluation(judged, summary, runner.calls, runner.cache_hits, runner.tally.report(config.price), per_text)
