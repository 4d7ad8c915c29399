"""Statistics of win rates: Bayesian-bootstrap intervals, paired differences, the length-controlled win rate.

Every function is a function of the multiset of per-item values (sorted before resampling), so
the order of the items never changes a figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import math
from typing import Any

import numpy as np

#: the prior of every interval: one pseudo-item at each end of the scale and one in the middle
PRIOR_ATOMS = 3


def bootstrap_ci(scores: Sequence[float | None], n_boot: int = 10_000, level: float = 0.95,
                 seed: int = 0, scale: tuple[float, float] = (0.0, 1.0)) -> tuple[float, float]:
    """Equal-tailed interval of the mean by the Bayesian bootstrap (Rubin 1981) with a prior: the
    items get Dirichlet(1, ..., 1) weights together with one pseudo-item at each end of ``scale``
    and one at its middle. For letter verdicts (scores 0, 0.5, 1) this is the posterior of the
    loss/tie/win shares under a uniform Dirichlet prior; with many items it agrees with the
    percentile bootstrap, and unlike it the interval never collapses to zero width when every
    item has the same score (six ties say little). Seeded, and computed on the sorted scores, so
    the same multiset of scores gives the same interval whatever the order of the items."""
    x = np.sort(np.asarray([s for s in scores if s is not None], dtype=float))
    if x.size == 0:
        return float("nan"), float("nan")
    lo_s, hi_s = scale
    x = np.concatenate([x, [lo_s, (lo_s + hi_s) / 2, hi_s]])
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    chunk = max(1, 2_000_000 // x.size)
    for start in range(0, n_boot, chunk):
        w = rng.standard_gamma(1.0, size=(min(chunk, n_boot - start), x.size))
        means[start:start + w.shape[0]] = (w @ x) / w.sum(axis=1)
    alpha = (1 - level) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def win_rate(scores: Sequence[float | None], seed: int = 0) -> dict[str, Any]:
    """The win rate of per-item scores (1 win, 0.5 tie, 0 loss, or an expected score; None is
    excluded): the mean, with its 95 % interval (:func:`bootstrap_ci`). The one aggregation of win
    rates: the evaluation summary, lm-eval's metrics, people's verdicts and the results page all
    call it, and the mean is taken over the sorted scores, so the order of items never moves it.
    ``seed`` is the bootstrap's (the run option ``seed``, ``cnr judge --seed``): it moves the
    interval by its Monte Carlo error, never the win rate."""
    x = np.sort(np.asarray([s for s in scores if s is not None], dtype=float))
    if not x.size:
        return {"winrate": float("nan"), "ci95": [float("nan"), float("nan")], "n": 0}
    mean = float(x.mean())
    return {"winrate": mean, "ci95": list(containing(bootstrap_ci(list(x), seed=seed), mean)), "n": int(x.size)}


def containing(interval: tuple[float, float], estimate: float) -> tuple[float, float]:
    """The interval, stretched to the estimate it is reported with where it does not hold it: the
    prior's pseudo-items pull the posterior towards the middle, so with few items that all agree
    (five wins of five) the plain estimate, 1.0, lies above the posterior's upper quantile. A
    reader takes an estimate outside its interval for a bug; the stretched interval still covers
    the posterior's 95 %."""
    lo, hi = interval
    return min(lo, estimate), max(hi, estimate)


def paired_difference(a: Mapping[str, float], b: Mapping[str, float], n_boot: int = 10_000, level: float = 0.95,
                      seed: int = 0) -> dict[str, Any]:
    """Mean of a - b over the items both scored (the same items, e.g. trained vs control), with a
    Bayesian-bootstrap interval over items (``bootstrap_ci`` on the scale -1..1) and a two-sided
    sign test (scipy) of the per-item differences."""
    ids = sorted(set(a) & set(b))
    d = np.asarray([a[i] - b[i] for i in ids], dtype=float)
    if d.size == 0:
        return {"n": 0, "mean": float("nan"), "ci95": [float("nan"), float("nan")], "wins": 0, "losses": 0,
                "sign_test_p": float("nan")}
    lo, hi = bootstrap_ci(list(d), n_boot=n_boot, level=level, seed=seed, scale=(-1.0, 1.0))
    wins, losses = int((d > 0).sum()), int((d < 0).sum())
    p = 1.0  # no item changed sides: nothing speaks against "no difference" (not NaN, which JSON cannot hold)
    if wins + losses:
        from scipy.stats import binomtest

        p = float(binomtest(wins, wins + losses, 0.5).pvalue)
    return {"n": int(d.size), "mean": float(d.mean()), "ci95": [lo, hi], "wins": wins, "losses": losses,
            "sign_test_p": p}



#: the L2 penalty on the length coefficient (AlpacaEval 2 regularises its GLM the same way): with
#: a judge that only follows length the data are separable and the coefficient would diverge
LENGTH_PENALTY = 0.05


def _fit_lc(y: np.ndarray, x: np.ndarray, w: np.ndarray | None = None, iters: int = 50) -> np.ndarray:
    """logit P(revision wins) = theta + phi * x, fitted on soft outcomes (a tie is 0.5) by penalised
    maximum likelihood (an L2 penalty on phi), for a batch of resamples at once: ``y``, ``x`` and the
    item weights ``w`` (default 1; each row summing to its item count) are (batch, n). Newton's
    method, damped; returns sigmoid(theta) per resample, the win rate at equal length. (scipy's
    expit; numpy for the batched 2x2 solves.)"""
    from scipy.special import expit

    batch, n = y.shape
    w = np.ones_like(y) if w is None else w
    theta, phi = np.zeros(batch), np.zeros(batch)
    ridge = 2 * LENGTH_PENALTY * n
    for _ in range(iters):
        p = expit(theta[:, None] + phi[:, None] * x)
        r, h = w * (p - y), w * np.clip(p * (1 - p), 1e-9, None)
        g0, g1 = r.sum(1), (r * x).sum(1) + ridge * phi
        h00, h01, h11 = h.sum(1), (h * x).sum(1), (h * x * x).sum(1) + ridge
        det = h00 * h11 - h01 * h01
        d0, d1 = (h11 * g0 - h01 * g1) / det, (h00 * g1 - h01 * g0) / det
        theta, phi = theta - np.clip(d0, -5, 5), phi - np.clip(d1, -5, 5)
        theta = np.clip(theta, -30, 30)
        if np.max(np.abs(d0)) < 1e-9 and np.max(np.abs(d1)) < 1e-9:
            break
    return expit(theta)


def length_controlled(items: Sequence[tuple[float, int, int]], n_boot: int = 1000, level: float = 0.95,
                      seed: int = 0) -> dict[str, Any]:
    """The win rate controlled for length, in the style of AlpacaEval 2's length-controlled win rate.

    ``items``: (score, length of the revision, length of the baseline) per judged comparison. A
    logistic model of the score on tanh(length difference / its standard deviation) is read off at
    zero difference. A judge that follows length alone gives about 0.5 whatever its raw win rate; a
    judge that ignores length gives about the raw win rate. The interval is a Bayesian bootstrap
    with the prior of :func:`bootstrap_ci` (every resample refitted, all at once): Dirichlet weights
    over the items and three pseudo-items at equal length scoring 0, 0.5 and 1, so forty ties give an
    interval around 0.5 as wide as the raw win rate's, never a zero-width one."""
    if not items:
        return {"winrate": float("nan"), "ci95": [float("nan"), float("nan")]}
    arr = np.asarray(sorted(items), dtype=float)
    y, diff = arr[:, 0], arr[:, 1] - arr[:, 2]
    scale = float(np.std(diff)) or 1.0
    x = np.tanh(diff / scale)
    point = float(_fit_lc(y[None, :], x[None, :])[0])
    y_all = np.concatenate([y, [0.0, 0.5, 1.0]])
    x_all = np.concatenate([x, np.zeros(PRIOR_ATOMS)])
    g = np.random.default_rng(seed).standard_gamma(1.0, size=(n_boot, y_all.size))
    w = g * (y_all.size / g.sum(axis=1, keepdims=True))
    fits = _fit_lc(np.broadcast_to(y_all, w.shape), np.broadcast_to(x_all, w.shape), w)
    alpha = (1 - level) / 2
    lo, hi = containing((float(np.quantile(fits, alpha)), float(np.quantile(fits, 1 - alpha))), point)
    return {"winrate": point, "ci95": [lo, hi]}


# -- agreement of two judges (people or models) on the same comparisons ----------------------------

#: a revision's outcome against the original, as a score (1 win, 0.5 tie, 0 loss) and a label
LABELS = ("loss", "tie", "win")


def label(score: float) -> str:
    return "win" if score > 0.5 else "loss" if score < 0.5 else "tie"


def cohen_kappa(a: list[str], b: list[str]) -> float:
    """Cohen's kappa of two label sequences over LABELS; NaN when chance agreement is total."""
    if not a:
        return float("nan")
    idx = {lab: i for i, lab in enumerate(LABELS)}
    table = np.zeros((len(LABELS), len(LABELS)))
    for x, y in zip(a, b):
        table[idx[x], idx[y]] += 1
    n = table.sum()
    p_o = np.trace(table) / n
    p_e = float((table.sum(0) / n) @ (table.sum(1) / n))
    return float("nan") if p_e == 1 else float((p_o - p_e) / (1 - p_e))


def agreement(a: list[str], b: list[str]) -> dict[str, Any]:
    """Percent agreement with and without ties (MT-Bench's two settings) and Cohen's kappa;
    None where a figure is undefined (nothing to compare, or no chance model)."""
    no_ties = [(x, y) for x, y in zip(a, b) if "tie" not in (x, y)]
    kappa = cohen_kappa(a, b)
    return {"n": len(a), "percent": float(np.mean([x == y for x, y in zip(a, b)])) if a else None,
            "n_without_ties": len(no_ties),
            "percent_without_ties": float(np.mean([x == y for x, y in no_ties])) if no_ties else None,
            "cohen_kappa": None if math.isnan(kappa) else kappa}
