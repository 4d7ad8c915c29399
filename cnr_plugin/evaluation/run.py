"""The options of an evaluation run, the same in every entry point.

lm-eval's ``--metadata``, ``cnr revise`` and axolotl's post-train evaluation all validate their
options here, so a limit or a default lives in one place and a misspelt key fails before work.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cnr_plugin.costs import Price
from cnr_plugin.errors import CnRError, closest
from cnr_plugin.resources import data_path, eval_tasks_path

#: the most critique-and-revise iterations a run may ask for (the paper goes to 5); the task
#: YAML has one metric per iteration up to this (a test checks that they agree)
MAX_ITERATIONS = 10
#: prompt + response (+ few-shot examples) above this many tokens are "oversized" unless the
#: run or the reviser's context says otherwise
DEFAULT_MAX_INPUT_TOKENS = 32768


class RunOptionError(CnRError):
    """An evaluation option that is unknown or invalid."""


class RunConfig(BaseModel):
    """Options of an evaluation run (``--metadata '{...}'`` of cnr_winrate)."""

    model_config = ConfigDict(extra="forbid")

    responses: str = Field(default_factory=lambda: str(eval_tasks_path("sample_responses.jsonl")),
                           description="jsonl of {id, prompt, response} lines to revise (default: the 12 shipped "
                           "sample responses)")
    iterations: int = Field(5, ge=1, le=MAX_ITERATIONS, description="critique-and-revise iterations (the paper: up to 5)")
    judge: str | dict[str, Any] = Field("default", description="a judge YAML path, a registered judge's name "
                                        "(its default options), or 'default' (the shipped judge_default.yaml)")
    format: str = Field("plain", description="the CnR format the reviser was trained with: plain, chat, or one a "
                        "plugin registers")
    compare_previous: bool = Field(False, description="also judge revision i against revision i-1")
    fewshot: int = Field(0, ge=0, description="solved CnR examples before each request (untrained revisers)")
    fewshot_file: str | None = Field(None, description="CnR records to take the few-shot examples from "
                                     "(default: the shipped sample records)")
    max_gen_toks: int = Field(512, ge=1, description="most new tokens of one critique and revision")
    limit: int | None = Field(None, ge=1, description="only the first N responses")
    cache: str | None = Field(None, description="sqlite cache file (default: ~/.cache/cnr-plugin/cache.sqlite)")
    max_input_tokens: int | None = Field(
        None, ge=1, description="longest reviser input (prompt + response + examples); default: the reviser's "
        f"context less max_gen_toks where the model reports it, else {DEFAULT_MAX_INPUT_TOKENS}")
    oversized: Literal["error", "skip"] = Field("error", description="an input over max_input_tokens stops "
                                                "the run (error) or is left out and counted (skip)")
    stop_when: Literal["never", "unchanged", "no_cons"] = Field(
        "never", description="stop revising an item when its revision equals its input (unchanged) or its "
        "critique names no problem (no_cons); a stopped item keeps its text and costs no more reviser calls")
    accept: Literal["always", "judge"] = Field(
        "always", description="judge: revision i replaces revision i-1 only if the judge prefers it in both "
        "position orders (two judge calls per revision)")
    sampling: Literal["shared", "per_item"] = Field(
        "shared", description="shared: items whose reviser request is identical share one generation, sent once "
        "(what the cache gives them on a re-run anyway); per_item: each item gets its own generation (the item id "
        "enters the cache key): for independent samples at temperature > 0")
    reviser_price: Price | None = Field(
        None, description="the reviser's price per million tokens {input: .., output: ..}: turns the tokens its "
        "server reports into money (cnr revise)")
    seed: int = Field(0, ge=0, description="seed of the bootstrap intervals (win rate and length-controlled); "
                      "it moves an interval by its Monte Carlo error, never a win rate. lm-eval's --seed "
                      "seeds its global generators, which the plugin's figures do not read")
    fields: str | dict[str, str] | None = Field(
        None, description="field map of the responses file: a preset ('cai') or {prompt: column, response: "
        "dotted.path, ...}")

    @field_validator("fields")
    @classmethod
    def _field_map(cls, v: Any) -> Any:
        from cnr_plugin.records import ResponseRecord, field_map

        field_map(v, option="", model=ResponseRecord)  # an unknown field or preset fails here
        return v

    def field_map(self) -> dict[str, str] | None:
        from cnr_plugin.records import ResponseRecord, field_map

        return field_map(self.fields, option="fields", model=ResponseRecord)

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> RunConfig:
        return cls.model_validate(json.loads(doc["cnr_run"]))


def run_config(options: Mapping[str, Any], *, source: str = "--metadata", ignore: Iterable[str] = ()) -> RunConfig:
    """Validate run options; an unknown key (not in ``ignore``) is an error with a suggestion."""
    ignored = set(ignore)
    known = set(RunConfig.model_fields)
    for key in options:
        if key not in known and key not in ignored:
            raise RunOptionError(f"{source}: {closest(key, known)} (known: {', '.join(sorted(known))})")
    try:
        return RunConfig.model_validate({k: v for k, v in options.items() if k in known})
    except ValidationError as exc:
        err = exc.errors()[0]
        raise RunOptionError(f"{source} '{'.'.join(map(str, err['loc']))}': {err['msg'].removeprefix('Value error, ')}") from None


def examples_for(run: RunConfig) -> list[Any]:
    """The solved CnR examples put before each request (``fewshot``)."""
    from cnr_plugin.records import read_records

    if not run.fewshot:
        return []
    return read_records(run.fewshot_file or data_path("sample_cnr.jsonl"))[: run.fewshot]
