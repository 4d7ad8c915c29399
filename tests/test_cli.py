"""The `cnr` command: validate, revise, judge, report."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SAMPLE, write_judge_yaml

CNR = str(Path(sys.executable).parent / "cnr")


def cnr(*args, cwd=None, env=None):
    return subprocess.run([CNR, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


def test_validate(tmp_path):
    proc = cnr("validate", SAMPLE)
    assert proc.returncode == 0 and "34 valid CnR records" in proc.stdout
    bad = tmp_path / "bad.jsonl"
    bad.write_text(SAMPLE.read_text().splitlines()[0] + '\n{"prompt": "p", "response": "r", "critique": "c"}\n')
    proc = cnr("validate", bad)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"Error: {bad}:2: field 'revision': is missing"


def test_validate_checks_its_options_before_the_files(tmp_path):
    """A mistyped --format is the only line: no "34 valid CnR records" before it, no file read."""
    proc = cnr("validate", SAMPLE, "--format", "plian")
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.strip() == "Error: unknown CnR format 'plian'; did you mean 'plain'? (known: chat, plain)"


def test_formats_and_plugins_listing():
    assert "plain" in cnr("formats").stdout
    assert json.loads(cnr("plugins").stdout)[0]["distribution"] == "cnr-plugin"


def test_report_without_runs_is_an_error(tmp_path):
    proc = cnr("report", tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr


@pytest.mark.integration
def test_revise_judge_report_real_server(tmp_path, llama_server):
    responses = tmp_path / "responses.jsonl"
    from cnr_plugin.resources import eval_tasks_path

    responses.write_text("".join(eval_tasks_path("sample_responses.jsonl").read_text().splitlines(True)[:3]))
    env = {**__import__("os").environ, "CNR_CACHE_DIR": str(tmp_path / "cache")}
    proc = cnr("revise", responses, "--base-url", llama_server.base_url, "--model", "smollm2", "--iterations", 2,
               "--fewshot", 1, "--max-tokens", 96, "--out", tmp_path / "revised.jsonl", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in (tmp_path / "revised.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(len(r["steps"]) == 2 for r in rows)

    judge = write_judge_yaml(tmp_path / "judge.yaml", llama_server)
    before = llama_server.requests("chat/completions")
    proc = cnr("judge", responses, tmp_path / "revised.jsonl", "--judge", judge, "--out", tmp_path / "judged",
               "--name", "smollm2-fewshot", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "judged" / "cnr_results.json").read_text())
    assert result["judge_calls"] == llama_server.requests("chat/completions") - before > 0
    assert [r["iteration"] for r in result["rows"]] == [1, 2]
    assert sum(1 for _ in (tmp_path / "judged" / "judgments.jsonl").open()) == 6

    proc = cnr("judge", responses, tmp_path / "revised.jsonl", "--judge", judge, "--out", tmp_path / "judged2", env=env)
    assert json.loads((tmp_path / "judged2" / "cnr_results.json").read_text())["judge_calls"] == 0
    proc = cnr("report", tmp_path / "judged")
    assert proc.returncode == 0 and "smollm2-fewshot" in proc.stdout
    assert (tmp_path / "judged" / "cnr_winrate.png").is_file()


def test_revise_chat_format_multiturn_real_server(tmp_path, llama_server):
    """`cnr revise --format chat` sends a multi-turn prompt as its conversation to the server's
    chat endpoint (single-turn chat runs in test_lm_eval); the output keeps the conversation."""
    from cnr_plugin.resources import eval_tasks_path

    before = llama_server.requests("chat/completions")
    env = {**__import__("os").environ, "CNR_CACHE_DIR": str(tmp_path / "cache")}
    proc = cnr("revise", eval_tasks_path("sample_multiturn_responses.jsonl"), "--base-url", llama_server.base_url,
               "--model", "smollm2", "--iterations", 1, "--format", "chat", "--max-tokens", 64,
               "--out", tmp_path / "revised.jsonl", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in (tmp_path / "revised.jsonl").read_text().splitlines()]
    assert len(rows) == 10 and all(isinstance(r["prompt"], list) and r["steps"][0]["generation"] for r in rows)
    assert llama_server.requests("chat/completions") - before == 10


# issue 11: bad input fails before work, in one line -------------------------------------------

def one_line_error(proc) -> str:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def write_rows(path: Path, *rows) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


ORIGINAL = {"id": "1", "prompt": "Name a pet.", "response": "cat", "meta": {"reference": "dog"}}


@pytest.mark.parametrize("candidate, message", [
    ('{"id": "1", "prompt": "Name a pet.", "resp', ":1: invalid JSON"),
    ({"id": "1", "prompt": "Name a pet."}, ":1: field 'response': is missing"),
    ('["not", "an", "object"]', ":1: expected a JSON object, got list"),
    ({"id": "1", "prompt": "p", "response": "r", "steps": [{"iteration": 2, "response": "r", "generation": "g",
                                                             "result": "x"}], "final": "x"},
     ":1: field 'steps': must hold iterations 1, 2, ... in order"),
    ({"id": "9", "prompt": "p", "response": "r"}, "cand.jsonl:1: field 'id': id '9' is not in"),
])
def test_judge_checks_its_input_files(tmp_path, candidate, message):
    baseline = write_rows(tmp_path / "base.jsonl", ORIGINAL)
    cand = write_rows(tmp_path / "cand.jsonl", candidate)
    judge = tmp_path / "judge.yaml"
    judge.write_text("judge: oracle\nchecker: reference\n")
    line = one_line_error(cnr("judge", baseline, cand, "--judge", judge, "--out", tmp_path / "out"))
    assert message in line and not (tmp_path / "out").exists()


def test_judge_checks_the_judge_against_every_item_first(tmp_path):
    baseline = write_rows(tmp_path / "base.jsonl", ORIGINAL, {"id": "2", "prompt": "p", "response": "r"})
    cand = write_rows(tmp_path / "cand.jsonl", {"id": "1", "prompt": "p", "response": "dog"},
                      {"id": "2", "prompt": "p", "response": "x"})
    judge = tmp_path / "judge.yaml"
    judge.write_text("judge: oracle\nchecker: reference\n")
    line = one_line_error(cnr("judge", baseline, cand, "--judge", judge, "--out", tmp_path / "out"))
    assert "item '2': oracle checker 'reference' cannot score the original response" in line


def test_judge_keeps_texts_byte_exact(tmp_path):
    code = {"id": "1", "prompt": "def f(x):", "response": "    return x\n  ", "meta": {"reference": "    return x\n  "}}
    baseline = write_rows(tmp_path / "base.jsonl", code)
    cand = write_rows(tmp_path / "cand.jsonl", {**code, "response": "return x"})
    judge = tmp_path / "judge.yaml"
    judge.write_text("judge: oracle\nchecker: mod:exact\n")
    (tmp_path / "mod.py").write_text("def exact(prompt, response, meta):\n    return float(response == meta['reference'])\n")
    env = {**__import__("os").environ, "PYTHONPATH": str(tmp_path), "CNR_CACHE_DIR": str(tmp_path / "cache")}
    proc = cnr("judge", baseline, cand, "--judge", judge, "--out", tmp_path / "out", env=env)
    assert proc.returncode == 0, proc.stderr
    # stripped, the two texts would be equal (a tie); exact, the candidate lost its indentation
    assert json.loads((tmp_path / "out" / "cnr_results.json").read_text())["rows"][0]["winrate"] == 0.0


def test_revise_names_the_fields_of_a_responses_file(tmp_path):
    records = write_rows(tmp_path / "records.jsonl", {"prompt": "p", "response": "r", "critique": "c", "revision": "v"})
    line = one_line_error(cnr("revise", records, "--base-url", "http://127.0.0.1:9/v1", "--model", "m",
                              "--out", tmp_path / "o.jsonl"))
    assert "records.jsonl:1: field 'critique': is not a field of a responses file (fields: prompt, response" in line


def test_revise_fails_fast_when_the_reviser_is_unreachable(tmp_path):
    import time

    responses = write_rows(tmp_path / "r.jsonl", ORIGINAL)
    start = time.monotonic()
    line = one_line_error(cnr("revise", responses, "--base-url", "http://127.0.0.1:9/v1", "--model", "m",
                              "--out", tmp_path / "o.jsonl"))
    assert "reviser endpoint http://127.0.0.1:9/v1 is unreachable" in line
    assert time.monotonic() - start < 30 and not (tmp_path / "o.jsonl").exists()


def test_revise_refuses_oversized_input_before_any_request(tmp_path):
    responses = write_rows(tmp_path / "r.jsonl", ORIGINAL, {"id": "big", "prompt": "p", "response": "x" * 1_250_000})
    line = one_line_error(cnr("revise", responses, "--base-url", "http://127.0.0.1:9/v1", "--model", "m",
                              "--out", tmp_path / "o.jsonl"))
    assert "1 item(s) are longer than max_input_tokens=32768" in line and "big (" in line


def test_validate_warns_about_long_records_without_a_tokenizer(tmp_path):
    long = write_rows(tmp_path / "long.jsonl", {"id": "short", "prompt": "p", "response": "r", "critique": "c",
                                                "revision": "v"},
                      {"id": "long", "prompt": "p", "response": "word " * 3000, "critique": "c", "revision": "v"})
    proc = cnr("validate", long, "--sequence-len", "2048")
    assert proc.returncode == 0
    assert "1 record(s) are longer than 8192 characters" in proc.stderr and ": long;" in proc.stderr


def test_validate_reads_a_cai_parquet_through_fields(tmp_path):
    from test_fields import cai_rows, write_cai

    from cnr_plugin.records import read_records

    rows = cai_rows(read_records(SAMPLE)[:5])
    paths = write_cai(tmp_path, rows)
    for path in paths:
        proc = cnr("validate", path, "--fields", "cai")
        assert proc.returncode == 0 and "5 valid CnR records" in proc.stdout, proc.stderr
    line = one_line_error(cnr("validate", paths[1], "--fields", "caj"))
    assert line == "Error: --fields: unknown preset 'caj'; did you mean 'cai'? (presets: cai, ifeval; or map fields as " \
                   "{prompt: column, ...})"
    line = one_line_error(cnr("validate", paths[1], "--fields", "prompt=init_prompt,response=init_response,"
                              "critique=critic_response,revision=nope"))
    assert line == f"Error: {paths[1]} (row 1): field 'revision' (mapped from 'nope'): is missing"


# issue 24: every command ends in one line on bad input ---------------------------------------------

def _leaf_commands(group, prefix=()):
    import click

    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from _leaf_commands(cmd, (*prefix, name))
        else:
            yield " ".join((*prefix, name))


#: each command of `cnr`, with input that is wrong in a way the command itself must catch (usage
#: errors are click's: several lines, but never a traceback)
BAD_INPUT = {
    "validate": (["{bad_records}"], "bad.jsonl:1: field 'revision': is missing"),
    "formats": (["--bogus"], "--bogus"),
    "plugins": ([], "CNR_LOAD_PLUGINS names plugins that are not installed: no-such-plugin"),
    "models smollm2": ([], "Missing argument 'OUT_DIR'"),
    "models tiny": (["{tmp}/m", "--arch", "gpt2"], "'gpt2' is not one of 'llama', 'falcon'"),
    "check-memory": (["{bad_yaml}"], None),
    "revise": (["{bad_responses}", "--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--out", "{tmp}/r.jsonl"],
               "responses.jsonl:1: field 'response': is missing"),
    "judge": (["{responses}", "{bad_responses}", "--judge", "{oracle}", "--out", "{tmp}/j"],
              "responses.jsonl:1: field 'response': is missing"),
    "export": (["{responses}", "--out", "{tmp}/e"], "not a run cnr export can read"),
    "rank-judges": (["{responses}", "{bad_responses}", "--judge", "{oracle}", "--out", "{tmp}/rj"],
                    "responses.jsonl:1: field 'response': is missing"),
    "report": (["{tmp}"], "no cnr_winrate results under"),
    "lm-eval": (["--model", "cnr", "--model_args", "inner=dummy", "--tasks", "cnr_winrate", "--metadata",
                 '{{"iteratons": 2, "responses": "{responses}"}}'], None),
    "paths": (["--bogus"], "--bogus"),
    "annotate responses": (["{bad_prompts}", "--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--out",
                            "{tmp}/a.jsonl"], "prompts.jsonl:1: field 'prompt': is missing"),
    "annotate push": (["{responses}", "--project", "p", "--draft-model", "m"],
                      "needs both --draft-base-url and --draft-model"),
    "annotate pull": (["--project", "p", "--out", "{tmp}/o.jsonl", "--policy", "newest"], "'newest' is not one of"),
    "annotate compare push": (["{tmp}", "--project", "p", "--sides", "{tmp}/sides.json"],
                              "no samples_cnr_winrate_*.jsonl (run lm_eval with --log_samples)"),
    "annotate compare pull": (["--project", "p", "--sides", "{tmp}/none.json", "--out", "{tmp}/h"],
                              "no sides file"),
}


def test_the_bad_input_table_covers_every_command():
    from cnr_plugin.cli import main

    assert set(_leaf_commands(main)) == set(BAD_INPUT)


@pytest.mark.parametrize("command", sorted(BAD_INPUT))
def test_every_command_ends_in_one_line_on_bad_input(tmp_path, command):
    import os

    files = {
        "bad_records": write_rows(tmp_path / "bad.jsonl", {"prompt": "p", "response": "r", "critique": "c"}),
        "bad_responses": write_rows(tmp_path / "responses.jsonl", {"id": "1", "prompt": "p"}),
        "responses": write_rows(tmp_path / "good.jsonl", ORIGINAL),
        "bad_prompts": write_rows(tmp_path / "prompts.jsonl", {"id": "1", "promt": "p"}),
        "bad_yaml": tmp_path / "bad.yaml",
        "oracle": tmp_path / "oracle.yaml",
    }
    files["bad_yaml"].write_text("base_model: [unclosed\n")
    files["oracle"].write_text("judge: oracle\nchecker: reference\n")
    args, message = BAD_INPUT[command]
    args = [a.format(tmp=tmp_path, **files) for a in args]
    env = dict(os.environ, CNR_CACHE_DIR=str(tmp_path / "cache"), LABEL_STUDIO_URL="", LABEL_STUDIO_API_KEY="")
    if command == "plugins":
        env["CNR_LOAD_PLUGINS"] = "no-such-plugin"
    proc = cnr(*command.split(), *args, env=env)
    assert proc.returncode in (1, 2), (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(("Error:", "cnr_winrate:")), proc.stderr
    if proc.returncode == 1 and command != "lm-eval":  # our own check, not click's usage error: one line
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr  # (lm-eval logs its own lines before)
    if message:
        assert message in last, proc.stderr
    if command == "check-memory":  # the YAML error where the extras are there; else the missing extra
        assert "bad.yaml:2: invalid YAML" in last or 'pip install "cnr-plugin[axolotl]"' in last, last
    if command == "lm-eval":
        assert "unknown key 'iteratons'; did you mean 'iterations'" in last or 'pip install "cnr-plugin[eval]"' in last


def test_version_names_the_stack_it_runs_in():
    """Issue 34: `cnr --version` prints what a bug report needs: cnr-plugin's version and its stack's."""
    from importlib import metadata

    proc = cnr("--version")
    assert proc.returncode == 0 and proc.stderr == ""
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
    assert lines["cnr-plugin"] == metadata.version("cnr-plugin")
    assert lines["python"].startswith(sys.version.split()[0])
    for dist in ("lm_eval", "axolotl", "transformers", "peft", "deepspeed", "torch", "openai", "pluggy"):
        try:
            expected = metadata.version(dist)
        except metadata.PackageNotFoundError:
            expected = "not installed"
        assert lines[dist] == expected, dist
