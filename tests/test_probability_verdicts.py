"""Probability-weighted verdicts (issue 15): P(revision better) from the verdict token's
log-probabilities, averaged over both position orders, so that a position bias cancels."""

from __future__ import annotations

import logging
import math
import re

import pytest
import yaml

from cnr_plugin.evaluation import Item, judge_revisions, score_orders
from cnr_plugin.judges import make_judge
from cnr_plugin.judges import Verdict, load_judge_config
from cnr_plugin.judges.base import verdict_probs


def tok(token, alts):
    return {"token": token, "logprob": math.log(alts.get(token, 1e-6)),
            "top_logprobs": [{"token": t, "logprob": math.log(p)} for t, p in alts.items()]}


@pytest.mark.parametrize("tokens, expected", [
    ([tok('{"', {'{"': 1.0}), tok("winner", {"winner": 1.0}), tok(' "', {' "': 1.0}),
      tok("A", {"A": 0.6, "B": 0.3, "tie": 0.1})], {"A": 0.6, "B": 0.3, "tie": 0.1}),
    ([tok("[[", {"[[": 1.0}), tok("B", {"B": 0.5, "A": 0.25, "C": 0.25})], {"A": 0.25, "B": 0.5, "tie": 0.25}),
    ([tok("A", {"A": 0.4, "The": 0.4, "B": 0.2})], {"A": 2 / 3, "B": 1 / 3, "tie": 0.0}),  # renormalised
    ([tok("Sure", {"Sure": 1.0})], None),
])
def test_verdict_probs_from_token_logprobs(tokens, expected):
    got = verdict_probs(tokens)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected)


def test_score_with_probabilities_cancels_position_bias():
    # true preference 0.7 for the revision; the judge adds 0.2 to whatever is shown first
    forward = Verdict("A", "ok", probs={"A": 0.9, "B": 0.1, "tie": 0.0})   # revision shown as A
    backward = Verdict("A", "ok", probs={"A": 0.5, "B": 0.5, "tie": 0.0})  # revision shown as B
    assert score_orders(forward, backward) == (pytest.approx(0.7), "ok")
    # the same verdicts read as letters: the orders disagree, a tie
    assert score_orders(Verdict("A", "ok"), Verdict("A", "ok")) == (0.5, "ok")


def biased_judge(bias: float):
    """A scripted judge server's distribution: the revision (marked 'new') is better with
    probability 0.7; the response shown first gains ``bias``."""
    def probs(prompt: str) -> dict[str, float]:
        m = re.search(r"\[Response A\]\n(.*?)\n\n\[Response B\]", prompt, re.S)
        p_a = (0.7 if m and "new" in m.group(1) else 0.3) + bias
        return {"A": p_a, "B": 1 - p_a, "tie": 0.0}
    return probs


def run(tmp_path, verdict: str, logprobs: bool = True):
    from cnr_plugin.testing.fault_server import FaultPlan, FaultServer

    srv = FaultServer(FaultPlan(seed=0), judge_probs=biased_judge(0.2) if logprobs else None,
                      max_seconds=120).start()
    try:
        cfg = {"judge": "openai", "model": "fault-model", "base_url": srv.base_url, "api_key_env": None,
               "structured_output": "none", "verdict": verdict, "max_retries": 0}
        (tmp_path / "judge.yaml").write_text(yaml.safe_dump(cfg))
        config = load_judge_config(tmp_path / "judge.yaml")
        items = [Item(f"q{i}", f"prompt {i}", f"old answer {i}") for i in range(20)]
        results = {it.id: [(1, f"new answer {i}")] for i, it in enumerate(items)}
        return judge_revisions(items, results, config, make_judge(config), progress=False)
    finally:
        srv.stop()


def test_weighted_win_rate_from_a_biased_judge_with_logprobs(tmp_path):
    weighted = run(tmp_path, "probability")
    letters = run(tmp_path, "letter")
    assert weighted.summary["rows"][0]["winrate"] == pytest.approx(0.7)
    assert letters.summary["rows"][0]["winrate"] == pytest.approx(0.5)  # A in both orders: ties
    assert all(j.forward.probs and j.backward.probs for j in weighted.judged)


def test_no_logprobs_falls_back_to_letters_with_one_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="cnr_plugin.judges"):
        ev = run(tmp_path, "probability", logprobs=False)
    assert all(j.forward.probs is None for j in ev.judged)
    assert caplog.text.count("returned no log-probabilities") == 1


def test_verdict_mode_is_part_of_the_verdict_identity():
    base = {"judge": "openai", "model": "m", "base_url": "http://127.0.0.1:9/v1"}
    a = load_judge_config(base).fingerprint()
    b = load_judge_config({**base, "verdict": "probability"}).fingerprint()
    assert a != b
    # settings that cannot change a verdict stay out of the key
    assert load_judge_config({**base, "timeout_s": 5, "max_retries": 0, "concurrency": 1}).fingerprint() == a


@pytest.mark.integration
def test_probability_verdicts_from_the_small_model_served_by_llama_cpp(tmp_path, llama_server):
    from conftest import write_judge_yaml

    config = load_judge_config(write_judge_yaml(tmp_path / "j.yaml", llama_server, verdict="probability"))
    items = [Item("1", "What is 2 + 2?", "2 + 2 = 5"), Item("2", "Capital of France?", "Berlin")]
    results = {"1": [(1, "2 + 2 = 4")], "2": [(1, "Paris")]}
    ev = judge_revisions(items, results, config, make_judge(config), progress=False)
    ok = [j for j in ev.judged if j.status == "ok"]
    assert ok, [j.as_dict() for j in ev.judged]
    for j in ok:
        for v in (j.forward, j.backward):
            assert v.probs is not None and sum(v.probs.values()) == pytest.approx(1.0)
        assert 0.0 <= j.score <= 1.0
    print("\nSmolLM2 weighted scores:", [round(j.score, 3) for j in ok])
