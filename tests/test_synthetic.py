"""The synthetic verifiable task, its oracle, and a 2-iteration, few-item run of the mini reproduction."""

import json
import subprocess
import sys

import pytest
from conftest import ROOT, axolotl_env, needs_torch

from cnr_plugin import synthetic
from cnr_plugin.evaluation import make_judge
from cnr_plugin.judging import JudgePair, load_judge_config
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
        assert ("Cons:" in rec.critique_text) == bool(bad)
    assert sum(bool(synthetic.failed(r.response, r.meta)) for r in records) > 200  # most first answers are faulty
    for r in rows(splits["test"]):  # evaluation always starts from a faulty response
        assert synthetic.score(r["prompt"], r["response"], r["meta"]) < len(r["meta"]["checks"])


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
    result = json.loads((tmp_path / "results" / "mini_repro.json").read_text())
    for name in ("control", "trained-8"):
        assert result[name]["n_items"] == 3
        assert {"iter1", "iter2"} <= set(result[name])
        assert 0 <= result[name]["iter2"]["winrate"] <= 1
    assert (tmp_path / "results" / "mini_repro_winrate.png").stat().st_size > 1000
    assert (tmp_path / "results" / "mini_repro_data_efficiency.png").stat().st_size > 1000
    assert "peak memory" in proc.stdout
