"""Issue 25 (the judge): IFEval's instruction checkers, lm-eval's own, as `judge: ifeval`.

Verdicts computed by hand for several instruction types, strict vs loose, an unknown instruction id
and an instruction type this machine cannot check refused in one line before work, google/IFEval's
row schema read as it is (`fields: ifeval`), IFEval's accuracies per iteration in the results, and
the exact user commands (`cnr judge --judge ifeval`, `lm_eval ... "judge": "ifeval"`) in both
lm-eval versions (this file runs in .venv, lm-eval 0.4.11, and .venv-eval, the newest).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, axolotl_env, needs_torch

from cnr_plugin.judges import JudgeConfigError, JudgePair, load_judge_config, make_judge

pytest.importorskip("lm_eval")
pytest.importorskip("langdetect")

# google/IFEval rows in their exact schema (key, prompt, instruction_id_list, kwargs), with a response added
ROWS = [
    {"key": 1000, "prompt": "Write a short note about tea. Do not use any commas. Use only lowercase letters.",
     "instruction_id_list": ["punctuation:no_comma", "change_case:english_lowercase"],
     "kwargs": [{}, {}], "response": "Tea is lovely, and Warm."},
    {"key": 1001, "prompt": "List two fruits as exactly 2 markdown bullet points. Include the keyword apple.",
     "instruction_id_list": ["detectable_format:number_bullet_lists", "keywords:existence"],
     "kwargs": [{"num_bullets": 2}, {"keywords": ["apple"]}], "response": "Fruits: pear and plum."},
    {"key": 1002, "prompt": "Describe rain in at least 5 words. End your response with 'Is there anything else?'",
     "instruction_id_list": ["length_constraints:number_words", "startend:end_checker"],
     "kwargs": [{"num_words": 5, "relation": "at least"}, {"end_phrase": "Is there anything else?"}],
     "response": "Wet."},
]
REVISED = {1000: "tea is lovely and warm.", 1001: "* apple\n* pear",
           1002: "Rain falls softly on the roof. Is there anything else?"}


@pytest.fixture(scope="module")
def judge():
    return make_judge(load_judge_config("ifeval"))


def meta(row):
    return {"instruction_id_list": row["instruction_id_list"], "kwargs": row["kwargs"]}


def test_checker_verdicts_by_hand(judge):
    # no_comma, english_lowercase
    assert judge.follows(ROWS[0]["prompt"], "Tea is lovely, and Warm.", meta(ROWS[0])) == [False, False]
    assert judge.follows(ROWS[0]["prompt"], "tea is lovely and warm.", meta(ROWS[0])) == [True, True]
    assert judge.follows(ROWS[0]["prompt"], "tea, warm", meta(ROWS[0])) == [False, True]
    # exactly two bullets; the keyword apple (case-insensitive)
    assert judge.follows(ROWS[1]["prompt"], "* Apple\n* pear", meta(ROWS[1])) == [True, True]
    assert judge.follows(ROWS[1]["prompt"], "* apple\n* pear\n* plum", meta(ROWS[1])) == [False, True]
    # at least 5 words; the end phrase
    assert judge.follows(ROWS[2]["prompt"], "Wet.", meta(ROWS[2])) == [False, False]
    assert judge.follows(ROWS[2]["prompt"], REVISED[1002], meta(ROWS[2])) == [True, True]
    verdict = judge.judge_one(JudgePair(ROWS[0]["prompt"], "tea, warm", "Tea is lovely, and Warm.", meta(ROWS[0])))
    assert verdict.winner == "A" and verdict.raw == "A follows 1/2, B follows 0/2"
    tie = judge.judge_one(JudgePair(ROWS[0]["prompt"], "tea, warm", "Tea is warm", meta(ROWS[0])))
    assert tie.winner == "tie"


def test_loose_is_ifevals_loose(judge):
    """Loose also accepts the text without its first line (IFEval's definition): a lowercase answer
    after a capitalised preamble fails strict and passes loose."""
    text = "Sure! Here it is:\ntea is lovely and warm."
    assert judge.follows(ROWS[0]["prompt"], text, meta(ROWS[0]), loose=False) == [True, False]
    assert judge.follows(ROWS[0]["prompt"], text, meta(ROWS[0]), loose=True) == [True, True]
    loose = make_judge(load_judge_config({"judge": "ifeval", "loose": True}))
    assert loose.judge_one(JudgePair("p", text, "Tea, Warm.", meta(ROWS[0]))).raw == "A follows 2/2, B follows 0/2"
    m = judge.text_metrics(ROWS[0]["prompt"], text, meta(ROWS[0]))
    assert m == {"prompt_strict": (0.0, 1.0), "inst_strict": (1.0, 2.0), "prompt_loose": (1.0, 1.0),
                 "inst_loose": (2.0, 2.0)}


def test_language_checks_give_one_verdict_per_text(judge):
    # the lowercase/capital checks ask langdetect whether a text is English; langdetect samples at
    # random, and unseeded these texts come out "en" in some calls and not in others (measured: 3 of
    # 40 and 36 of 40), so a verdict, and every accuracy summed from it, would vary between runs
    row = {"instruction_id_list": ["change_case:english_lowercase"], "kwargs": [{}]}
    for text in ("the pizza margherita", "fiesta time now"):
        assert len({tuple(judge.follows("Describe a pizza.", text, row)) for _ in range(60)}) == 1


def test_the_checkers_import_prints_nothing():
    """lm-eval's ifeval module tries to download nltk data at import and prints about it on stdout;
    the judge keeps that away from a user's pipe."""
    code = ("from cnr_plugin.judges import load_judge_config, make_judge; make_judge(load_judge_config('ifeval'))"
            ".follows('p', 'x', {'instruction_id_list': ['punctuation:no_comma'], 'kwargs': [{}]})")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout == "" and "nltk_data" not in proc.stderr, proc.stderr


def write_rows(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def cnr(*args, env=None):
    return subprocess.run([sys.executable, "-m", "cnr_plugin.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)


def test_cnr_judge_ifeval_on_google_ifeval_rows(tmp_path):
    base = write_rows(tmp_path / "ifeval.jsonl", ROWS)
    cand = write_rows(tmp_path / "revised.jsonl", [{**r, "response": REVISED[r["key"]]} for r in ROWS])
    env = dict(os.environ, CNR_CACHE_DIR=str(tmp_path / "cache"))
    proc = cnr("judge", base, cand, "--fields", "ifeval", "--judge", "ifeval", "--out", tmp_path / "out", env=env)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "out" / "cnr_results.json").read_text())
    assert summary["rows"][0]["winrate"] == 1.0 and summary["rows"][0]["n_judged"] == 3
    by_it = summary["text_metrics"]["by_iteration"]
    # originals: no row follows all (prompt 0/3), 0 of 6 instructions; revisions: all of them
    assert by_it["0"]["prompt_strict"] == 0.0 and by_it["0"]["inst_strict"] == 0.0
    assert by_it["1"]["prompt_strict"] == 1.0 and by_it["1"]["inst_strict"] == 1.0
    assert "ifeval prompt-level strict: original 0.000 -> iter 1 1.000" in proc.stdout
    report = cnr("report", tmp_path / "out", "--html", tmp_path / "page.html", env=env)
    assert report.returncode == 0 and "ifeval instruction-level loose" in report.stdout, report.stderr
    assert "<table id='text-metrics'>" in (tmp_path / "page.html").read_text()


def test_unknown_instruction_id_fails_in_one_line_before_work(tmp_path):
    bad = [{**ROWS[0], "instruction_id_list": ["punctuation:no_coma", "change_case:english_lowercase"]}]
    base = write_rows(tmp_path / "ifeval.jsonl", bad)
    env = dict(os.environ, CNR_CACHE_DIR=str(tmp_path / "cache"))
    proc = cnr("judge", base, base, "--fields", "ifeval", "--judge", "ifeval", "--out", tmp_path / "out", env=env)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    line = proc.stderr.strip()
    assert len(line.splitlines()) == 1
    assert "item '1000'" in line and "unknown instruction id 'punctuation:no_coma'; did you mean " \
        "'punctuation:no_comma'?" in line, line
    assert not (tmp_path / "out").exists()


def test_types_that_need_missing_nltk_data_are_refused_not_counted(tmp_path, judge):
    from cnr_plugin.evaluation import Item
    from cnr_plugin.judges.ifeval import NEEDS_PUNKT, uncheckable

    missing = uncheckable()
    assert missing <= set(NEEDS_PUNKT)
    item = Item("s", "Answer in at least 3 sentences.", "One.",
                meta={"instruction_id_list": ["length_constraints:number_sentences"],
                      "kwargs": [{"num_sentences": 3, "relation": "at least"}]})
    if "length_constraints:number_sentences" in missing:  # offline, as CI is: refused in one line, never scored
        with pytest.raises(JudgeConfigError, match="length_constraints:number_sentences cannot be checked here: "
                                                   "they need nltk's punkt_tab data"):
            judge.check_item(item)
    else:  # where nltk's data is installed, the type is checked like any other
        judge.check_item(item)
        assert judge.follows(item.prompt, "One. Two. Three.", item.meta) == [True]


def test_a_row_without_instructions_is_refused(judge):
    from cnr_plugin.evaluation import Item

    with pytest.raises(JudgeConfigError, match="meta.instruction_id_list"):
        judge.check_item(Item("x", "p", "r", meta={}))
    with pytest.raises(JudgeConfigError, match="meta.kwargs: expected a list of 2 objects"):
        judge.check_item(Item("x", "p", "r", meta={"instruction_id_list": ROWS[0]["instruction_id_list"],
                                                  "kwargs": [{}]}))


@pytest.mark.integration
def test_lm_eval_cnr_winrate_with_the_ifeval_judge(tmp_path, llama_server):
    """The exact user command, SmolLM2 under llama.cpp revising google/IFEval-shaped rows, judged by
    IFEval's checkers: win rates and IFEval's accuracies per iteration in lm-eval's results."""
    responses = write_rows(tmp_path / "ifeval.jsonl", ROWS)
    meta = {"responses": str(responses), "iterations": 2, "judge": "ifeval", "fields": "ifeval"}
    cmd = [str(Path(sys.executable).parent / "lm_eval"), "--model", "cnr", "--model_args",
           f"inner=local-completions,base_url={llama_server.base_url}/completions,model=smollm2,"
           "tokenizer_backend=None,tokenized_requests=False", "--tasks", "cnr_winrate", "--metadata", json.dumps(meta),
           "--log_samples", "--output_path", str(tmp_path / "out")]
    env = dict(os.environ, CNR_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    res = json.loads(next((tmp_path / "out").rglob("results_*.json")).read_text())["results"]["cnr_winrate"]
    assert res["ifeval_prompt_strict_iter0,judged"] == 0.0 and res["ifeval_inst_strict_iter0,judged"] == 0.0
    for k in (1, 2):
        assert 0.0 <= res[f"ifeval_inst_loose_iter{k},judged"] <= 1.0 and f"winrate_iter{k},judged" in res
    assert "ifeval_inst_strict_iter1" in proc.stdout  # lm-eval's own table shows them


def _script(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / name), *args], capture_output=True, text=True,
                          env=axolotl_env(), timeout=900)


@pytest.fixture(scope="module")
def ifeval_reference(tmp_path_factory, tiny_llama):
    """benchmarks/ifeval_mini.py with a tiny model: the reference run the issue-32 scripts build on."""
    if needs_torch.args[0]:
        pytest.skip(needs_torch.kwargs["reason"])
    tmp = tmp_path_factory.mktemp("ifeval-mini")
    mini = _script("ifeval_mini.py", "--test", "3", "--held-out-test", "2", "--train-prompts", "12", "--iterations",
                   "2", "--steps", "1", "--max-gen-toks", "16", "--response-toks", "8", "--base-model",
                   str(tiny_llama), "--workdir", str(tmp / "work"), "--results", str(tmp / "mini"),
                   "--skip", "stop-lever", "held-out-types")
    assert mini.returncode == 0, mini.stdout[-3000:] + mini.stderr[-3000:]
    ref = json.loads((tmp / "mini" / "summary.json").read_text())
    assert set(ref["runs"]) == {"trained", "control"} and set(ref["runs"]["control"]["iterations"]) == {"0", "1", "2"}
    return tmp / "mini", ref


@needs_torch
@pytest.mark.integration
def test_ifeval_lever_script_runs_end_to_end(tmp_path, tiny_llama, ifeval_reference):
    """Issue 32's smoke test of benchmarks/ifeval_mini.py and benchmarks/ifeval_levers.py: a tiny
    model through both (records from IFEval's checkers, axolotl training, lm_eval with judge: ifeval),
    the lever run reusing the reference's prompts and control, paired on the same items; a lever not
    run is marked; a reference made with another model is refused before any work."""
    mini, ref = ifeval_reference
    levers = _script("ifeval_levers.py", "--levers", "all", "--extra-prompts", "4", "--mini", str(mini),
                     "--base-model", str(tiny_llama), "--workdir", str(tmp_path / "w2"), "--results",
                     str(tmp_path / "levers"))
    assert levers.returncode == 0, levers.stdout[-3000:] + levers.stderr[-3000:]
    out = json.loads((tmp_path / "levers" / "summary.json").read_text())
    assert len(out["provenance"]["commit"]) == 40 and out["reference"]["commit"] == ref["provenance"]["commit"]
    run = out["levers"]["all"]["run"]
    assert run["full_fine_tune"] and run["train_steps"] == 3 and run["n_items"] == 3
    assert run["provenance"] == out["provenance"]  # each lever keeps the provenance of the invocation that ran it
    assert run["minus_control"]["2"]["n"] == 3 and run["last_minus_first"]["n"] == 3  # the same items, paired
    assert set(run["why"]) == {"1", "2"} and run["by_type"]
    assert out["levers"]["full"] == {"what": out["levers"]["full"]["what"], "run": None, "missing": "not run"}
    assert 0 < out["extra_prompts"] <= 4 and out["records"]["all"]["records"] > 0
    assert (tmp_path / "levers" / "samples" / "all.jsonl.gz").stat().st_size > 100

    other = _script("ifeval_levers.py", "--mini", str(mini), "--workdir", str(tmp_path / "w3"))
    assert other.returncode == 2 and "is not the model of" in other.stderr and not (tmp_path / "w3").exists()


@needs_torch
@pytest.mark.integration
def test_ifeval_policy_script_runs_two_rounds(tmp_path, tiny_llama, ifeval_reference):
    """Issue 32 §2's smoke test (benchmarks/ifeval_policy.py): two rounds of answer, revise (here by
    an OpenAI-compatible server, the --reviser-args path a vLLM user takes), cnr export, SFT of the
    policy; every policy measured by IFEval's checkers on the reference's test prompts, paired; a
    DPO stage with too few pairs is said to be skipped, with why."""
    from cnr_plugin.testing.fault_server import FaultPlan, FaultServer

    mini, ref = ifeval_reference
    srv = FaultServer(FaultPlan(seed=0), max_seconds=600).start()
    try:
        proc = _script("ifeval_policy.py", "--reviser-args", f"inner=local-completions,base_url={srv.base_url}/"
                       "completions,model=fault-model,tokenizer_backend=None,tokenized_requests=False", "--sft", "last",
                       "--rounds", "2", "--first-prompts", "5", "--prompts", "4", "--steps", "1", "--min-pairs", "1000", "--answer-toks", "8",
                       "--reviser-toks", "16", "--mini", str(mini), "--base-model", str(tiny_llama), "--workdir",
                       str(tmp_path / "w"), "--results", str(tmp_path / "policy"))
    finally:
        srv.stop()
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = json.loads((tmp_path / "policy" / "summary.json").read_text())
    assert out["reference"]["commit"] == ref["provenance"]["commit"] and out["export_rules"] == {"sft": "last"}
    r1, r2 = out["rounds"]
    assert (r1["training_prompts"], r2["training_prompts"]) == (5, 4)
    for r in (r1, r2):
        sft, dpo = r["stages"]
        assert sft["trained"] and sft["rows"] == r["export"]["sft"]["kept"] > 0
        assert not dpo["trained"] and "fewer than 1000" in dpo["why"]
    systems = out["systems"]
    assert set(systems) == {"old policy", "old policy + reviser at inference", "round 1 policy (SFT)",
                            "round 2 policy (SFT)"}
    assert systems["round 2 policy (SFT)"]["minus round 1"]["n"] == 3  # paired on the same test prompts
    assert systems["round 1 policy (SFT)"]["minus old policy"]["n"] == 3
    assert all(0 <= s["prompt_strict"] <= 1 and s["n"] == 3 for s in systems.values())
