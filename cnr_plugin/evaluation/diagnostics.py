"""How a judge behaves on a run, read from the run's own verdicts (both position orders of every
comparison) and the texts it compared.

* **consistency**: among comparisons judged in both orders, the share where both orders prefer
  the same text (or both say tie). A judge that always answers "A" scores 0; a perfect judge 1.
* **position A**: among decisive single-order verdicts, the share that name the text shown
  first. Every comparison is asked in both orders, so a judge without position bias is at 0.5
  (exactly so when it is also consistent); a judge that always answers "A" is at 1.
* **prefers longer**: among decisive single-order verdicts on texts of different lengths, the
  share that pick the longer text (AlpacaEval's length bias).
* **tie share**: of the single-order verdicts that could be read (unparsed and failed ones are not
  verdicts on the texts, so they neither add ties nor dilute them).
* **unparsed / failed share**: of all single-order verdicts asked.
* **margin (agree / disagree)**: for probability verdicts, the mean |P(A) - P(B)| of the orders
  that agree with each other, and of those that do not: a calibrated judge is surer when it is
  consistent.

:func:`comparison_counts` gives one comparison's numerators and denominators, so lm-eval can add
them up per document (the ``share`` aggregation) and reach the same numbers as :func:`diagnose`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

#: diagnostic -> (numerator, denominator) names in :func:`comparison_counts`
SHARES = {
    "consistency": ("consistent", "both_ok"),
    "position_a": ("picked_a", "decisive"),
    "prefers_longer": ("picked_longer", "decisive_unequal"),
    "tie_share": ("ties", "ok"),
    "unparsed_share": ("unparsed", "verdicts"),
    "failed_share": ("failed", "verdicts"),
    "margin_agree": ("margin_agree_sum", "margin_agree_n"),
    "margin_disagree": ("margin_disagree_sum", "margin_disagree_n"),
}
#: what each diagnostic says, for tables and the documentation
MEANING = {
    "consistency": "same text preferred in both orders (1 = always)",
    "position_a": "decisive verdicts naming the text shown first (0.5 = no position bias)",
    "prefers_longer": "decisive verdicts picking the longer text",
    "tie_share": "readable verdicts that are ties (unparsed and failed ones left out)",
    "unparsed_share": "replies that could not be read as a verdict",
    "failed_share": "calls that failed after retries",
    "margin_agree": "mean |P(A)-P(B)| where the two orders agree (probability verdicts)",
    "margin_disagree": "mean |P(A)-P(B)| where they disagree (lower than margin_agree when calibrated)",
}


@dataclass(frozen=True)
class Judgment:
    """Both position orders of one comparison with the texts compared: ``forward`` shows the
    revision as A, ``backward`` shows the baseline as A (verdicts as dicts: winner, status, probs)."""

    forward: dict[str, Any]
    backward: dict[str, Any]
    revision: str
    baseline: str


def _preferred(verdict: dict[str, Any], first: str) -> str | None:
    """Which text an ok verdict prefers ('revision', 'baseline', 'tie'); ``first`` is the text shown as A."""
    second = "baseline" if first == "revision" else "revision"
    return {"A": first, "B": second, "tie": "tie"}.get(verdict.get("winner"))  # type: ignore[arg-type]


def comparison_counts(j: Judgment) -> dict[str, float]:
    """One comparison's numerators and denominators of every diagnostic."""
    c = dict.fromkeys({n for pair in SHARES.values() for n in pair}, 0.0)
    orders = ((j.forward, "revision", j.revision, j.baseline), (j.backward, "baseline", j.baseline, j.revision))
    for v, _first, a, b in orders:
        c["verdicts"] += 1
        if v.get("status") != "ok":
            c["unparsed" if v.get("status") == "unparsed" else "failed"] += 1
            continue
        c["ok"] += 1
        winner = v.get("winner")
        if winner == "tie":
            c["ties"] += 1
            continue
        c["decisive"] += 1
        c["picked_a"] += winner == "A"
        if len(a) != len(b):
            c["decisive_unequal"] += 1
            c["picked_longer"] += (len(a) > len(b)) == (winner == "A")
    if j.forward.get("status") == j.backward.get("status") == "ok":
        c["both_ok"] = 1
        agree = _preferred(j.forward, "revision") == _preferred(j.backward, "baseline")
        c["consistent"] = float(agree)
        probs = [v.get("probs") for v in (j.forward, j.backward)]
        if all(probs):
            margin = sum(abs(p["A"] - p["B"]) for p in probs) / 2  # type: ignore[index]
            side = "agree" if agree else "disagree"
            c[f"margin_{side}_sum"] += margin
            c[f"margin_{side}_n"] += 1
    return c


def add_counts(counts: Iterable[dict[str, float]]) -> dict[str, float]:
    total: dict[str, float] = {}
    for c in counts:
        for k, v in c.items():
            total[k] = total.get(k, 0.0) + v
    return total


def shares(total: dict[str, float]) -> dict[str, Any]:
    """The diagnostics from summed counts: None where nothing was there to measure."""
    out: dict[str, Any] = {}
    for name, (num, den) in SHARES.items():
        out[name] = total.get(num, 0.0) / total[den] if total.get(den) else None
    out["n_comparisons"] = int(total.get("comparisons", 0))
    out["n_verdicts"] = int(total.get("verdicts", 0))
    out["n_both_orders"] = int(total.get("both_ok", 0))
    out["n_decisive"] = int(total.get("decisive", 0))
    return out


def diagnose(judgments: Iterable[Judgment]) -> dict[str, Any]:
    """Every diagnostic over ``judgments`` (see the module's docstring)."""
    return shares(add_counts({**comparison_counts(j), "comparisons": 1.0} for j in judgments))


def from_judged(judged: Iterable[Any]) -> list[Judgment]:
    """Judgments of :class:`cnr_plugin.evaluation.judging.Judged` objects."""
    return [Judgment(j.forward.as_dict(), j.backward.as_dict(), j.comparison.revision, j.comparison.baseline)
            for j in judged]


def from_item(item: dict[str, Any]) -> list[Judgment]:
    """Judgments of one item in :mod:`cnr_plugin.results`' item shape: each verdict with the texts
    it compared (the original, or the previous iteration's result for ``against: previous``)."""
    results = {s["iteration"]: s["result"] for s in item.get("steps", [])}
    out = []
    for j in item.get("judgments", []):
        k = j["iteration"]
        if k not in results or "forward" not in j or "backward" not in j:
            continue
        baseline = item["response"] if j["against"] == "original" else results.get(k - 1, item["response"])
        out.append(Judgment(j["forward"], j["backward"], results[k], baseline))
    return out


def from_items(items: Sequence[dict[str, Any]]) -> list[Judgment]:
    return [j for it in items for j in from_item(it)]
