"""cnr_winrate on a model trained by axolotl: after training (``cnr_eval_post_train: true``) or
later from the same config (``axolotl cnr-eval cnr.yaml`` / ``cnr eval-trained cnr.yaml``).

Like axolotl's own LMEvalPlugin, this runs lm-eval as a separate process on the saved output
directory (a LoRA run evaluates base model + adapter), then writes the win-rate table and plot.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

from cnr_plugin.errors import CnRError

from .args import CnRArgs, CnRConfigError

LOG = logging.getLogger("axolotl.integrations.cnr_plugin")


class PostTrainEvalError(CnRError):
    """cnr_winrate on the trained model did not finish (its own error is printed above this one)."""


def lm_eval_args(cfg: dict[str, Any], device: str | None = None) -> tuple[list[str], Path]:
    """The lm_eval arguments that evaluate ``cfg``'s trained model, and the results folder."""
    options = CnRArgs.model_validate({k: v for k, v in cfg.items() if k in CnRArgs.model_fields})
    output_dir = Path(str(cfg.get("output_dir") or "./model-out"))
    if not output_dir.is_dir():
        raise CnRConfigError(f"no trained model in {output_dir} (output_dir of the config): train it first")
    if cfg.get("adapter") in ("lora", "qlora"):
        model_args = f"inner=hf,pretrained={cfg['base_model']},peft={output_dir}"
    else:
        model_args = f"inner=hf,pretrained={output_dir}"
    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    metadata: dict[str, Any] = {"iterations": options.cnr_eval_iterations, "format": options.cnr_format,
                                "max_gen_toks": options.cnr_eval_max_gen_toks,
                                "stop_when": options.cnr_eval_stop_when, "accept": options.cnr_eval_accept}
    for key, value in (("responses", options.cnr_eval_responses), ("judge", options.cnr_eval_judge),
                       ("limit", options.cnr_eval_limit)):
        if value is not None:
            metadata[key] = value
    fields = options.field_map()  # the responses are read through the same map (its prompt/response/... part)
    if fields and options.cnr_eval_responses:
        from cnr_plugin.records import ResponseRecord

        metadata["fields"] = {k: v for k, v in fields.items() if k in ResponseRecord.model_fields}
    results = Path(options.cnr_eval_output_dir or output_dir / "cnr_eval")
    args = ["--model", "cnr", "--model_args", model_args, "--tasks", "cnr_winrate", "--device", device,
            "--metadata", json.dumps(metadata), "--log_samples", "--output_path", str(results)]
    return args, results


def evaluate_trained(cfg: dict[str, Any], device: str | None = None) -> Path:
    """Run cnr_winrate on the trained model; returns the results folder (table + PNG inside)."""
    from cnr_plugin.report import format_table, plot
    from cnr_plugin.results import read_runs

    args, results = lm_eval_args(cfg, device)
    cmd = [sys.executable, "-m", "cnr_plugin.lm_eval.cli", *args]
    LOG.info("cnr: evaluating the trained model: %s", " ".join(cmd))
    proc = subprocess.run(cmd)
    if proc.returncode != 0:
        raise PostTrainEvalError(f"cnr_winrate on the trained model failed (exit {proc.returncode}); the trained model "
                           f"is saved in {cfg.get('output_dir')}, re-run with: axolotl cnr-eval <config>")
    runs = read_runs([results])
    LOG.info("cnr: win rates\n%s", format_table(runs))
    png = plot(runs, results / "cnr_winrate.png")
    LOG.info("cnr: plot %s", png)
    return results
