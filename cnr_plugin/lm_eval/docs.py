"""The cnr_winrate documents and the run options they carry from ``--metadata``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cnr_plugin.records import read_records, read_responses
from cnr_plugin.resources import data_path, eval_tasks_path
from cnr_plugin.revise import Item


class RunConfig(BaseModel):
    """Options of a cnr_winrate run (``--metadata '{...}'``)."""

    model_config = ConfigDict(extra="forbid")

    responses: str = Field(default_factory=lambda: str(eval_tasks_path("sample_responses.jsonl")))
    iterations: int = Field(5, ge=1, le=10, description="critique-and-revise iterations (the paper: up to 5)")
    judge: str | dict[str, Any] = "default"
    format: str = "plain"
    compare_previous: bool = Field(False, description="also judge revision i against revision i-1")
    fewshot: int = Field(0, ge=0, description="solved CnR examples before each request (untrained revisers)")
    fewshot_file: str | None = None
    max_gen_toks: int = Field(512, ge=1)
    limit: int | None = Field(None, ge=1, description="only the first N responses")
    cache: str | None = Field(None, description="sqlite cache file (default: ~/.cache/cnr-plugin/cache.sqlite)")

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> RunConfig:
        return cls.model_validate(json.loads(doc["cnr_run"]))


def make_docs(run: RunConfig) -> list[dict[str, Any]]:
    pairs = read_responses(Path(run.responses))
    if run.limit:
        pairs = pairs[: run.limit]
    run_json = run.model_dump_json()
    return [{"id": p.id, "prompt": p.prompt, "response": p.response, "system": p.system or "",
             "meta": json.dumps(p.meta or {}), "cnr_run": run_json} for p in pairs]


def doc_items(docs: list[dict[str, Any]]) -> list[Item]:
    return [Item(d["id"], d["prompt"], d["response"], d.get("system") or None, json.loads(d.get("meta") or "{}"))
            for d in docs]


def examples_for(run: RunConfig) -> list[Any]:
    if not run.fewshot:
        return []
    return read_records(run.fewshot_file or data_path("sample_cnr.jsonl"))[: run.fewshot]
