"""The exact user command, `lm_eval --model cnr ... --tasks cnr_winrate`, against a real local
model server (SmolLM2-135M-Instruct under llama.cpp) as reviser and judge. Runs in both test
environments: lm-eval 0.4.11 (axolotl stack) and the newest lm-eval (torch-free)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_judge_yaml

pytestmark = pytest.mark.integration
LM_EVAL = str(Path(sys.executable).parent / "lm_eval")


def lm_eval(tmp_path, server, *extra, metadata=None, out="out", cache="cache"):
    meta = {"iterations": 2, "limit": 3, "fewshot": 1, "judge": str(tmp_path / "judge.yaml"), **(metadata or {})}
    cmd = [LM_EVAL, "--model", "cnr", "--model_args",
           f"inner=local-completions,base_url={server.base_url}/completions,model=smollm2,"
           "tokenizer_backend=None,tokenized_requests=False",
           "--tasks", "cnr_winrate", "--metadata", json.dumps(meta), "--log_samples", "--output_path",
           str(tmp_path / out), *extra]
    env = dict(os.environ, CNR_CACHE_DIR=str(tmp_path / cache))
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)


def results(tmp_path, out="out"):
    res = json.loads(next((tmp_path / out).rglob("results_*.json")).read_text())["results"]["cnr_winrate"]
    samples = [json.loads(line) for line in next((tmp_path / out).rglob("samples_cnr_winrate_*.jsonl")).read_text().splitlines()]
    return res, samples


def test_cnr_winrate_real_server_then_cached(tmp_path, llama_server):
    write_judge_yaml(tmp_path / "judge.yaml", llama_server)
    judge_before = llama_server.requests("chat/completions")
    proc = lm_eval(tmp_path, llama_server)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    res, samples = results(tmp_path)
    for metric in ("winrate_iter1", "winrate_iter2", "winrate_iter1_ci95_lo", "winrate_iter2_ci95_hi",
                   "n_items", "n_failed", "n_unparsed", "len_ratio_iter2"):
        assert f"{metric},judged" in res, metric
    assert res["n_items,judged"] == 3
    assert len(samples) == 3
    pairs = set()
    for s in samples:
        data = json.loads(s["filtered_resps"][0] if isinstance(s["filtered_resps"], list) else s["filtered_resps"])
        assert [st["iteration"] for st in data["steps"]] == [1, 2]
        assert all(st["generation"] for st in data["steps"])
        assert {(j["iteration"], j["against"]) for j in data["judgments"]} == {(1, "original"), (2, "original")}
        doc = s["doc"]
        for st in data["steps"]:
            pairs |= {(doc["prompt"], st["result"], doc["response"]), (doc["prompt"], doc["response"], st["result"])}
    judge_calls = llama_server.requests("chat/completions") - judge_before
    # `cnr annotate compare push` reads these real samples: every changed revision with its verdict
    from cnr_plugin.annotation.compare import CompareError, read_pairs

    try:
        compare = read_pairs(tmp_path / "out")
    except CompareError as exc:  # every revision equal to its original: nothing for people to compare
        assert "no revision differs" in str(exc)
    else:
        assert compare and all(p.judge_score in (0.0, 0.5, 1.0) and p.revision != p.original for p in compare)
    # 3 items x 2 iterations x 2 orders, less the pairs that repeat (a revision that failed to
    # parse keeps the previous text, and an identical pair is asked once)
    assert judge_calls == len(pairs) <= 3 * 2 * 2
    # what the run cost: the judge's calls and the server's token counts; the reviser (lm-eval's
    # local-completions without a tokenizer) reports no usage, and the table says so instead of 0 tokens
    # -- run accounting, kept with the samples and out of the metric table (it depends on the cache)
    from cnr_plugin.results import lm_eval_accounting

    cost = lm_eval_accounting(next((tmp_path / "out").rglob("samples_cnr_winrate_*.jsonl")))
    assert not [k for k in res if k.startswith(("judge_calls", "judge_cached", "judge_tokens", "judge_cost",
                                               "reviser_calls", "reviser_cached", "reviser_tokens"))], res
    assert cost["judge"]["calls"] == judge_calls and cost["judge"]["tokens_in"] > 0
    assert cost["judge"]["calls_without_usage"] == 0
    reviser_calls = cost["reviser"]["calls"]
    assert 0 < reviser_calls <= 3 * 2 and cost["reviser"]["calls_without_usage"] == reviser_calls
    assert cost["reviser"]["tokens_in"] == 0
    assert f"cnr_winrate: judge: {judge_calls} calls" in proc.stderr + proc.stdout
    print(f"\nfirst run: judge calls {judge_calls}; metrics { {k: v for k, v in res.items() if 'stderr' not in k} }")

    judge_before = llama_server.requests("chat/completions")
    proc = lm_eval(tmp_path, llama_server, out="out2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert llama_server.requests("chat/completions") == judge_before  # every verdict from the cache
    res2, _ = results(tmp_path, "out2")
    assert res2["winrate_iter2,judged"] == res["winrate_iter2,judged"]

    # cnr report reads these real lm-eval output folders: two runs overlaid, the table's figures are
    # the results file's, and the plot is drawn
    cnr = str(Path(sys.executable).parent / "cnr")
    proc = subprocess.run([cnr, "report", str(tmp_path / "out"), str(tmp_path / "out2"), "--plot",
                           str(tmp_path / "p.png")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    winrates, _, judge_table = proc.stdout.partition("judge of run")
    rows = [line for line in winrates.splitlines() if line.startswith(("out:", "out2:"))]
    assert len(rows) == 2 * 2, proc.stdout  # two runs x two iterations
    # and how the judge behaved, per run: the second run's verdicts all came from the cache
    judge_rows = [line.split() for line in judge_table.splitlines() if line.startswith(("out:", "out2:"))]
    assert len(judge_rows) == 2 and judge_rows[1][-5:-3] == ["0", f"{judge_calls:,}"], proc.stdout
    # two identical runs, one served from the cache, give the same metric table
    assert {k: v for k, v in res2.items() if "stderr" not in k} == {k: v for k, v in res.items() if "stderr" not in k}
    for it in (1, 2):
        wr = res[f"winrate_iter{it},judged"]
        lo, hi = res[f"winrate_iter{it}_ci95_lo,judged"], res[f"winrate_iter{it}_ci95_hi,judged"]
        lc = res[f"lc_winrate_iter{it},judged"]
        lc_lo, lc_hi = res[f"lc_winrate_iter{it}_ci95_lo,judged"], res[f"lc_winrate_iter{it}_ci95_hi,judged"]
        assert lc_lo <= lc <= lc_hi
        assert any(f"{wr:.3f}" in r and f"[{lo:.3f}, {hi:.3f}]" in r and f"{lc:.3f}" in r
                   and f"[{lc_lo:.3f}, {lc_hi:.3f}]" in r for r in rows), (it, rows)
    assert (tmp_path / "p.png").stat().st_size > 5000
    # and the results page, from the same real output folder: one item per document, counts that
    # add up to the judged items
    proc = subprocess.run([cnr, "report", str(tmp_path / "out"), "--html", str(tmp_path / "page.html")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "page.html").read_text()
    assert page.count("<details class='item'") == 3
    import re

    excluded = 0
    for it in (1, 2):
        row = re.search(rf"data-iteration='{it}'>(.*?)</tr>", page).group(1)
        n = {k: int(re.search(rf"class='n-{k}'>(\d+)<", row).group(1)) for k in ("won", "tied", "lost", "not-judged")}
        assert sum(n.values()) == 3, n
        excluded += n["not-judged"]
    assert excluded == res["n_failed,judged"] + res["n_unparsed,judged"]


@pytest.mark.parametrize("metadata, judge_extra, message", [
    ({"responses": "missing.jsonl"}, {}, "missing.jsonl: file not found"),
    ({}, {"modle": "x"}, "unknown key 'modle'; did you mean 'model'"),
    ({}, {"base_url": "http://127.0.0.1:9/v1"}, "is unreachable"),
])
def test_bad_input_fails_fast_with_one_line(tmp_path, llama_server, metadata, judge_extra, message):
    write_judge_yaml(tmp_path / "judge.yaml", llama_server, **judge_extra)
    before = llama_server.requests("completions")
    proc = lm_eval(tmp_path, llama_server, metadata=metadata)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("cnr_winrate: ")
    assert message in proc.stderr.strip().splitlines()[-1]
    assert "Traceback" not in proc.stderr
    assert llama_server.requests("completions") == before  # nothing was generated


@pytest.mark.parametrize("metadata, message", [
    ({"iteration": 3}, "--metadata: unknown key 'iteration'; did you mean 'iterations'?"),
    ({"iterations": 11}, "--metadata 'iterations': Input should be less than or equal to 10"),
])
def test_unknown_or_invalid_metadata_fails_before_work(tmp_path, metadata, message):
    """No server needed: the run stops in load_docs, before the reviser or the judge is asked."""
    judge = tmp_path / "judge.yaml"
    judge.write_text("judge: oracle\nchecker: keywords\n")
    cmd = [LM_EVAL, "--model", "cnr", "--model_args",
           "inner=local-completions,base_url=http://127.0.0.1:9/v1/completions,model=m,"
           "tokenizer_backend=None,tokenized_requests=False",
           "--tasks", "cnr_winrate", "--metadata", json.dumps({"judge": str(judge), **metadata})]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, CNR_CACHE_DIR=str(tmp_path / "cache")))
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("cnr_winrate: ") and message in last, last


@pytest.mark.parametrize("responses", ["sample_responses.jsonl", "sample_multiturn_responses.jsonl"])
def test_chat_format_against_the_real_server(tmp_path, llama_server, responses):
    """`format: chat` end to end: lm-eval's chat-completions model sends the request as messages
    (a multi-turn prompt as its conversation, the response as the assistant's turn), llama.cpp
    applies SmolLM2's template, the generation is parsed and judged."""
    from cnr_plugin.resources import eval_tasks_path

    write_judge_yaml(tmp_path / "judge.yaml", llama_server)
    before = llama_server.requests("chat/completions")
    cmd = [LM_EVAL, "--model", "cnr", "--model_args",
           f"inner=local-chat-completions,base_url={llama_server.base_url}/chat/completions,model=smollm2,"
           "tokenizer_backend=None", *(["--apply_chat_template"] if "multiturn" not in responses else []),
           "--tasks", "cnr_winrate", "--metadata",
           json.dumps({"iterations": 1, "limit": 2, "format": "chat", "judge": str(tmp_path / "judge.yaml"),
                       "responses": str(eval_tasks_path(responses)), "max_gen_toks": 96}),
           "--log_samples", "--output_path", str(tmp_path / "out")]
    proc = subprocess.run(cmd, cwd=tmp_path, env=dict(os.environ, CNR_CACHE_DIR=str(tmp_path / "cache")),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    res, samples = results(tmp_path)
    assert res["n_items,judged"] == 2 and "winrate_iter1,judged" in res
    # 2 reviser requests + up to 2 x 2 judge requests, all through the chat endpoint
    assert 2 < llama_server.requests("chat/completions") - before <= 6
    for s in samples:
        step = json.loads(s["filtered_resps"][0] if isinstance(s["filtered_resps"], list) else s["filtered_resps"])["steps"][0]
        assert step["generation"].strip()
        if "multiturn" in responses:
            assert s["doc"]["conversation"] and json.loads(s["doc"]["conversation"])[-1]["role"] == "user"
