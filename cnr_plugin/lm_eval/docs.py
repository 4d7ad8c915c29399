"""The cnr_winrate documents: evaluation items plus the run options they carry from ``--metadata``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from cnr_plugin.evaluation import Item, RunConfig
from cnr_plugin.formats.base import conversation, prompt_text
from cnr_plugin.records import read_responses

# What the ``--model cnr`` of this process and the cnr_winrate task share (here, so that neither imports the other):
#: the ``--model_args`` keys of the ``--model cnr`` made in this process: lm-eval merges them into the
#: metadata it passes to ``load_docs``, so they are not unknown run options
MODEL_ARG_KEYS: set[str] = set()
#: how many ``--model cnr`` this process made: lm-eval makes the model before it loads the tasks, so
#: cnr_winrate's documents can tell whether the reviser is wrapped (the CLI also merges the model
#: arguments into the task metadata; ``simple_evaluate`` with a ``task_manager`` does not)
WRAPPERS_MADE = 0


def wrapper_made(model_args: set[str]) -> None:
    """A ``--model cnr`` was made with these ``--model_args`` keys."""
    global WRAPPERS_MADE
    WRAPPERS_MADE += 1
    MODEL_ARG_KEYS.update(model_args)


def doc_to_text(doc: dict[str, Any]) -> str:
    """The request context. ``--model cnr`` renders its own inputs through the format core;
    this is what a log shows: the first iteration's input."""
    from cnr_plugin.plugins import get_format

    run = RunConfig.from_doc(doc)
    return get_format(run.format).prompt(doc_prompt(doc), doc["response"]).text or doc["prompt"]


def read_items(run: RunConfig) -> list[Item]:
    pairs = read_responses(Path(run.responses), fields=run.field_map())
    if run.limit:
        pairs = pairs[: run.limit]
    return [Item.from_record(p) for p in pairs]


#: fingerprints of the documents this evaluation built: requests that carry another document were
#: built by an earlier run (lm-eval's ``--cache_requests``) and may hold other options or items
_BUILT: set[str] = set()


def _fingerprint(doc: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def make_docs(run: RunConfig, items: list[Item]) -> list[dict[str, Any]]:
    """One document per item. Columns keep one type (``datasets`` needs that): ``prompt`` is text
    (a conversation as marked turns, for logs and pages) and ``conversation`` holds the turns as
    JSON ("" for a single-turn prompt); ``cnr_set`` names the options the user gave (the others
    are defaults another source, such as ``--gen_kwargs``, may set)."""
    run_json, given = run.model_dump_json(), json.dumps(sorted(run.model_fields_set))
    docs = [{"id": it.id, "prompt": prompt_text(it.prompt), "response": it.response, "system": it.system or "",
             "conversation": json.dumps(conversation(it.prompt)) if conversation(it.prompt) else "",
             "meta": json.dumps(it.meta), "cnr_run": run_json, "cnr_set": given} for it in items]
    _BUILT.update(_fingerprint(d) for d in docs)
    return docs


def forget_built_docs() -> None:
    """A new evaluation starts (``--model cnr`` is made before lm-eval loads the tasks): requests
    built for an earlier one in this process are stale from now on."""
    _BUILT.clear()


def built_here(doc: dict[str, Any]) -> bool:
    """Whether this process built ``doc`` (from this command's options and files)."""
    return not _BUILT or _fingerprint(dict(doc)) in _BUILT  # nothing built since the model: documents made by hand


def doc_prompt(doc: dict[str, Any]) -> Any:
    """The item's prompt as it was read: text, or the conversation."""
    return json.loads(doc["conversation"]) if doc.get("conversation") else doc["prompt"]


def doc_items(docs: list[dict[str, Any]]) -> list[Item]:
    return [Item(d["id"], doc_prompt(d), d["response"], d.get("system") or None, json.loads(d.get("meta") or "{}"))
            for d in docs]
