"""Falcon-40B without GPUs: meta-device model, DeepSpeed config validation, ZeRO-3 estimator."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, needs_torch

pytestmark = needs_torch


@pytest.fixture(scope="module")
def reports():
    from cnr_plugin.axolotl.memory import check_config

    return {name: check_config(ROOT / "axolotl_configs" / name) for name in ("cnr.yaml", "cnr-lora.yaml")}


def test_falcon_40b_builds_on_meta(reports):
    r = reports["cnr.yaml"]
    assert round(r.total_params / 1e9, 2) == 41.30
    assert r.ds_config["zero_optimization"]["stage"] == 3
    assert r.ds_config["zero_optimization"]["reduce_bucket_size"] == 8192 * 8192
    assert r.ds_config["train_batch_size"] == 16 * 1 * 4
    assert r.ds_config["bf16"]["enabled"] is True


@pytest.mark.parametrize("name", ["cnr.yaml", "cnr-lora.yaml"])
def test_shipped_configs_fit_their_hardware(reports, name):
    assert reports[name].fits, reports[name].as_dict()


def test_full_finetune_does_not_fit_one_8x80_node(tmp_path):
    from cnr_plugin.axolotl.memory import check_config

    cfg = yaml.safe_load((ROOT / "axolotl_configs" / "cnr.yaml").read_text())
    cfg["cnr_hardware"] = {"nodes": 1, "gpus_per_node": 8, "gpu_memory_gb": 80}
    cfg["deepspeed"] = str(ROOT / "axolotl_configs" / "deepspeed" / "zero3_bf16.json")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    r = check_config(tmp_path / "c.yaml")
    assert not r.fits and r.gpu_gb_per_device > 90


def test_bad_deepspeed_value_is_rejected_by_deepspeed(tmp_path):
    from cnr_plugin.axolotl.memory import validate_ds_config

    with pytest.raises(Exception, match="train_batch_size"):
        validate_ds_config({"train_batch_size": 63, "train_micro_batch_size_per_gpu": 1,
                            "gradient_accumulation_steps": 4, "zero_optimization": {"stage": 3}}, world_size=16)


def test_cli_check_memory(tmp_path):
    cnr = str(Path(sys.executable).parent / "cnr")
    proc = subprocess.run([cnr, "check-memory"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "cnr.yaml" in proc.stdout and "cnr-lora.yaml" in proc.stdout and "NO" not in proc.stdout
