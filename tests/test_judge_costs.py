"""Issue 22: know your judge and what a run costs.

Diagnostics exact on hand-built judges, the same from every reader; tokens and price exact against
the scripted server's own count; the Batch API mode against a scripted server (completion, partial
failures, expiry, a failed batch, and a resume after the process is killed mid-batch); sampling
per item as an explicit choice of the cache key; the judge leaderboard.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnr_plugin.cache import Cache
from cnr_plugin.evaluation import Item, judge_revisions
from cnr_plugin.evaluation.diagnostics import Judgment, diagnose, from_items, from_judged
from cnr_plugin.judges import JudgeConfig, JudgePair, Verdict, load_judge_config
from cnr_plugin.judges.base import JudgeBase

pytest.importorskip("openai")
from cnr_plugin.testing.fault_server import FaultPlan, FaultServer  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


# -- hand-built judges -----------------------------------------------------------------------------

class AlwaysA(JudgeBase):
    name = "always_a"

    def judge_one(self, pair: JudgePair) -> Verdict:
        return Verdict("A", "ok")


class Longer(JudgeBase):
    name = "longer"

    def judge_one(self, pair: JudgePair) -> Verdict:
        return Verdict("A" if len(pair.a) > len(pair.b) else "B" if len(pair.b) > len(pair.a) else "tie", "ok")


class Oracle(JudgeBase):
    """Perfect: the text holding GOOD wins, whatever its length or position."""

    name = "perfect"

    def judge_one(self, pair: JudgePair) -> Verdict:
        a, b = "GOOD" in pair.a, "GOOD" in pair.b
        return Verdict("A" if a > b else "B" if b > a else "tie", "ok")


def run_with(judge, items, results):
    return judge_revisions(items, results, JudgeConfig(judge=judge.name), judge, progress=False)


def hand_built(n: int = 12):
    items = [Item(f"q{i}", f"question {i}", "GOOD short" if i % 3 == 0 else "a long original answer " * (1 + i % 2))
             for i in range(n)]
    # the revision is better (GOOD) for two thirds of the items, and shorter than the original for half
    results = {it.id: [(1, ("GOOD " if i % 3 else "") + ("x" * (5 + 40 * (i % 2))))] for i, it in enumerate(items)}
    return items, results


def test_diagnostics_are_exact_on_hand_built_judges():
    items, results = hand_built()
    always_a = run_with(AlwaysA(), items, results).summary["judge_diagnostics"]
    assert always_a["consistency"] == 0 and always_a["position_a"] == 1
    assert always_a["tie_share"] == 0 and always_a["unparsed_share"] == 0
    longer = run_with(Longer(), items, results).summary["judge_diagnostics"]
    assert longer["prefers_longer"] == 1 and longer["consistency"] == 1 and longer["position_a"] == 0.5
    perfect = run_with(Oracle(), items, results).summary["judge_diagnostics"]
    assert perfect["consistency"] == 1 and perfect["position_a"] == 0.5 and perfect["n_comparisons"] == 12
    # the oracle picks the longer text exactly as often as the better one happens to be longer
    decisive = [(r, it.response) for it in items for _, r in results[it.id] if ("GOOD" in r) != ("GOOD" in it.response)]
    assert perfect["prefers_longer"] == pytest.approx(
        sum(len(r if "GOOD" in r else o) > len(o if "GOOD" in r else r) for r, o in decisive) / len(decisive))


def test_unparsed_failed_and_calibration_by_hand():
    p = lambda a, b: {"A": a, "B": b, "tie": 1 - a - b}  # noqa: E731
    ok = lambda w, probs=None: {"winner": w, "status": "ok", "probs": probs}  # noqa: E731
    js = [Judgment(ok("A", p(0.9, 0.1)), ok("B", p(0.1, 0.9)), "rev", "base"),        # agree, margin 0.8
          Judgment(ok("A", p(0.6, 0.4)), ok("A", p(0.6, 0.4)), "rev", "base"),        # disagree, margin 0.2
          Judgment({"winner": None, "status": "unparsed"}, ok("tie"), "r", "b"),
          Judgment({"winner": None, "status": "failed"}, {"winner": None, "status": "failed"}, "r", "b")]
    d = diagnose(js)
    assert d["n_comparisons"] == 4 and d["n_verdicts"] == 8 and d["n_both_orders"] == 2
    assert d["unparsed_share"] == 1 / 8 and d["failed_share"] == 2 / 8 and d["tie_share"] == 1 / 5
    assert d["margin_agree"] == pytest.approx(0.8) and d["margin_disagree"] == pytest.approx(0.2)
    assert d["consistency"] == 0.5 and d["position_a"] == 3 / 4


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["A", "B", "tie", None]), st.sampled_from(["A", "B", "tie", None]),
                          st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=20), st.randoms())
def test_diagnostics_do_not_depend_on_order_or_reader(rows, rnd):
    """The same verdicts give the same diagnostics in any order, and lm-eval's per-document sums
    (results.item_metrics + the share aggregation) give what the run summary gives."""
    from cnr_plugin.lm_eval.tasks import share
    from cnr_plugin.results import JUDGE_SHARES, item_metrics

    def verdict(w):
        return {"winner": w, "status": "ok"} if w else {"winner": None, "status": "unparsed"}

    items = [{"id": f"i{n}", "response": "o" * lo, "steps": [{"iteration": 1, "result": "r" * lr, "revision": "r"}],
              "judgments": [{"iteration": 1, "against": "original", "score": None, "status": "ok",
                             "forward": verdict(f), "backward": verdict(b)}]}
             for n, (f, b, lr, lo) in enumerate(rows)]
    whole = diagnose(from_items(items))
    shuffled = items[:]
    rnd.shuffle(shuffled)
    assert diagnose(from_items(shuffled)) == whole
    per_doc = [item_metrics(it["response"], it) for it in shuffled]
    for name in JUDGE_SHARES:
        got = share([m[f"judge_{name}"] for m in per_doc])
        assert (got != got and whole[name] is None) or got == pytest.approx(whole[name]), name


def test_judged_and_item_readers_agree():
    items, results = hand_built()
    ev = run_with(Longer(), items, results)
    by_item = ev.by_item()
    shaped = [{"id": it.id, "response": it.response, "steps": [{"iteration": 1, "result": results[it.id][0][1]}],
               "judgments": by_item[it.id]} for it in items]
    assert diagnose(from_items(shaped)) == diagnose(from_judged(ev.judged))


# -- tokens and price --------------------------------------------------------------------------------

@pytest.fixture()
def server():
    srv = FaultServer(FaultPlan(seed=0), max_seconds=300).start()
    yield srv
    srv.stop()


def judge_config(srv, **extra):
    return load_judge_config({"judge": "openai", "model": "m", "base_url": srv.base_url, "api_key_env": None,
                              "structured_output": "none", "check_reachable": False, "max_retries": 0, **extra})


def items_and_results(n=8):
    items = [Item(f"q{i}", f"Question {i}?", f"answer {i}") for i in range(n)]
    return items, {it.id: [(1, it.response + " IMPROVED"), (2, it.response + " IMPROVED IMPROVED")] for it in items}


def test_token_and_price_sums_are_exact_against_the_server(server, tmp_path):
    items, results = items_and_results()
    config = judge_config(server, price={"input": 2.5, "output": 10.0})
    ev = judge_revisions(items, results, config, cache=Cache(tmp_path / "c.sqlite"), progress=False)
    stats = server.stats.snapshot()
    u = ev.usage
    assert u["calls"] == 32 and u["tokens_in"] == stats["usage_in"] and u["tokens_out"] == stats["usage_out"]
    assert u["calls_without_usage"] == 0 and u["tokens_in"] > 0
    assert u["cost"] == pytest.approx((u["tokens_in"] * 2.5 + u["tokens_out"] * 10.0) / 1e6)
    assert u["seconds_per_1000_calls"] > 0
    # again, from the cache: no call, and what the cached verdicts cost is reported as saved
    again = judge_revisions(items, results, config, cache=Cache(tmp_path / "c.sqlite"), progress=False).usage
    assert again["calls"] == 0 and again["cached"] == 32 and again["cost"] == 0
    assert (again["saved_tokens_in"], again["saved_tokens_out"], again["saved_cost"]) == (
        u["tokens_in"], u["tokens_out"], u["cost"])


def test_a_server_without_usage_is_said_so(tmp_path):
    srv = FaultServer(FaultPlan(seed=0), max_seconds=300, send_usage=False).start()
    try:
        items, results = items_and_results(3)
        u = judge_revisions(items, results, judge_config(srv), cache=None, progress=False).usage
    finally:
        srv.stop()
    assert u["calls"] == 12 and u["calls_without_usage"] == 12 and u["tokens_in"] == u["tokens_out"] == 0
    assert "cost" not in u  # no price given: no money figure at all


def cnr(*args, env=None, **kw):
    return subprocess.run([sys.executable, "-m", "cnr_plugin.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, **kw)


def write_rows(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_cnr_revise_reports_the_reviser_tokens_exactly(server, tmp_path):
    responses = write_rows(tmp_path / "r.jsonl", [{"id": str(i), "prompt": f"P{i % 3}", "response": f"R{i % 3}"}
                                                  for i in range(9)])
    env = dict(os.environ, CNR_CACHE_DIR=str(tmp_path / "cache"))
    proc = cnr("revise", responses, "--base-url", server.base_url, "--model", "m", "--iterations", "2",
               "--price", "0.15,0.6", "--out", tmp_path / "rev.jsonl", env=env)
    assert proc.returncode == 0, proc.stderr
    usage = json.loads((tmp_path / "rev.jsonl.usage.json").read_text())["reviser"]
    stats = server.stats.snapshot()
    assert usage["calls"] == stats["requests"]["/v1/completions"] == 6  # 3 distinct requests x 2 iterations
    assert (usage["tokens_in"], usage["tokens_out"]) == (stats["usage_in"], stats["usage_out"])
    assert usage["cost"] == pytest.approx((usage["tokens_in"] * 0.15 + usage["tokens_out"] * 0.6) / 1e6)
    assert "reviser: 6 calls" in proc.stdout
    again = cnr("revise", responses, "--base-url", server.base_url, "--model", "m", "--iterations", "2",
                "--price", "0.15,0.6", "--out", tmp_path / "rev2.jsonl", env=env)
    saved = json.loads((tmp_path / "rev2.jsonl.usage.json").read_text())["reviser"]
    assert saved["calls"] == 0 and saved["cached"] == 6 and saved["saved_cost"] == usage["cost"], again.stdout
    bad = cnr("revise", responses, "--base-url", server.base_url, "--model", "m", "--price", "cheap",
              "--out", tmp_path / "rev3.jsonl", env=env)
    assert bad.returncode == 2 and "expected IN,OUT" in bad.stderr and "Traceback" not in bad.stderr


# -- sampling: an explicit choice of the cache key ----------------------------------------------------

class Counting:
    identity = "counting"

    def __init__(self):
        self.sent = []

    def generate(self, requests):
        out = []
        for r in requests:
            self.sent.append(r.text)
            out.append(f"### Critique:\nfine\n\n### Revision:\nsample #{len(self.sent)}")
        return out


def test_sampling_per_item_gives_each_item_its_own_generation(tmp_path):
    from cnr_plugin.evaluation import revise
    from cnr_plugin.plugins import get_format

    items = [Item(str(i), "same prompt", "same response") for i in range(4)]
    fmt = get_format("plain")
    shared = Counting()
    steps = revise(items, fmt, shared, 1, cache=Cache(tmp_path / "a.sqlite"), progress=False)
    assert len(shared.sent) == 1 and len({s[0].result for s in steps.values()}) == 1
    per_item = Counting()
    cache = Cache(tmp_path / "b.sqlite")
    steps = revise(items, fmt, per_item, 1, cache=cache, progress=False, sampling="per_item")
    assert len(per_item.sent) == 4 and len({s[0].result for s in steps.values()}) == 4
    again = Counting()  # each item's own sample comes back from the cache
    assert revise(items, fmt, again, 1, cache=cache, progress=False, sampling="per_item") == steps
    assert again.sent == []
    from cnr_plugin.evaluation import run_config

    assert run_config({"sampling": "per_item"}).sampling == "per_item"
    with pytest.raises(Exception, match="sampling"):
        run_config({"sampling": "each"})


# -- the Batch API ---------------------------------------------------------------------------------

def batch_run(srv, tmp_path, cache_name="c.sqlite", n=6, **plan):
    for k, v in plan.items():
        setattr(srv.plan, k, v)
    items, results = items_and_results(n)
    config = judge_config(srv, batch=True, batch_poll_s=0.01, max_failed_fraction=1.0)
    return judge_revisions(items, results, config, cache=Cache(tmp_path / cache_name), progress=False)


def test_batch_mode_gives_the_verdicts_of_sync_mode(server, tmp_path):
    ev = batch_run(server, tmp_path)
    stats = server.stats.snapshot()["requests"]
    assert stats["/v1/files"] == 1 and stats["/v1/batches"] == 1 and "/v1/chat/completions" not in stats
    items, results = items_and_results(6)
    sync = judge_revisions(items, results, judge_config(server), cache=None, progress=False)
    assert [j.as_dict()["score"] for j in ev.judged] == [j.as_dict()["score"] for j in sync.judged]
    assert ev.usage["calls"] == 24 and ev.usage["tokens_in"] == sync.usage["tokens_in"]
    assert all(j.status == "ok" for j in ev.judged)


def test_batch_partial_failures_are_failed_verdicts_and_asked_again(server, tmp_path):
    ev = batch_run(server, tmp_path, permanent=0.3)
    failed = [v for j in ev.judged for v in (j.forward, j.backward) if v.status == "failed"]
    assert 0 < len(failed) < 24 and all("HTTP 500" in v.error for v in failed)
    server.plan.permanent = 0.0
    again = batch_run(server, tmp_path)  # only what failed goes into the next batch
    assert again.calls == len(failed) and again.cache_hits == 24 - len(failed)
    assert all(j.status == "ok" for j in again.judged)


def test_an_expired_batch_keeps_what_finished(server, tmp_path):
    ev = batch_run(server, tmp_path, batch_expire_after=10)
    verdicts = [v for j in ev.judged for v in (j.forward, j.backward)]
    assert sum(v.status == "ok" for v in verdicts) == 10
    assert sum("batch_expired" in (v.error or "") for v in verdicts) == 14
    server.plan.batch_expire_after = None
    assert batch_run(server, tmp_path).calls == 14


def test_a_failed_batch_fails_its_verdicts_in_words(server, tmp_path):
    from cnr_plugin.evaluation import TooManyFailures

    with pytest.raises(TooManyFailures, match=r"no comparison could be judged \(first error: batch batch_1 failed: "
                       r"no result for this request \(invalid_request: injected batch failure\)\)"):
        batch_run(server, tmp_path, batch_fail=True)


def test_batch_resumes_after_the_process_is_killed(server, tmp_path):
    """A run killed while its batch runs is re-run: it finds the batch id in the cache and reads
    that batch back; nothing is submitted twice."""
    server.plan.batch_polls = 10**6  # in progress until the test says otherwise
    base = write_rows(tmp_path / "base.jsonl", [{"id": str(i), "prompt": f"Q{i}?", "response": f"a{i}"} for i in range(5)])
    cand = write_rows(tmp_path / "cand.jsonl", [{"id": str(i), "prompt": f"Q{i}?", "response": f"a{i} IMPROVED"}
                                                for i in range(5)])
    judge = tmp_path / "judge.yaml"
    judge.write_text(json.dumps({"judge": "openai", "model": "m", "base_url": server.base_url, "api_key_env": None,
                                 "structured_output": "none", "batch": True, "batch_poll_s": 0.05}))
    env = dict(os.environ, CNR_CACHE_DIR=str(tmp_path / "cache"))
    args = [sys.executable, "-m", "cnr_plugin.cli", "judge", base, cand, "--judge", judge, "--out", tmp_path / "out"]
    proc = subprocess.Popen(list(map(str, args)), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while server.stats.snapshot()["requests"].get("GET /v1/batches/{id}", 0) < 3:
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    server.plan.batch_polls = 1
    done = cnr(*args[3:], env=env)
    assert done.returncode == 0, done.stderr
    assert "resuming judge batch batch_1" in done.stderr
    requests = server.stats.snapshot()["requests"]
    assert requests["/v1/batches"] == 1 and requests["/v1/files"] == 1
    summary = json.loads((tmp_path / "out" / "cnr_results.json").read_text())
    assert summary["rows"][0]["n_judged"] == 5 and summary["judge_usage"]["calls"] == 10
    # finished: the batch is forgotten, and a third run is answered by the cache alone
    assert Cache(tmp_path / "cache" / "cache.sqlite").count("batch") == 0
    third = cnr(*args[3:], env=env)
    assert third.returncode == 0 and "judge: 0 calls" in third.stdout and server.stats.snapshot()["requests"][
        "/v1/batches"] == 1


#: runs ``cnr judge`` and ends the process (os._exit, as a kill does) right after one step of a batch
CRASHING_JUDGE = """
import os, sys
import openai.resources.batches as batches, openai.resources.files as files
from cnr_plugin import cache

step = os.environ["CNR_TEST_KILL_AFTER"]

def kill_after(owner, name, at, when=lambda *args: True):
    original = getattr(owner, name, None)
    if original is None:
        return
    def call(*args, **kwargs):
        out = original(*args, **kwargs)
        if step == at and when(*args):
            os._exit(9)
        return out
    setattr(owner, name, call)

kill_after(files.Files, "create", "upload")         # the input file is on the server, its id not yet kept
kill_after(batches.Batches, "create", "create")     # the batch exists, its id not yet kept
kill_after(batches.Batches, "retrieve", "poll")     # the batch is running
kill_after(files.Files, "content", "read")          # its results are read, the verdicts not yet saved
# the first verdict is saved (one by one, or all in one transaction), the output not yet written
kill_after(cache.Cache, "put", "save", when=lambda self, table, *rest: table == "judge")
kill_after(cache.Cache, "write", "save")
from cnr_plugin.cli import main
main(sys.argv[1:])
"""


@pytest.mark.parametrize("step", ["upload", "create", "poll", "read", "save"])
def test_a_batch_killed_at_any_step_resumes_without_a_second_upload(tmp_path, step):
    """Issue 31 §4: killed after any step of a batch, the re-run uploads nothing again, submits no second batch,
    and gives the verdicts of a run never killed; the batch id goes with the verdicts, in one transaction."""
    srv = FaultServer(FaultPlan(batch_polls=2), max_seconds=300).start()
    try:
        base = write_rows(tmp_path / "base.jsonl", [{"id": str(i), "prompt": f"Q{i}?", "response": f"a{i}"}
                                                    for i in range(5)])
        cand = write_rows(tmp_path / "cand.jsonl", [{"id": str(i), "prompt": f"Q{i}?",
                                                     "response": f"a{i} IMPROVED" if i < 4 else f"a{i}."}
                                                    for i in range(5)])
        judge = tmp_path / "judge.yaml"
        judge.write_text(json.dumps({"judge": "openai", "model": "m", "base_url": srv.base_url, "api_key_env": None,
                                     "structured_output": "none", "batch": True, "batch_poll_s": 0.01}))
        driver = tmp_path / "crashing_judge.py"
        driver.write_text(CRASHING_JUDGE)
        args = ["judge", base, cand, "--judge", judge]
        env = dict(os.environ, CNR_CACHE_DIR=str(tmp_path / "cache"), CNR_TEST_KILL_AFTER=step, OPENAI_API_KEY="sk-x")
        killed = subprocess.run([sys.executable, str(driver), *map(str, args), "--out", str(tmp_path / "killed")],
                                env=env, capture_output=True, text=True, timeout=120)
        assert killed.returncode == 9, killed.stderr[-2000:]
        done = cnr(*args, "--out", tmp_path / "out", env=dict(env, CNR_TEST_KILL_AFTER=""))
        assert done.returncode == 0, done.stderr[-2000:]
        requests = srv.stats.snapshot()["requests"]
        assert requests["/v1/files"] == 1 and requests["/v1/batches"] == 1, requests
        # the verdicts of a run never killed (its own cache and server)
        fresh = FaultServer(FaultPlan(batch_polls=2), max_seconds=300).start()
        judge.write_text(judge.read_text().replace(srv.base_url, fresh.base_url))
        try:
            ref = cnr(*args, "--out", tmp_path / "ref", env=dict(env, CNR_TEST_KILL_AFTER="",
                                                                 CNR_CACHE_DIR=str(tmp_path / "cache2")))
        finally:
            fresh.shutdown()
        assert ref.returncode == 0, ref.stderr[-2000:]
        rows = [json.loads(x) for x in (tmp_path / "out" / "judgments.jsonl").read_text().splitlines()]
        ref_rows = [json.loads(x) for x in (tmp_path / "ref" / "judgments.jsonl").read_text().splitlines()]
        assert [(r["item_id"], r["score"], r["status"]) for r in rows] == [
            (r["item_id"], r["score"], r["status"]) for r in ref_rows]
        assert all(r["status"] == "ok" for r in rows)
        assert Cache(tmp_path / "cache" / "cache.sqlite").count("batch") == 0
    finally:
        srv.shutdown()


# -- what users see -----------------------------------------------------------------------------------

def test_cnr_judge_and_report_show_the_judge(server, tmp_path):
    base = write_rows(tmp_path / "base.jsonl", [{"id": str(i), "prompt": f"Q{i}?", "response": f"a{i}"} for i in range(4)])
    cand = write_rows(tmp_path / "cand.jsonl", [{"id": str(i), "prompt": f"Q{i}?", "response": f"a{i} IMPROVED"}
                                                for i in range(4)])
    judge = tmp_path / "judge.yaml"
    judge.write_text(json.dumps({"judge": "openai", "model": "m", "base_url": server.base_url, "api_key_env": None,
                                 "structured_output": "none", "price": {"input": 1, "output": 2}}))
    env = dict(os.environ, CNR_CACHE_DIR=str(tmp_path / "cache"))
    proc = cnr("judge", base, cand, "--judge", judge, "--out", tmp_path / "out", env=env)
    assert proc.returncode == 0, proc.stderr
    head, row = [line for line in proc.stdout.splitlines() if "consistent" in line or line.startswith("cand ")][-2:]
    assert head.split()[3:6] == ["consistent", "position", "A"] and row.split()[1:4] == ["1.000", "0.500", "1.000"]
    assert "judge: 8 calls" in proc.stdout and "cost 0.00" in proc.stdout
    report = cnr("report", tmp_path / "out", "--html", tmp_path / "page.html", env=env)
    assert report.returncode == 0 and "consistent" in report.stdout, report.stderr
    page = (tmp_path / "page.html").read_text()
    assert "<table id='judge'>" in page and "position A" in page
    bad = tmp_path / "bad.yaml"
    bad.write_text(json.dumps({"judge": "openai", "model": "m", "base_url": server.base_url, "price": {"inptu": 1}}))
    line = cnr("judge", base, cand, "--judge", bad, "--out", tmp_path / "o2", env=env).stderr.strip()
    assert line.startswith("Error:") and "price" in line and len(line.splitlines()) == 1


def test_rank_judges_ranks_by_agreement_with_people(server, tmp_path):
    base = write_rows(tmp_path / "base.jsonl", [{"id": str(i), "prompt": f"Q{i}?", "response": f"a{i}",
                                                 "meta": {"forbidden": ["zzz"]}} for i in range(6)])
    cand = write_rows(tmp_path / "cand.jsonl", [{"id": str(i), "prompt": f"Q{i}?",
                                                 "response": f"a{i} IMPROVED" if i % 2 else f"a{i} worse, longer"}
                                                for i in range(6)])
    server_judge = tmp_path / "fault.yaml"
    server_judge.write_text(json.dumps({"judge": "openai", "model": "m", "base_url": server.base_url,
                                        "api_key_env": None, "structured_output": "none"}))
    lazy = tmp_path / "always-tie.yaml"  # the oracle with a checker no text passes: always a tie
    lazy.write_text(json.dumps({"judge": "oracle", "checker": "keywords"}))
    human = write_rows(tmp_path / "human_judgments.jsonl",
                       [{"pair": f"{i}@1", "iteration": 1, "annotator": 1, "label": "win" if i % 2 else "loss"}
                        for i in range(6)])
    env = dict(os.environ, CNR_CACHE_DIR=str(tmp_path / "cache"))
    proc = cnr("rank-judges", base, cand, "--judge", lazy, "--judge", server_judge, "--human", human,
               "--out", tmp_path / "ranked", env=env)
    assert proc.returncode == 0, proc.stderr
    ranked = json.loads((tmp_path / "ranked" / "judges.json").read_text())["judges"]
    assert [r["judge"] for r in ranked] == ["fault", "always-tie"]
    fault = ranked[0]
    # the fault server's judge prefers the IMPROVED revisions and ties the others (no IMPROVED on either side)
    assert fault["people"]["n"] == 6 and fault["people"]["percent"] == 0.5 and fault["consistency"] == 1.0
    assert proc.stdout.splitlines()[1].startswith("fault")
    bad_human = write_rows(tmp_path / "h2.jsonl", [{"pair": "0@1", "label": "better"}])
    line = cnr("rank-judges", base, cand, "--judge", lazy, "--human", bad_human, "--out", tmp_path / "r2",
               env=env).stderr.strip()
    assert line.startswith("Error:") and "h2.jsonl:1" in line and "label" in line
