"""The axolotl plugin's checks, run on config dicts as axolotl passes them to register()."""

import json

import pytest
from conftest import SAMPLE, needs_torch

pytestmark = needs_torch


def cfg(tmp_path, **kw):
    base = {"plugins": ["cnr_plugin.axolotl.CnRPlugin"], "dataset_prepared_path": str(tmp_path / "prep"),
            "datasets": [{"path": str(SAMPLE), "ds_type": "json", "type": "cnr_plugin.axolotl.strategy"}]}
    base.update(kw)
    return base


def register(c):
    from cnr_plugin.axolotl import CnRPlugin

    CnRPlugin().register(c)
    return c


def test_misspelled_option_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="unknown CnR option 'cnr_los_on'; did you mean 'cnr_loss_on'"):
        register(cfg(tmp_path, cnr_los_on="revision"))


@pytest.mark.parametrize("key, value, message", [
    ("cnr_format", "plian", "did you mean 'plain'"),
    ("cnr_loss_on", "revisions", "critique_and_revision"),
])
def test_bad_option_value_is_an_error(tmp_path, key, value, message):
    with pytest.raises(ValueError, match=message):
        register(cfg(tmp_path, **{key: value}))


def test_prepared_path_follows_options(tmp_path):
    a = register(cfg(tmp_path))["dataset_prepared_path"]
    assert a == register(cfg(tmp_path))["dataset_prepared_path"]
    b = register(cfg(tmp_path, cnr_loss_on="revision"))["dataset_prepared_path"]
    c = register(cfg(tmp_path, cnr_format="chat"))["dataset_prepared_path"]
    assert len({a, b, c}) == 3 and all(p.startswith(str(tmp_path / "prep" / "cnr-")) for p in (a, b, c))
    # register() runs once per config load; a second call must not nest folders
    twice = register(register(cfg(tmp_path)))["dataset_prepared_path"]
    assert twice == a


def test_bad_dataset_file_fails_before_training_with_file_and_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(SAMPLE.read_text().splitlines()[0] + "\n" + json.dumps({"prompt": "p", "response": "r",
                                                                           "revision": "v"}) + "\n")
    c = cfg(tmp_path)
    c["datasets"][0]["path"] = str(bad)
    with pytest.raises(ValueError, match=rf"{bad}:2: field 'critique'"):
        register(c)


def test_strategy_without_the_plugin_is_an_error(smollm2_tokenizer):
    from axolotl.utils.dict import DictDefault

    from cnr_plugin.axolotl.strategy import load

    with pytest.raises(ValueError, match="needs `plugins: \\[cnr_plugin.axolotl.CnRPlugin\\]`"):
        load(smollm2_tokenizer, DictDefault({"plugins": []}))


def test_field_map_is_checked_at_register_and_keys_the_prepared_data(tmp_path):
    from cnr_plugin.records import CnRDataError

    with pytest.raises(ValueError, match="'revison' is not a field of a CnR record; did you mean 'revision'"):
        register(cfg(tmp_path, cnr_fields={"revison": "x"}))
    # a map changes the tokenized data: it changes the prepared-data folder too
    plain = register(cfg(tmp_path))["dataset_prepared_path"]
    mapped = register(cfg(tmp_path, cnr_fields={"revision": "revision"}))["dataset_prepared_path"]
    assert plain != mapped
    with pytest.raises(CnRDataError, match=r"sample_cnr.jsonl:1: field 'prompt' \(mapped from 'init_prompt'\): is missing"):
        register(cfg(tmp_path, cnr_fields="cai"))
    # text prompts and conversations in one file: axolotl's loader would fail later, in a traceback
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(SAMPLE.read_text().splitlines(True)[0] +
                     (SAMPLE.parent / "sample_multiturn.jsonl").read_text().splitlines(True)[0])
    with pytest.raises(CnRDataError) as e:
        register(cfg(tmp_path, datasets=[{"path": str(mixed), "ds_type": "json", "type": "cnr_plugin.axolotl.strategy"}]))
    assert str(e.value) == (f"{mixed}: field 'prompt': text at {mixed}:1 but a conversation at {mixed}:2; axolotl "
                            "loads a column with one type: write single-turn prompts as one user turn")
