"""The `cnr` command: validate, revise, judge, report."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SAMPLE, write_judge_yaml

CNR = str(Path(sys.executable).parent / "cnr")


def cnr(*args, cwd=None, env=None):
    return subprocess.run([CNR, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


def test_validate(tmp_path):
    proc = cnr("validate", SAMPLE)
    assert proc.returncode == 0 and "34 valid CnR records" in proc.stdout
    bad = tmp_path / "bad.jsonl"
    bad.write_text(SAMPLE.read_text().splitlines()[0] + '\n{"prompt": "p", "response": "r", "critique": "c"}\n')
    proc = cnr("validate", bad)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"Error: {bad}:2: field 'revision': is missing"


def test_formats_and_plugins_listing():
    assert "plain" in cnr("formats").stdout
    assert json.loads(cnr("plugins").stdout)[0]["distribution"] == "cnr-plugin"


def lm_eval_results(path: Path, points: dict[int, tuple[float, float, float]], pretrained: str) -> Path:
    res = {"alias": "cnr_winrate", "n_items,judged": 10.0}
    for it, (wr, lo, hi) in points.items():
        res.update({f"winrate_iter{it},judged": wr, f"winrate_iter{it}_ci95_lo,judged": lo,
                    f"winrate_iter{it}_ci95_hi,judged": hi, f"winrate_iter{it}_stderr,judged": 0.05})
    path.mkdir(parents=True)
    out = path / "results_2026-01-01T00-00-00.json"
    out.write_text(json.dumps({"results": {"cnr_winrate": res},
                               "config": {"model": "cnr", "model_args": {"inner": "hf", "pretrained": pretrained}}}))
    return out


def test_report_overlays_runs(tmp_path):
    lm_eval_results(tmp_path / "a" / "m1", {1: (0.55, 0.45, 0.65), 2: (0.6, 0.5, 0.7)}, "trained")
    lm_eval_results(tmp_path / "b" / "m2", {1: (0.45, 0.35, 0.55), 2: (0.44, 0.34, 0.54)}, "control")
    proc = cnr("report", tmp_path / "a", tmp_path / "b", "--plot", tmp_path / "p.png")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any("a: trained" in line and "0.600" in line and "[0.500, 0.700]" in line for line in lines)
    assert any("b: control" in line and "0.450" in line for line in lines)
    assert (tmp_path / "p.png").stat().st_size > 5000
    assert cnr("report", tmp_path / "nothing-here").returncode != 0


@pytest.mark.integration
def test_revise_judge_report_real_server(tmp_path, llama_server):
    responses = tmp_path / "responses.jsonl"
    from cnr_plugin.resources import eval_tasks_path

    responses.write_text("".join(eval_tasks_path("sample_responses.jsonl").read_text().splitlines(True)[:3]))
    env = {**__import__("os").environ, "CNR_CACHE_DIR": str(tmp_path / "cache")}
    proc = cnr("revise", responses, "--base-url", llama_server.base_url, "--model", "smollm2", "--iterations", 2,
               "--fewshot", 1, "--max-tokens", 96, "--out", tmp_path / "revised.jsonl", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in (tmp_path / "revised.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(len(r["steps"]) == 2 for r in rows)

    judge = write_judge_yaml(tmp_path / "judge.yaml", llama_server)
    before = llama_server.requests("chat/completions")
    proc = cnr("judge", responses, tmp_path / "revised.jsonl", "--judge", judge, "--out", tmp_path / "judged",
               "--name", "smollm2-fewshot", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "judged" / "cnr_results.json").read_text())
    assert result["judge_calls"] == llama_server.requests("chat/completions") - before > 0
    assert [r["iteration"] for r in result["rows"]] == [1, 2]
    assert sum(1 for _ in (tmp_path / "judged" / "judgments.jsonl").open()) == 6

    proc = cnr("judge", responses, tmp_path / "revised.jsonl", "--judge", judge, "--out", tmp_path / "judged2", env=env)
    assert json.loads((tmp_path / "judged2" / "cnr_results.json").read_text())["judge_calls"] == 0
    proc = cnr("report", tmp_path / "judged")
    assert proc.returncode == 0 and "smollm2-fewshot" in proc.stdout
    assert (tmp_path / "judged" / "cnr_winrate.png").is_file()
