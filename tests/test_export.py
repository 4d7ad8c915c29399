"""Issue 21: a run's revisions and verdicts become training data for the policy (`cnr export`).

Hand-built runs put ties, disagreements, parse failures, failed verdicts, probability margins and
people's verdicts each where the rules say; the export does not depend on row order; the exported
files are read by axolotl's own loader (`axolotl preprocess` on the shipped policy configs) and by
TRL's conversational helpers.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, axolotl_env

from cnr_plugin.export import ExportRules, conversation, export


def verdicts(fwd, bwd, probs=None):
    def one(w):
        if w in ("failed", "unparsed"):
            return {"winner": None, "status": w}
        return {"winner": w, "status": "ok", **({"probs": probs} if probs else {})}
    return one(fwd), one(bwd)


def judgment(k, fwd, bwd, score=None, probs=None):
    f, b = verdicts(fwd, bwd, probs)
    status = "ok" if f["status"] == b["status"] == "ok" else (f["status"] if f["status"] != "ok" else b["status"])
    if score is None and status == "ok":
        score = {("A", "B"): 1.0, ("B", "A"): 0.0}.get((fwd, bwd), 0.5)
    return {"iteration": k, "against": "original", "status": status, "score": score if status == "ok" else None,
            "forward": f, "backward": b}


def step(k, revision, result=None, accepted=None):
    return {"iteration": k, "revision": revision, "result": result if result is not None else revision,
            "accepted": accepted}


ITEMS = [
    # a: iteration 1 wins in both orders; iteration 2 is a tie in both orders
    {"id": "a", "prompt": "Pa", "response": "ra", "steps": [step(1, "ra1"), step(2, "ra2")],
     "judgments": [judgment(1, "A", "B"), judgment(2, "tie", "tie")]},
    # b: the two orders disagree (always A)
    {"id": "b", "prompt": "Pb", "response": "rb", "steps": [step(1, "rb1")], "judgments": [judgment(1, "A", "A")]},
    # c: no usable revision (the loop kept the original)
    {"id": "c", "prompt": "Pc", "response": "rc", "steps": [step(1, None, result="rc")],
     "judgments": [judgment(1, "tie", "tie")]},
    # d: a conversation with a system text; the original is preferred in both orders
    {"id": "d", "prompt": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                           {"role": "user", "content": "Pd"}], "system": "Be brief.", "response": "rd",
     "steps": [step(1, "rd1")], "judgments": [judgment(1, "B", "A")]},
    # e: a probability verdict: score 0.8, margin 0.6
    {"id": "e", "prompt": "Pe", "response": "re", "steps": [step(1, "re1")],
     "judgments": [judgment(1, "A", "B", score=0.8, probs={"A": 0.8, "B": 0.2, "tie": 0.0})]},
    # f: a failed verdict
    {"id": "f", "prompt": "Pf", "response": "rf", "steps": [step(1, "rf1")], "judgments": [judgment(1, "failed", "B")]},
    # g: the text did not change at iteration 2: the same pair twice
    {"id": "g", "prompt": "Pg", "response": "rg", "steps": [step(1, "rg1"), step(2, "rg1")],
     "judgments": [judgment(1, "A", "B"), judgment(2, "A", "B")]},
    # h: the judge rejected iteration 2 (accept: judge), so the last accepted revision is iteration 1's
    {"id": "h", "prompt": "Ph", "response": "rh", "steps": [step(1, "rh1"), step(2, "rh2", result="rh1", accepted=False)],
     "judgments": [judgment(1, "A", "B"), judgment(2, "A", "B")]},
]


def by_id(rows):
    return {(r["meta"]["id"], r["meta"]["iteration"]): r for r in rows}


def test_the_rules_put_each_case_where_it_belongs():
    sft, prefs, counts = export(ITEMS, ExportRules(), judge="oracle", source="run")
    s, p = by_id(sft), by_id(prefs)
    # SFT: the last accepted revision; none where no revision was usable
    assert s[("a", 2)]["messages"][-1] == {"role": "assistant", "content": "ra2"}
    assert s[("h", 1)]["messages"][-1]["content"] == "rh1" and ("h", 2) not in s
    assert "c" not in {k[0] for k in s}
    assert counts["sft"] == {"kept": 7, "dropped": {"no usable revision": 1}}
    # a conversation stays a conversation, the system text first
    assert s[("d", 1)]["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"},
                                       {"role": "assistant", "content": "hello"}, {"role": "user", "content": "Pd"},
                                       {"role": "assistant", "content": "rd1"}]
    # preferences: decisive in both orders only
    assert p[("a", 1)]["chosen"] == [{"role": "assistant", "content": "ra1"}] and p[("a", 1)]["rejected"][0]["content"] == "ra"
    assert ("a", 2) not in p and ("b", 1) not in p and ("f", 1) not in p
    assert p[("d", 1)]["chosen"][0]["content"] == "rd" and p[("d", 1)]["meta"]["chosen_is"] == "original"
    assert p[("d", 1)]["prompt"] == s[("d", 1)]["messages"][:-1]
    assert p[("e", 1)]["meta"]["margin"] == pytest.approx(0.6) and p[("a", 1)]["meta"]["margin"] is None
    assert p[("g", 1)] and ("g", 2) not in p
    assert all(r["meta"]["judge"] == "oracle" and r["meta"]["source"] == "run" for r in prefs)
    # g's and h's second iterations give their first pair again (h's revision 2 was rejected: the text stayed)
    assert counts["preferences"] == {"kept": 5, "dropped": {
        "duplicate pair": 2, "identical texts": 1, "not judged (failed or unparsed verdict)": 1,
        "position orders disagree": 1, "tie": 1}}
    # never a text paired with itself
    assert all(r["chosen"][0]["content"] != r["rejected"][0]["content"] for r in prefs)


def test_options_best_last_and_margin():
    sft, prefs, counts = export(ITEMS, ExportRules(sft="best", pairs="last", min_margin=0.7), judge="j", source="s")
    s = by_id(sft)
    assert s[("a", 1)]["messages"][-1]["content"] == "ra1"  # iteration 1 won, iteration 2 tied
    assert "d" not in {k[0] for k in s} and "b" not in {k[0] for k in s}
    assert counts["sft"]["dropped"] == {"no revision won against the original": 2, "no usable revision": 1,
                                        "not judged": 1}
    p = by_id(prefs)
    assert ("a", 1) not in p and ("e", 1) not in p  # pairs from the last iteration only; e's margin 0.6 < 0.7
    assert counts["preferences"]["dropped"]["margin below 0.7"] == 1


def test_a_pair_is_tagged_with_the_iteration_that_wrote_its_text():
    """Issue 31 §5: g's iteration 2 kept iteration 1's text (h's was rejected): with --pairs last the pair is
    iteration 1's, judged again at iteration 2."""
    _sft, prefs, _counts = export(ITEMS, ExportRules(pairs="last"), judge="j", source="s")
    p = {r["meta"]["id"]: r["meta"] for r in prefs}
    assert (p["g"]["iteration"], p["g"]["judged_at"]) == (1, 2) and (p["h"]["iteration"], p["h"]["judged_at"]) == (1, 2)
    assert p["d"]["iteration"] == p["d"]["judged_at"] == 1


def test_people_decide_the_pairs_they_judged():
    people = {"a@1": ["loss", "loss", "win"], "b@1": ["win", "win"], "e@1": ["win", "tie"]}
    _, prefs, counts = export(ITEMS, ExportRules(), judge="oracle", source="s", people=people)
    p = by_id(prefs)
    assert p[("a", 1)]["meta"]["judge"] == "people" and p[("a", 1)]["chosen"][0]["content"] == "ra"
    assert p[("b", 1)]["meta"]["judge"] == "people" and p[("b", 1)]["chosen"][0]["content"] == "rb1"
    assert ("e", 1) not in p and counts["preferences"]["dropped"]["people tied or split"] == 1
    assert p[("d", 1)]["meta"]["judge"] == "oracle"  # the judge where people did not judge


def test_the_export_does_not_depend_on_row_order():
    rng = random.Random(0)
    base = export(ITEMS, ExportRules(), judge="j", source="s")
    for _ in range(10):
        shuffled = ITEMS[:]
        rng.shuffle(shuffled)
        sft, prefs, counts = export(shuffled, ExportRules(), judge="j", source="s")
        key = lambda r: json.dumps(r, sort_keys=True)  # noqa: E731
        assert sorted(map(key, sft)) == sorted(map(key, base[0])) and counts == base[2]
        # the duplicate kept is the one of the earliest iteration only where rows come in order; the
        # pairs themselves (prompt, chosen, rejected) are the same set either way
        pairs = sorted(json.dumps([r["prompt"], r["chosen"], r["rejected"]]) for r in prefs)
        assert pairs == sorted(json.dumps([r["prompt"], r["chosen"], r["rejected"]]) for r in base[1])


def test_conversation_of_a_text_prompt():
    assert conversation({"prompt": "P", "system": None}) == [{"role": "user", "content": "P"}]
    assert conversation({"prompt": "P", "system": "S"})[0] == {"role": "system", "content": "S"}


def cnr(*args, env=None):
    return subprocess.run([sys.executable, "-m", "cnr_plugin.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)


def write_rows(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture()
def judged_run(tmp_path):
    """A real `cnr judge` folder: the keywords oracle judges hand-written revisions."""
    meta = {"required": ["units"]}
    base = write_rows(tmp_path / "base.jsonl", [{"id": str(i), "prompt": f"Q{i}?", "response": f"{i} m", "meta": meta}
                                                for i in range(4)])
    cand = write_rows(tmp_path / "cand.jsonl", [{"id": str(i), "prompt": f"Q{i}?",
                                                 "response": f"{i} m (units: metres)" if i < 3 else f"{i} m"}
                                                for i in range(4)])
    (tmp_path / "oracle.yaml").write_text("judge: oracle\nchecker: keywords\n")
    env = dict(os.environ, CNR_CACHE_DIR=str(tmp_path / "cache"))
    proc = cnr("judge", base, cand, "--judge", tmp_path / "oracle.yaml", "--out", tmp_path / "judged", env=env)
    assert proc.returncode == 0, proc.stderr
    return tmp_path / "judged"


def test_cnr_export_from_a_cnr_judge_folder_and_people(tmp_path, judged_run):
    proc = cnr("export", judged_run, "--out", tmp_path / "export")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "sft: 3 of 4 items (dropped: revision identical to the original 1)"
    assert proc.stdout.splitlines()[1] == "preferences: 3 pairs (dropped: identical texts 1)"
    counts = json.loads((tmp_path / "export" / "export_counts.json").read_text())
    assert counts["preferences"]["kept"] == 3 and counts["provenance"]["arguments"]["sft"] == "last"
    prefs = [json.loads(x) for x in (tmp_path / "export" / "preferences.jsonl").read_text().splitlines()]
    assert {r["meta"]["judge"] for r in prefs} == {"oracle"}
    human = write_rows(tmp_path / "human_judgments.jsonl", [{"pair": "0@1", "iteration": 1, "annotator": 1,
                                                             "label": "loss"}])
    proc = cnr("export", judged_run, "--human", human, "--out", tmp_path / "export2")
    prefs = {r["meta"]["id"]: r for r in map(json.loads, (tmp_path / "export2" / "preferences.jsonl").read_text().splitlines())}
    assert prefs["0"]["meta"]["judge"] == "people" and prefs["0"]["chosen"][0]["content"] == "0 m"
    bad = cnr("export", tmp_path / "cand.jsonl", "--out", tmp_path / "x", "--min-margin", "2")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    # --min-margin on letter verdicts would keep every pair while the counts record the margin: refused
    letters = cnr("export", judged_run, "--out", tmp_path / "x", "--min-margin", "0.5")
    assert letters.returncode == 1 and len(letters.stderr.strip().splitlines()) == 1, letters.stderr
    assert "--min-margin 0.5" in letters.stderr and "verdict: probability" in letters.stderr
    assert not (tmp_path / "x").exists()


def test_cnr_export_from_lm_eval_samples(tmp_path):
    """lm-eval's --log_samples rows (the shape the cnr_winrate task writes) export like any run."""
    items = ITEMS[:2]
    out = tmp_path / "lm" / "model"
    out.mkdir(parents=True)
    rows = [{"doc": {"id": it["id"], "prompt": it["prompt"], "response": it["response"], "conversation": "",
                     "system": "", "meta": "{}", "cnr_run": json.dumps({"judge": "judge.yaml"})},
             "filtered_resps": [json.dumps({"steps": it["steps"], "judgments": it["judgments"]})]} for it in items]
    write_rows(out / "samples_cnr_winrate_2026.jsonl", rows)
    proc = cnr("export", tmp_path / "lm", "--out", tmp_path / "export")
    assert proc.returncode == 0, proc.stderr
    prefs = [json.loads(x) for x in (tmp_path / "export" / "preferences.jsonl").read_text().splitlines()]
    assert [(r["meta"]["id"], r["meta"]["iteration"], r["meta"]["judge"]) for r in prefs] == [("a", 1, "judge.yaml")]


# -- axolotl and TRL read what was exported ------------------------------------------------------------

def policy_config(tmp_path: Path, name: str, model: Path, data: Path) -> Path:
    cfg = yaml.safe_load((ROOT / "axolotl_configs" / name).read_text())
    cfg.update(base_model=str(model), dataset_prepared_path=str(tmp_path / f"prepared-{name}"),
               output_dir=str(tmp_path / f"out-{name}"), bf16=False, tf32=False, flash_attention=False)
    for key in ("deepspeed", "model_type", "tokenizer_type", "cnr_hardware"):
        cfg.pop(key, None)
    cfg["val_set_size"] = 0
    cfg["datasets"][0]["path"] = str(data)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.mark.integration
@pytest.mark.parametrize("name", ["policy-sft-tiny-cpu.yaml", "policy-dpo-tiny-cpu.yaml", "policy-sft.yaml",
                                  "policy-dpo.yaml"])
def test_the_shipped_policy_configs_preprocess_the_export(tmp_path, tiny_llama, name):
    pytest.importorskip("axolotl")
    sft, prefs, _ = export(ITEMS, ExportRules(), judge="oracle", source="run")
    data = write_rows(tmp_path / ("sft.jsonl" if "sft" in name else "preferences.jsonl"), sft if "sft" in name else prefs)
    cfg = policy_config(tmp_path, name, tiny_llama, data)
    proc = subprocess.run([sys.executable, "-m", "axolotl.cli.preprocess", str(cfg)], cwd=tmp_path,
                          env=axolotl_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    from datasets import load_from_disk

    prepared = [p.parent for p in (tmp_path / f"prepared-{name}").rglob("dataset_info.json")]
    assert prepared, list((tmp_path / f"prepared-{name}").rglob("*"))
    ds = load_from_disk(str(prepared[0]))
    if "sft" in name:  # every row trains on its revision: some labels are not masked
        assert len(ds) == len(sft) and all(any(x != -100 for x in row["labels"]) for row in ds)
    else:  # TRL's prompt / chosen / rejected, rendered by the chat template, the texts intact
        assert len(ds) == len(prefs) and set(ds.column_names) >= {"prompt", "chosen", "rejected"}
        assert sorted(r["chosen"].split("<|im_end|>")[0] for r in ds) == sorted(p["chosen"][0]["content"] for p in prefs)


@pytest.mark.integration
def test_trl_reads_the_export_as_conversational(tmp_path, smollm2_tokenizer):
    trl = pytest.importorskip("trl")
    from trl.data_utils import apply_chat_template, is_conversational

    sft, prefs, _ = export(ITEMS, ExportRules(), judge="oracle", source="run")
    for row in sft + prefs:
        plain = {k: v for k, v in row.items() if k != "meta"}
        assert is_conversational(plain), row
        rendered = apply_chat_template(plain, smollm2_tokenizer)
        if "chosen" in plain:
            assert plain["chosen"][0]["content"] in rendered["chosen"]
            assert plain["prompt"][-1]["content"] in rendered["prompt"]
        else:
            assert plain["messages"][-1]["content"] in rendered["text"]
    assert trl.__version__
