"""Check a large-model config without its GPUs: ``cnr check-memory axolotl_configs/cnr.yaml``.

Builds the model on the ``meta`` device from its config (a copy of Falcon-40B's ships with the
package, so nothing is downloaded), fills the DeepSpeed config's "auto" values as the HF
Trainer does, validates it with DeepSpeed at the config's world size, and runs DeepSpeed's
ZeRO-3 model-state estimator against the hardware the config states in ``cnr_hardware``.

The estimator covers parameters, gradients and optimizer states (model states), not
activations: the headroom it reports is what is left for activations and buffers.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock


from pydantic import ValidationError

from cnr_plugin.errors import one_line, read_yaml_mapping
from cnr_plugin.resources import config_path

from .args import CnRConfigError, Hardware

GB = 1e9
#: hub ids whose architecture ships with the package (config.json only, no weights)
KNOWN_MODEL_CONFIGS = {
    "tiiuae/falcon-40b-instruct": "falcon-40b-config.json",
    "tiiuae/falcon-40b": "falcon-40b-config.json",
}


@dataclass
class MemoryReport:
    config: str
    model: str
    total_params: int
    trainable_params: int
    largest_layer_params: int
    world_size: int
    offload_optimizer: bool
    gpu_gb_per_device: float
    host_gb: float
    gpu_memory_gb: float
    host_memory_gb: float | None
    ds_config: dict[str, Any]

    @property
    def fits(self) -> bool:
        host_ok = self.host_memory_gb is None or self.host_gb <= self.host_memory_gb
        return self.gpu_gb_per_device <= self.gpu_memory_gb and host_ok

    @property
    def headroom(self) -> float:
        """GPU memory per device divided by the model states' need (> 1 fits)."""
        return self.gpu_memory_gb / self.gpu_gb_per_device

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("ds_config")
        return {**d, "fits": self.fits, "headroom": round(self.headroom, 3)}


def _model_config(base_model: str, cfg_dir: Path) -> tuple[Any, str]:
    from transformers import AutoConfig

    if base_model in KNOWN_MODEL_CONFIGS:
        data = json.loads(config_path(KNOWN_MODEL_CONFIGS[base_model]).read_text())
        model_type = data.pop("model_type")
        return AutoConfig.for_model(model_type, **data), f"{base_model} (shipped config)"
    for candidate in (Path(base_model), cfg_dir / base_model):
        if (candidate / "config.json").is_file():
            return AutoConfig.from_pretrained(str(candidate)), str(candidate)
    raise CnRConfigError(f"no architecture for base_model {base_model!r}: not a local model directory and not one of "
                     f"{', '.join(KNOWN_MODEL_CONFIGS)}")


def meta_model(model_config: Any) -> Any:
    """The model on the meta device: shapes and parameter counts, no memory."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(model_config)


def count_params(model: Any) -> tuple[int, int]:
    """(total parameters, parameters of the largest single module), as DeepSpeed counts them."""
    total = sum(p.numel() for p in model.parameters())
    largest = max(sum(p.numel() for p in m.parameters(recurse=False)) for m in model.modules())
    return total, largest


def lora_params(model: Any, cfg: dict[str, Any]) -> int:
    """Trainable LoRA parameters for the config's targets (``lora_target_linear`` or a module list)."""
    import torch

    r = int(cfg.get("lora_r") or 8)
    targets = cfg.get("lora_target_modules")
    total = 0
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear) or name.endswith("lm_head"):
            continue
        if targets and not any(name.split(".")[-1] == t for t in targets):
            continue
        if not targets and not cfg.get("lora_target_linear"):
            continue
        total += r * (module.in_features + module.out_features)
    if total == 0:
        raise CnRConfigError("the LoRA config targets no linear module (set lora_target_linear or lora_target_modules)")
    return total


def fill_ds_config(ds_config: dict[str, Any], cfg: dict[str, Any], model: Any, world_size: int) -> dict[str, Any]:
    """Replace "auto" values as the HF Trainer does, from the axolotl config's training values."""
    from transformers.integrations.deepspeed import HfTrainerDeepSpeedConfig

    bf16 = cfg.get("bf16") in (True, "auto")
    args = SimpleNamespace(
        world_size=world_size,
        per_device_train_batch_size=int(cfg.get("micro_batch_size") or 1),
        gradient_accumulation_steps=int(cfg.get("gradient_accumulation_steps") or 1),
        max_grad_norm=float(cfg.get("max_grad_norm") or 1.0),
        learning_rate=float(cfg.get("learning_rate") or 1e-5),
        adam_beta1=float(cfg.get("adam_beta1") or 0.9), adam_beta2=float(cfg.get("adam_beta2") or 0.999),
        adam_epsilon=float(cfg.get("adam_epsilon") or 1e-8), weight_decay=float(cfg.get("weight_decay") or 0.0),
        lr_scheduler_type=cfg.get("lr_scheduler") or "cosine", save_on_each_node=False,
        fp16=bool(cfg.get("fp16")), fp16_full_eval=False, bf16=bf16, bf16_full_eval=False,
        fp16_backend="auto", fp16_opt_level="O1", half_precision_backend="auto",
        get_warmup_steps=lambda steps: int(math.ceil(steps * float(cfg.get("warmup_ratio") or 0.0))),
    )
    hf = HfTrainerDeepSpeedConfig(copy.deepcopy(ds_config))
    hf.trainer_config_process(args)
    hf.trainer_config_finalize(args, model, num_training_steps=1000)
    left = [k for k, v in _walk(hf.config) if v == "auto"]
    if left:
        raise CnRConfigError(f"DeepSpeed config keeps 'auto' values nobody fills: {', '.join(left)}")
    return hf.config


def _walk(d: dict[str, Any], prefix: str = ""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _walk(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def validate_ds_config(ds_config: dict[str, Any], world_size: int) -> Any:
    """Validate with DeepSpeed's own config parser, as rank 0 of ``world_size`` ranks."""
    from deepspeed import comm as dist
    from deepspeed.runtime.config import DeepSpeedConfig

    with mock.patch.object(dist, "get_rank", return_value=0), \
            mock.patch.object(dist, "get_world_size", return_value=world_size):
        return DeepSpeedConfig(copy.deepcopy(ds_config))


def read_config(path: Path) -> dict[str, Any]:
    """An axolotl config as a mapping; a file that is no YAML mapping fails in one line naming the line."""
    return read_yaml_mapping(path, CnRConfigError, "axolotl options")


def check_config(path: str | Path) -> MemoryReport:
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs

    path = Path(path)
    cfg = read_config(path)
    if not cfg.get("cnr_hardware"):
        raise CnRConfigError(f"{path}: no `cnr_hardware:` section says what hardware the config is sized for")
    try:
        hw = Hardware.model_validate(cfg["cnr_hardware"])
    except ValidationError as exc:
        raise CnRConfigError(f"{path}: cnr_hardware {one_line(exc)}") from None
    world = hw.nodes * hw.gpus_per_node
    if not cfg.get("base_model"):
        raise CnRConfigError(f"{path}: no `base_model:`")
    model_config, model_name = _model_config(str(cfg["base_model"]), path.parent)
    model = meta_model(model_config)
    total, largest = count_params(model)

    ds_path = Path(str(cfg.get("deepspeed") or ""))
    if not cfg.get("deepspeed"):
        raise CnRConfigError(f"{path}: no `deepspeed:` config")
    for candidate in (ds_path, path.parent / ds_path, path.parent / "deepspeed" / ds_path.name):
        if candidate.is_file():
            ds_path = candidate
            break
    else:
        raise CnRConfigError(f"{path}: DeepSpeed config {ds_path} not found")
    ds_filled = fill_ds_config(json.loads(ds_path.read_text()), cfg, model, world)
    ds = validate_ds_config(ds_filled, world)
    if ds.zero_optimization_stage != 3:
        raise CnRConfigError(f"{ds_path}: the estimate here is for ZeRO stage 3, the config has {ds.zero_optimization_stage}")
    offload_opt = bool(ds.zero_config.offload_optimizer and ds.zero_config.offload_optimizer.device != "none")
    offload_param = bool(ds.zero_config.offload_param and ds.zero_config.offload_param.device != "none")

    lora = cfg.get("adapter") in ("lora", "qlora")
    trainable = lora_params(model, cfg) if lora else total
    host, gpu, _largest_bytes = estimate_zero3_model_states_mem_needs(
        total_params=trainable, largest_layer_params=largest, num_gpus_per_node=hw.gpus_per_node,
        num_nodes=hw.nodes, cpu_offload=offload_opt, cpu_offload_params=offload_param, zero_init=True)
    if lora:
        # the frozen base weights stay in bf16 and are sharded like any ZeRO-3 parameter
        gpu += 0 if offload_param else 2 * total / world
    return MemoryReport(
        config=str(path), model=model_name, total_params=total, trainable_params=trainable,
        largest_layer_params=largest, world_size=world, offload_optimizer=offload_opt,
        gpu_gb_per_device=gpu / GB, host_gb=host / GB, gpu_memory_gb=hw.gpu_memory_gb,
        host_memory_gb=hw.host_memory_gb, ds_config=ds_filled,
    )


def format_table(reports: list[MemoryReport]) -> str:
    head = f"{'config':<28} {'params':>8} {'trainable':>10} {'GPUs':>5} {'GB/GPU need':>11} {'GB/GPU have':>11} " \
           f"{'headroom':>8} {'host GB':>8} fits"
    rows = [head]
    for r in reports:
        rows.append(f"{Path(r.config).name:<28} {r.total_params / 1e9:>7.2f}B {r.trainable_params / 1e9:>9.3f}B "
                    f"{r.world_size:>5} {r.gpu_gb_per_device:>11.1f} {r.gpu_memory_gb:>11.0f} {r.headroom:>7.2f}x "
                    f"{r.host_gb:>8.0f} {'yes' if r.fits else 'NO'}")
    return "\n".join(rows)
