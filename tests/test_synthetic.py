"""The synthetic verifiable task, its oracle, and a 2-iteration, few-item run of the mini reproduction."""

import json
import subprocess
import sys
from collections import Counter

import pytest
from conftest import ROOT, axolotl_env, needs_torch

from cnr_plugin import synthetic
from cnr_plugin.judges import make_judge
from cnr_plugin.judges import JudgePair, load_judge_config
from cnr_plugin.formats.base import says_no_cons
from cnr_plugin.records import read_records


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    return synthetic.make_splits(tmp_path_factory.mktemp("syn"), n_train=300, n_val=40, n_test=40, seed=1)


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_splits_never_share_prompts_and_are_seeded(splits, tmp_path):
    prompts = {k: {r["prompt"] for r in rows(p)} for k, p in splits.items()}
    assert len(prompts["train"]) == 300 and len(prompts["test"]) == 40
    assert not (prompts["train"] & prompts["test"]) and not (prompts["train"] & prompts["val"])
    assert not (prompts["val"] & prompts["test"])
    again = synthetic.make_splits(tmp_path, n_train=300, n_val=40, n_test=40, seed=1)
    assert again["test"].read_text() == splits["test"].read_text()


def test_records_are_valid_cnr_with_correct_revisions(splits):
    records = read_records(splits["train"])
    assert len(records) == 300
    for rec in records:
        checks = rec.meta["checks"]
        assert synthetic.score(rec.prompt, rec.revision, rec.meta) == len(checks)
        bad = synthetic.failed(rec.response, rec.meta)
        assert says_no_cons(rec.critique_text) == (not bad)  # a right response: "Cons: - none"
    assert sum(bool(synthetic.failed(r.response, r.meta)) for r in records) > 200  # most first answers are faulty
    for r in rows(splits["test"]):  # evaluation always starts from a faulty response
        assert synthetic.score(r["prompt"], r["response"], r["meta"]) < len(r["meta"]["checks"])


def test_splits_are_stratified_by_family_and_levers_touch_training_only(splits, tmp_path):
    families = {f.__name__.lstrip("_") for f in synthetic.TASKS}
    for split in ("train", "test"):
        counts = Counter(r["meta"]["family"] for r in rows(splits[split]))
        assert set(counts) == families and max(counts.values()) - min(counts.values()) <= 1, counts
    first = [r["meta"]["family"] for r in rows(splits["test"])[:12]]
    assert len(set(first)) >= 4  # mixed order: a `limit` takes every family
    lever = synthetic.make_splits(tmp_path, n_train=300, n_val=40, n_test=40, seed=1, right_share=0.5,
                                  partial_share=1.0)
    assert lever["test"].read_text() == splits["test"].read_text()
    train = read_records(lever["train"])
    assert sum(r.response == r.revision for r in train) > 100  # about half already right
    partial = [r for r in train if r.response != r.revision and synthetic.failed(r.revision, r.meta)]
    assert partial and all(r.meta["family"] in ("sort", "arith") for r in partial)
    for r in partial:  # one fault of two fixed: the next step is the answer itself
        value = str(r.meta["checks"][0]["value"])
        assert r.revision in (f"The answer is {value}.", value.replace(", ", " ")), (r.response, r.revision)
        assert len(synthetic.failed(r.response, r.meta)) >= len(synthetic.failed(r.revision, r.meta))


def test_held_out_family_is_the_whole_test_set(tmp_path):
    paths = synthetic.make_splits(tmp_path, n_train=120, n_val=10, n_test=20, seed=2, held_out="json")
    assert {r["meta"]["family"] for r in rows(paths["test"])} == {"json"}
    assert "json" not in {r["meta"]["family"] for r in rows(paths["train"])}


def test_oracle_judge_through_the_plugin_hook(splits):
    judge = make_judge(load_judge_config({"judge": "oracle", "checker": "cnr_plugin.synthetic:score"}))
    rec = read_records(splits["train"])[0]
    worse = rec.response if synthetic.failed(rec.response, rec.meta) else "nonsense"
    assert judge.judge_one(JudgePair(rec.prompt, rec.revision, worse, rec.meta)).winner == "A"
    assert judge.judge_one(JudgePair(rec.prompt, worse, rec.revision, rec.meta)).winner == "B"
    assert judge.judge_one(JudgePair(rec.prompt, rec.revision, rec.revision, rec.meta)).winner == "tie"


@needs_torch
@pytest.mark.integration
def test_mini_reproduction_pipeline_two_iterations(tmp_path, tiny_llama):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "reproduce_mini.py"), "--sizes", "8",
                           "--steps", "2", "--items", "3", "--iterations", "2", "--max-gen-toks", "24",
                           "--base", str(tiny_llama), "--workdir", str(tmp_path / "mini"),
                           "--results", str(tmp_path / "results")],
                          capture_output=True, text=True, env=axolotl_env(), timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert not (tmp_path / "results" / "summary.json").exists()  # a partial run keeps the full result
    result = json.loads((tmp_path / "results" / "summary_partial_8.json").read_text())
    prov = result["provenance"]
    assert len(prov["commit"]) == 40 and isinstance(prov["dirty"], bool)
    assert prov["arguments"]["sizes"] == [8] and prov["versions"]["axolotl"] and prov["hardware"]["cores"]
    assert "Bayesian bootstrap" in result["ci_method"]
    for name in ("control", "trained-8"):
        run = result["runs"][name]
        assert run["n_items"] == 3 and set(run["iterations"]) == {"1", "2"}
        assert 0 <= run["iterations"]["2"]["winrate"] <= 1
        assert sum(f["n"] for f in run["iterations"]["1"]["families"].values()) == 3
        assert (tmp_path / "results" / "samples" / f"{name}.jsonl.gz").stat().st_size > 100
    assert result["runs"]["trained-8"]["iterations"]["2"]["vs_control"]["n"] == 3  # paired on the same items
    assert (tmp_path / "results" / "winrate.png").stat().st_size > 1000
    assert "peak memory" in proc.stdout


@needs_torch
@pytest.mark.integration
def test_mini_reproduction_held_out_family(tmp_path, tiny_llama):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "reproduce_mini.py"), "--sizes", "12",
                           "--steps", "1", "--items", "3", "--iterations", "1", "--max-gen-toks", "16",
                           "--base", str(tiny_llama), "--workdir", str(tmp_path / "mini"),
                           "--results", str(tmp_path / "results"), "--held-out", "json"],
                          capture_output=True, text=True, env=axolotl_env(), timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads((tmp_path / "results" / "summary.json").read_text())
    trained = [json.loads(x) for x in (tmp_path / "mini" / "data-held-out-json" / "train.jsonl").read_text().splitlines()]
    assert trained and all(r["meta"]["family"] != "json" for r in trained)  # trained without the family
    run = result["runs"]["held-out-json"]
    assert set(run["iterations"]["1"]["families"]) == {"json"} and run["iterations"]["1"]["vs_control"]["n"] == 3
    assert "control-json" in result["runs"]
    bad = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "reproduce_mini.py"), "--held-out", "jsn"],
                         capture_output=True, text=True, env=axolotl_env(), timeout=120)
    assert bad.returncode == 2 and "one of arith, caps, fruits, json, sentence, sort" in bad.stderr


@pytest.mark.parametrize("lever", ["bogus", "0.4:1.5", "0.4"])
def test_stop_levers_refuses_a_bad_lever_before_any_work(tmp_path, lever):
    """`stop_levers.py --levers bogus` ended in a ValueError traceback after making its working folder."""
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "stop_levers.py"), "--levers", lever,
                           "--workdir", str(tmp_path / "w"), "--results", str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert f"{lever!r} is not right_share:partial_share" in proc.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "w").exists() and not (tmp_path / "r").exists()
