"""Collect critiques and revisions from people in Label Studio (``cnr annotate push|pull``).

``push`` creates (or finds, by title) a project with the CnR labeling config and imports
(prompt, response) pairs as tasks, idempotently: each task keeps our record id in its data, and
ids already in the project are not imported again. ``pull`` exports the annotations and turns
them into validated CnR records; an empty critique, a revision identical to the response, or a
skipped task is reported with its task id, never kept or dropped silently.

Needs ``pip install "cnr-plugin[annotate]"`` (the Label Studio SDK). The server is yours:
``LABEL_STUDIO_URL`` and ``LABEL_STUDIO_API_KEY`` (a legacy token) say where it is.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cnr_plugin.errors import CnRError
from cnr_plugin.records import CnRDataError, CnRRecord, read_responses

LABEL_CONFIG = """<View>
  <Header value="Prompt"/>
  <Text name="prompt" value="$prompt"/>
  <Header value="Response"/>
  <Text name="response" value="$response"/>
  <Header value="Critique: first what is good (pros), then what is wrong or missing (cons), one point per line"/>
  <TextArea name="critique" toName="response" rows="6" editable="true" maxSubmissions="1" required="true"
            placeholder="Pros: ...&#10;Cons: ..."/>
  <Header value="Revision: the response as it should have been (starts as the response; fix every con)"/>
  <TextArea name="revision" toName="response" rows="8" editable="true" maxSubmissions="1" required="true"
            value="$response"/>
</View>"""

Policy = Literal["latest", "all"]


class AnnotateError(CnRError):
    """Label Studio cannot be reached or used as configured."""


def client(url: str | None = None, api_key: str | None = None) -> Any:
    try:
        from label_studio_sdk import LabelStudio
    except ImportError as exc:
        raise AnnotateError('cnr annotate needs the Label Studio SDK: pip install "cnr-plugin[annotate]"') from exc
    url = url or os.environ.get("LABEL_STUDIO_URL")
    api_key = api_key or os.environ.get("LABEL_STUDIO_API_KEY")
    if not url or not api_key:
        raise AnnotateError("set LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY (your Label Studio token)")
    return LabelStudio(base_url=url, api_key=api_key)


def find_or_create_project(ls: Any, title: str, label_config: str = LABEL_CONFIG,
                           description: str = "Critique and revise: write a critique and a revised response.",
                           create: bool = True) -> Any:
    """The project titled ``title`` with ``label_config`` (updated if it differs); created when
    missing, or an error when ``create`` is False."""
    for project in ls.projects.list():
        if project.title == title:
            if (project.label_config or "").strip() != label_config.strip():
                ls.projects.update(id=project.id, label_config=label_config)
            return project
    if not create:
        raise AnnotateError(f"no Label Studio project titled {title!r}")
    return ls.projects.create(title=title, label_config=label_config, description=description)


def existing_ids(ls: Any, project_id: int) -> set[str]:
    return {str(t.data.get("cnr_id")) for t in ls.tasks.list(project=project_id, fields="all")
            if t.data and t.data.get("cnr_id") is not None}


@dataclass
class PushResult:
    project_id: int
    imported: int
    already_there: int


def answer_prompts(prompts: str | Path, out: str | Path, *, base_url: str, model: str, api_key: str,
                   max_tokens: int = 512, concurrency: int = 8) -> tuple[int, int]:
    """Answer a prompts file (``id``?, ``prompt``, ``system``?, ``meta``? per row) with a served model:
    the responses people will critique. The evaluation layer's backend and cache; every row is
    checked (file:line:field) before the first request. Returns (rows, rows answered without a request:
    from the cache, or a prompt that occurs again)."""
    from cnr_plugin.cache import Cache
    from cnr_plugin.evaluation import OpenAIBackend, cached_generate
    from cnr_plugin.formats import Prompted
    from cnr_plugin.formats.base import conversation, prompt_text
    from cnr_plugin.records import PromptRecord, iter_records
    from cnr_plugin.results import write_jsonl

    rows = list(iter_records(prompts, model=PromptRecord))
    if not rows:
        raise CnRDataError(str(prompts), None, "no prompts in the file")
    backend = OpenAIBackend(base_url, model, api_key=api_key, max_tokens=max_tokens, concurrency=concurrency,
                            role="answering model", command="cnr annotate responses")
    backend.check_reachable()
    requests = [Prompted(messages=([{"role": "system", "content": r.system}] if r.system else [])
                         + (conversation(r.prompt) or [{"role": "user", "content": prompt_text(r.prompt)}]))
                for r in rows]
    answers, generated = cached_generate(backend, requests, Cache(), namespace="response")
    write_jsonl(out, [{"id": r.id or str(i), "prompt": r.prompt, "response": a,
                       **({"system": r.system} if r.system else {}), **({"meta": r.meta} if r.meta else {})}
                      for i, (r, a) in enumerate(zip(rows, answers), start=1)])
    return len(rows), len(rows) - generated


@dataclass(frozen=True)
class Draft:
    """A served reviser's critique and revision of one pair, offered to the annotator to correct."""

    critique: str
    revision: str
    model: str


def draft_revisions(pairs: list[Any], backend: Any, fmt: Any, model: str, examples: Any = (),
                    cache: Any = None) -> tuple[dict[str, Draft], list[str]]:
    """One critique-and-revise iteration of the reviser over the pairs (the evaluation layer's
    loop and cache); a generation that does not parse gives no draft and is reported."""
    from cnr_plugin.evaluation import Item, revise

    items = [Item.from_record(p) for p in pairs]
    steps = revise(items, fmt, backend, 1, examples=examples, cache=cache, progress=False)
    drafts, problems = {}, []
    for it in items:
        step = steps[it.id][0]
        if step.revision is None or not step.critique:
            problems.append(f"id {it.id}: no draft ({step.problem or 'empty critique'})")
            continue
        drafts[it.id] = Draft(step.critique, step.revision, model)
    return drafts, problems


def served_drafts(responses: str | Path, fields: dict[str, str] | None, *, base_url: str, model: str, api_key: str,
                  fmt_name: str = "plain", fewshot: int = 0) -> tuple[dict[str, Draft], list[str]]:
    """Drafts from a served reviser (model-assisted annotation): its critique and revision of each pair."""
    from cnr_plugin.cache import Cache
    from cnr_plugin.evaluation import OpenAIBackend, examples_for, run_config
    from cnr_plugin.plugins import get_format

    run = run_config({"format": fmt_name, "fewshot": fewshot}, source="cnr annotate push")
    fmt = get_format(run.format)
    backend = OpenAIBackend(base_url, model, api_key=api_key, stop=fmt.stop_sequences(), role="draft reviser",
                            command="cnr annotate push")
    backend.check_reachable()
    return draft_revisions(read_responses(responses, fields=fields), backend, fmt, model, examples_for(run), Cache())


def _prediction(draft: Draft) -> dict[str, Any]:
    def area(name: str, text: str) -> dict[str, Any]:
        return {"from_name": name, "to_name": "response", "type": "textarea", "value": {"text": [text]}}

    return {"model_version": f"cnr-draft:{draft.model}", "result": [area("critique", draft.critique),
                                                                     area("revision", draft.revision)]}


def push(path: str | Path, title: str, ls: Any = None, fields: dict[str, str] | None = None,
         drafts: dict[str, Draft] | None = None) -> PushResult:
    """Import (prompt, response) pairs as tasks; pairs whose id is in the project already are skipped.
    A conversation prompt is shown as marked turns and kept whole in the task's ``conversation``.
    ``drafts`` (model-assisted annotation): a reviser's critique and revision per id, imported as the
    task's prediction, so the annotator corrects a draft instead of writing from nothing; the
    draft is kept in the task data too, and ``pull`` measures how much the annotator changed it."""
    from cnr_plugin.formats.base import conversation, prompt_text

    ls = ls or client()
    pairs = read_responses(path, fields=fields)
    project = find_or_create_project(ls, title)
    have = existing_ids(ls, project.id)
    new = []
    for p in pairs:
        if p.id in have:
            continue
        data = {"cnr_id": p.id, "prompt": prompt_text(p.prompt), "response": p.response,
                "meta": json.dumps(p.meta or {}),
                "conversation": json.dumps(conversation(p.prompt)) if conversation(p.prompt) else ""}
        draft = (drafts or {}).get(str(p.id))
        if draft is None:
            new.append(data)
            continue
        data.update(draft_critique=draft.critique, draft_revision=draft.revision, draft_model=draft.model)
        new.append({"data": data, "predictions": [_prediction(draft)]})
    if new:
        ls.projects.import_tasks(id=project.id, request=new, commit_to_project=True)
    if drafts:  # the labeling page pre-fills a task with the prediction of the project's model version
        version = _prediction(next(iter(drafts.values())))["model_version"]
        ls.projects.update(id=project.id, model_version=version, show_collab_predictions=True)
    return PushResult(project.id, len(new), len(pairs) - len(new))


def draft_edits(data: dict[str, Any], critique: str, revision: str) -> dict[str, Any] | None:
    """How much the annotator changed the draft (character Levenshtein distances, rapidfuzz)."""
    if not data.get("draft_model"):
        return None
    from rapidfuzz.distance import Levenshtein

    dc = Levenshtein.distance(data.get("draft_critique", ""), critique)
    dr = Levenshtein.distance(data.get("draft_revision", ""), revision)
    return {"model": data["draft_model"], "critique_edit_distance": dc, "revision_edit_distance": dr,
            "changed": bool(dc or dr)}


@dataclass
class PullResult:
    records: list[CnRRecord]
    problems: list[str] = field(default_factory=list)  # "task 12 (id r3): ..." lines
    n_tasks: int = 0
    n_annotations: int = 0


def _text(result: list[dict[str, Any]], name: str) -> str:
    for item in result:
        if item.get("from_name") == name:
            texts = (item.get("value") or {}).get("text") or []
            return "\n".join(texts).strip()
    return ""


def pull(title: str, policy: Policy = "latest", ls: Any = None) -> PullResult:
    """Annotations of the project as CnR records.

    ``policy``: ``latest`` keeps, per task, the most recently updated usable annotation (one
    record per prompt, the default); ``all`` keeps every usable annotation (ids get the
    annotation id appended). Every record carries the annotator id in ``meta``.
    """
    ls = ls or client()
    project = next((p for p in ls.projects.list() if p.title == title), None)
    if project is None:
        raise AnnotateError(f"no Label Studio project titled {title!r}")
    raw = b"".join(ls.projects.exports.download_sync(id=project.id, export_type="JSON", download_all_tasks=True))
    tasks = json.loads(raw)
    out = PullResult([], n_tasks=len(tasks))
    for task in tasks:
        data = task.get("data") or {}
        where = f"task {task['id']} (id {data.get('cnr_id')})"
        anns = task.get("annotations") or []
        if not anns:
            out.problems.append(f"{where}: not annotated yet")
            continue
        usable = []
        for ann in anns:
            out.n_annotations += 1
            who = ann.get("completed_by")
            if ann.get("was_cancelled"):
                out.problems.append(f"{where}: skipped by annotator {who}")
                continue
            critique, revision = _text(ann.get("result") or [], "critique"), _text(ann.get("result") or [], "revision")
            if not critique:
                out.problems.append(f"{where}: annotation {ann['id']} by annotator {who} has an empty critique")
                continue
            if not revision:
                out.problems.append(f"{where}: annotation {ann['id']} by annotator {who} has an empty revision")
                continue
            if revision.strip() == str(data.get("response", "")).strip():
                out.problems.append(f"{where}: annotation {ann['id']} by annotator {who}: the revision is the "
                                    "response unchanged (kept: the critique may say it needs no change)")
            usable.append((ann, critique, revision))
        if policy == "latest":
            usable = sorted(usable, key=lambda u: u[0].get("updated_at") or "")[-1:]
        for ann, critique, revision in usable:
            meta = json.loads(data.get("meta") or "{}")
            meta.update(annotator=ann.get("completed_by"), annotation_id=ann["id"], label_studio_task=task["id"],
                        lead_time=ann.get("lead_time"))
            edits = draft_edits(data, critique, revision)
            if edits is not None:
                meta["draft"] = edits
            rid = str(data.get("cnr_id") or task["id"])
            try:
                out.records.append(CnRRecord(id=rid if policy == "latest" else f"{rid}-a{ann['id']}",
                                             prompt=json.loads(data["conversation"]) if data.get("conversation")
                                             else data.get("prompt", ""), response=data.get("response", ""),
                                             critique=critique, revision=revision, meta=meta))
            except ValueError as exc:
                out.problems.append(f"{where}: {exc}")
    return out


def write_records(records: list[CnRRecord], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(r.model_dump_json(exclude_none=True) + "\n" for r in records))


__all__ = ["LABEL_CONFIG", "AnnotateError", "push", "pull", "write_records", "client", "CnRDataError"]
