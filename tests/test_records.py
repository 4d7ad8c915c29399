import json

import pytest

from cnr_plugin.records import CnRDataError, CnRRecord, read_records

GOOD = {"prompt": "p", "response": "r", "critique": "c", "revision": "v"}


def write_lines(tmp_path, lines, name="d.jsonl", raw=False):
    path = tmp_path / name
    if raw:
        path.write_bytes(lines)
    else:
        path.write_text("\n".join(json.dumps(x) if not isinstance(x, str) else x for x in lines) + "\n")
    return path


def error_of(path):
    with pytest.raises(CnRDataError) as info:
        read_records(path)
    return info.value


def test_sample_data_is_valid():
    from cnr_plugin.resources import data_path

    records = read_records(data_path("sample_cnr.jsonl"))
    assert len(records) >= 30
    kinds = {r.meta["kind"] for r in records}
    assert {"factual", "coding", "advice", "writing"} <= kinds


@pytest.mark.parametrize("row, field, message", [
    ({"prompt": "p", "response": "r", "revision": "v"}, "critique", "is missing"),
    ({"prompt": "p", "response": "r", "critique": "c"}, "revision", "is missing"),
    ({**GOOD, "critique": "   "}, "critique", "must not be empty"),
    ({**GOOD, "revision": ""}, "revision", "must not be empty"),
    ({**GOOD, "revision": None}, "revision", "valid string"),
    ({**GOOD, "prompt": 3}, "prompt", "valid string"),
    ({**GOOD, "critque": "typo"}, "critque", "not a field of a CnR record"),
    ({**GOOD, "pros": ["ok", ""]}, "pros", "must not be empty"),
])
def test_bad_record_names_file_line_and_field(tmp_path, row, field, message):
    path = write_lines(tmp_path, [GOOD, GOOD, row])
    err = error_of(path)
    assert (err.line, err.field) == (3, field)
    assert str(err).startswith(f"{path}:3: field '{field}'")
    assert message in str(err)


def test_invalid_json_and_utf8(tmp_path):
    err = error_of(write_lines(tmp_path, [GOOD, '{"prompt": "p",']))
    assert err.line == 2 and "invalid JSON" in str(err)
    raw = (json.dumps(GOOD) + "\n").encode() + b'{"prompt": "\xff\xfe"}\n'
    err = error_of(write_lines(tmp_path, raw, name="u.jsonl", raw=True))
    assert err.line == 2 and "invalid UTF-8" in str(err)


def test_bom_crlf_and_blank_lines_are_fine(tmp_path):
    raw = b"\xef\xbb\xbf" + (json.dumps(GOOD) + "\r\n\r\n" + json.dumps(GOOD) + "\r\n").encode()
    assert len(read_records(write_lines(tmp_path, raw, raw=True))) == 2


def test_duplicate_ids(tmp_path):
    err = error_of(write_lines(tmp_path, [{**GOOD, "id": 1}, {**GOOD, "id": "2"}, {**GOOD, "id": "1"}]))
    assert err.line == 3 and err.field == "id" and "first at line 1" in str(err)


def test_json_array_reports_lines(tmp_path):
    path = tmp_path / "d.json"
    path.write_text('[\n  {"prompt": "p", "response": "r", "critique": "c", "revision": "v"},\n'
                    '  {"prompt": "p", "response": "r", "critique": "c"}\n]\n')
    err = error_of(path)
    assert err.line == 3 and err.field == "revision"
    path.write_text(json.dumps({"data": [GOOD, GOOD]}))
    assert len(read_records(path)) == 2


def test_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist([GOOD, {**GOOD, "revision": ""}]), path)
    err = error_of(path)
    assert err.line == 2 and err.unit == "row" and "(row 2)" in str(err)


def test_structured_critique_renders_pros_and_cons():
    rec = CnRRecord(prompt="p", response="r", pros=["clear"], cons=["wrong number", "no units"], revision="v")
    assert rec.critique_text == "Pros:\n- clear\n\nCons:\n- wrong number\n- no units"
    rec = CnRRecord(prompt="p", response="r", critique="Mostly fine.", cons=["typo"], revision="v")
    assert rec.critique_text == "Mostly fine.\n\nCons:\n- typo"


def test_unknown_suffix_and_missing_file(tmp_path):
    assert "not found" in str(error_of(tmp_path / "nope.jsonl"))
    (tmp_path / "d.csv").write_text("x")
    assert "unknown file type" in str(error_of(tmp_path / "d.csv"))
