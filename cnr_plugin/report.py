"""Tables and plots of win rate against iteration, of the runs :mod:`cnr_plugin.results` reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .results import Run


def _short(name: str, width: int = 48) -> str:
    return name if len(name) <= width else name[: width // 2 - 1] + "…" + name[-(width - width // 2):]


def format_table(runs: list[Run]) -> str:
    """Win rate and length-controlled (LC) win rate per iteration, each with its 95 % interval."""
    lines = [f"{'run':<48} {'iter':>4} {'win rate':>9} {'95% CI':>17} {'LC win rate':>12} {'95% CI':>17}"]
    for run in runs:
        for it, (wr, lo, hi) in sorted(run.points.items()):
            lc = run.lc.get(it)
            # a figure lm-eval wrote as null (nothing judged at that iteration) is "n/a"
            lc_cells = f"{fig(lc[0], 3):>12}   [{fig(lc[1], 3)}, {fig(lc[2], 3)}]" if lc else f"{'-':>12}"
            lines.append(f"{_short(run.name):<48} {it:>4} {fig(wr, 3):>9}   [{fig(lo, 3)}, {fig(hi, 3)}] {lc_cells}")
    return "\n".join(lines)


#: the judge columns of :func:`judge_rows`: (Run.extra key, heading, a share or a count)
JUDGE_COLUMNS = (("judge_consistency", "consistent", "share"), ("judge_position_a", "position A", "share"),
                 ("judge_prefers_longer", "longer", "share"), ("judge_tie_share", "ties", "share"),
                 ("judge_unparsed_share", "unparsed", "share"), ("judge_calls", "calls", "count"),
                 ("judge_cached", "cached", "count"), ("judge_tokens_in", "tokens in", "count"),
                 ("judge_tokens_out", "tokens out", "count"), ("judge_cost", "cost", "money"))


def _cell(v: Any, kind: str = "share") -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "-"
    if not isinstance(v, (int, float)):
        return str(v)
    return {"share": f"{v:.3f}", "count": f"{int(v):,}", "money": f"{v:.4f}"}[kind]


def fig(x: float | None, digits: int = 2) -> str:
    """A figure for a command-line line or table: ``n/a`` where there is none."""
    return "n/a" if x is None or x != x else f"{x:.{digits}f}"


def aligned(rows: list[list[str]], sep: str, first: int | None = None) -> list[str]:
    """Rows of cells as aligned lines: the first column left-aligned (to ``first`` characters, else
    to its widest cell), the others right-aligned to their widest cell."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    if first is not None:
        widths[0] = first
    return [sep.join(f"{c:<{w}}" if i == 0 else f"{c:>{w}}" for i, (c, w) in enumerate(zip(row, widths)))
            for row in rows]


def judge_rows(runs: list[Run]) -> list[tuple[str, list[str]]]:
    """Each run's judge diagnostics and costs as table cells (runs of people's verdicts have none)."""
    return [(run.name, [_cell(run.extra.get(key), kind) for key, _, kind in JUDGE_COLUMNS]) for run in runs
            if any(key in run.extra for key, _, _ in JUDGE_COLUMNS)]


def format_judge_table(runs: list[Run]) -> str:
    """How the judge behaved and what it cost, per run (docs/judges.md: 'Know your judge'): consistent
    = same text preferred in both position orders; position A = decisive verdicts naming the first
    text (0.5 is unbiased); longer = decisive verdicts picking the longer text."""
    rows = judge_rows(runs)
    people = [f"{_short(run.name)}, iteration {k}: agrees with the LLM judge on {_cell(a.get('percent'))} of "
              f"{a.get('n')} choices ({_cell(a.get('percent_without_ties'))} without ties), Cohen's kappa "
              f"{_cell(a.get('cohen_kappa'))}"
              for run in runs for k, a in sorted((run.extra.get("agreement_with_judge") or {}).items())]
    if not rows:
        return "\n".join(people)
    table = [["judge of run", *(h for _, h, _ in JUDGE_COLUMNS)], *([_short(name), *cells] for name, cells in rows)]
    return "\n".join(aligned(table, " ", first=48) + people)


def format_judge_ranking(rows: list[dict[str, Any]]) -> str:
    """``cnr rank-judges``' table: one line per judge configuration, in the ranking's order."""
    table = [["judge", "win rate", "consistent", "position A", "longer", "ties", "unparsed", "people %", "kappa",
              "calls", "cached", "cost of all", "s/1000 calls"]]
    for r in rows:
        p, u = r.get("people") or {}, r["usage"]
        table.append([r["judge"], fig(r["winrate"]), fig(r["consistency"]), fig(r["position_a"]),
                      fig(r["prefers_longer"]), fig(r["tie_share"]), fig(r["unparsed_share"]),
                      fig(p.get("percent")), fig(p.get("cohen_kappa")), str(u["calls"]), str(u["cached"]),
                      f"{u['cost'] + u['saved_cost']:.4f}" if "cost" in u else "-",
                      fig(u.get("seconds_per_1000_calls"), 1)])
    return "\n".join(aligned(table, "  "))


#: the judge's own figures of the texts (judge: ifeval), by their name in the results
TEXT_METRICS = (("prompt_strict", "prompt-level strict"), ("inst_strict", "instruction-level strict"),
                ("prompt_loose", "prompt-level loose"), ("inst_loose", "instruction-level loose"))


def text_metric_rows(runs: list[Run]) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(run, figure, [(iteration, value), ...] from the originals, iteration "0", on) for runs
    whose judge scores texts (judge: ifeval)."""
    rows = []
    for run in runs:
        tm = run.extra.get("text_metrics")
        if not tm:
            continue
        its = sorted(tm["by_iteration"], key=int)
        for key, label in TEXT_METRICS:
            rows.append((run.name, f"{tm['judge']} {label}", [(k, _cell(tm["by_iteration"][k].get(key))) for k in its]))
    return rows


def format_text_metrics(runs: list[Run]) -> str:
    """``ifeval prompt-level strict: original 0.310 -> iter 1 0.400 -> ...`` per run and figure."""
    return "\n".join(f"{_short(name)}: {label}: " + " -> ".join(
        f"{'original' if k == '0' else 'iter ' + k} {value}" for k, value in cells)
        for name, label, cells in text_metric_rows(runs))


def plot(runs: list[Run], out: Any, title: str = "CnR: win rate of revision vs original") -> Any:
    """Draw win rate against iteration; ``out`` is a path (returned as a Path) or a binary file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for run in runs:
        its = sorted(run.points)
        wr = [run.points[i][0] for i in its]
        err = [[max(0.0, run.points[i][0] - run.points[i][1]) for i in its],
               [max(0.0, run.points[i][2] - run.points[i][0]) for i in its]]
        human = run.extra.get("kind") == "human"  # people's choices (cnr annotate compare): dashed
        ax.errorbar(its, wr, yerr=err, marker="s" if human else "o", capsize=4, label=_short(run.name),
                    linestyle="--" if human else "-")
    ax.axhline(0.5, color="grey", linestyle="--", linewidth=1, label="no change (50 %)")
    ax.set(xlabel="iteration", ylabel="win rate vs original", ylim=(0, 1), title=title)
    ax.set_xticks(sorted({i for r in runs for i in r.points}))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    if isinstance(out, (str, Path)):
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    plt.close(fig)
    return out
