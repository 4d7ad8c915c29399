"""Issue 32 §2: the policy aligned by its own revisions, measured by IFEval, round after round.

Round r: the policy of round r-1 (round 1: SmolLM2-135M-Instruct) answers IFEval-style training
prompts (round 1: ifeval_mini's 400; later rounds: fresh prompts on the training topics); the
trained reviser (``--reviser``) revises them (``cnr_winrate``, ``judge: ifeval``); ``cnr export``
(``--sft best``: a revision becomes an SFT target only where IFEval's checkers prefer it to the
answer) gives SFT rows and preference pairs; the shipped ``policy-sft-tiny-cpu.yaml`` trains the
policy on the SFT rows, then ``policy-dpo-tiny-cpu.yaml`` on the pairs where there are enough. Each
stage is merged into a full model folder: the next stage starts from it, and the next round's
policy is the round's last stage.

Measured on ifeval_mini's 200 held-out prompts (topics never trained on) with **no reviser**: IFEval's
prompt- and instruction-level strict accuracy of every policy, paired differences against the old
policy, against the old policy + the reviser at inference, and round r − round r-1.

    python benchmarks/ifeval_policy.py --reviser runs/ifeval_levers/trained-1032-levers-all [--rounds 2]

Writes results/ifeval_policy/summary.json (provenance, counts of what each round exported and why
the rest was dropped, every figure) and every policy's answers to the test prompts (gzip).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import ifeval_mini as im  # noqa: E402
import policy_mini as pm  # noqa: E402
import reproduce_mini as rm  # noqa: E402
from _common import write_jsonl_gz  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def merged(base: Path, adapter: Path, out: Path) -> Path:
    """``adapter`` merged into ``base``, saved as a full model folder (the next stage's base)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if (out / "config.json").exists() and (out / "merged.json").exists() and \
            json.loads((out / "merged.json").read_text()) == {"base": str(base), "adapter": str(adapter)}:
        return out
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    PeftModel.from_pretrained(model, str(adapter)).merge_and_unload().save_pretrained(str(out))
    AutoTokenizer.from_pretrained(str(base)).save_pretrained(str(out))
    (out / "merged.json").write_text(json.dumps({"base": str(base), "adapter": str(adapter)}))
    return out


def follow_of(rows: list[dict], texts: list[str], check: im.Checker) -> dict[str, dict[int, list[bool]]]:
    """Each row's strict follow list for its text, keyed as :func:`ifeval_mini.paired` reads them."""
    return {r["key"]: {0: check.follows(r, t)} for r, t in zip(rows, texts)}


def accuracy(follow: dict[str, dict[int, list[bool]]], k: int = 0) -> dict[str, float]:
    lists = [v[k] for v in follow.values()]
    return {"prompt_strict": sum(all(x) for x in lists) / len(lists),
            "inst_strict": sum(map(sum, lists)) / sum(map(len, lists))}


def main() -> int:
    ap = argparse.ArgumentParser()
    who = ap.add_mutually_exclusive_group(required=True)
    who.add_argument("--reviser", type=Path, help="the trained reviser: a full model folder or a LoRA adapter of "
                     "the base model (revises with lm-eval's hf model)")
    who.add_argument("--reviser-args", help="the reviser as --model cnr's model arguments instead, e.g. a vLLM or "
                     "OpenAI-compatible server: 'inner=local-completions,base_url=http://host:8000/v1/completions,"
                     "model=NAME,tokenizer_backend=None,tokenized_requests=False'")
    ap.add_argument("--sft", choices=["best", "last"], default="best", help="cnr export --sft: 'best' keeps a "
                    "revision only where IFEval's checkers prefer it to the answer; 'last' keeps every usable one")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--first-prompts", type=int, default=None,
                    help="round 1 answers the first N of ifeval_mini's training prompts (default: all of them)")
    ap.add_argument("--prompts", type=int, default=300, help="fresh training prompts of each round after the first")
    ap.add_argument("--iterations", type=int, default=1, help="revisions of each training answer")
    ap.add_argument("--steps", type=int, default=60, help="training steps of each policy stage (SFT, DPO)")
    ap.add_argument("--min-pairs", type=int, default=16, help="fewer preference pairs than this: no DPO stage")
    ap.add_argument("--answer-toks", type=int, default=128, help="every policy's answer length limit")
    ap.add_argument("--reviser-toks", type=int, default=320, help="the reviser's generation limit")
    ap.add_argument("--mini", type=Path, default=ROOT / "results" / "ifeval_mini",
                    help="the ifeval_mini results whose prompts (train and test) are reused")
    ap.add_argument("--workdir", type=Path, default=ROOT / "runs" / "ifeval_policy")
    ap.add_argument("--results", type=Path, default=ROOT / "results" / "ifeval_policy")
    rm.add_model_args(ap)
    a = ap.parse_args()
    if a.reviser and not a.reviser.is_dir():
        ap.error(f"--reviser {a.reviser}: no such model folder (train one with benchmarks/ifeval_levers.py)")
    if a.rounds < 1:
        ap.error(f"--rounds {a.rounds}: at least 1")
    mini = json.loads((a.mini / "summary.json").read_text())
    m = mini["provenance"]["arguments"]
    rm.MAX_GEN_TOKS, pm.MAX_NEW_TOKENS, rm.DEVICE = a.reviser_toks, a.answer_toks, a.device
    (rm.use_workdir(a.workdir.resolve()) / "data").mkdir(exist_ok=True)
    t0 = time.time()
    from cnr_plugin.export import ExportRules, export_run
    from cnr_plugin.provenance import provenance
    from cnr_plugin.results import item_from_lm_eval

    started = provenance(vars(a), {"prompts": m["seed"], **{f"round{r}": f"{m['seed']}-round{r}"
                                                            for r in range(2, a.rounds + 1)}, "axolotl": 42}, repo=ROOT)
    check = im.Checker()
    judge = im.judge_file()
    base = rm.base_model(a.base)
    reviser = a.reviser.resolve() if a.reviser else None
    reviser_args = a.reviser_args or (f"inner=hf,pretrained={base},peft={reviser}"
                                      if (reviser / "adapter_config.json").exists() else f"inner=hf,pretrained={reviser}")
    train_topics, train_rows, test_rows, _held = im.all_prompts(m["seed"], m["train_prompts"], m["test"],
                                                                m["held_out_test"])
    timing: dict[str, int] = {}
    systems: dict[str, dict] = {}
    follow: dict[str, dict] = {}
    answers: dict[str, list[str]] = {}
    rounds: list[dict] = []
    a.results.mkdir(parents=True, exist_ok=True)

    def lap(name: str, since: float) -> None:
        timing[name] = round(time.time() - since)

    def measure(name: str, texts: list[str]) -> None:
        answers[name] = texts
        follow[name] = follow_of(test_rows, texts, check)
        systems[name] = {**accuracy(follow[name]), "n": len(texts)}
        for other in ("old policy", "old policy + reviser at inference"):
            if other in follow and other != name:
                systems[name][f"minus {other}"] = im.paired(follow[name], follow[other], 0)
        write_summary()
        print(f"   {name}: prompt strict {systems[name]['prompt_strict']:.3f}, "
              f"instruction strict {systems[name]['inst_strict']:.3f}", flush=True)

    def write_summary() -> None:
        summary = {
            "provenance": started,
            "question": "does training SmolLM2-135M on what CnR made of its own answers (SFT on the revisions IFEval's "
                        "checkers prefer, DPO on the pairs) make its held-out answers follow IFEval's instructions "
                        "better, with no reviser at inference; and do rounds compound?",
            "judge": "ifeval (lm-eval's IFEval checkers, strict) for export; IFEval strict accuracy for measurement",
            "ci_method": rm.CI_METHOD,
            "reviser": os.path.relpath(reviser, ROOT) if reviser else a.reviser_args, "export_rules": {"sft": a.sft},
            "reference": {"results": os.path.relpath(a.mini, ROOT), "commit": mini["provenance"]["commit"]},
            "rounds": rounds, "systems": systems, "timing_s": timing,
            "answers": "test_answers.jsonl.gz (beside this file): every system's answer to each test prompt"}
        (a.results / "summary.json").write_text(json.dumps(summary, indent=2))
        write_jsonl_gz(a.results / "test_answers.jsonl.gz", ({"key": r["key"], "prompt": r["prompt"], **im.meta(r),
                                                              **{n: t[i] for n, t in answers.items()}}
                                                             for i, r in enumerate(test_rows)))

    print(f"== the old policy answers the {len(test_rows)} test prompts; the reviser revises them", flush=True)
    t = time.time()
    old = [x or "(no answer)" for x in pm.answer(base, None, test_rows)]
    lap("answer-test-old-policy", t)
    measure("old policy", old)
    test_file = im.responses_file([{**r, "response": x} for r, x in zip(test_rows, old)],
                                  rm.RUNS / "data" / "test-old-policy.jsonl")
    t = time.time()
    at_inference = rm.evaluate("revise-test", reviser_args, test_file, len(test_rows), 1, 0, judge=judge)
    lap("revise-test", t)
    revised = {it["id"]: it["steps"][0]["result"] for it in map(item_from_lm_eval,
                                                                rm.samples(Path(at_inference["results_dir"])))}
    measure("old policy + reviser at inference", [revised[r["key"]] for r in test_rows])

    policy = base
    for r in range(1, a.rounds + 1):
        print(f"== round {r}: the policy answers training prompts; CnR revises them; cnr export; training", flush=True)
        rows = train_rows[:a.first_prompts] if r == 1 else im.build_prompts(random.Random(f"{m['seed']}-round{r}"), train_topics,
                                                           im.FIX_ORDER, a.prompts, f"round{r}-")
        t = time.time()
        texts = [x or "(no answer)" for x in pm.answer(policy, None, rows)]
        lap(f"round{r}-answer-train", t)
        file = im.responses_file([{**x, "response": y} for x, y in zip(rows, texts)],
                                 rm.RUNS / "data" / f"train-round{r}.jsonl")
        t = time.time()
        run = rm.evaluate(f"revise-round{r}", reviser_args, file, len(rows), a.iterations, 0, judge=judge)
        counts = export_run(Path(run["results_dir"]), rm.RUNS / f"export-round{r}", ExportRules(sft=a.sft),
                            argv=sys.argv[1:])
        lap(f"round{r}-revise-and-export", t)
        train_follow = accuracy(follow_of(rows, texts, check))
        entry = {"round": r, "training_prompts": len(rows), "policy_train_prompt_strict": train_follow["prompt_strict"],
                 "export": {k: counts[k] for k in ("items", "sft", "preferences")}, "stages": []}
        rounds.append(entry)
        print(f"   sft {counts['sft']}, preferences {counts['preferences']}", flush=True)
        for kind, data, n in (("sft", "sft.jsonl", counts["sft"]["kept"]),
                              ("dpo", "preferences.jsonl", counts["preferences"]["kept"])):
            least = 2 if kind == "sft" else a.min_pairs
            if n < least:
                entry["stages"].append({"kind": kind, "rows": n, "trained": False,
                                        "why": f"{n} rows exported, fewer than {least}"})
                continue
            t = time.time()
            adapter = pm.train_policy(kind, policy, rm.RUNS / f"export-round{r}" / data, a.steps, tag=f"-round{r}")
            policy = merged(policy, adapter, rm.RUNS / f"policy-round{r}-{kind}-merged")
            lap(f"round{r}-train-{kind}", t)
            t = time.time()
            name = f"round {r} policy ({'SFT' if kind == 'sft' else 'SFT + DPO'})"
            new = [x or "(no answer)" for x in pm.answer(policy, None, test_rows)]
            lap(f"round{r}-answer-test-{kind}", t)
            entry["stages"].append({"kind": kind, "rows": n, "trained": True, "system": name})
            measure(name, new)
        last = next((s["system"] for s in reversed(entry["stages"]) if s["trained"]), None)
        entry["policy"] = last
        before = "old policy" if r == 1 else rounds[-2]["policy"]
        if last and before:
            systems[last][f"minus round {r - 1}" if r > 1 else "minus round 0"] = im.paired(follow[last], follow[before], 0)
        write_summary()
    timing["total"] = round(time.time() - t0)
    write_summary()
    for name, s in systems.items():
        d = s.get("minus old policy")
        extra = f"; minus old policy {d['mean']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]" if d else ""
        print(f"{name:<44} prompt strict {s['prompt_strict']:.3f}{extra}")
    print(f"run time {timing['total']} s -> {a.results / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
