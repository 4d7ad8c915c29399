"""The cnr_winrate documents: evaluation items plus the run options they carry from ``--metadata``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cnr_plugin.evaluation import Item, RunConfig
from cnr_plugin.records import read_responses


def read_items(run: RunConfig) -> list[Item]:
    pairs = read_responses(Path(run.responses))
    if run.limit:
        pairs = pairs[: run.limit]
    return [Item(str(p.id), p.prompt, p.response, p.system, p.meta or {}) for p in pairs]


def make_docs(run: RunConfig, items: list[Item]) -> list[dict[str, Any]]:
    run_json = run.model_dump_json()
    return [{"id": it.id, "prompt": it.prompt, "response": it.response, "system": it.system or "",
             "meta": json.dumps(it.meta), "cnr_run": run_json} for it in items]


def doc_items(docs: list[dict[str, Any]]) -> list[Item]:
    return [Item(d["id"], d["prompt"], d["response"], d.get("system") or None, json.loads(d.get("meta") or "{}"))
            for d in docs]
