"""Falcon-40B memory for each shipped config: DeepSpeed's ZeRO-3 estimator on the meta-device model
against the hardware the config states, and the headroom as a ratio (need / have). Exits 1 if a
config does not fit. Same check as `cnr check-memory`, plus the 8-GPU full fine-tune for contrast.

    python benchmarks/falcon_memory.py
"""

from __future__ import annotations

import dataclasses

import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from _common import write_result  # noqa: E402

from cnr_plugin.axolotl.memory import check_config, format_table
from cnr_plugin.resources import config_path


def main() -> int:
    shipped = [check_config(config_path(n)) for n in ("cnr.yaml", "cnr-lora.yaml")]
    with tempfile.TemporaryDirectory() as d:
        cfg = yaml.safe_load(config_path("cnr.yaml").read_text())
        cfg["cnr_hardware"] = {"nodes": 1, "gpus_per_node": 8, "gpu_memory_gb": 80}
        cfg["deepspeed"] = str(config_path("deepspeed/zero3_bf16.json"))
        contrast = Path(d) / "cnr-full-8xgpu (not shipped).yaml"
        contrast.write_text(yaml.safe_dump(cfg))
        extra = check_config(contrast)
    print(format_table(shipped + [extra]))
    ok = all(r.fits for r in shipped)
    print("goal: every shipped Falcon-40B config fits the hardware it states:", "met" if ok else "MISSED")
    rows = [dict({k: v for k, v in dataclasses.asdict(r).items() if k != "ds_config"}, fits=r.fits,
                 headroom=r.headroom, shipped=r is not extra, met=r.fits or r is extra) for r in shipped + [extra]]
    write_result("falcon_memory", {}, rows, "every shipped config fits the hardware it states (the 8-GPU full "
                 "fine-tune is a contrast, not shipped)", ok)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
