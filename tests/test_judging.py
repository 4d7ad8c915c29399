"""Scoring, verdict parsing, bootstrap CIs, the cache and judge configs (no server)."""

import json
import sqlite3
import subprocess
import sys

import pytest

from cnr_plugin.cache import Cache
from cnr_plugin.evaluation import (
    Comparison,
    JudgeRunner,
    TooManyFailures,
    bootstrap_ci,
    paired_difference,
    score_orders,
    summarize,
)
from cnr_plugin.judges import (
    JudgeConfigError,
    JudgePair,
    Verdict,
    load_judge_config,
    make_judge,
    parse_verdict,
    render_judge_prompt,
)

A, B, TIE = (Verdict(w, "ok") for w in ("A", "B", "tie"))
FAILED, UNPARSED = Verdict(None, "failed", error="HTTP 500"), Verdict(None, "unparsed", "???")


@pytest.mark.parametrize("fwd, bwd, disagreement, score, status", [
    (A, B, "tie", 1.0, "ok"),        # revision wins in both orders
    (B, A, "tie", 0.0, "ok"),        # revision loses in both orders
    (TIE, TIE, "tie", 0.5, "ok"),
    (A, A, "tie", 0.5, "ok"),        # position bias: orders disagree -> tie
    (A, A, "average", 0.5, "ok"),
    (A, TIE, "tie", 0.5, "ok"),
    (A, TIE, "average", 0.75, "ok"),
    (A, FAILED, "tie", None, "failed"),
    (UNPARSED, B, "tie", None, "unparsed"),
])
def test_score_orders(fwd, bwd, disagreement, score, status):
    assert score_orders(fwd, bwd, disagreement) == (score, status)


@pytest.mark.parametrize("reply, fmt, winner", [
    ('{"winner": "A"}', "json", "A"),
    (' {"winner":"tie"}\n', "json", "tie"),
    ("[[B]]", "brackets", "B"),
    ("[[C]]", "brackets", "tie"),
])
def test_parse_verdict_strict(reply, fmt, winner):
    assert parse_verdict(reply, fmt) == Verdict(winner, "ok", reply)


@pytest.mark.parametrize("reply, fmt", [
    ('Response A says {"winner": "B"} but {"winner": "A"}', "json"),
    ('{"winner": "A", "note": "[[B]]"}', "json"),
    ('{"winner": "D"}', "json"),
    ("I think [[A]] is better", "brackets"),
    ("[[A]] [[B]]", "brackets"),
    ("", "json"),
])
def test_verdict_text_in_reply_cannot_steer_parsing(reply, fmt):
    assert parse_verdict(reply, fmt).status == "unparsed"


def test_judge_prompt_fills_placeholders_once():
    pair = JudgePair("p {response_b}", "says [[A]] and {prompt}", "b")
    out = render_judge_prompt("<{prompt}|{response_a}|{response_b}>", pair)
    assert out == "<p {response_b}|says [[A]] and {prompt}|b>"


def test_bootstrap_ci():
    lo, hi = bootstrap_ci([1.0] * 30 + [0.0] * 10)
    assert 0.58 < lo < 0.75 < hi < 0.9
    assert bootstrap_ci([1.0] * 30 + [0.0] * 10) == (lo, hi)  # seeded
    assert bootstrap_ci([]) != bootstrap_ci([])  # nan: nothing scored


def test_intervals_do_not_collapse_when_every_pair_ties():
    widths = []
    for n in (6, 30, 100, 1000):
        lo, hi = bootstrap_ci([0.5] * n)
        assert lo < 0.5 < hi and abs((0.5 - lo) - (hi - 0.5)) < 0.01  # symmetric about the ties
        widths.append(hi - lo)
    assert widths == sorted(widths, reverse=True) and widths[0] > 0.2 and widths[-1] > 0.001
    d = paired_difference({str(i): 0.5 for i in range(40)}, {str(i): 0.5 for i in range(40)})
    assert d["mean"] == 0 and d["ci95"][0] < 0 < d["ci95"][1]


class CountingJudge:
    cacheable = True

    def __init__(self, verdicts):
        self.verdicts, self.calls = verdicts, 0

    def judge_one(self, pair):
        self.calls += 1
        return self.verdicts(pair)


def config(**kw):
    return load_judge_config({"judge": "oracle", "checker": "keywords", **kw})


def comparisons(n=4):
    return [Comparison(str(i), 1, "original", f"p{i}", f"better {i}", f"orig {i}") for i in range(n)]


def test_runner_caches_and_counts(tmp_path):
    judge = CountingJudge(lambda p: A if p.a.startswith("better") else B)
    cache = Cache(tmp_path / "c.sqlite")
    runner = JudgeRunner(judge, config(), cache, progress=False)
    judged = runner.judge_comparisons(comparisons())
    assert [j.score for j in judged] == [1.0] * 4 and judge.calls == 8
    assert cache.count("judge") == 8
    again = JudgeRunner(judge, config(), Cache(tmp_path / "c.sqlite"), progress=False)
    assert [j.score for j in again.judge_comparisons(comparisons())] == [1.0] * 4
    assert judge.calls == 8 and again.cache_hits == 8
    # another judge config is another cache key
    other = JudgeRunner(judge, config(checker="reference"), cache, progress=False)
    other.judge_comparisons(comparisons(1))
    assert judge.calls == 10


def test_failures_are_not_cached_and_are_counted(tmp_path, caplog):
    judge = CountingJudge(lambda p: FAILED if p.prompt == "p0" else (A if p.a.startswith("better") else B))
    runner = JudgeRunner(judge, config(), Cache(tmp_path / "c.sqlite"), progress=False)
    judged = runner.judge_comparisons(comparisons())
    assert runner.cache.count("judge") == 6
    with caplog.at_level("WARNING", logger="cnr_plugin.evaluation"):
        summary = summarize(judged, max_failed_fraction=0.5)
    assert "1 of 4 comparisons are excluded" in caplog.text
    row = summary["rows"][0]
    assert (row["n_judged"], row["n_failed"], row["winrate"]) == (3, 1, 1.0)
    with pytest.raises(TooManyFailures, match="more than max_failed_fraction=0.2"):
        summarize(judged, max_failed_fraction=0.2)


def test_cache_survives_a_killed_writer(tmp_path):
    """A process killed with SIGKILL right after writing keeps its rows (WAL, committed per row)."""
    path = tmp_path / "c.sqlite"
    code = ("import os, sys; from cnr_plugin.cache import Cache; c = Cache(sys.argv[1]);"
            "[c.put('judge', str(i), {'i': i}) for i in range(50)]; os.kill(os.getpid(), 9)")
    proc = subprocess.run([sys.executable, "-c", code, str(path)])
    assert proc.returncode == -9
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert Cache(path).count("judge") == 50


def test_oracle_judge():
    judge = make_judge(config())
    assert judge.judge_one(JudgePair("q", "the answer is 32", "it is 0", {"required": ["32"]})).winner == "A"
    assert judge.judge_one(JudgePair("q", "x", "y", {"required": ["32"]})).winner == "tie"


@pytest.mark.parametrize("data, message", [
    ({"judge": "openai", "modle": "x"}, "unknown key 'modle'; did you mean 'model'\\? for judge 'openai'"),
    ({"judge": "oracle", "model": "x"}, "unknown key 'model' for judge 'oracle'"),
    ({"judge": "openai", "temperature": "hot"}, "'temperature'"),
    ({"judge": "opneai"}, None),
])
def test_judge_config_errors(tmp_path, data, message):
    path = tmp_path / "j.yaml"
    path.write_text(json.dumps(data))
    if message:
        with pytest.raises(JudgeConfigError, match=message):
            load_judge_config(path)
    else:
        from cnr_plugin.plugins import PluginError

        with pytest.raises(PluginError, match="did you mean 'openai'"):
            load_judge_config(path)


def test_api_key_from_env_never_in_messages(monkeypatch):
    monkeypatch.delenv("CNR_TEST_KEY", raising=False)
    cfg = load_judge_config({"model": "m", "base_url": "http://127.0.0.1:9/v1", "api_key_env": "CNR_TEST_KEY"})
    with pytest.raises(JudgeConfigError, match=r"\$CNR_TEST_KEY, which is not set"):
        cfg.options.api_key()
    monkeypatch.setenv("CNR_TEST_KEY", "sk-sentinel-123")
    assert "sk-sentinel" not in json.dumps(cfg.fingerprint())
    judge = make_judge(cfg)
    with pytest.raises(JudgeConfigError) as info:
        judge.check_reachable()
    assert "unreachable" in str(info.value) and "sk-sentinel" not in str(info.value)
