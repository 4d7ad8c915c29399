"""Column mapping (``cnr_fields`` / ``--fields`` / ``fields``) and multi-turn prompts, through the
readers and the format core."""

import json

import pytest
from conftest import ROOT
from hypothesis import given, settings
from hypothesis import strategies as st

from cnr_plugin.formats.base import conversation, escape, prompt_text, turns_from_text
from cnr_plugin.plugins import get_format
from cnr_plugin.records import (
    CnRDataError,
    FieldMapError,
    ResponseRecord,
    field_map,
    read_records,
    read_responses,
)

MULTITURN = ROOT / "data" / "sample_multiturn.jsonl"
CAI = field_map("cai")


def cai_rows(records):
    """The sample records in the Constitutional-AI shape (HuggingFaceH4/cai-conversation-harmless)."""
    return [{"init_prompt": r.prompt, "init_response": r.response, "critic_prompt": "Identify problems.",
             "critic_response": r.critique_text, "revision_prompt": "Rewrite it.", "revision_response": r.revision,
             "messages": [{"role": "user", "content": r.prompt}, {"role": "assistant", "content": r.revision}]}
            for r in records]


def write_cai(tmp_path, rows):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows)
    (tmp_path / "cai.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "cai.json").write_text(json.dumps(rows, indent=1))
    pq.write_table(table, tmp_path / "cai.parquet")
    with pa.OSFile(str(tmp_path / "cai_file.arrow"), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
        w.write_table(table)
    with pa.OSFile(str(tmp_path / "cai_stream.arrow"), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)  # the form `datasets.save_to_disk` writes
    return [tmp_path / n for n in ("cai.jsonl", "cai.parquet", "cai_file.arrow", "cai_stream.arrow", "cai.json")]


def test_cai_shape_reads_the_same_from_jsonl_json_parquet_and_arrow(tmp_path):
    from conftest import SAMPLE

    sample = read_records(SAMPLE)
    rows = cai_rows(sample)
    rows[0]["revision_response"] = "  indented\n\tand trailing  \n"  # byte-exact through every reader
    for path in write_cai(tmp_path, rows):
        got = read_records(path, fields=CAI)
        assert [(r.prompt, r.response, r.critique, r.revision) for r in got] == \
            [(w["init_prompt"], w["init_response"], w["critic_response"], w["revision_response"]) for w in rows], path


def test_dotted_paths_reach_nested_fields_and_list_items(tmp_path):
    path = tmp_path / "nested.jsonl"
    path.write_text(json.dumps({"ex": {"q": "Q?", "answers": [{"text": "first"}, {"text": "last"}]},
                                "notes": {"critique": "Too short."}, "fix": "Better."}) + "\n")
    rec = read_records(path, fields=field_map({"prompt": "ex.q", "response": "ex.answers.-1.text",
                                               "critique": "notes.critique", "revision": "fix"}))[0]
    assert (rec.prompt, rec.response, rec.critique, rec.revision) == ("Q?", "last", "Too short.", "Better.")
    assert read_records(path, fields=field_map("prompt=ex.q,response=ex.answers.0.text,critique=notes.critique,"
                                               "revision=fix"))[0].response == "first"


def test_mapping_errors_name_file_line_and_the_mapped_field(tmp_path):
    rows = cai_rows(read_records(ROOT / "data" / "sample_cnr.jsonl")[:3])
    del rows[2]["revision_response"]
    rows[1]["init_prompt"] = "   "
    paths = write_cai(tmp_path, rows)
    with pytest.raises(CnRDataError) as e:
        read_records(paths[0], fields=CAI)
    assert str(e.value) == f"{paths[0]}:2: field 'prompt' (mapped from 'init_prompt'): must not be empty"
    rows[1]["init_prompt"] = "fine"
    paths = write_cai(tmp_path, rows)
    with pytest.raises(CnRDataError) as e:
        read_records(paths[1], fields=CAI)
    assert str(e.value) == f"{paths[1]} (row 3): field 'revision' (mapped from 'revision_response'): is missing"
    with pytest.raises(CnRDataError, match="mapped from 'ex.answers.5.text'"):
        (tmp_path / "n.jsonl").write_text(json.dumps({"ex": {"answers": []}, "prompt": "p", "critique": "c",
                                                      "revision": "r"}) + "\n")
        read_records(tmp_path / "n.jsonl", fields=field_map({"response": "ex.answers.5.text"}))


@pytest.mark.parametrize("spec, message", [
    ("caj", "cnr_fields: unknown preset 'caj'; did you mean 'cai'?"),
    ({"revison": "x"}, "cnr_fields: 'revison' is not a field of a CnR record; did you mean 'revision'?"),
    ({"prompt": "a..b"}, "cnr_fields: field 'prompt' needs a column name or dotted path"),
    ("prompt=a,revision", "cnr_fields: expected field=path pairs"),
])
def test_bad_field_maps_fail_in_one_line_with_a_suggestion(spec, message):
    with pytest.raises(FieldMapError) as e:
        field_map(spec)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)
    with pytest.raises(FieldMapError, match="'critique' is not a field of a responses file"):
        field_map({"critique": "c"}, model=ResponseRecord)


def test_multiturn_sample_reads_as_conversations():
    records = read_records(MULTITURN)
    assert len(records) == 10 and all(conversation(r.prompt) for r in records)
    assert records[2].prompt[0] == {"role": "system", "content": "You are a concise assistant for a bakery."}
    responses = read_responses(ROOT / "eval_tasks" / "sample_multiturn_responses.jsonl")
    assert [r.prompt for r in responses] == [r.prompt for r in records]


@pytest.mark.parametrize("prompt, system, message", [
    ([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], None,
     "field 'prompt': the last turn must be the user's"),
    ([{"role": "user", "content": "a"}, {"role": "system", "content": "b"}, {"role": "user", "content": "c"}], None,
     "field 'prompt': turn 2: a system turn can only come first"),
    ([{"role": "bot", "content": "a"}], None, "field 'prompt': turn 1: role must be system, user or assistant"),
    ([{"role": "user", "content": "a", "name": "x"}], None, "turn 1: must be an object with exactly 'role' and 'content'"),
    ([{"role": "user", "content": " "}], None, "turn 1: content must be a non-empty string"),
    ([], None, "field 'prompt': a conversation needs at least one turn"),
    ([{"role": "system", "content": "s"}, {"role": "user", "content": "u"}], "s2",
     "field 'system': the prompt's conversation has a system turn already"),
])
def test_bad_conversations_are_named_by_line_and_field(tmp_path, prompt, system, message):
    path = tmp_path / "bad.jsonl"
    row = {"prompt": prompt, "response": "r", "critique": "c", "revision": "v", **({"system": system} if system else {})}
    path.write_text(json.dumps({"prompt": "ok", "response": "r", "critique": "c", "revision": "v"}) + "\n" +
                    json.dumps(row) + "\n")
    with pytest.raises(CnRDataError) as e:
        read_records(path)
    assert str(e.value).startswith(f"{path}:2: ") and message in str(e.value)


marker_lines = st.sampled_from(["#### User:", "\\#### User:", "#### Assistant:", "### Prompt:", "\\\\#### System:",
                                "### Revision:", "#### User: not a marker"])
text = st.lists(st.one_of(st.text(max_size=20), marker_lines), min_size=1, max_size=5).map("\n".join).filter(str.strip)
turn = st.tuples(st.sampled_from(["user", "assistant"]), text).map(lambda t: {"role": t[0], "content": t[1]})
block = text.map(str.strip).filter(bool)  # parse strips the critique, as for single-turn records
convos = st.tuples(st.booleans(), text, st.lists(turn, max_size=4), text).map(
    lambda t: ([{"role": "system", "content": t[1]}] if t[0] else []) + t[2] + [{"role": "user", "content": t[3]}])


@settings(max_examples=200, deadline=None)
@given(prompt=convos, response=block, critique=block, revision=block)
def test_plain_multiturn_render_round_trip(prompt, response, critique, revision):
    fmt = get_format("plain")
    rendered = fmt.render(prompt, response, critique, revision)
    body = rendered.input.split("### Prompt:\n", 1)[1].rsplit("\n\n### Response:\n", 1)[0]
    if conversation(prompt):
        assert turns_from_text(body) == prompt  # every turn back, byte-exact, marker-like lines included
    else:
        assert body == escape(prompt_text(prompt)) and prompt[0]["role"] == "user"
    parsed = fmt.parse(rendered.target)
    assert (parsed.critique, parsed.revision) == (critique, revision)
    # the input holds exactly the section markers and one turn marker per turn, unescaped
    lines = rendered.input.splitlines()
    assert sum(line in ("### Prompt:", "### Response:", "### Critique:") for line in lines) == 3
    n_turns = len(conversation(prompt) or [])
    assert sum(line in ("#### System:", "#### User:", "#### Assistant:") for line in lines) == n_turns


def test_one_user_turn_is_the_same_prompt_as_its_text():
    for name in ("plain",):
        fmt = get_format(name)
        assert fmt.render_input([{"role": "user", "content": "Hi?"}], "r") == fmt.render_input("Hi?", "r")
    chat = get_format("chat")
    assert chat.prompt([{"role": "user", "content": "Hi?"}], "r") == chat.prompt("Hi?", "r")


def test_chat_multiturn_request_is_the_conversation_then_the_critique_request():
    chat = get_format("chat")
    convo = read_records(MULTITURN)[2].prompt
    req = chat.prompt(convo, "Yes, completely safe.", examples=read_records(MULTITURN)[:1])
    msgs = req.messages
    assert msgs[0] == convo[0]  # the conversation's own system turn stays first
    ex = read_records(MULTITURN)[0]
    assert msgs[1:4] == ex.prompt and msgs[4] == {"role": "assistant", "content": ex.response}
    assert msgs[-len(convo) - 1:-2] == convo[1:]
    assert msgs[-2] == {"role": "assistant", "content": "Yes, completely safe."}
    assert msgs[-1]["role"] == "user" and "### Revision:" in msgs[-1]["content"]


def test_run_options_and_lm_eval_docs_keep_conversations():
    from cnr_plugin.evaluation import RunOptionError, run_config
    from cnr_plugin.lm_eval.docs import doc_items, make_docs, read_items

    with pytest.raises(RunOptionError) as e:
        run_config({"fields": {"respnse": "x"}})
    assert str(e.value).startswith("--metadata 'fields': 'respnse' is not a field of a responses file; did you "
                                   "mean 'response'?")
    run = run_config({"responses": str(ROOT / "eval_tasks" / "sample_multiturn_responses.jsonl")})
    items = read_items(run)
    docs = make_docs(run, items)
    assert all(isinstance(d["prompt"], str) and isinstance(d["conversation"], str) for d in docs)  # one type a column
    assert doc_items(docs) == items and [i.prompt for i in doc_items(docs)] == [i.prompt for i in items]
    assert docs[0]["prompt"].startswith("#### User:\nI'm planning a trip")
