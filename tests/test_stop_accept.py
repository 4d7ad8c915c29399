"""Iterations that do not undo good work (issue 14): stop_when (unchanged, no_cons) and accept: judge,
in the loop, in the lm-eval adapter and in `cnr revise`, with what they save and cost counted."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnr_plugin.evaluation import Item, JudgeGate, judge_revisions, revise
from cnr_plugin.judges import JudgeBase
from cnr_plugin.formats import Prompted
from cnr_plugin.formats.base import says_no_cons
from cnr_plugin.judges import Verdict, load_judge_config
from cnr_plugin.plugins import get_format
from cnr_plugin.records import CnRRecord

ORACLE = {"judge": "oracle", "checker": "reference"}


def numbers(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"-?\d+", text)]


def sorting_reviser_reply(prompt: str, seen: dict[str, int]) -> str:
    """Sorts a list that is not sorted. Shown a sorted list, it says nothing is wrong, and the second
    time it meets the same sorted list it 'improves' it by dropping the smallest number, as the mini
    reproduction's reviser did."""
    response = prompt.split("### Response:\n")[-1].split("\n\n### Critique:")[0]
    nums = numbers(response)
    if nums != sorted(nums):
        return f"Pros:\n- has the numbers\n\nCons:\n- not sorted\n\n### Revision:\n{' '.join(map(str, sorted(nums)))}"
    seen[response] = seen.get(response, 0) + 1
    revision = response if seen[response] == 1 else " ".join(map(str, nums[1:]))
    return f"Pros:\n- sorted\n\nCons:\n- none\n\n### Revision:\n{revision}"


class SortingReviser:
    identity = "sorting-reviser"

    def __init__(self):
        self.seen: dict[str, int] = {}
        self.requests = 0

    def generate(self, requests: list[Prompted]) -> list[str]:
        self.requests += len(requests)
        return [sorting_reviser_reply(r.text or "", self.seen) for r in requests]


def items(n: int = 6) -> list[Item]:
    out = []
    for i in range(n):
        nums = [i + 3, i + 1, i + 2] if i % 2 else [i + 1, i + 2, i + 3]  # half already right
        out.append(Item(f"q{i}", "Sort the numbers ascending.", " ".join(map(str, nums)),
                        meta={"reference": " ".join(map(str, sorted(nums)))}))
    return out


def curve(stop_when: str, iterations: int = 4):
    reviser = SortingReviser()
    its = items()
    steps = revise(its, get_format("plain"), reviser, iterations, stop_when=stop_when, progress=False)
    ev = judge_revisions(its, {k: [(s.iteration, s.result) for s in v] for k, v in steps.items()},
                         load_judge_config(ORACLE), progress=False)
    rates = [r["winrate"] for r in ev.summary["rows"] if r["against"] == "original"]
    return rates, steps, reviser.requests


def test_without_a_stop_signal_the_reviser_undoes_right_answers():
    rates, steps, requests = curve("never")
    assert rates[0] > rates[-1]  # the curve falls: right answers lose a number at iteration 2
    assert requests == 6 * 4


@pytest.mark.parametrize("stop_when", ["unchanged", "no_cons"])
def test_stop_signal_keeps_right_answers_and_saves_calls(stop_when):
    rates, steps, requests = curve(stop_when)
    assert all(b >= a for a, b in zip(rates, rates[1:])), rates  # never falls
    assert rates[-1] >= rates[0]
    for item in items():
        final = steps[item.id][-1].result
        assert numbers(final) == sorted(numbers(item.response)), (item.id, final)
    assert requests < 6 * 4
    stopped_steps = sum(s.stopped for v in steps.values() for s in v)
    assert requests + stopped_steps == 6 * 4  # every saved request is a stopped step
    signals = {s.stop_signal for v in steps.values() for s in v if s.stop_signal}
    assert signals == {stop_when}


def test_no_cons_keeps_the_input_not_the_revision():
    class SaysFineButChanges:
        identity = "fine-but-changes"

        def generate(self, requests):
            return ["Pros:\n- fine\n\nCons:\n- none\n\n### Revision:\nsomething else" for _ in requests]

    steps = revise([Item("a", "p", "right answer")], get_format("plain"), SaysFineButChanges(), 3,
                   stop_when="no_cons", progress=False)
    assert [s.result for s in steps["a"]] == ["right answer"] * 3
    assert [(s.stop_signal, s.stopped) for s in steps["a"]] == [("no_cons", False), (None, True), (None, True)]


@pytest.mark.parametrize("critique, none", [
    ("Pros:\n- ok\n\nCons:\n- none", True),
    ("Cons: none", True),
    ("Pros:\n- ok\n\nCons:\n- None.\n", True),
    ("Pros:\n- ok\n\nCons:\n- none\n- wrong unit", False),
    ("Pros:\n- ok\n\nCons:\n- the sum is wrong", False),
    ("Pros:\n- looks fine", False),  # no Cons section: it does not say nothing is wrong
    (None, False),
])
def test_how_a_critique_says_no_cons(critique, none):
    assert says_no_cons(critique) is none
    assert get_format("plain").no_cons(critique) is none and get_format("chat").no_cons(critique) is none


def test_records_with_an_empty_cons_list_teach_the_no_cons_line():
    record = CnRRecord(prompt="p", response="r", pros=["right"], cons=[], revision="r")
    assert record.critique_text == "Pros:\n- right\n\nCons:\n- none"
    assert says_no_cons(record.critique_text)
    assert not says_no_cons(CnRRecord(prompt="p", response="r", pros=["right"], revision="r").critique_text)


class RandomJudge(JudgeBase):
    reads = frozenset({"prompt", "a", "b"})

    def __init__(self, verdicts):
        self.verdicts = verdicts

    def judge_one(self, pair):
        return Verdict(self.verdicts[hash((pair.a, pair.b)) % len(self.verdicts)], "ok")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["A", "B", "tie"]), min_size=1, max_size=7))
def test_accept_judge_never_keeps_a_revision_the_judge_rejects(verdicts):
    judge = RandomJudge(verdicts)
    gate = JudgeGate(judge, load_judge_config(ORACLE))
    steps = revise(items(), get_format("plain"), SortingReviser(), 4, gate=gate, progress=False)
    for v in steps.values():
        for s in v:
            if s.revision is None:
                continue
            fwd = judge.judge_one(type("P", (), {"a": s.revision, "b": s.response})())
            bwd = judge.judge_one(type("P", (), {"a": s.response, "b": s.revision})())
            preferred = fwd.winner == "A" and bwd.winner == "B"
            assert s.accepted is preferred
            assert s.result == (s.revision if preferred else s.response)


def test_accept_judge_with_a_position_biased_judge_keeps_the_original():
    class AlwaysA(JudgeBase):
        def judge_one(self, pair):
            return Verdict("A", "ok")

    gate = JudgeGate(AlwaysA(), load_judge_config(ORACLE))
    steps = revise(items(), get_format("plain"), SortingReviser(), 2, gate=gate, progress=False)
    assert all(s.accepted is False and s.result == s.response for v in steps.values() for s in v)
    assert gate.calls > 0 and set(gate.judgments.values()) == {4}  # two orders x two iterations per item


def test_accept_judge_with_the_oracle_is_monotone():
    from cnr_plugin.judges import make_judge

    config = load_judge_config(ORACLE)
    gate = JudgeGate(make_judge(config), config)
    its = items()
    steps = revise(its, get_format("plain"), SortingReviser(), 4, gate=gate, progress=False)
    ev = judge_revisions(its, {k: [(s.iteration, s.result) for s in v] for k, v in steps.items()}, config,
                         progress=False)
    rates = [r["winrate"] for r in ev.summary["rows"]]
    assert all(b >= a for a, b in zip(rates, rates[1:])) and rates[-1] > 0.5


# the lm-eval adapter: --model cnr reads stop_when / accept from the run and reports the new metrics

def test_lm_eval_adapter_stops_gates_and_reports(tmp_path, monkeypatch):
    pytest.importorskip("lm_eval")
    from lm_eval.api.instance import Instance
    from lm_eval.api.model import LM

    from cnr_plugin.lm_eval import tasks
    from cnr_plugin.lm_eval.model import CnRLM

    monkeypatch.setenv("CNR_CACHE_DIR", str(tmp_path / "cache"))
    responses = tmp_path / "r.jsonl"
    responses.write_text("".join(json.dumps({"id": it.id, "prompt": it.prompt, "response": it.response,
                                             "meta": it.meta}) + "\n" for it in items()))
    judge = tmp_path / "j.yaml"
    judge.write_text("judge: oracle\nchecker: reference\n")

    class Inner(LM):
        def __init__(self):
            super().__init__()
            self.seen: dict[str, int] = {}
            self.requests = 0

        def generate_until(self, requests, disable_tqdm=False):
            self.requests += len(requests)
            return [sorting_reviser_reply(r.args[0], self.seen) for r in requests]

        def loglikelihood(self, requests, disable_tqdm=False):
            raise NotImplementedError

        def loglikelihood_rolling(self, requests, disable_tqdm=False):
            raise NotImplementedError

    results = {}
    for stop_when, accept in (("never", "always"), ("no_cons", "always"), ("never", "judge")):
        ds = tasks.load_docs(inner="x", responses=str(responses), iterations=3, judge=str(judge),
                             stop_when=stop_when, accept=accept)
        docs = list(ds["test"])
        inner = Inner()
        lm = CnRLM(inner, "scripted", {"run": f"{stop_when}-{accept}"}, cache_revisions=False)
        reqs = [Instance("generate_until", d, (tasks.doc_to_text(d), {"until": []}), i) for i, d in enumerate(docs)]
        filtered = tasks.judge([[r] for r in lm.generate_until(reqs, disable_tqdm=True)], docs)
        per_doc = [tasks.process_results(d, [f]) for d, f in zip(docs, filtered)]

        def mean(key, per_doc=per_doc):
            return sum(p.get(key, 0) for p in per_doc) / len(per_doc)

        results[(stop_when, accept)] = {k: mean(k) for k in ("winrate_iter1", "winrate_iter3", "stopped_iter1",
                                                             "stopped_iter3", "rejected_iter1", "rejected_iter2",
                                                             "reviser_requests",
                                                             "accept_judgments")}
        assert inner.requests == sum(p["reviser_requests"] for p in per_doc)
    never, stop, gated = results[("never", "always")], results[("no_cons", "always")], results[("never", "judge")]
    assert never["winrate_iter3"] < never["winrate_iter1"] and never["stopped_iter3"] == 0
    assert stop["winrate_iter3"] == stop["winrate_iter1"] and stop["stopped_iter1"] == 0.5
    assert stop["reviser_requests"] < never["reviser_requests"] == 3
    # iteration 1: the unsorted half is sorted (kept), the sorted half comes back unchanged (a tie: rejected);
    # iteration 2: nothing is better than what is there (all rejected), so nothing right is ever undone
    assert gated["winrate_iter3"] == gated["winrate_iter1"] == 0.75
    assert (gated["rejected_iter1"], gated["rejected_iter2"]) == (0.5, 1.0)
    assert gated["accept_judgments"] > 0 == never["accept_judgments"]


# `cnr revise`, against an OpenAI-compatible server whose reviser is the scripted sorting one

def test_cnr_revise_stop_when_and_accept(tmp_path):
    from cnr_plugin.testing.fault_server import FaultPlan, FaultServer

    seen: dict[str, int] = {}
    srv = FaultServer(FaultPlan(seed=0), reviser=lambda prompt: sorting_reviser_reply(prompt, seen),
                      max_seconds=300).start()
    try:
        responses = tmp_path / "r.jsonl"
        responses.write_text("".join(json.dumps({"id": it.id, "prompt": it.prompt, "response": it.response,
                                                 "meta": it.meta}) + "\n" for it in items()))
        judge = tmp_path / "j.yaml"
        judge.write_text("judge: oracle\nchecker: reference\n")
        cnr = str(Path(sys.executable).parent / "cnr")
        env = {**__import__("os").environ, "CNR_CACHE_DIR": str(tmp_path / "cache")}
        proc = subprocess.run([cnr, "revise", str(responses), "--base-url", srv.base_url, "--model", "fault-model",
                               "--iterations", "4", "--stop-when", "no_cons", "--accept", "judge", "--judge",
                               str(judge), "--out", str(tmp_path / "out.jsonl")],
                              capture_output=True, text=True, timeout=300, env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "reviser requests saved by stop_when=no_cons" in proc.stdout
        assert "revisions rejected by the judge" in proc.stdout
        rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
        for row in rows:
            assert numbers(row["final"]) == sorted(numbers(row["response"]))
        # cnr judge reads the new step fields
        proc = subprocess.run([cnr, "judge", str(responses), str(tmp_path / "out.jsonl"), "--judge", str(judge),
                               "--out", str(tmp_path / "judged")], capture_output=True, text=True, timeout=300,
                              env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        result = json.loads((tmp_path / "judged" / "cnr_results.json").read_text())
        assert [r["winrate"] for r in result["rows"]] == [0.75] * 4
    finally:
        srv.stop()


def test_axolotl_post_train_evaluation_passes_the_options(tmp_path):
    from cnr_plugin.axolotl.evaluate import lm_eval_args

    (tmp_path / "out").mkdir()
    cfg = {"output_dir": str(tmp_path / "out"), "base_model": "m", "cnr_eval_stop_when": "no_cons",
           "cnr_eval_accept": "judge"}
    args, _ = lm_eval_args(cfg, device="cpu")
    metadata = json.loads(args[args.index("--metadata") + 1])
    assert (metadata["stop_when"], metadata["accept"]) == ("no_cons", "judge")
