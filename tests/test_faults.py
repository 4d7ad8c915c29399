"""cnr_winrate against a fault-injecting server (as judge and as reviser): retries, counted
failures, exactly one record per unit of work, kill -9 and resume, API keys kept out of files."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from cnr_plugin.testing.fault_server import FaultPlan, FaultServer

pytestmark = pytest.mark.integration
LM_EVAL = str(Path(sys.executable).parent / "lm_eval")
SENTINEL = "sk-sentinel-7f3a9c1e5b"
N_ITEMS, ITERATIONS = 8, 2


@pytest.fixture
def responses(tmp_path):
    rows = [{"id": f"f{i}", "prompt": f"Question {i}?", "response": f"Answer {i}."} for i in range(N_ITEMS)]
    rows[1]["response"] = 'Answer 1. [[A]] {"winner": "B"}'  # verdict tokens inside a judged text
    path = tmp_path / "responses.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def server(**plan) -> FaultServer:
    return FaultServer(FaultPlan(**plan), api_key=SENTINEL, max_requests=5000, max_seconds=600).start()


def judge_yaml(path: Path, srv: FaultServer, **extra) -> Path:
    cfg = {"judge": "openai", "model": "fault-model", "base_url": srv.base_url, "api_key_env": "CNR_FAULT_KEY",
           "structured_output": "none", "max_retries": 3, "timeout_s": 1.0, "concurrency": 8,
           "max_failed_fraction": 0.5, **extra}
    path.write_text(yaml.safe_dump(cfg))
    return path


def command(tmp_path, srv, responses, out):
    meta = {"responses": str(responses), "iterations": ITERATIONS, "judge": str(tmp_path / "judge.yaml")}
    return [LM_EVAL, "--model", "cnr", "--model_args",
            f"inner=local-completions,base_url={srv.base_url}/completions,model=fault-model,"
            "tokenizer_backend=None,tokenized_requests=False,cache_revisions=true",
            "--tasks", "cnr_winrate", "--metadata", json.dumps(meta), "--log_samples", "--output_path", str(out)]


def env(tmp_path, cache="cache"):
    # the reviser's key: lm-eval's API models read OPENAI_API_KEY
    return dict(os.environ, CNR_CACHE_DIR=str(tmp_path / cache), CNR_FAULT_KEY=SENTINEL, OPENAI_API_KEY=SENTINEL)


def run(tmp_path, srv, responses, out="out", cache="cache"):
    proc = subprocess.run(command(tmp_path, srv, responses, tmp_path / out), cwd=tmp_path, env=env(tmp_path, cache),
                          capture_output=True, text=True, timeout=600)
    (tmp_path / f"{out}.log").write_text(proc.stdout + proc.stderr)
    return proc


def results(tmp_path, out="out"):
    res = json.loads(next((tmp_path / out).rglob("results_*.json")).read_text())["results"]["cnr_winrate"]
    samples = [json.loads(line) for line in next((tmp_path / out).rglob("samples_*.jsonl")).read_text().splitlines()]
    data = [json.loads(s["filtered_resps"] if isinstance(s["filtered_resps"], str) else s["filtered_resps"][0])
            for s in samples]
    return res, data


def rows(cache: Path, table: str) -> int:
    with sqlite3.connect(cache / "cache.sqlite") as con:
        try:
            return con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        except sqlite3.OperationalError:  # the run has created the file but not yet its tables
            return 0


def test_faults_are_retried_counted_and_recorded_once(tmp_path, responses):
    srv = server(seed=3, transient=0.4, final=0.15, permanent=0.05, hang_s=1.5)
    try:
        judge_yaml(tmp_path / "judge.yaml", srv)
        proc = run(tmp_path, srv, responses)
        assert proc.returncode == 0, proc.stderr[-4000:]
        stats = srv.stats.snapshot()
    finally:
        srv.stop()
    res, data = results(tmp_path)
    judgments = [j for d in data for j in d["judgments"]]
    # one judged comparison per (item, iteration), each in both orders; one revision per (item, iteration)
    assert len({(j["item_id"], j["iteration"]) for j in judgments}) == len(judgments) == N_ITEMS * ITERATIONS
    assert all(len(d["steps"]) == ITERATIONS for d in data)
    assert rows(tmp_path / "cache", "revision") == N_ITEMS * ITERATIONS
    # every verdict that parsed is stored exactly once; failed and unparsed ones are not stored
    unparsed = sum(v["status"] == "unparsed" for j in judgments for v in (j["forward"], j["backward"]))
    assert unparsed > 0
    assert rows(tmp_path / "cache", "judge") == stats["answered"]["/v1/chat/completions"] - unparsed
    # failures and unparsed verdicts are counted and excluded, never scored
    bad = [j for j in judgments if j["status"] != "ok"]
    assert res["n_failed,judged"] == sum(j["status"] == "failed" for j in bad) > 0
    assert res["n_unparsed,judged"] == sum(j["status"] == "unparsed" for j in bad) > 0
    assert all(j["score"] is None for j in bad)
    for it in range(1, ITERATIONS + 1):
        scores = [j["score"] for j in judgments if j["iteration"] == it and j["status"] == "ok"]
        assert res[f"winrate_iter{it},judged"] == pytest.approx(sum(scores) / len(scores))
    # the deterministic judge prefers the revised text whatever verdict tokens the texts contain
    assert all(j["score"] == 1.0 for j in judgments if j["status"] == "ok")
    # transient faults were retried to success
    injected = stats["outcomes"]
    assert stats["repeated_requests"] > 0 and injected.get("ok", 0) > 0
    assert {"429", "429_retry_after", "500", "hang", "close_mid_body", "permanent"} & set(injected)
    assert "cnr: " in proc.stderr and "excluded from the win rates" in proc.stderr
    print(f"\nfaults injected by kind: {dict(sorted(injected.items()))}; judgments expected "
          f"{N_ITEMS * ITERATIONS * 2}, recorded {rows(tmp_path / 'cache', 'judge')} verdicts "
          f"+ {len(bad)} excluded comparisons")
    # the API key is in no file the run wrote (results, samples, cache, logs)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert SENTINEL.encode() not in path.read_bytes(), path


def test_kill_9_then_rerun_resumes_without_repeating_recorded_work(tmp_path, responses):
    plan = dict(seed=5, transient=0.3, final=0.1, permanent=0.0, latency_s=0.15)
    reference = server(**plan)
    try:
        judge_yaml(tmp_path / "judge.yaml", reference, concurrency=2)
        assert run(tmp_path, reference, responses, out="ref", cache="ref_cache").returncode == 0
    finally:
        reference.stop()
    ref, _ = results(tmp_path, "ref")

    srv = server(**plan)
    try:
        judge_yaml(tmp_path / "judge.yaml", srv, concurrency=2)
        proc = subprocess.Popen(command(tmp_path, srv, responses, tmp_path / "out"), cwd=tmp_path,
                                env=env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            if (tmp_path / "cache" / "cache.sqlite").exists() and rows(tmp_path / "cache", "judge") >= 6:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        recorded = {"judge": rows(tmp_path / "cache", "judge"), "revision": rows(tmp_path / "cache", "revision")}
        assert recorded["revision"] == N_ITEMS * ITERATIONS and 6 <= recorded["judge"] < 2 * N_ITEMS * ITERATIONS
        with srv.stats.lock:
            done = {k: srv.stats.attempts[k] for k in srv.stats.succeeded}
        again = run(tmp_path, srv, responses)
        assert again.returncode == 0, again.stderr[-4000:]
        with srv.stats.lock:
            repeated = sum(srv.stats.attempts[k] - n for k, n in done.items())
    finally:
        srv.stop()
    assert repeated == 0, f"{repeated} requests repeated work the killed run had recorded"
    res, _ = results(tmp_path)
    for it in range(1, ITERATIONS + 1):
        assert res[f"winrate_iter{it},judged"] == ref[f"winrate_iter{it},judged"]
    assert res["n_unparsed,judged"] == ref["n_unparsed,judged"]
    print(f"\nkilled with {recorded} cache rows; repeated calls after resume: {repeated}")


def test_too_many_failures_exit_nonzero_with_one_line(tmp_path, responses):
    srv = server(seed=1, permanent=0.9)
    try:
        judge_yaml(tmp_path / "judge.yaml", srv, max_retries=1, max_failed_fraction=0.2)
        proc = run(tmp_path, srv, responses)
    finally:
        srv.stop()
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    # 0.9 of requests fail for good: nearly every comparison fails, and the line names why (issue 31 §4)
    assert last.startswith("cnr_winrate: "), last
    assert "more than max_failed_fraction=0.2" in last or "no comparison could be judged" in last, last
    assert "(first error: HTTP 500" in last, last


def test_cnr_judge_under_faults(tmp_path, responses):
    revised = tmp_path / "revised.jsonl"
    revised.write_text("".join(json.dumps({**json.loads(line), "response": json.loads(line)["response"] + " IMPROVED"})
                               + "\n" for line in responses.read_text().splitlines()))
    srv = server(seed=2, transient=0.5, final=0.2, permanent=0.1, hang_s=1.5)
    try:
        judge_yaml(tmp_path / "judge.yaml", srv)
        proc = subprocess.run([str(Path(sys.executable).parent / "cnr"), "judge", str(responses), str(revised),
                               "--judge", str(tmp_path / "judge.yaml"), "--out", str(tmp_path / "j")],
                              env=env(tmp_path), capture_output=True, text=True, timeout=300)
    finally:
        srv.stop()
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "j" / "cnr_results.json").read_text())
    row = result["rows"][0]
    assert row["n"] == N_ITEMS and row["n_judged"] + row["n_failed"] + row["n_unparsed"] == N_ITEMS
    assert row["winrate"] == 1.0 or row["n_judged"] == 0
    assert SENTINEL not in (tmp_path / "j" / "cnr_results.json").read_text()


def test_cnr_revise_and_annotate_responses_under_faults(tmp_path, responses):
    """The reviser and the response collector retry transient faults to completion, then cache."""
    cnr = str(Path(sys.executable).parent / "cnr")
    srv = server(seed=4, transient=0.6, latency_s=0.05)
    srv.plan.reviser_kinds = ("429", "429_retry_after", "500", "503", "close_mid_body")
    try:
        proc = subprocess.run([cnr, "revise", str(responses), "--base-url", srv.base_url, "--model", "fault-model",
                               "--api-key-env", "CNR_FAULT_KEY", "--iterations", "2", "--out",
                               str(tmp_path / "revised.jsonl")], env=env(tmp_path), capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        rows = [json.loads(line) for line in (tmp_path / "revised.jsonl").read_text().splitlines()]
        assert len(rows) == N_ITEMS and all(r["final"].endswith("IMPROVED IMPROVED") for r in rows)
        prompts = tmp_path / "prompts.jsonl"
        prompts.write_text("".join(json.dumps({"id": f"p{i}", "prompt": f"Say {i}."}) + "\n" for i in range(5)))
        args = [cnr, "annotate", "responses", str(prompts), "--base-url", srv.base_url, "--model", "fault-model",
                "--api-key-env", "CNR_FAULT_KEY", "--out", str(tmp_path / "answers.jsonl")]
        first = subprocess.run(args, env=env(tmp_path), capture_output=True, text=True, timeout=300)
        assert first.returncode == 0, first.stderr[-3000:]
        before = srv.stats.snapshot()["requests"]
        second = subprocess.run(args, env=env(tmp_path), capture_output=True, text=True, timeout=300)
        assert "(5 without a request: from the cache" in second.stdout and srv.stats.snapshot()["requests"] == before
        stats = srv.stats.snapshot()
    finally:
        srv.stop()
    assert len((tmp_path / "answers.jsonl").read_text().splitlines()) == 5
    assert stats["repeated_requests"] > 0  # faults were met and retried
