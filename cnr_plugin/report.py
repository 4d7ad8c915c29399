"""Tables and plots of win rate against iteration, from lm-eval results or ``cnr judge`` output."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RESULT_KEY = re.compile(r"^(lc_)?winrate_iter(\d+)(_ci95_lo|_ci95_hi)?,")


@dataclass
class Run:
    name: str
    source: str
    # iteration -> (win rate, ci low, ci high)
    points: dict[int, tuple[float, float, float]] = field(default_factory=dict)
    # iteration -> (length-controlled win rate, ci low, ci high)
    lc: dict[int, tuple[float, float, float]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def _from_lm_eval(path: Path, data: dict[str, Any]) -> Run | None:
    res = data.get("results", {}).get("cnr_winrate")
    if not res:
        return None
    vals: dict[int, dict[str, float]] = {}
    for key, value in res.items():
        m = RESULT_KEY.match(key)
        if m and isinstance(value, (int, float)):
            vals.setdefault(int(m.group(2)), {})[(m.group(1) or "") + (m.group(3) or "mean")] = float(value)
    args = (data.get("config") or {}).get("model_args") or {}
    if isinstance(args, str):
        args = dict(kv.split("=", 1) for kv in args.split(",") if "=" in kv)
    model = str(args.get("peft") or args.get("pretrained") or args.get("model") or path.parent.name)
    name = f"{path.parent.parent.name}: {model}"  # lm-eval writes <output_path>/<model>/results_*.json
    run = Run(name, str(path))
    nan = float("nan")
    for it, v in sorted(vals.items()):
        if "mean" in v:
            run.points[it] = (v["mean"], v.get("_ci95_lo", nan), v.get("_ci95_hi", nan))
        if "lc_mean" in v:
            run.lc[it] = (v["lc_mean"], v.get("lc__ci95_lo", nan), v.get("lc__ci95_hi", nan))
    run.extra = {k.split(",")[0]: v for k, v in res.items() if k.startswith(("n_", "len_ratio")) and "stderr" not in k}
    return run


def _from_cnr(path: Path, data: dict[str, Any]) -> Run:
    run = Run(data.get("name") or path.parent.name, str(path))
    for row in data["rows"]:
        if row["against"] == "original":
            run.points[row["iteration"]] = (row["winrate"], *row["ci95"])
            if "lc_winrate" in row:
                run.lc[row["iteration"]] = (row["lc_winrate"], *row["lc_ci95"])
    run.extra = {k: data[k] for k in ("n_comparisons", "n_excluded", "kind") if k in data}
    return run


def load_runs(paths: list[str | Path]) -> list[Run]:
    """Runs from lm-eval output folders / results JSON files, or ``cnr judge`` results."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += (sorted(p.rglob("results_*.json")) + sorted(p.rglob("cnr_results.json")) +
                      sorted(p.rglob("human_results.json")))
        elif p.is_file():
            files.append(p)
        else:
            raise FileNotFoundError(f"{p} does not exist")
    runs = []
    for f in files:
        data = json.loads(f.read_text())
        run = _from_cnr(f, data) if "rows" in data else _from_lm_eval(f, data)
        if run is not None and run.points:
            runs.append(run)
    if not runs:
        raise FileNotFoundError(f"no cnr_winrate results under {', '.join(map(str, paths))}")
    return runs


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
