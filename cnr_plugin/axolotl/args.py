"""Top-level axolotl config keys of the CnR plugin (returned by ``CnRPlugin.get_input_args``).

Axolotl drops unknown keys inside ``datasets:`` entries, so CnR options live at the top level
of the config and reach the strategy through this model.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cnr_plugin.errors import CnRError
from cnr_plugin.evaluation.run import MAX_ITERATIONS



class CnRConfigError(CnRError, ValueError):
    """An axolotl config whose CnR options, data or DeepSpeed settings cannot be used (a ValueError too,
    as axolotl's own config errors are)."""


LossOn = Literal["critique_and_revision", "revision", "critique"]


class Hardware(BaseModel):
    """The hardware a config is sized for; ``cnr check-memory`` checks the config against it."""

    model_config = ConfigDict(extra="forbid")
    nodes: int = Field(1, ge=1)
    gpus_per_node: int = Field(ge=1)
    gpu_memory_gb: float = Field(gt=0)
    host_memory_gb: float | None = Field(None, gt=0)


class CnRArgs(BaseModel):
    cnr_format: str = Field("plain", description="CnR text format: 'plain', 'chat', or one a plugin registers")
    cnr_loss_on: LossOn = Field(
        "critique_and_revision",
        description="target part that carries the loss: critique_and_revision (the paper), revision or critique",
    )
    cnr_fields: str | dict[str, str] | None = Field(
        None, description="field map of the CnR datasets: a preset ('cai') or {prompt: column, revision: "
        "dotted.path, ...}; unmapped fields are read under their own names, other columns are left out")
    cnr_hardware: Hardware | None = Field(None, description="hardware the config is sized for")
    cnr_eval_post_train: bool = Field(False, description="run cnr_winrate on the trained model after training")
    cnr_eval_responses: str | None = Field(None, description="jsonl of (prompt, response) pairs to revise")
    cnr_eval_iterations: int = Field(5, ge=1, le=MAX_ITERATIONS, description="critique-and-revise iterations")
    cnr_eval_judge: str | None = Field(None, description="judge YAML (default: the shipped judge)")
    cnr_eval_limit: int | None = Field(None, ge=1, description="evaluate only the first N responses")
    cnr_eval_max_gen_toks: int = Field(512, ge=1, description="max new tokens for a critique + revision")
    cnr_eval_stop_when: Literal["never", "unchanged", "no_cons"] = Field(
        "never", description="stop revising an item whose revision is unchanged or whose critique names no problem")
    cnr_eval_accept: Literal["always", "judge"] = Field(
        "always", description="judge: keep a revision only if the judge prefers it to the previous text")
    cnr_eval_output_dir: str | None = Field(None, description="where results go (default: <output_dir>/cnr_eval)")

    @field_validator("cnr_fields")
    @classmethod
    def _field_map(cls, v: Any) -> Any:
        from cnr_plugin.records import field_map

        field_map(v)  # an unknown field or preset fails here, with a suggestion
        return v

    def field_map(self) -> dict[str, str] | None:
        from cnr_plugin.records import field_map

        return field_map(self.cnr_fields)

    @field_validator("cnr_format")
    @classmethod
    def _known_format(cls, v: str) -> str:
        from cnr_plugin.plugins import get_format

        get_format(v)  # raises PluginError (a ValueError) naming the known formats
        return v


OPTION_NAMES = frozenset(CnRArgs.model_fields)
