"""People judge too: pairwise comparisons in Label Studio (``cnr annotate compare push|pull``).

``push`` turns the revisions of an evaluation (an lm-eval ``cnr_winrate`` output folder with its
samples, or ``cnr revise`` output) into Label Studio tasks that show a prompt and two responses,
the original and revision *i*, on randomised sides that are recorded in a local sides file and
never shown: the page says "Response A" and "Response B". The annotator picks A, B or tie and may
say why. ``pull`` maps each choice back through the sides file and writes, per iteration, the
human win rate of the revision with its interval, the agreement between people and the LLM judge
on the same pairs (percent agreement with and without ties, and Cohen's kappa, as MT-Bench reports
human-judge agreement), and, where several people judged a pair, the agreement between them
(percent agreement and Light's kappa, the mean of the pairwise Cohen's kappas). ``cnr report``
draws the human curve beside the judge's.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from .collect import client, find_or_create_project
from cnr_plugin.errors import CnRError
from cnr_plugin.evaluation.stats import agreement, cohen_kappa, label, win_rate
from cnr_plugin.formats.base import prompt_text
from cnr_plugin.results import ResultsError, lm_eval_samples, read_items, write_human

COMPARE_CONFIG = """<View>
  <Header value="Prompt"/>
  <Text name="prompt" value="$prompt"/>
  <Header value="Response A"/>
  <Text name="response_a" value="$response_a"/>
  <Header value="Response B"/>
  <Text name="response_b" value="$response_b"/>
  <Header value="Which response answers the prompt better?"/>
  <Choices name="preference" toName="prompt" choice="single" required="true" showInline="true">
    <Choice value="A"/>
    <Choice value="B"/>
    <Choice value="Tie"/>
  </Choices>
  <Header value="Why? (optional)"/>
  <TextArea name="reason" toName="prompt" rows="2" maxSubmissions="1"/>
</View>"""



class CompareError(CnRError):
    """A comparison source or sides file that cannot be used."""


@dataclass(frozen=True)
class ComparePair:
    """The original response and revision ``iteration`` of one item, with the LLM judge's score
    of the revision against the original (None where the source has no verdicts)."""

    key: str
    item_id: str
    iteration: int
    prompt: str
    original: str
    revision: str
    judge_score: float | None = None


def read_pairs(path: str | Path, iterations: list[int] | None = None) -> list[ComparePair]:
    """Pairs from an lm-eval output folder (its ``samples_cnr_winrate_*.jsonl``, judge verdicts
    included) or a ``cnr revise`` output jsonl. A revision identical to the original is left out
    (there is nothing to compare)."""
    path = Path(path)
    rows: list[tuple[str, Any, str, list[dict], list[dict]]] = []
    if path.is_dir():
        try:
            items = read_items(lm_eval_samples(path))
        except ResultsError as exc:
            raise CompareError(str(exc)) from None
        rows = [(it["id"], it["prompt"], it["response"], it["steps"], it["judgments"]) for it in items]
    else:
        from cnr_plugin.records import RevisedRecord, iter_records

        for rec in iter_records(path, model=RevisedRecord):
            rows.append((rec.id, rec.prompt, rec.response, [s.model_dump() for s in rec.steps], []))
    pairs = []
    for item_id, prompt, original, steps, judgments in rows:
        scores = {j["iteration"]: j["score"] for j in judgments if j.get("against") == "original"}
        for step in steps:
            k = int(step["iteration"])
            if (iterations and k not in iterations) or step["result"] == original:
                continue
            pairs.append(ComparePair(f"{item_id}@{k}", item_id, k, prompt_text(prompt), original, step["result"],
                                     scores.get(k)))
    if not pairs:
        raise CompareError(f"{path}: no revision differs from its original response; nothing to compare")
    return pairs


def revision_side(key: str, seed: int) -> str:
    """Where the revision is shown, A or B: a coin seeded by the pair, so a re-push agrees."""
    return "A" if random.Random(f"{seed}:{key}").random() < 0.5 else "B"


def _project(ls: Any, title: str, create: bool) -> Any:
    return find_or_create_project(ls, title, COMPARE_CONFIG, "Which of two responses answers the prompt better?",
                                  create=create)


def push(source: str | Path, title: str, sides_file: str | Path, *, iterations: list[int] | None = None,
         seed: int = 0, ls: Any = None) -> tuple[int, int, int]:
    """Import the pairs as tasks (pairs in the project already are skipped); the sides and the
    judge's scores go to ``sides_file``, not to Label Studio. Returns (project id, imported, skipped)."""
    pairs = read_pairs(source, iterations)
    sides_path = Path(sides_file)
    sides: dict[str, Any] = json.loads(sides_path.read_text()) if sides_path.exists() else {"project": title, "pairs": {}}
    if sides.get("project") != title:
        raise CompareError(f"{sides_path}: records the sides of project {sides.get('project')!r}, not {title!r}")
    ls = ls or client()
    project = _project(ls, title, create=True)
    have = {str(t.data.get("cnr_pair")) for t in ls.tasks.list(project=project.id, fields="all") if t.data}
    new = []
    for p in pairs:
        if p.key in have:
            continue
        side = sides["pairs"].get(p.key, {}).get("revision_side") or revision_side(p.key, seed)
        a, b = (p.revision, p.original) if side == "A" else (p.original, p.revision)
        new.append({"cnr_pair": p.key, "prompt": p.prompt, "response_a": a, "response_b": b})
        sides["pairs"][p.key] = {"item_id": p.item_id, "iteration": p.iteration, "revision_side": side,
                                 "judge_score": p.judge_score, "source": str(source), "seed": seed}
    sides_path.parent.mkdir(parents=True, exist_ok=True)
    sides_path.write_text(json.dumps(sides, indent=1))  # before the import: a task never exists without its sides
    if new:
        ls.projects.import_tasks(id=project.id, request=new, commit_to_project=True)
    return project.id, len(new), len(pairs) - len(new)


def human_labels(tasks: list[dict[str, Any]], sides: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """(one row per submitted choice: pair, iteration, annotator, label of the revision, reason;
    problems) from a Label Studio JSON export and the sides file."""
    out, problems = [], []
    for task in tasks:
        key = str((task.get("data") or {}).get("cnr_pair"))
        where = f"task {task['id']} (pair {key})"
        side = sides["pairs"].get(key)
        if side is None:
            problems.append(f"{where}: not in the sides file; left out")
            continue
        for ann in task.get("annotations") or []:
            if ann.get("was_cancelled"):
                problems.append(f"{where}: skipped by annotator {ann.get('completed_by')}")
                continue
            result = ann.get("result") or []
            choice = next((c for r in result if r.get("from_name") == "preference"
                           for c in (r.get("value") or {}).get("choices") or []), None)
            reason = next(("\n".join(r["value"].get("text") or []) for r in result if r.get("from_name") == "reason"),
                          "")
            if choice not in ("A", "B", "Tie"):
                problems.append(f"{where}: annotation {ann.get('id')} has no choice")
                continue
            outcome = "tie" if choice == "Tie" else "win" if choice == side["revision_side"] else "loss"
            out.append({"pair": key, "iteration": side["iteration"], "annotator": ann.get("completed_by"),
                        "label": outcome, "reason": reason, "judge_score": side.get("judge_score")})
    return out, problems


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Human win rate per iteration (each pair's annotators averaged first, so a pair judged by
    three people weighs as much as one judged by one), agreement with the judge per annotation,
    and agreement between annotators."""
    score = {"win": 1.0, "tie": 0.5, "loss": 0.0}
    out_rows = []
    for k in sorted({r["iteration"] for r in rows}):
        at = [r for r in rows if r["iteration"] == k]
        by_pair: dict[str, list[float]] = {}
        for r in at:
            by_pair.setdefault(r["pair"], []).append(score[r["label"]])
        people = win_rate([float(np.mean(v)) for v in by_pair.values()])
        judged = [r for r in at if r["judge_score"] is not None]
        judge_pairs = {r["pair"]: r["judge_score"] for r in judged}
        out_rows.append({
            "iteration": k, "against": "original", "n_pairs": len(by_pair), "n_annotations": len(at),
            "winrate": people["winrate"], "ci95": people["ci95"],
            "judge_winrate_same_pairs": win_rate(list(judge_pairs.values()))["winrate"] if judge_pairs else None,
            "human_vs_judge": agreement([r["label"] for r in judged], [label(r["judge_score"]) for r in judged]),
        })
    # annotator pairs: Cohen's kappa on the pairs both judged; Light's kappa is their mean
    by_annotator: dict[Any, dict[str, str]] = {}
    for r in rows:
        by_annotator.setdefault(r["annotator"], {})[r["pair"]] = r["label"]
    kappas, same, n_common = [], [], 0
    for u, v in combinations(sorted(by_annotator, key=str), 2):
        common = sorted(set(by_annotator[u]) & set(by_annotator[v]))
        if not common:
            continue
        a, b = [by_annotator[u][p] for p in common], [by_annotator[v][p] for p in common]
        kappas.append(cohen_kappa(a, b))
        same += [x == y for x, y in zip(a, b)]
        n_common += len(common)
    finite = [x for x in kappas if x == x]
    return {"kind": "human", "rows": out_rows, "n_annotators": len(by_annotator),
            "inter_annotator": {"annotator_pairs": len(kappas), "n_shared_judgments": n_common,
                                "percent": float(np.mean(same)) if same else None,
                                "light_kappa": float(np.mean(finite)) if finite else None}}


def pull(title: str, sides_file: str | Path, out_dir: str | Path, ls: Any = None) -> tuple[dict[str, Any], list[str]]:
    """Export the project's choices, map them through the sides file, write
    ``human_results.json`` and ``human_judgments.jsonl`` in ``out_dir``."""
    sides_path = Path(sides_file)
    if not sides_path.exists():
        raise CompareError(f"{sides_path}: no sides file (written by `cnr annotate compare push`)")
    sides = json.loads(sides_path.read_text())
    ls = ls or client()
    project = _project(ls, title, create=False)
    raw = b"".join(ls.projects.exports.download_sync(id=project.id, export_type="JSON", download_all_tasks=True))
    rows, problems = human_labels(json.loads(raw), sides)
    if not rows:
        raise CompareError(f"project {title!r}: no submitted choices yet")
    result = summarize(rows) | {"name": f"people ({title})", "project": title, "problems": problems}
    write_human(out_dir, result, rows)
    return result, problems
