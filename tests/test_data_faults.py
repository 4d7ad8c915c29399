"""Training data as annotators deliver it: every malformed file gives a clear error naming file,
line and field, or (rows too long for sequence_len) a warning with the exact count and ids.
Fuzzing the reader and the generation parser finds no other failure."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import axolotl_env, needs_torch, run_train, tiny_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnr_plugin.formats import parse_generation
from cnr_plugin.formats.base import render_answer
from cnr_plugin.records import CnRDataError, read_records

GOOD = {"prompt": "p", "response": "r", "critique": "c", "revision": "v"}
CORPUS = {  # name: (file bytes, line, field or None, message)
    "missing_field.jsonl": (json.dumps({"prompt": "p", "response": "r", "critique": "c"}), 2, "revision", "is missing"),
    "wrong_type.jsonl": (json.dumps({**GOOD, "critique": ["not", "text"]}), 2, "critique", "valid string"),
    "null_critique.jsonl": (json.dumps({**GOOD, "critique": None}), 2, "critique", "is missing"),
    "empty_revision.jsonl": (json.dumps({**GOOD, "revision": " "}), 2, "revision", "must not be empty"),
    "duplicate_id.jsonl": (json.dumps({**GOOD, "id": "a"}), 2, "id", "duplicate id 'a'"),
    "invalid_json.jsonl": ('{"prompt": "p", "response": ', 2, None, "invalid JSON"),
    "not_an_object.jsonl": ('["p", "r"]', 2, None, "expected a JSON object"),
    "invalid_utf8.jsonl": (b'{"prompt": "caf\xe9"}', 2, None, "invalid UTF-8"),
}


def write(tmp_path, name, second):
    first = json.dumps({**GOOD, "id": "a"}).encode()
    second = second if isinstance(second, bytes) else second.encode()
    path = tmp_path / name
    path.write_bytes(first + b"\n" + second + b"\n")
    return path


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_malformed_file_names_file_line_field(tmp_path, name):
    content, line, field, message = CORPUS[name]
    path = write(tmp_path, name, content)
    with pytest.raises(CnRDataError) as info:
        read_records(path)
    err = info.value
    assert (err.line, err.field) == (line, field) and message in str(err)
    assert str(err).startswith(f"{path}:{line}: ")


def test_bom_crlf_and_a_1mb_record_are_read(tmp_path):
    big = {**GOOD, "id": "big", "revision": "x " * 500_000}
    data = b"\xef\xbb\xbf" + (json.dumps({**GOOD, "id": "a"}) + "\r\n" + json.dumps(big) + "\r\n").encode()
    (tmp_path / "ok.jsonl").write_bytes(data)
    records = read_records(tmp_path / "ok.jsonl")
    assert len(records) == 2 and len(records[1].revision) > 900_000


@needs_torch
def test_overlong_records_warned_with_count_and_ids(tmp_path):
    from cnr_plugin.resources import data_path

    rows = [json.loads(x) for x in data_path("sample_cnr.jsonl").read_text().splitlines()][:5]
    rows[1]["revision"] = "long " * 3000
    rows[3]["critique"] = "long " * 3000
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tok = tmp_path / "tok"
    from cnr_plugin.small_models import load_smollm2_tokenizer

    load_smollm2_tokenizer().save_pretrained(tok)
    proc = subprocess.run([str(Path(sys.executable).parent / "cnr"), "validate", str(path), "--tokenizer", str(tok),
                           "--sequence-len", "512"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert f"2 record(s) are longer than 512 tokens and axolotl will drop them: {rows[1]['id']}, {rows[3]['id']}" \
        in proc.stderr


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=400))
def test_fuzz_reader_raises_only_the_documented_error(tmp_path, data):
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes(data)
    try:
        read_records(path)
    except CnRDataError:
        pass


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(st.sampled_from([b"{", b"}", b'"prompt"', b'"critique":', b":", b",", b"null", b"\n",
                                            b'"x"', b"[", b"]", b"\xff", b"\xef\xbb\xbf", b'"id": 1', b"\r"]),
                          st.binary(max_size=5)), max_size=40).map(b"".join))
def test_fuzz_reader_on_json_like_bytes(tmp_path, data):
    for suffix in (".jsonl", ".json"):
        path = tmp_path / f"fuzz{suffix}"
        path.write_bytes(data)
        try:
            read_records(path)
        except CnRDataError:
            pass


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=20), st.sampled_from(["### Revision:", "### Critique:", "\\### Revision:",
                                                                  "### Prompt:", "\n", "\r\n", "  "])),
                max_size=15).map("".join))
def test_fuzz_generation_parser_never_raises(text):
    parsed = parse_generation(text)
    if parsed.ok:  # what was read back renders to text that reads back the same (escaping round-trips)
        again = parse_generation(render_answer(parsed.critique or "", parsed.revision)[0])
        assert (again.critique, again.revision) == (parsed.critique, parsed.revision)
    else:
        assert parsed.revision is None and parsed.problem


@needs_torch
@pytest.mark.integration
def test_axolotl_train_killed_and_resumed_from_checkpoint(tmp_path, tiny_llama):
    cfg = tiny_config(tmp_path, tiny_llama, max_steps=12, save_strategy="steps", save_steps=3)
    proc = subprocess.Popen([sys.executable, "-m", "axolotl.cli.train", str(cfg)], cwd=tmp_path, env=axolotl_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    out = tmp_path / "out"
    state = out / "checkpoint-3" / "trainer_state.json"

    def checkpoint_complete() -> bool:
        # the Trainer writes trainer_state.json after the weights, optimizer and RNG state:
        # once it parses, the checkpoint can be resumed from
        try:
            return json.loads(state.read_text())["global_step"] == 3
        except (OSError, ValueError, KeyError):
            return False

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None and not checkpoint_complete():
        time.sleep(0.05)
    assert proc.poll() is None, "training ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "checkpoint-12").exists()
    last = max((p for p in out.glob("checkpoint-*") if (p / "trainer_state.json").exists()),
               key=lambda p: int(p.name.split("-")[1]))
    resumed = tiny_config(tmp_path, tiny_llama, max_steps=12, save_strategy="steps", save_steps=3,
                          resume_from_checkpoint=str(last))
    run = run_train(resumed)
    state = json.loads((out / "checkpoint-12" / "trainer_state.json").read_text())
    assert state["global_step"] == 12
    steps_logged = [e["step"] for e in state["log_history"] if "loss" in e]
    assert steps_logged == list(range(1, 13))  # history carried over from the killed run, then continued
    assert "resum" in (run.stdout + run.stderr).lower()
