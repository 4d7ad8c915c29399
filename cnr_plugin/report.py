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
            lc_cells = f"{lc[0]:>12.3f}   [{lc[1]:.3f}, {lc[2]:.3f}]" if lc else f"{'-':>12}"
            lines.append(f"{_short(run.name):<48} {it:>4} {wr:>9.3f}   [{lo:.3f}, {hi:.3f}] {lc_cells}")
    return "\n".join(lines)


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
