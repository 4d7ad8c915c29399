"""`cnr annotate compare`: sides, the mapping of choices back, human win rates and agreement
figures, checked against hand-computed cases (the Label Studio round trip is in test_annotate)."""

import json
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnr_plugin.annotation.compare import (
    CompareError,
    agreement,
    cohen_kappa,
    human_labels,
    read_pairs,
    revision_side,
    summarize,
)


def test_cohen_kappa_and_agreement_hand_computed():
    human = ["win", "win", "loss", "tie", "win", "loss"]
    judge = ["win", "loss", "loss", "tie", "win", "win"]
    # observed 4/6; both marginals win 3/6, tie 1/6, loss 2/6: expected 9/36 + 1/36 + 4/36 = 14/36
    # kappa = (24/36 - 14/36) / (1 - 14/36) = 10/22 = 5/11
    assert math.isclose(cohen_kappa(human, judge), 5 / 11)
    a = agreement(human, judge)
    assert (a["n"], a["n_without_ties"]) == (6, 5)
    assert math.isclose(a["percent"], 4 / 6) and math.isclose(a["percent_without_ties"], 3 / 5)
    assert cohen_kappa(["win"] * 4, ["win"] * 4) != cohen_kappa(["win"] * 4, ["win"] * 4)  # NaN: no chance model
    assert math.isclose(cohen_kappa(["win", "loss"], ["loss", "win"]), -1.0)


def task(tid, pair, *choices):
    anns = [{"id": 10 * tid + i, "completed_by": who, "was_cancelled": False,
             "result": [{"from_name": "preference", "value": {"choices": [c]}},
                        {"from_name": "reason", "value": {"text": [f"because {c}"]}}]}
            for i, (who, c) in enumerate(choices)]
    return {"id": tid, "data": {"cnr_pair": pair}, "annotations": anns}


SIDES = {"project": "t", "pairs": {
    "a@1": {"iteration": 1, "revision_side": "A", "judge_score": 1.0},
    "b@1": {"iteration": 1, "revision_side": "B", "judge_score": 0.0},
    "c@1": {"iteration": 1, "revision_side": "B", "judge_score": 0.5},
    "a@2": {"iteration": 2, "revision_side": "B", "judge_score": 1.0},
}}


def test_choices_map_back_through_the_sides_and_summarize_by_hand():
    tasks = [task(1, "a@1", (1, "A"), (2, "A")),      # revision on A, both pick it: win, win
             task(2, "b@1", (1, "A"), (2, "B")),      # revision on B: loss (1), win (2)
             task(3, "c@1", (1, "Tie")),              # tie
             task(4, "a@2", (1, "B"), (2, "Tie")),    # revision on B: win (1), tie (2)
             task(5, "zz@1", (1, "A"))]               # not in the sides file: reported, left out
    rows, problems = human_labels(tasks, SIDES)
    assert problems == ["task 5 (pair zz@1): not in the sides file; left out"]
    assert [(r["pair"], r["annotator"], r["label"]) for r in rows] == [
        ("a@1", 1, "win"), ("a@1", 2, "win"), ("b@1", 1, "loss"), ("b@1", 2, "win"), ("c@1", 1, "tie"),
        ("a@2", 1, "win"), ("a@2", 2, "tie")]
    result = summarize(rows)
    it1, it2 = result["rows"]
    # pairs averaged over their annotators first: a 1.0, b 0.5, c 0.5 -> 2/3
    assert (it1["n_pairs"], it1["n_annotations"]) == (3, 5) and math.isclose(it1["winrate"], 2 / 3)
    assert it1["ci95"][0] < 2 / 3 < it1["ci95"][1]
    assert math.isclose(it1["judge_winrate_same_pairs"], 0.5)
    # per choice vs the judge: win/win, win/win, loss/loss, win/loss, tie/tie -> 4 of 5
    assert math.isclose(it1["human_vs_judge"]["percent"], 4 / 5)
    assert math.isclose(it2["winrate"], 0.75)
    # annotators 1 and 2 share a@1 (win, win), b@1 (loss, win), a@2 (win, tie): 1 of 3 the same
    ia = result["inter_annotator"]
    assert (ia["annotator_pairs"], ia["n_shared_judgments"]) == (1, 3) and math.isclose(ia["percent"], 1 / 3)
    assert math.isclose(ia["light_kappa"], cohen_kappa(["win", "loss", "win"], ["win", "win", "tie"]))


@settings(max_examples=50, deadline=None)
@given(st.randoms(use_true_random=False))
def test_figures_do_not_depend_on_the_order_of_choices(rnd):
    tasks = [task(1, "a@1", (1, "A"), (2, "B")), task(2, "b@1", (1, "A"), (3, "Tie")),
             task(3, "c@1", (2, "B"), (3, "B")), task(4, "a@2", (1, "Tie"))]
    rows, _ = human_labels(tasks, SIDES)
    shuffled = rows[:]
    rnd.shuffle(shuffled)
    assert summarize(shuffled) == summarize(rows)


def test_sides_are_a_fair_coin_stable_per_pair():
    sides = [revision_side(f"item{i}@1", seed=0) for i in range(2000)]
    assert 0.46 < sides.count("A") / len(sides) < 0.54
    assert sides == [revision_side(f"item{i}@1", seed=0) for i in range(2000)]
    assert sides != [revision_side(f"item{i}@1", seed=1) for i in range(2000)]


def test_read_pairs_from_lm_eval_samples_and_revise_output(tmp_path):
    out = tmp_path / "eval" / "model"
    out.mkdir(parents=True)
    steps = [{"iteration": 1, "result": "better"}, {"iteration": 2, "result": "p0 original"}]
    def orders(fwd, bwd):  # both position orders, as a judge writes them
        return {"forward": {"winner": fwd, "status": "ok"}, "backward": {"winner": bwd, "status": "ok"}}

    judgments = [{"iteration": 1, "against": "original", "score": 1.0, "status": "ok", **orders("A", "B")},
                 {"iteration": 2, "against": "original", "score": 0.5, "status": "ok", **orders("tie", "tie")}]
    convo = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}, {"role": "user", "content": "q"}]
    samples = [{"doc": {"id": "p0", "prompt": "text shown", "response": "p0 original",
                        "conversation": json.dumps(convo)},
                "filtered_resps": [json.dumps({"steps": steps, "judgments": judgments})]}]
    (out / "samples_cnr_winrate_2026.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    pairs = read_pairs(tmp_path / "eval")
    assert [(p.key, p.revision, p.judge_score) for p in pairs] == [("p0@1", "better", 1.0)]  # unchanged left out
    assert pairs[0].prompt.startswith("#### User:\nhi")
    revised = tmp_path / "revised.jsonl"
    revised.write_text(json.dumps({"id": "x", "prompt": "P", "response": "old", "final": "new", "steps": [
        {"iteration": 1, "response": "old", "generation": "g", "result": "new"}]}) + "\n")
    (pair,) = read_pairs(revised)
    assert (pair.key, pair.original, pair.revision, pair.judge_score) == ("x@1", "old", "new", None)
    with pytest.raises(CompareError, match="no samples_cnr_winrate"):
        read_pairs(tmp_path / "eval" / "nothing" if (tmp_path / "eval" / "nothing").mkdir() is None else None)


def test_human_results_draw_beside_the_judge(tmp_path):
    from cnr_plugin.report import plot
    from cnr_plugin.results import read_runs

    rows, _ = human_labels([task(1, "a@1", (1, "A")), task(2, "b@1", (1, "B")), task(3, "a@2", (1, "B"))], SIDES)
    (tmp_path / "human_results.json").write_text(json.dumps(summarize(rows) | {"name": "people (t)"}))
    (run,) = read_runs([tmp_path])
    assert run.name == "people (t)" and run.extra["kind"] == "human" and sorted(run.points) == [1, 2]
    assert plot([run], tmp_path / "p.png").stat().st_size > 1000
    random.seed(0)
