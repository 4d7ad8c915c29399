"""A miniature CnR reproduction on CPU: synthetic verifiable task, SmolLM2-135M-Instruct trained
with `axolotl train` on 100 / 300 / 1000 CnR records, evaluated with `lm_eval --tasks cnr_winrate`
(K iterations, the oracle judge) against the untrained model as reviser (control, given one
solved example so that it can follow the format at all). Writes results/mini_repro.json, the
win-rate plot and the data-efficiency plot; prints run time and peak memory.

    python benchmarks/reproduce_mini.py [--sizes 100 300 1000] [--steps 60] [--items 30] [--iterations 5]

Defaults fit a 2-core CPU in about half an hour; raise --steps and --items where there is time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "runs" / "mini"       # --workdir
MAX_GEN_TOKS = 128                   # --max-gen-toks
VERBOSE = True                       # print each command (the demo prints where its log is instead)


def sh(cmd: list[str], log: Path) -> None:
    if VERBOSE:
        print("$", " ".join(cmd), flush=True)
    else:
        print(f"   log: {log}", flush=True)
    with log.open("w") as f:  # run in the work folder: `python -m` in the checkout would import its sources
        proc = subprocess.run(cmd, cwd=RUNS, stdout=f, stderr=subprocess.STDOUT)
    if proc.returncode:
        sys.exit(f"failed ({proc.returncode}), see {log}")


def train(n: int, steps: int, data: Path, base: Path, loss_on: str = "critique_and_revision",
          full: bool = False, tag: str = "") -> Path:
    """Train on the first ``n`` records; ``tag`` keeps runs on different data apart (files, folders)."""
    suffix = f"{n}-{tag}" if tag else f"{n}"
    cfg = yaml.safe_load((ROOT / "axolotl_configs" / "cnr-mini-repro.yaml").read_text())
    cfg["cnr_loss_on"] = loss_on
    if full:  # full fine-tune instead of LoRA: every weight trains, at a learning rate for that
        for key in [k for k in cfg if k == "adapter" or k.startswith("lora_")]:
            del cfg[key]
        cfg["learning_rate"] = 5e-5
    subset = RUNS / "data" / f"train-{suffix}.jsonl"
    subset.parent.mkdir(parents=True, exist_ok=True)
    subset.write_text("".join(data.read_text().splitlines(True)[:n]))
    out = RUNS / f"trained-{suffix}"
    cfg.update(base_model=str(base), output_dir=str(out), max_steps=steps,
               dataset_prepared_path=str(RUNS / "prepared"))
    cfg["datasets"][0]["path"] = str(subset)
    path = RUNS / f"train-{suffix}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    sh([sys.executable, "-m", "axolotl.cli.train", str(path)], RUNS / f"train-{suffix}.log")
    return out


def evaluate(name: str, model_args: str, responses: Path, items: int, iterations: int, fewshot: int,
             stop_when: str = "never", accept: str = "always", judge: Path | None = None) -> dict:
    out = RUNS / "eval" / name
    meta = {"responses": str(responses), "iterations": iterations, "limit": items, "fewshot": fewshot,
            "judge": str(judge or RUNS / "oracle.yaml"), "max_gen_toks": MAX_GEN_TOKS, "stop_when": stop_when,
            "accept": accept}
    sh([sys.executable, "-m", "cnr_plugin.lm_eval.cli", "--model", "cnr", "--model_args", model_args,
        "--device", "cpu", "--batch_size", "16", "--tasks", "cnr_winrate", "--metadata", json.dumps(meta),
        "--log_samples", "--output_path", str(out)], RUNS / f"eval-{name}.log")
    res = json.loads(next(out.rglob("results_*.json")).read_text())["results"]["cnr_winrate"]
    return {f"iter{k}": {"winrate": res[f"winrate_iter{k},judged"],
                         "ci95": [res[f"winrate_iter{k}_ci95_lo,judged"], res[f"winrate_iter{k}_ci95_hi,judged"]]}
            for k in range(1, iterations + 1) if f"winrate_iter{k},judged" in res} | {
        "n_items": res["n_items,judged"], "n_revision_parse_failures": res["n_revision_parse_failures,judged"],
        "results_dir": str(out)}


def efficiency_plot(results: dict, sizes: list[int], iterations: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for k in (1, iterations):
        wr = [results[f"trained-{n}"][f"iter{k}"]["winrate"] for n in sizes]
        lo = [w - results[f"trained-{n}"][f"iter{k}"]["ci95"][0] for w, n in zip(wr, sizes)]
        hi = [results[f"trained-{n}"][f"iter{k}"]["ci95"][1] - w for w, n in zip(wr, sizes)]
        ax.errorbar(sizes, wr, yerr=[lo, hi], marker="o", capsize=4, label=f"after iteration {k}")
    ax.axhline(0.5, color="grey", linestyle="--", linewidth=1)
    ax.set(xscale="log", xlabel="CnR training records", ylabel="win rate vs original", ylim=(0, 1),
           title="CnR data efficiency (SmolLM2-135M, oracle judge)")
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)


def main() -> int:
    global RUNS, MAX_GEN_TOKS
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 1000])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--items", type=int, default=120)
    ap.add_argument("--iterations", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--base", type=Path, default=None, help="model directory (default: SmolLM2 converted here)")
    ap.add_argument("--workdir", type=Path, default=RUNS)
    ap.add_argument("--results", type=Path, default=ROOT / "results")
    ap.add_argument("--max-gen-toks", type=int, default=MAX_GEN_TOKS)
    ap.add_argument("--loss-on", default="critique_and_revision", choices=["critique_and_revision", "revision"],
                    help="lever: the loss on the revision only")
    ap.add_argument("--full", action="store_true", help="lever: full fine-tune instead of LoRA")
    ap.add_argument("--no-control", action="store_true", help="skip the control (already measured)")
    ap.add_argument("--stop-when", default="never", choices=["never", "unchanged", "no_cons"],
                    help="lever: stop revising an item that is unchanged or whose critique names no problem")
    ap.add_argument("--accept", default="always", choices=["always", "judge"],
                    help="variant: keep a revision only if the oracle prefers it to the previous text")
    ap.add_argument("--right-share", type=float, default=0.15,
                    help="lever: share of training records whose response is already right (no cons)")
    a = ap.parse_args()
    RUNS, MAX_GEN_TOKS = a.workdir.resolve(), a.max_gen_toks
    os.environ.update(AXOLOTL_DO_NOT_TRACK="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
                      CNR_CACHE_DIR=str(RUNS / "cache"))
    t0 = time.time()
    from cnr_plugin.models import convert_smollm2
    from cnr_plugin.report import load_runs, plot
    from cnr_plugin.synthetic import make_splits

    RUNS.mkdir(parents=True, exist_ok=True)
    paths = make_splits(RUNS / "data", n_train=max(a.sizes), n_val=50, n_test=max(a.items, 50), seed=a.seed,
                        right_share=a.right_share)
    (RUNS / "oracle.yaml").write_text("judge: oracle\nchecker: cnr_plugin.synthetic:score\n")
    base = a.base.resolve() if a.base else convert_smollm2(ROOT / "models" / "smollm2-135m-instruct")
    from cnr_plugin.provenance import provenance

    results: dict = {"provenance": provenance(vars(a), {"splits": a.seed, "axolotl": 42}, repo=ROOT),
                     "timing_s": {}}
    t = time.time()
    if not a.no_control:
        results["control"] = evaluate("control", f"inner=hf,pretrained={base}", paths["test"], a.items,
                                      a.iterations, 1)
        results["timing_s"]["eval-control"] = round(time.time() - t)
    for n in a.sizes:
        t = time.time()
        out = train(n, a.steps, paths["train"], base, a.loss_on, a.full)
        results["timing_s"][f"train-{n}"] = round(time.time() - t)
        t = time.time()
        model = f"inner=hf,pretrained={out}" if a.full else f"inner=hf,pretrained={base},peft={out}"
        results[f"trained-{n}"] = evaluate(f"trained-{n}", model, paths["test"], a.items, a.iterations, 0,
                                           a.stop_when, a.accept)
        results["timing_s"][f"eval-{n}"] = round(time.time() - t)
    results["timing_s"]["total"] = round(time.time() - t0)
    results["peak_memory_mb"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
    out_dir = a.results
    out_dir.mkdir(parents=True, exist_ok=True)
    # a partial run (other sizes, no control) never overwrites the full result
    full_run = sorted(a.sizes) == [100, 300, 1000] and not a.no_control
    result_file = out_dir / ("mini_repro.json" if full_run else
                             f"mini_repro_partial_{'-'.join(map(str, a.sizes))}{'_nocontrol' if a.no_control else ''}.json")
    result_file.write_text(json.dumps(results, indent=2))
    runs = load_runs([RUNS / "eval" / name for name in ("control", f"trained-{max(a.sizes)}")
                      if (RUNS / "eval" / name).is_dir()])
    plot(runs, out_dir / "mini_repro_winrate.png", title="Mini CnR: revision vs original (oracle judge)")
    efficiency_plot(results, a.sizes, a.iterations, out_dir / "mini_repro_data_efficiency.png")
    print(f"{'reviser':<14}" + "".join(f"{'iter ' + str(k):>22}" for k in range(1, a.iterations + 1)))
    for name in [x for x in ["control"] + [f"trained-{n}" for n in a.sizes] if x in results]:
        row = results[name]
        print(f"{name:<14}" + "".join(f"{row[f'iter{k}']['winrate']:>8.3f} [{row[f'iter{k}']['ci95'][0]:.2f},"
                                      f"{row[f'iter{k}']['ci95'][1]:.2f}]" for k in range(1, a.iterations + 1)))
    print(f"run time {results['timing_s']['total']} s, peak memory of a child process {results['peak_memory_mb']} MB")
    print(f"-> {result_file}, {out_dir / 'mini_repro_winrate.png'}, "
          f"{out_dir / 'mini_repro_data_efficiency.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
