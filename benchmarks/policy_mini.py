"""The alignment loop closed, in miniature on CPU (issue 21): does training the *policy* on what
critique-and-revise produced make its own answers better, with no reviser at inference?

1. The synthetic verifiable task (cnr_plugin/synthetic.py): 1000 CnR records train the reviser
   (SmolLM2-135M-Instruct, LoRA, `axolotl train`); P policy-training prompts and H held-out prompts,
   disjoint from each other and from the reviser's records.
2. The policy (the same untrained SmolLM2) answers all prompts (greedy, chat template).
3. `lm_eval --tasks cnr_winrate`: the trained reviser revises the policy's answers to the training
   prompts (K iterations, the oracle judge); `cnr export` turns that run into SFT rows and
   preference pairs.
4. `axolotl train` with the shipped policy configs: SFT (policy-sft-tiny-cpu.yaml) and DPO
   (policy-dpo-tiny-cpu.yaml) of the policy on the export.
5. On the held-out prompts, paired over the same prompts and judged by the oracle (both orders,
   through cnr_plugin.evaluation.judge_revisions): the SFT policy and the DPO policy against the
   old policy, and beside them the old policy + CnR revision at inference (the reviser, K iterations).

    python benchmarks/policy_mini.py [--policy-prompts 120] [--held-out 100] [--iterations 2] [--steps 60]

Writes results/policy_mini/summary.json (provenance, export counts, win rates with intervals, paired
differences, timings) and the policies' answers (gzip) beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
import reproduce_mini as rm  # noqa: E402
from _common import write_jsonl, write_jsonl_gz  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MAX_NEW_TOKENS = 128


def answer(base: Path, adapter: Path | None, rows: list[dict], batch: int = 16) -> list[str]:
    """The policy's greedy answers to ``rows``' prompts (chat template; stops at the end of its turn)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(base))
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32 if rm.DEVICE == "cpu" else torch.bfloat16)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter))
    model.to(rm.DEVICE).eval()
    end = tok.convert_tokens_to_ids("<|im_end|>")
    out = []
    for i in range(0, len(rows), batch):
        texts = [tok.apply_chat_template([{"role": "user", "content": r["prompt"]}], tokenize=False,
                                         add_generation_prompt=True) for r in rows[i:i + batch]]
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(rm.DEVICE)
        with torch.no_grad():
            gen = model.generate(**enc, max_new_tokens=MAX_NEW_TOKENS, do_sample=False, eos_token_id=end,
                                 pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else end)
        for row in gen[:, enc["input_ids"].shape[1]:]:
            out.append(tok.decode(row, skip_special_tokens=True).strip())
        print(f"   answered {min(i + batch, len(rows))}/{len(rows)}", flush=True)
    return out


def train_policy(kind: str, base: Path, data: Path, steps: int, tag: str = "") -> Path:
    """The shipped ``policy-{kind}-tiny-cpu.yaml`` on ``data`` from ``base`` (a LoRA adapter);
    ``tag`` keeps the files of several trainings of one kind apart (rounds)."""
    cfg = yaml.safe_load((ROOT / "axolotl_configs" / f"policy-{kind}-tiny-cpu.yaml").read_text())
    name = f"policy-{kind}{tag}"
    out = rm.RUNS / name
    cfg.update(base_model=str(base), output_dir=str(out), max_steps=steps,
               dataset_prepared_path=str(rm.RUNS / f"prepared-{kind}{tag}"))
    cfg["datasets"][0]["path"] = str(data)
    path = rm.RUNS / f"{name}.yaml"
    path.write_text(yaml.safe_dump(rm.on_device(cfg), sort_keys=False))
    rm.sh([sys.executable, "-m", "axolotl.cli.train", str(path)], rm.RUNS / f"train-{name}.log",
          label=f"training the policy ({kind}{tag.replace('-', ' ')})")
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--policy-prompts", type=int, default=120)
    ap.add_argument("--held-out", type=int, default=100)
    ap.add_argument("--iterations", type=int, default=2)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, default=ROOT / "runs" / "policy_mini")
    ap.add_argument("--results", type=Path, default=ROOT / "results" / "policy_mini")
    rm.add_model_args(ap)
    a = ap.parse_args()
    rm.DEVICE = a.device
    rm.use_workdir(a.workdir.resolve())
    t0 = time.time()
    from cnr_plugin.provenance import provenance

    started = provenance(vars(a), {"splits": a.seed, "axolotl": 42}, repo=ROOT)  # the code as the run starts
    from cnr_plugin.evaluation import Item, judge_revisions, paired_difference
    from cnr_plugin.export import ExportRules, export_run
    from cnr_plugin.judges import load_judge_config
    from cnr_plugin.results import item_from_lm_eval, item_scores
    from cnr_plugin.synthetic import make_splits

    timing: dict[str, int] = {}

    def lap(name: str, since: float) -> None:
        timing[name] = round(time.time() - since)

    oracle = rm.RUNS / "oracle.yaml"
    oracle.write_text("judge: oracle\nchecker: cnr_plugin.synthetic:score\n")
    base = rm.base_model(a.base)
    paths = make_splits(rm.RUNS / "data", n_train=1000, n_val=a.policy_prompts, n_test=a.held_out, seed=a.seed)
    read = lambda p: [json.loads(x) for x in Path(p).read_text().splitlines()]  # noqa: E731
    train_prompts, held_out = read(paths["val"]), read(paths["test"])

    print("== the reviser: axolotl train on 1000 CnR records", flush=True)
    t = time.time()
    reviser = rm.train(1000, a.steps, paths["train"], base, tag="policy-mini")
    lap("train-reviser", t)
    reviser_args = f"inner=hf,pretrained={base},peft={reviser}"

    print("== the old policy answers every prompt", flush=True)
    t = time.time()
    old = answer(base, None, train_prompts + held_out)
    lap("answer-old-policy", t)
    old_train = [{**r, "response": ans or "(no answer)"} for r, ans in zip(train_prompts, old)]
    old_test = [{**r, "response": ans or "(no answer)"} for r, ans in zip(held_out, old[len(train_prompts):])]
    train_file = write_jsonl(rm.RUNS / "data" / "policy_train_answers.jsonl", old_train)
    test_file = write_jsonl(rm.RUNS / "data" / "policy_held_out_answers.jsonl", old_test)

    print("== CnR revises the policy's training answers; cnr export", flush=True)
    t = time.time()
    revised = rm.evaluate("revise-train", reviser_args, train_file, len(old_train), a.iterations, 0)
    counts = export_run(Path(revised["results_dir"]), rm.RUNS / "export", ExportRules(), argv=sys.argv[1:])
    lap("revise-and-export", t)
    print(f"   sft {counts['sft']}, preferences {counts['preferences']}", flush=True)

    policies: dict[str, Path] = {}
    for kind, data, n in (("sft", "sft.jsonl", counts["sft"]["kept"]),
                          ("dpo", "preferences.jsonl", counts["preferences"]["kept"])):
        if n < 2:
            print(f"   {kind}: {n} rows exported, too few to train on", flush=True)
            continue
        t = time.time()
        policies[kind] = train_policy(kind, base, rm.RUNS / "export" / data, a.steps)
        lap(f"train-policy-{kind}", t)

    print("== held-out prompts: the trained policies answer, without a reviser", flush=True)
    items = [Item(r["id"], r["prompt"], r["response"], None, r["meta"]) for r in old_test]
    config = load_judge_config(str(oracle))
    summary_rows: dict[str, dict] = {}
    answers: dict[str, list[str]] = {"old policy": [r["response"] for r in old_test]}
    scores: dict[str, dict[str, float]] = {}
    for kind, adapter in policies.items():
        t = time.time()
        new = answer(base, adapter, held_out)
        lap(f"answer-{kind}-policy", t)
        name = f"{kind.upper()} policy"
        answers[name] = new
        ev = judge_revisions(items, {it.id: [(1, text or "(no answer)")] for it, text in zip(items, new)}, config,
                             progress=False)
        row = ev.summary["rows"][0]
        scores[name] = {j.comparison.item_id: j.score for j in ev.judged if j.score is not None}
        summary_rows[name] = {"winrate_vs_old_policy": row["winrate"], "ci95": row["ci95"], "n": row["n_judged"]}

    print("== beside them: the old policy + CnR revision at inference", flush=True)
    t = time.time()
    at_inference = rm.evaluate("revise-held-out", reviser_args, test_file, len(old_test), a.iterations, 0)
    lap("revise-held-out", t)
    rows = rm.samples(Path(at_inference["results_dir"]))
    for k in range(1, a.iterations + 1):
        name = f"old policy + CnR at inference (iteration {k})"
        entry = at_inference[f"iter{k}"]
        scores[name] = item_scores([item_from_lm_eval(s) for s in rows], k)
        summary_rows[name] = {"winrate_vs_old_policy": entry["winrate"], "ci95": entry["ci95"], "n": len(scores[name])}
    last = f"old policy + CnR at inference (iteration {a.iterations})"
    for kind in policies:
        name = f"{kind.upper()} policy"
        summary_rows[name]["minus_cnr_at_inference"] = paired_difference(scores[name], scores[last])

    out = a.results
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl_gz(out / "held_out_answers.jsonl.gz", ({"id": r["id"], "prompt": r["prompt"], "meta": r["meta"],
                                                       **{name: ans[i] for name, ans in answers.items()}}
                                                      for i, r in enumerate(held_out)))
    timing["total"] = round(time.time() - t0)
    summary = {"provenance": started,
               "question": "does training the policy on CnR's revisions (SFT) and preferences (DPO) make its own "
                           "held-out answers better than the old policy's, judged by the oracle, and how does that "
                           "compare with revising the old policy's answers at inference?",
               "judge": "oracle (cnr_plugin.synthetic:score), both position orders",
               "ci_method": rm.CI_METHOD, "export_counts": {k: counts[k] for k in ("items", "sft", "preferences")},
               "systems": summary_rows, "timing_s": timing, "answers": "held_out_answers.jsonl.gz (beside this file)"}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    for name, r in summary_rows.items():
        d = r.get("minus_cnr_at_inference")
        extra = f"; minus CnR at inference {d['mean']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]" if d else ""
        print(f"{name:<48} {r['winrate_vs_old_policy']:.3f} [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}] "
              f"n={r['n']}{extra}")
    print(f"run time {timing['total']} s -> {out / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
