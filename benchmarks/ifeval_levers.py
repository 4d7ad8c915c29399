"""Issue 32 §1: which capacity lever makes the IFEval reviser keep improving after its first
revision. On the same 200 held-out prompts, with the same original responses and the same
control as ``results/ifeval_mini`` (whose kept samples this script reads), each lever trains a
reviser and revises for 5 iterations with IFEval's checkers as the judge:

- ``full``: a full fine-tune instead of LoRA, on ifeval_mini's records and steps;
- ``steps``: LoRA, three times the steps, on the same records;
- ``all``: a full fine-tune, three times the steps, more training prompts of the rewrite types the
  reviser never executed (case changes, quoting, repeating the request, removing commas, word
  limits), and every prompt with more than one con taught one con at a time (a chain), so that a
  later iteration has a con left of a kind it was shown how to fix.

Per lever: IFEval prompt-/instruction-level accuracy per iteration, iteration 5 − iteration 1 and
lever − control at iteration 5 (paired over the same items, Bayesian-bootstrap intervals),
lever − ifeval_mini's reviser, per instruction type the share followed per iteration, and the
per-iteration diagnosis (names no con / names one and leaves the text / fixes it / changes it and
still misses). A lever not run is marked so in the table, not left out.

    python benchmarks/ifeval_levers.py [--levers all full steps] [--base-model PATH --device cuda]

Writes results/ifeval_levers/summary.json (provenance, every figure), the extra prompts with the
model's responses and each lever's training records (gzip), and each run's samples beside it.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import ifeval_mini as im  # noqa: E402
import policy_mini as pm  # noqa: E402
import reproduce_mini as rm  # noqa: E402
from _common import write_jsonl, write_jsonl_gz  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

#: the rewrite types ifeval_mini's reviser named but never (or seldom) carried out
WEAK_TYPES = ("change_case:english_capital", "change_case:english_lowercase", "startend:quotation",
              "combination:repeat_prompt", "punctuation:no_comma", "length_constraints:number_words")

#: name -> (full fine-tune, steps multiplier, extra prompts of WEAK_TYPES, chain share)
LEVERS: dict[str, dict] = {
    "full": {"full": True, "steps_x": 1, "extra": False, "chain_share": None,
             "what": "full fine-tune instead of LoRA (same records, same steps)"},
    "steps": {"full": False, "steps_x": 3, "extra": False, "chain_share": None,
              "what": "LoRA, 3x the steps (same records)"},
    "all": {"full": True, "steps_x": 3, "extra": True, "chain_share": 1.0,
            "what": "full fine-tune, 3x the steps, extra prompts of the weak rewrite types, every multi-con "
                    "prompt taught one con at a time"},
}


def load_mini(results: Path) -> tuple[dict, list[dict]]:
    summary = json.loads((results / "summary.json").read_text())
    with gzip.open(results / "data.jsonl.gz", "rt") as f:
        rows = [json.loads(line) for line in f]
    return summary, rows


def teaches(recs: list[dict], check: im.Checker) -> dict[str, int]:
    """Per instruction type: how many records show a text missing it turned into one that has it."""
    out: dict[str, int] = {}
    for r in recs:
        row = {"prompt": r["prompt"], **r["meta"]}
        before, after = check.follows(row, r["response"]), check.follows(row, r["revision"])
        for iid, b, a in zip(r["meta"]["instruction_id_list"], before, after):
            if a and not b:
                out[iid] = out.get(iid, 0) + 1
    return dict(sorted(out.items()))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--levers", nargs="+", default=["all", "full", "steps"], choices=list(LEVERS),
                    help="the levers to run, in this order (each writes the summary when it ends)")
    ap.add_argument("--extra-prompts", type=int, default=300, help="extra training prompts of the weak types")
    ap.add_argument("--mini", type=Path, default=ROOT / "results" / "ifeval_mini",
                    help="the ifeval_mini results whose prompts, responses, records and control are reused")
    ap.add_argument("--workdir", type=Path, default=ROOT / "runs" / "ifeval_levers")
    ap.add_argument("--results", type=Path, default=ROOT / "results" / "ifeval_levers")
    rm.add_model_args(ap)
    a = ap.parse_args()
    mini, data_rows = load_mini(a.mini)
    m = mini["provenance"]["arguments"]
    if (Path(m["base"]).resolve() if m.get("base") else None) != (a.base.resolve() if a.base else None):
        ap.error(f"--base-model {a.base or '(the shipped SmolLM2)'} is not the model of {a.mini} "
                 f"({m.get('base') or 'the shipped SmolLM2'}): run benchmarks/ifeval_mini.py with it first and "
                 "pass its results folder as --mini")
    rm.MAX_GEN_TOKS, pm.MAX_NEW_TOKENS, rm.DEVICE = m["max_gen_toks"], m["response_toks"], a.device
    rm.use_workdir(a.workdir.resolve())
    t0 = time.time()
    from cnr_plugin.provenance import provenance

    started = provenance(vars(a), {"prompts": m["seed"], "records": m["seed"], "extra": f"{m['seed']}-extra",
                                   "axolotl": 42}, repo=ROOT)
    check = im.Checker()
    judge = im.judge_file()
    base = rm.base_model(a.base)

    # the same prompts as ifeval_mini (rebuilt from its seed, checked against its kept data)
    train_topics, train_rows, test_rows, _held = im.all_prompts(m["seed"], m["train_prompts"], m["test"],
                                                                m["held_out_test"])
    by_key = {r["key"]: r for r in data_rows}
    for r in train_rows + test_rows:
        kept = by_key.get(r["key"])
        if kept is None or (kept["prompt"], kept["kwargs"]) != (r["prompt"], r["kwargs"]):
            raise SystemExit(f"{a.mini / 'data.jsonl.gz'}: prompt {r['key']} differs from the one rebuilt here")
    # the responses, the control and ifeval_mini's reviser are the reference run's: the same base model
    train_rows = [{**r, "response": by_key[r["key"]]["response"]} for r in train_rows]
    test_rows = [{**r, "response": by_key[r["key"]]["response"]} for r in test_rows]
    seen = {(r["base"], tuple(sorted(r["instruction_id_list"]))) for r in train_rows}
    extra_rows = [r for r in im.build_prompts(random.Random(f"{m['seed']}-extra"), train_topics, WEAK_TYPES,
                                              a.extra_prompts, "extra")
                  if (r["base"], tuple(sorted(r["instruction_id_list"]))) not in seen]
    data = rm.RUNS / "data"
    data.mkdir(exist_ok=True)
    test_file = im.responses_file(test_rows, data / "test_responses.jsonl")
    a.results.mkdir(parents=True, exist_ok=True)
    (a.results / "samples").mkdir(exist_ok=True)
    ids = {r["key"]: r["instruction_id_list"] for r in test_rows}
    iterations = m["iterations"]

    # the reference: ifeval_mini's control and reviser, from their kept samples
    follow = {name: im.per_item(im.kept_samples(a.mini, mini["runs"][name]), check, iterations)
              for name in ("control", "trained")}
    timing: dict[str, int] = {}
    runs: dict[str, dict] = {}
    records_by_lever: dict[str, dict] = {}
    earlier = a.results / "summary.json"
    if earlier.exists():  # levers run by an earlier invocation stay, each with the provenance of its own run
        old = json.loads(earlier.read_text())
        for name, lever in old["levers"].items():
            if lever["run"] and name not in a.levers:
                runs[name] = {"provenance": old["provenance"], **lever["run"]}
                records_by_lever[name] = old["records"][name]
                timing.update({k: v for k, v in old["timing_s"].items() if k.endswith(f"-{name}")})

    def write_summary() -> None:
        summary = {
            "provenance": started,
            "question": "which capacity lever (full fine-tune, more steps, more records of the rewrites it never "
                        "executed, one con at a time) makes the IFEval reviser improve after its first revision: "
                        "prompt-level strict accuracy at iteration 5 above iteration 1, and lever - control at "
                        "iteration 5 of at least +0.30, on ifeval_mini's 200 held-out prompts",
            "judge": "ifeval (lm-eval's IFEval checkers, strict), both position orders",
            "ci_method": rm.CI_METHOD,
            "reference": {"results": os.path.relpath(a.mini, ROOT), "commit": mini["provenance"]["commit"],
                          "control_prompt_strict": {k: v["prompt_strict"] for k, v in
                                                    mini["runs"]["control"]["iterations"].items()},
                          "trained_prompt_strict": {k: v["prompt_strict"] for k, v in
                                                    mini["runs"]["trained"]["iterations"].items()}},
            "levers": {name: {"what": spec["what"], **({"run": runs[name]} if name in runs else
                                                       {"run": None, "missing": "not run"})}
                       for name, spec in LEVERS.items()},
            "records": records_by_lever, "extra_prompts": len(extra_rows), "weak_types": list(WEAK_TYPES),
            "timing_s": timing,
            "data": "extra_data.jsonl.gz: the extra training prompts with the model's responses; "
                    "records_<lever>.jsonl.gz: each lever's training records; samples/<lever>.jsonl.gz"}
        (a.results / "summary.json").write_text(json.dumps(summary, indent=2))

    if any(LEVERS[x]["extra"] for x in a.levers):
        print(f"== SmolLM2-135M-Instruct answers {len(extra_rows)} extra training prompts", flush=True)
        t = time.time()
        extra_rows = im.answered(extra_rows, base, rm.RUNS / "answers-extra.jsonl")
        timing["answer-extra"] = round(time.time() - t)
        write_jsonl_gz(a.results / "extra_data.jsonl.gz", extra_rows)

    for name in a.levers:
        spec = LEVERS[name]
        rows = train_rows + (extra_rows if spec["extra"] else [])
        chain = m["chain_share"] if spec["chain_share"] is None else spec["chain_share"]
        recs, counts = im.records(rows, check, random.Random(f"{m['seed']}-records"), chain, m["right_share"])
        records_by_lever[name] = {**counts, "teaches": teaches(recs, check)}
        write_jsonl(data / f"train-{name}.jsonl", recs)
        write_jsonl_gz(a.results / f"records_{name}.jsonl.gz", recs)
        steps = m["steps"] * spec["steps_x"]
        print(f"== lever {name}: {spec['what']}; {len(recs)} records, {steps} steps", flush=True)
        t = time.time()
        out = im.trained_once(len(recs), steps, data / f"train-{name}.jsonl", base, f"levers-{name}", spec["full"])
        timing[f"train-{name}"] = round(time.time() - t)
        model_args = f"inner=hf,pretrained={out}" if spec["full"] else f"inner=hf,pretrained={base},peft={out}"
        t = time.time()
        result = rm.evaluate(name, model_args, test_file, len(test_rows), iterations, 0, judge=judge)
        timing[f"eval-{name}"] = round(time.time() - t)
        samples = rm.samples(Path(result["results_dir"]))
        rm.keep_samples(samples, a.results / "samples" / f"{name}.jsonl.gz")
        f = follow[name] = im.per_item(samples, check, iterations)
        runs[name] = {"provenance": started, "train_steps": steps, "full_fine_tune": spec["full"], "records": len(recs),
                      "iterations": im.figures(result, iterations), "n_items": result["n_items"],
                      "n_revision_parse_failures": result["n_revision_parse_failures"],
                      "last_minus_first": im.paired(f, f, iterations, 1),
                      "minus_control": {str(k): im.paired(f, follow["control"], k) for k in range(iterations + 1)},
                      "minus_ifeval_mini": {str(k): im.paired(f, follow["trained"], k) for k in range(iterations + 1)},
                      "by_type": im.by_type(f, ids, iterations), "why": im.why(samples, f),
                      "samples": f"samples/{name}.jsonl.gz"}
        write_summary()
        ps = " ".join(f"it{k}: {e['prompt_strict']:.3f}" for k, e in runs[name]["iterations"].items())
        d = runs[name]["last_minus_first"]
        c = runs[name]["minus_control"][str(iterations)]
        print(f"   {name}: prompt strict {ps}; it{iterations}-it1 {d['mean']:+.3f} "
              f"[{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]; - control {c['mean']:+.3f} "
              f"[{c['ci95'][0]:+.3f}, {c['ci95'][1]:+.3f}]", flush=True)
    timing["total"] = round(time.time() - t0)  # this invocation's
    write_summary()
    print(f"run time {timing['total']} s -> {a.results / 'summary.json'}")
    shutil.rmtree(rm.RUNS / "prepared", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
