"""lm-eval's own flags with `--model cnr --tasks cnr_winrate` (issue 33): each one is honoured, with
the request it changes checked at a scripted server, or refused in one line before any generation.
Runs with lm-eval 0.4.11 (.venv) and the newest (.venv-eval)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import have, missing

pytestmark = pytest.mark.integration
LM_EVAL = str(Path(sys.executable).parent / "lm_eval")


@pytest.fixture
def server():
    if not have("openai") or not have("lm_eval"):
        missing("needs lm-eval and the openai client (cnr-plugin[eval])")
    from cnr_plugin.testing.fault_server import FaultPlan, FaultServer

    srv = FaultServer(FaultPlan(), max_requests=5000, max_seconds=600).start()
    yield srv
    srv.shutdown()


def run(tmp_path: Path, srv, *extra: str, metadata: dict | None = None, tasks: str = "cnr_winrate",
        out: str = "out", model_args: str = "", env: dict | None = None) -> subprocess.CompletedProcess:
    judge = tmp_path / "judge.yaml"
    judge.write_text(yaml.safe_dump({"judge": "openai", "model": "m", "base_url": srv.base_url, "api_key_env": None,
                                     "structured_output": "none", "concurrency": 4}))
    meta = {"iterations": 1, "limit": 3, "judge": str(judge), **(metadata or {})}
    cmd = [LM_EVAL, "--model", "cnr", "--model_args",
           f"inner=local-completions,base_url={srv.base_url}/completions,model=m,tokenizer_backend=None,"
           f"tokenized_requests=False{model_args}",
           "--tasks", tasks, "--metadata", json.dumps(meta), "--output_path", str(tmp_path / out), *extra]
    return subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, CNR_CACHE_DIR=str(tmp_path / "cache"),
                                   LM_HARNESS_CACHE_PATH=str(tmp_path / "lm-cache"), **(env or {})))


def results(tmp_path: Path, out: str = "out") -> dict:
    return json.loads(next((tmp_path / out).rglob("results_*.json")).read_text())


def refused(proc: subprocess.CompletedProcess, srv, *words: str) -> None:
    """One line, exit status 1, no traceback, and not one reviser request sent."""
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("cnr_winrate: "), last
    for word in words:
        assert word in last, last
    assert srv.stats.snapshot()["requests"].get("/v1/completions", 0) == 0


@pytest.mark.parametrize("flags, word", [
    (["--num_fewshot", "2"], "--num_fewshot"),
    (["--apply_chat_template"], "--apply_chat_template"),
    (["--system_instruction", "Be brief."], "--system_instruction"),
])
def test_flags_that_would_change_the_reviser_input_are_refused(tmp_path, server, flags, word):
    refused(run(tmp_path, server, *flags), server, word, '"fewshot"')


def test_use_cache_is_refused(tmp_path, server):
    refused(run(tmp_path, server, "--use_cache", str(tmp_path / "lmcache")), server, "--use_cache", "cache_revisions")


def test_chat_only_inner_model_without_the_chat_format_is_refused(tmp_path, server):
    judge = tmp_path / "judge.yaml"
    judge.write_text(yaml.safe_dump({"judge": "oracle", "checker": "keywords"}))
    cmd = [LM_EVAL, "--model", "cnr", "--model_args",
           f"inner=local-chat-completions,base_url={server.base_url}/chat/completions,model=m,tokenizer_backend=None",
           "--tasks", "cnr_winrate", "--metadata", json.dumps({"iterations": 1, "limit": 2, "judge": str(judge)})]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, CNR_CACHE_DIR=str(tmp_path / "cache")))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("cnr_winrate: ") and '"format": "chat"' in last, last
    assert server.stats.snapshot()["requests"].get("/v1/chat/completions", 0) == 0


def test_gen_kwargs_max_gen_toks_reaches_the_request(tmp_path, server):
    proc = run(tmp_path, server, "--gen_kwargs", "max_gen_toks=64")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert server.stats.snapshot()["max_tokens"] == {"64": 3}


def test_gen_kwargs_and_metadata_that_disagree_are_refused(tmp_path, server):
    proc = run(tmp_path, server, "--gen_kwargs", "max_gen_toks=64", metadata={"max_gen_toks": 100})
    refused(proc, server, "max_gen_toks=64", "max_gen_toks=100")


API = """
import json, sys
from lm_eval import simple_evaluate
from lm_eval.tasks import TaskManager
from cnr_plugin.errors import CnRError
from cnr_plugin.resources import eval_tasks_path

model_args, runs = sys.argv[1], json.loads(sys.argv[2])
for meta, kwargs in runs:
    try:
        out = simple_evaluate(model="cnr", model_args=model_args, tasks=["cnr_winrate"],
                              task_manager=TaskManager(include_path=str(eval_tasks_path()), metadata=meta), **kwargs)
        res = out["results"]["cnr_winrate"]
        print(json.dumps({"ok": sorted(k for k in res if k.startswith("winrate_iter") and "ci95" not in k and "stderr" not in k)}))
    except CnRError as exc:
        print(json.dumps({"refused": str(exc)}))
"""


def api(tmp_path: Path, srv, runs: list) -> list[dict]:
    """The Python API as a user's script calls it: simple_evaluate with a TaskManager of its own
    (lm-eval then merges no model arguments into the task's metadata)."""
    judge = tmp_path / "judge.yaml"
    judge.write_text(yaml.safe_dump({"judge": "openai", "model": "m", "base_url": srv.base_url, "api_key_env": None,
                                     "structured_output": "none", "concurrency": 4}))
    runs = [({"limit": 3, "judge": str(judge), **meta}, kwargs) for meta, kwargs in runs]
    model_args = (f"inner=local-completions,base_url={srv.base_url}/completions,model=m,tokenizer_backend=None,"
                  "tokenized_requests=False")
    proc = subprocess.run([sys.executable, "-c", API, model_args, json.dumps(runs)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600, env=dict(os.environ, CNR_CACHE_DIR=str(tmp_path / "cache"),
                                                           LM_HARNESS_CACHE_PATH=str(tmp_path / "lm-cache")))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def test_simple_evaluate_with_a_task_manager_of_its_own(tmp_path, server):
    assert api(tmp_path, server, [({"iterations": 2}, {})]) == [{"ok": ["winrate_iter1,judged",
                                                                          "winrate_iter2,judged"]}]


def test_cache_requests_never_returns_another_runs_numbers(tmp_path, server):
    """lm-eval's request cache is keyed by the task's name: a re-run with other options got the
    first run's requests (it reported iteration 1 only, without a word). Now the same options
    reuse them and other options are refused in one line, before any generation. (lm-eval
    0.4.11's --cache_requests flag fails in its own argument parser, so the API is what runs.)"""
    first, same, other = api(tmp_path, server, [({"iterations": 1}, {"cache_requests": True}),
                                                ({"iterations": 1}, {"cache_requests": True}),
                                                ({"iterations": 2}, {"cache_requests": True})])
    assert first == same == {"ok": ["winrate_iter1,judged"]}
    assert "--cache_requests refresh" in other["refused"], other
    assert list((tmp_path / "lm-cache").iterdir())  # the cache was used (and kept out of lm-eval's folder)


def test_results_json_is_strict_json_and_arrows_only_where_a_direction_exists(tmp_path, server):
    """Every verdict a tie: the judge's position-A share has nothing to measure. It is null, not
    NaN (which node and other strict readers refuse); counters and bounds carry no arrow."""
    from cnr_plugin.testing.fault_server import FaultPlan, FaultServer

    tie = FaultServer(FaultPlan(), max_requests=5000, max_seconds=600, judge_probs=lambda _p: {"tie": 1.0})
    tie.start()
    try:
        proc = run(tmp_path, tie, "--log_samples")
    finally:
        tie.shutdown()
    assert proc.returncode == 0, proc.stderr[-3000:]
    path = next((tmp_path / "out").rglob("results_*.json"))

    def no_constants(name: str) -> None:
        raise AssertionError(f"{path.name} holds {name}")

    data = json.loads(path.read_text(), parse_constant=no_constants)
    res = data["results"]["cnr_winrate"]
    assert res["judge_position_a,judged"] is None
    assert res["winrate_iter1_ci95_lo,judged"] <= res["winrate_iter1,judged"] <= res["winrate_iter1_ci95_hi,judged"]
    hib = data["higher_is_better"]["cnr_winrate"]
    assert hib["winrate_iter1"] is True and hib["n_failed"] is False
    for metric in ("judge_position_a", "n_items", "winrate_iter1_ci95_hi", "judge_tie_share"):
        assert hib[metric] is None, metric
    # run accounting (it depends on the cache) is no metric at all
    assert not {"judge_calls", "judge_cached", "reviser_calls", "reviser_cached", "judge_cost"} & set(hib)
    table = proc.stdout
    line = next(row for row in table.splitlines() if "|judge_position_a" in row.replace(" ", ""))
    assert "↑" not in line and "↓" not in line, line


@pytest.mark.parametrize("order", ["cnr_winrate,cnr_test_echo", "cnr_test_echo,cnr_winrate"])
def test_other_tasks_in_the_same_command_go_to_the_inner_model(tmp_path, server, order):
    """`--model cnr --tasks cnr_winrate,<a usual generate task>`: the other task's requests reach the
    inner model as they are (it was a KeyError traceback, in either order)."""
    data = tmp_path / "echo.jsonl"
    data.write_text("".join(json.dumps({"question": f"Say {w}.", "answer": w}) + "\n" for w in ("red", "blue")))
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "cnr_test_echo.yaml").write_text(yaml.safe_dump({
        "task": "cnr_test_echo", "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": str(data)}},
        "test_split": "test", "output_type": "generate_until", "doc_to_text": "{{question}}",
        "doc_to_target": "{{answer}}", "generation_kwargs": {"until": ["\n\n"], "max_gen_toks": 8},
        "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True}]}))
    proc = run(tmp_path, server, "--include_path", str(tmp_path / "tasks"), tasks=order)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = results(tmp_path)["results"]
    assert "exact_match,none" in res["cnr_test_echo"] and "winrate_iter1,judged" in res["cnr_winrate"]
    stats = server.stats.snapshot()
    assert stats["max_tokens"].get("8") == 2  # the echo task's two requests, with its own generation settings


def test_the_bootstrap_seed_is_a_run_option_that_moves_intervals_and_never_win_rates(tmp_path, server):
    """lm-eval's --seed seeds its global generators, which no figure reads; the run option
    ``seed`` seeds the intervals, is logged, and gives what the one statistics function gives for
    the same scores with that seed (the number cnr judge --seed writes)."""
    from cnr_plugin.evaluation import win_rate
    from cnr_plugin.results import read_items

    runs = {}
    for seed in (0, 7):
        proc = run(tmp_path, server, "--log_samples", metadata={"limit": 6, "seed": seed}, out=f"out{seed}")
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert f"bootstrap seed {seed}" in proc.stderr, proc.stderr[-3000:]
        runs[seed] = results(tmp_path, f"out{seed}")["results"]["cnr_winrate"]
        scores = [j["score"] for it in read_items(tmp_path / f"out{seed}") for j in it["judgments"]
                  if j["against"] == "original" and j["score"] is not None]
        expected = win_rate(scores, seed=seed)
        assert runs[seed]["winrate_iter1,judged"] == expected["winrate"]
        assert [runs[seed]["winrate_iter1_ci95_lo,judged"], runs[seed]["winrate_iter1_ci95_hi,judged"]] == \
            expected["ci95"]
    assert runs[0]["winrate_iter1,judged"] == runs[7]["winrate_iter1,judged"]
    assert runs[0]["winrate_iter1_ci95_lo,judged"] != runs[7]["winrate_iter1_ci95_lo,judged"]
    assert runs[0]["lc_winrate_iter1_ci95_lo,judged"] != runs[7]["lc_winrate_iter1_ci95_lo,judged"]


def samples(tmp_path: Path, out: str = "out") -> list[dict]:
    path = next((tmp_path / out).rglob("samples_cnr_winrate_*.jsonl"))
    return [json.loads(line) for line in path.read_text().splitlines()]


def declared(data: dict) -> list[str]:
    return [m["metric"] for m in data["configs"]["cnr_winrate"]["metric_list"]]


@pytest.mark.parametrize("metadata, plan", [
    ({"iterations": 2}, {}),
    # half the judge's requests fail on every attempt: those items have no verdict to score
    ({"iterations": 1, "compare_previous": True, "limit": 6}, {"permanent": 0.5, "seed": 3}),
])
def test_the_task_declares_what_the_run_reports_and_every_sample_carries_it(tmp_path, metadata, plan):
    """lm-eval's samples readers take the task's declared metrics as the columns of every sample
    (its W&B logger failed on the first one missing, and the samples table was quietly lost): the
    task declared 167 metrics and a run carried about 40, and an item without a verdict lacked its
    win rates. Now the task declares the run's own metrics, the results report exactly those, and
    every sample carries each (null where the item has no value)."""
    from cnr_plugin.testing.fault_server import FaultPlan, FaultServer

    srv = FaultServer(FaultPlan(**plan), max_requests=5000, max_seconds=600).start()
    judge = tmp_path / "failing-judge.yaml"  # this judge's failures are the point: let the run go on
    judge.write_text(yaml.safe_dump({"judge": "openai", "model": "m", "base_url": srv.base_url, "api_key_env": None,
                                     "structured_output": "none", "max_retries": 0, "max_failed_fraction": 1.0}))
    try:
        proc = run(tmp_path, srv, "--log_samples", metadata={**metadata, "judge": str(judge)})
    finally:
        srv.shutdown()
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = results(tmp_path)
    names = declared(data)
    reported = {k.split(",")[0] for k in data["results"]["cnr_winrate"] if "," in k and "_stderr" not in k}
    assert set(names) == reported and set(data["higher_is_better"]["cnr_winrate"]) == reported
    last = metadata["iterations"]
    assert f"winrate_iter{last}" in names and f"winrate_iter{last + 1}" not in names
    assert ("winrate_vs_prev_iter2" in names) == (last >= 2 and bool(metadata.get("compare_previous")))
    assert not any(n.startswith("ifeval_") for n in names)  # this judge has no text figures
    rows = samples(tmp_path)
    assert len(rows) == metadata.get("limit", 3)
    for row in rows:
        assert set(names) <= set(row), set(names) - set(row)
    if plan:
        assert any(row["winrate_iter1"] is None for row in rows) and data["results"]["cnr_winrate"]["n_failed,judged"]


def test_wandb_logger_writes_the_samples_table(tmp_path, server):
    """lm-eval's own W&B logger (the real client, offline: it writes the run to a folder) writes
    the cnr_winrate samples table, one column per declared metric and one row per item."""
    if not have("wandb"):
        missing("needs wandb (W&B's client)")
    proc = run(tmp_path, server, "--log_samples", "--wandb_args", "project=cnr-test,mode=offline",
               metadata={"iterations": 2},
               env={"WANDB_MODE": "offline", "WANDB_SILENT": "true",
                    **{f"WANDB_{d}_DIR": str(tmp_path / "wandb-home") for d in ("CONFIG", "CACHE", "DATA")},
                    "WANDB_DIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    tables = list(tmp_path.rglob("cnr_winrate_eval_results_*.table.json"))
    assert len(tables) == 1, proc.stderr[-3000:]
    table = json.loads(tables[0].read_text())
    assert set(declared(results(tmp_path))) <= set(table["columns"])
    assert len(table["data"]) == 3


def test_the_task_refuses_to_run_without_its_options():
    """On an lm-eval that passes --metadata to class tasks only through cnr-plugin's start-up hook
    (0.4.11), a task built without it would run on the default options, whatever the user typed:
    it refuses in one line instead."""
    if not have("lm_eval"):
        missing("needs lm-eval")
    from cnr_plugin.lm_eval.errors import CnRRunError
    from cnr_plugin.lm_eval.task import CnRWinrateTask

    with pytest.raises(CnRRunError, match="CNR_LM_EVAL_AUTOREGISTER=0"):
        CnRWinrateTask(config={"task": "cnr_winrate", "metadata": {"responses": "mine.jsonl"}})
