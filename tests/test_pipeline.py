"""The evaluation pipeline in-process: cnr_winrate's functions with a deterministic reviser and
the oracle judge (the iteration logic, parse failures, metrics). No server, no torch."""

import json

import pytest

from cnr_plugin.evaluation import Item, RunConfig, revise
from cnr_plugin.plugins import get_format

pytest.importorskip("datasets")


class ScriptedReviser:
    """Answers by iteration: revision k appends ' fix<k>' and, at k=2, the required word."""

    identity = "scripted"

    def __init__(self, broken_iteration=None):
        self.batches = []
        self.broken = broken_iteration

    def generate(self, requests):
        self.batches.append(len(requests))
        k = len(self.batches)
        out = []
        for req in requests:
            response = req.text.split("### Response:\n")[-1].split("\n\n### Critique:")[0]
            if k == self.broken:
                out.append("I have no revision this time.")
            else:
                extra = " 32" if k == 2 else ""
                out.append(f"Could be better.\n\n### Revision:\n{response} fix{k}{extra}\n### Prompt:\nrambling")
        return out


def test_iterations_feed_revisions_forward_and_keep_on_parse_failure():
    items = [Item("a", "q1", "r1"), Item("b", "q2", "r2")]
    reviser = ScriptedReviser(broken_iteration=2)
    steps = revise(items, get_format("plain"), reviser, 3, progress=False)
    assert reviser.batches == [2, 2, 2]  # one batch per iteration
    a = steps["a"]
    assert [s.result for s in a] == ["r1 fix1", "r1 fix1", "r1 fix1 fix3"]
    assert a[1].revision is None and a[1].problem and a[1].response == "r1 fix1"
    assert a[0].critique == "Could be better."


def test_task_functions_end_to_end_with_oracle(tmp_path, monkeypatch):
    from cnr_plugin.lm_eval import tasks

    monkeypatch.setenv("CNR_CACHE_DIR", str(tmp_path))
    responses = tmp_path / "r.jsonl"
    responses.write_text("".join(json.dumps({"id": f"i{i}", "prompt": f"q{i}", "response": f"r{i}",
                                             "meta": {"required": ["32"]}}) + "\n" for i in range(4)))
    judge = tmp_path / "j.yaml"
    judge.write_text("judge: oracle\nchecker: keywords\n")
    ds = tasks.load_docs(inner="x", responses=str(responses), iterations=3, judge=str(judge), version=1.0)
    docs = list(ds["test"])
    assert len(docs) == 4 and "### Critique:" in tasks.doc_to_text(docs[0])

    from cnr_plugin.lm_eval.docs import doc_items

    run = RunConfig.from_doc(docs[0])
    steps = revise(doc_items(docs), get_format(run.format), ScriptedReviser(), run.iterations, progress=False)
    resps = [[json.dumps({"steps": [s.as_dict() for s in steps[d["id"]]]})] for d in docs]
    filtered = tasks.judge(resps, docs)
    per_doc = [tasks.process_results(d, [f]) for d, f in zip(docs, filtered)]
    # iteration 1 changes nothing the oracle checks (tie); iterations 2 and 3 add "32" (win)
    assert [p["winrate_iter1"] for p in per_doc] == [0.5] * 4
    assert [p["winrate_iter3"] for p in per_doc] == [1.0] * 4
    assert tasks.total([p["n_items"] for p in per_doc]) == 4
    assert tasks.total([p["n_failed"] for p in per_doc]) == 0
    assert 0.4 < tasks.ci95_lo([p["winrate_iter3_ci95_lo"] for p in per_doc]) < 0.6  # four wins prove little
    # every item wins by getting longer: the length-controlled win rate cannot tell the fix from the
    # length, and says so by moving towards 0.5
    lc = tasks.lc_winrate([p["lc_winrate_iter3"] for p in per_doc])
    assert 0.5 <= lc < 1.0 and tasks.lc_ci95_lo([p["lc_winrate_iter3_ci95_lo"] for p in per_doc]) <= lc
    assert all(p["len_ratio_iter3"] > 1 for p in per_doc)


@pytest.mark.parametrize("kwargs, message", [
    ({}, "use --model cnr --model_args inner="),
    ({"inner": "x", "responses": "/nonexistent.jsonl"}, "/nonexistent.jsonl: file not found"),
    ({"inner": "x", "iterations": 0}, "--metadata 'iterations'"),
    ({"inner": "x", "format": "plian"}, "did you mean 'plain'"),
    ({"inner": "x", "judge": {"judge": "openai", "model": "m", "base_url": "http://127.0.0.1:9/v1",
                              "api_key_env": None}}, "is unreachable"),
])
def test_bad_runs_fail_fast_with_one_line(kwargs, message):
    from cnr_plugin.lm_eval.tasks import CnRRunError, load_docs

    with pytest.raises(CnRRunError) as info:
        load_docs(**kwargs)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert isinstance(info.value, Exception)  # not a SystemExit: a Python caller's `except Exception` sees it
