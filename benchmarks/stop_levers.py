"""Issue 14's levers on the mini reproduction: does the win rate keep rising with iterations?

For each data lever (share of training records whose response is already right; share of records
with two faults of which the revision fixes one) SmolLM2-135M-Instruct is trained once with
`axolotl train` (LoRA), then evaluated with `lm_eval --tasks cnr_winrate` (the oracle judge, the
same held-out items, stratified over the six task families) under every loop variant:
stop_when never / unchanged / no_cons with accept always (plain CnR), and accept judge. The
untrained model (one solved example) is the control. Generations are cached, so variants that
ask the reviser the same thing cost nothing twice.

    python benchmarks/stop_levers.py [--items 120] [--iterations 5] [--steps 60] [--records 1000]

Writes results/stop_levers/summary.json (provenance, every variant's per-iteration win rates with
95 % bootstrap intervals, per-family win rates, stopped and rejected shares, reviser requests and
judge calls per item, the paired difference to the control), the lm-eval samples of every run
(gzip), and stop_levers.png. Prints the table.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reproduce_mini as rm  # noqa: E402
from reproduce_mini import item_scores, run_summary, samples  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = [("never", "always"), ("unchanged", "always"), ("no_cons", "always"), ("never", "judge"),
            ("no_cons", "judge")]


def plot(summary: dict, path: Path, iterations: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10.5, 4.6), dpi=120)
    its = list(range(1, iterations + 1))
    for name, run in summary["runs"].items():
        wr = [run["iterations"][k]["winrate"] for k in its]
        lo = [w - run["iterations"][k]["ci95"][0] for w, k in zip(wr, its)]
        hi = [run["iterations"][k]["ci95"][1] - w for w, k in zip(wr, its)]
        style = "--" if "judge" in name else ":" if name == "control" else "-"
        ax.errorbar(its, wr, yerr=[lo, hi], marker="o", capsize=3, linestyle=style, label=name)
    ax.axhline(0.5, color="grey", linestyle="--", linewidth=1)
    ax.set(xlabel="iteration", ylabel="win rate vs original (oracle)", ylim=(0, 1), xticks=its,
           title="CnR iterations: stop signals, gated acceptance, data levers")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)


def lever_arg(text: str) -> str:
    """``--levers``: right_share:partial_share, two shares in [0, 1] (checked before any work)."""
    try:
        shares = [float(x) for x in text.split(":")]
    except ValueError:
        shares = []
    if len(shares) != 2 or not all(0 <= x <= 1 for x in shares):
        raise argparse.ArgumentTypeError(f"{text!r} is not right_share:partial_share, two shares in [0, 1] "
                                         "(e.g. 0.4:0.3)")
    return text


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=120)
    ap.add_argument("--iterations", type=int, default=5)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--records", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--levers", nargs="+", default=["0.15:0", "0.4:0", "0.4:0.3"], type=lever_arg,
                    help="data levers as right_share:partial_share")
    ap.add_argument("--base", type=Path, default=None)
    ap.add_argument("--workdir", type=Path, default=ROOT / "runs" / "stop_levers")
    ap.add_argument("--results", type=Path, default=ROOT / "results" / "stop_levers")
    ap.add_argument("--max-gen-toks", type=int, default=rm.MAX_GEN_TOKS)
    ap.add_argument("--no-control", action="store_true", help="leave out the untrained control (slowest)")
    ap.add_argument("--table", type=Path, default=None,
                    help="only print the results table of a summary.json this script wrote (and redraw its "
                         "plot beside it), and exit")
    a = ap.parse_args()
    if a.table:
        summary = json.loads(a.table.read_text())
        iterations = int(summary["provenance"]["arguments"]["iterations"])
        for run in summary["runs"].values():  # JSON keys are strings
            run["iterations"] = {int(k): v for k, v in run["iterations"].items()}
        print(table(summary, iterations))
        plot(summary, a.table.parent / "stop_levers.png", iterations)
        return 0
    from cnr_plugin.evaluation.stats import paired_difference
    from cnr_plugin.provenance import provenance
    from cnr_plugin.synthetic import make_splits

    rm.MAX_GEN_TOKS = a.max_gen_toks
    rm.use_workdir(a.workdir.resolve())
    a.results.mkdir(parents=True, exist_ok=True)
    samples_dir = a.results / "samples"
    samples_dir.mkdir(exist_ok=True)
    summary: dict = {"provenance": provenance(vars(a), {"splits": a.seed, "axolotl": 42}, repo=ROOT),
                     "timing_s": {}, "runs": {}}
    t0 = time.time()
    (rm.RUNS / "oracle.yaml").write_text("judge: oracle\nchecker: cnr_plugin.synthetic:score\n")
    base = rm.base_model(a.base)
    test_set = None
    for lever in a.levers:
        right, partial = (float(x) for x in lever.split(":"))
        data_dir = rm.RUNS / f"data-{lever.replace(':', '-')}"
        paths = make_splits(data_dir, n_train=a.records, n_val=30, n_test=a.items, seed=a.seed,
                            right_share=right, partial_share=partial)
        test_set = test_set or paths["test"]  # the same for every lever (a test checks it)
        t = time.time()
        out = rm.train(a.records, a.steps, paths["train"], base, tag=lever.replace(":", "-"))
        summary["timing_s"][f"train-{lever}"] = round(time.time() - t)
        for stop_when, accept in VARIANTS:
            name = f"right={right} partial={partial} stop={stop_when} accept={accept}"
            t = time.time()
            result = rm.evaluate(name.replace(" ", "_").replace("=", "-"), f"inner=hf,pretrained={base},peft={out}",
                                 paths["test"], a.items, a.iterations, 0, stop_when, accept)
            summary["runs"][name] = run_summary(name.replace(" ", "_").replace("=", "-"), result, a.iterations,
                                                None, samples_dir)
            summary["timing_s"][f"eval-{name}"] = round(time.time() - t)
            (a.results / "summary.json").write_text(json.dumps(summary, indent=2))  # partial results survive
    if not a.no_control and test_set is not None:  # last: the slowest run (long outputs, one solved example)
        t = time.time()
        result = rm.evaluate("control", f"inner=hf,pretrained={base}", test_set, a.items, a.iterations, 1)
        summary["runs"]["control"] = run_summary("control", result, a.iterations, None, samples_dir)
        summary["timing_s"]["eval-control"] = round(time.time() - t)
        control_rows = samples(Path(result["results_dir"]))
        for name, run in summary["runs"].items():
            if name == "control":
                continue
            rows = samples(rm.RUNS / "eval" / name.replace(" ", "_").replace("=", "-"))
            for k, entry in run["iterations"].items():
                entry["vs_control"] = paired_difference(item_scores(rows, k), item_scores(control_rows, k))
    summary["timing_s"]["total"] = round(time.time() - t0)
    summary["peak_memory_mb"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
    (a.results / "summary.json").write_text(json.dumps(summary, indent=2))
    plot(summary, a.results / "stop_levers.png", a.iterations)
    print(table(summary, a.iterations))
    print(f"-> {a.results / 'summary.json'}, {a.results / 'stop_levers.png'}; {summary['timing_s']['total']} s")
    return 0


def table(summary: dict, iterations: int) -> str:
    """The results table (docs/results.md): win rate [95 % CI] per iteration; a curve that falls between iterations is
    marked ↓ at the fall, one that ends below where it started is marked ✗ (the issue's target)."""
    head = "| run | " + " | ".join(f"iter {k}" for k in range(1, iterations + 1)) + \
        f" | never falls, ends ≥ iter 1 | stopped by {iterations} | reviser requests / item | judge calls / item |"
    lines = [head, "|" + "---|" * (iterations + 5)]
    for name, run in summary["runs"].items():
        cells, rates = [], []
        for k in range(1, iterations + 1):
            e = run["iterations"][k] if k in run["iterations"] else run["iterations"][str(k)]
            fell = bool(rates) and e["winrate"] < rates[-1] - 1e-9
            rates.append(e["winrate"])
            cells.append(f"{'↓ ' if fell else ''}{e['winrate']:.3f} [{e['ci95'][0]:.2f}, {e['ci95'][1]:.2f}]")
        target = all(b >= a - 1e-9 for a, b in zip(rates, rates[1:])) and rates[-1] >= rates[0] - 1e-9
        last = run["iterations"].get(iterations) or run["iterations"].get(str(iterations))
        calls = run["winrate_judge_calls_per_item"] + (run["accept_judge_calls_per_item"] or 0)
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {'✓' if target else '✗'} | {last['stopped']:.2f} | "
                     f"{run['reviser_requests_per_item']:.2f} | {calls:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
