"""Judging many comparisons: both position orders, cache, bounded concurrency, progress, scoring."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from cnr_plugin.cache import Cache, make_key

from .base import JudgePair, Verdict
from .config import JudgeConfig

LOG = logging.getLogger("cnr_plugin.judging")


@dataclass(frozen=True)
class Comparison:
    """Is ``revision`` better than ``baseline`` (the original, or the previous revision)?"""

    item_id: str
    iteration: int
    against: str  # "original" | "previous"
    prompt: str
    revision: str
    baseline: str
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def pairs(self) -> tuple[JudgePair, JudgePair]:
        """Both position orders: revision shown first, then baseline shown first."""
        return (JudgePair(self.prompt, self.revision, self.baseline, self.meta),
                JudgePair(self.prompt, self.baseline, self.revision, self.meta))


def iteration_comparisons(item_id: str, prompt: str, original: str, results: Sequence[tuple[int, str]],
                          meta: dict[str, Any] | None = None, compare_previous: bool = False) -> list[Comparison]:
    """The comparisons of one item: each iteration's result against the original response and,
    with ``compare_previous``, against the previous iteration's result."""
    out, previous = [], original
    for iteration, text in results:
        out.append(Comparison(item_id, iteration, "original", prompt, text, original, meta or {}))
        if compare_previous and iteration > 1:
            out.append(Comparison(item_id, iteration, "previous", prompt, text, previous, meta or {}))
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
    """The revision's score from both orders; failed or unparsed orders exclude the comparison."""
    for v in (forward, backward):
        if v.status != "ok":
            return None, v.status
    s_fwd = {"A": 1.0, "tie": 0.5, "B": 0.0}[forward.winner]  # type: ignore[index]
    s_bwd = {"B": 1.0, "tie": 0.5, "A": 0.0}[backward.winner]  # type: ignore[index]
    if s_fwd == s_bwd:
        return s_fwd, "ok"
    return (0.5 if disagreement == "tie" else (s_fwd + s_bwd) / 2), "ok"


def bootstrap_ci(scores: Sequence[float], n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean (seeded: the same scores give the same interval)."""
    x = np.asarray([s for s in scores if s is not None], dtype=float)
    if x.size == 0:
        return float("nan"), float("nan")
    if x.size == 1:
        return float(x[0]), float(x[0])
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    alpha = (1 - level) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


class JudgeRunner:
    """Judges comparisons with one judge: cached, concurrent, with a progress bar."""

    def __init__(self, judge: Any, config: JudgeConfig, cache: Cache | None = None, progress: bool = True):
        self.judge, self.config, self.cache, self.progress = judge, config, cache, progress
        self.calls = 0
        self.cache_hits = 0

    def _key(self, pair: JudgePair) -> str:
        return make_key("judge", self.config.fingerprint(), pair.prompt, pair.a, pair.b)

    def judge_pairs(self, pairs: Sequence[JudgePair]) -> list[Verdict]:
        use_cache = self.cache is not None and getattr(self.judge, "cacheable", True)
        keys = [self._key(p) for p in pairs]
        found: dict[str, Verdict] = {}
        todo: dict[str, JudgePair] = {}
        for key, pair in zip(keys, pairs):
            if key in found or key in todo:
                continue
            cached = self.cache.get("judge", key) if use_cache else None
            if cached is not None:
                found[key] = Verdict.from_dict(cached)
                self.cache_hits += 1
            else:
                todo[key] = pair
        bar = tqdm(total=len(todo), desc="cnr judge", unit="call", disable=not self.progress or not todo,
                   postfix={"cache hits": self.cache_hits})
        with ThreadPoolExecutor(max_workers=self.config.concurrency) as pool:
            futures = {pool.submit(self.judge.judge_one, pair): key for key, pair in todo.items()}
            for fut in as_completed(futures):
                key = futures[fut]
                verdict = fut.result()
                self.calls += 1
                found[key] = verdict
                if use_cache and verdict.status != "failed":  # failures are asked again next run
                    self.cache.put("judge", key, verdict.as_dict())
                bar.update(1)
        bar.close()
        return [found[k] for k in keys]

    def judge_comparisons(self, comparisons: Sequence[Comparison]) -> list[Judged]:
        pairs = [p for c in comparisons for p in c.pairs()]
        verdicts = self.judge_pairs(pairs)
        out = []
        for i, c in enumerate(comparisons):
            fwd, bwd = verdicts[2 * i], verdicts[2 * i + 1]
            score, status = score_orders(fwd, bwd, self.config.disagreement)
            out.append(Judged(c, fwd, bwd, score, status))
        return out


class TooManyFailures(RuntimeError):
    """More comparisons failed or went unparsed than ``max_failed_fraction`` allows."""


def summarize(judged: Sequence[Judged], max_failed_fraction: float = 1.0) -> dict[str, Any]:
    """Win rate per iteration (and against), with bootstrap CIs and the excluded counts."""
    by: dict[tuple[str, int], list[Judged]] = {}
    for j in judged:
        by.setdefault((j.comparison.against, j.comparison.iteration), []).append(j)
    rows = []
    for (against, it), js in sorted(by.items()):
        scores = [j.score for j in js if j.score is not None]
        lo, hi = bootstrap_ci(scores)
        rows.append({"against": against, "iteration": it, "n": len(js), "n_judged": len(scores),
                     "n_failed": sum(j.status == "failed" for j in js),
                     "n_unparsed": sum(j.status == "unparsed" for j in js),
                     "winrate": float(np.mean(scores)) if scores else float("nan"), "ci95": [lo, hi]})
    n_bad = sum(j.score is None for j in judged)
    if n_bad:
        warnings.warn(f"cnr: {n_bad} of {len(judged)} comparisons are excluded from the win rates "
                      f"({sum(j.status == 'failed' for j in judged)} failed, "
                      f"{sum(j.status == 'unparsed' for j in judged)} unparsed verdicts)", stacklevel=2)
    if judged and n_bad / len(judged) > max_failed_fraction:
        raise TooManyFailures(f"{n_bad} of {len(judged)} judge comparisons failed or were unparsed, more than "
                              f"max_failed_fraction={max_failed_fraction}: the win rates would not mean much")
    if judged and n_bad == len(judged):
        raise TooManyFailures("no comparison could be judged")
    return {"rows": rows, "n_comparisons": len(judged), "n_excluded": n_bad}
