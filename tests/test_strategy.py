"""Label masking of the axolotl strategy, with the real SmolLM2 tokenizer."""

import pytest
from conftest import SAMPLE, needs_torch

pytestmark = needs_torch

IGNORE = -100


@pytest.fixture(scope="module", params=["single-turn", "multi-turn"])
def records(request):
    from cnr_plugin.records import read_records

    return read_records(SAMPLE if request.param == "single-turn" else SAMPLE.parent / "sample_multiturn.jsonl")


def strategy(tokenizer, fmt="plain", **kw):
    from cnr_plugin.axolotl.strategy import CnRStrategy
    from cnr_plugin.plugins import get_format

    return CnRStrategy(get_format(fmt), tokenizer, **kw)


def as_batch(records):
    rows = [r.model_dump(exclude_none=True) for r in records]
    keys = sorted({k for row in rows for k in row})
    return {k: [row.get(k) for row in rows] for k in keys}


def trained_text(tokenizer, out, i):
    ids = [t for t, lab in zip(out["input_ids"][i], out["labels"][i]) if lab != IGNORE]
    return tokenizer.decode(ids)


@pytest.mark.parametrize("fmt", ["plain", "chat"])
def test_loss_only_on_target(smollm2_tokenizer, records, fmt):
    tok = smollm2_tokenizer
    out = strategy(tok, fmt).tokenize_prompt(as_batch(records))
    from cnr_plugin.plugins import get_format

    for i, rec in enumerate(records):
        r = get_format(fmt).render_record(rec, tokenizer=tok)
        ids, labels = out["input_ids"][i], out["labels"][i]
        n_input = len(tok(r.input)["input_ids"])
        assert all(lab == IGNORE for lab in labels[:n_input]), "a label on the input part"
        assert all(lab == t for lab, t in zip(labels[n_input:], ids[n_input:])), "a masked target token"
        expected = r.target + (tok.eos_token if fmt == "plain" else "")
        assert trained_text(tok, out, i) == expected
        assert out["attention_mask"][i] == [1] * len(ids)


def test_loss_on_revision_and_on_critique(smollm2_tokenizer, records):
    tok = smollm2_tokenizer
    batch = as_batch(records[:5])
    rev = strategy(tok, loss_on="revision").tokenize_prompt(batch)
    crit = strategy(tok, loss_on="critique").tokenize_prompt(batch)
    for i, rec in enumerate(records[:5]):
        assert trained_text(tok, rev, i) == f"### Revision:\n{rec.revision}{tok.eos_token}"
        assert trained_text(tok, crit, i) == rec.critique_text


def test_train_on_inputs_trains_everything(smollm2_tokenizer, records):
    out = strategy(smollm2_tokenizer, train_on_inputs=True).tokenize_prompt(as_batch(records[:3]))
    for ids, labels in zip(out["input_ids"], out["labels"]):
        assert ids == labels


def test_overlong_records_are_named_by_file_and_line_or_id(smollm2_tokenizer, records, caplog, monkeypatch):
    from cnr_plugin.axolotl import strategy as strategy_module
    from cnr_plugin.axolotl.plugin import validate_dataset_files

    monkeypatch.setattr(strategy_module, "SOURCES", {})
    out = strategy(smollm2_tokenizer, sequence_len=64).tokenize_prompt(as_batch(records[:4]))
    too_long = [r.id for r, ids in zip(records[:4], out["input_ids"]) if len(ids) > 64]
    assert too_long
    assert f"{len(too_long)} record(s) of a batch of 4 are longer than sequence_len=64" in caplog.text
    assert ", ".join(f"id {i}" for i in too_long) in caplog.text  # no file known: the record's id
    caplog.clear()
    # the plugin read the dataset file: the same records are named by file and line
    path = SAMPLE if records[0].id.startswith("s") else SAMPLE.parent / "sample_multiturn.jsonl"
    validate_dataset_files({"datasets": [{"path": str(path), "type": "cnr_plugin.axolotl.strategy"}]})
    strategy(smollm2_tokenizer, sequence_len=64).tokenize_prompt(as_batch(records[:4]))
    lines = [f"{path}:{n}" for n, r in enumerate(records[:4], start=1) if r.id in too_long]
    assert ", ".join(lines) in caplog.text


def test_bad_row_is_an_error(smollm2_tokenizer):
    batch = {"prompt": ["p"], "response": ["r"], "critique": [""], "revision": ["v"]}
    with pytest.raises(ValueError, match="field 'critique': must not be empty"):
        strategy(smollm2_tokenizer).tokenize_prompt(batch)
