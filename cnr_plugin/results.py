"""A run's results, written and read in one place, for every entry point and every reader.

Four layouts, one reader (:func:`read_runs`, :func:`read_items`):

* an lm-eval output folder: ``<output_path>/<model>/results_<stamp>.json`` with the metrics named
  here (:data:`PER_RUN`, :data:`PER_ITERATION`), and with ``--log_samples`` the items in
  ``samples_cnr_winrate_<stamp>.jsonl``;
* a ``cnr judge`` folder (:func:`write_judged`): ``cnr_results.json`` (summary), ``samples.jsonl``
  (items with their steps and verdicts) and ``judgments.jsonl`` (one row per comparison);
* a ``cnr annotate compare pull`` folder (:func:`write_human`): ``human_results.json`` and
  ``human_judgments.jsonl``;
* ``cnr revise`` output (:func:`write_revisions`): one jsonl row per item with its steps.

Every item reads back as one dict shape: ``id``, ``prompt`` (text, or the conversation),
``response``, ``system``, ``meta``, ``steps`` (:class:`cnr_plugin.evaluation.Step` as dicts),
``judgments`` (:class:`cnr_plugin.evaluation.Judged` as dicts) and ``skipped``. The report, the
results page, human comparison and the demo read it through here, and the outcome vocabulary
(won, tied, lost, not judged, no usable revision) is this module's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import CnRError, one_line, validation_error
from .records import CnRDataError, _id_to_str, iter_rows, validate_row

#: what a generation that the loop could not read a revision from is called, everywhere
NO_REVISION = "no usable revision"
#: outcomes of one comparison of a revision with its original, and of an iteration of an item
OUTCOMES = ("won", "tied", "lost", "not judged", NO_REVISION)

# -- metric names (lm-eval's table) -----------------------------------------------------------------

#: per run: (metric, aggregation of the cnr_utils module (each leaves None out), higher is better). The
#: direction is None (no arrow in lm-eval's table) for counters and diagnostics
#: whose ideal is not an end of the scale (a judge naming position A half the time is right)
PER_RUN = (
    ("n_items", "total", None),
    ("n_failed", "total", False),
    ("n_unparsed", "total", False),
    ("n_revision_parse_failures", "total", False),  # generations with no usable revision
    ("n_skipped_oversized", "total", False),
    ("reviser_requests", "average", None),
    ("accept_judgments", "average", None),
    # how the judge behaved (cnr_plugin/evaluation/diagnostics.py): shares summed over documents
    ("judge_consistency", "share", True),
    ("judge_position_a", "share", None),
    ("judge_prefers_longer", "share", None),
    ("judge_tie_share", "share", None),
    ("judge_unparsed_share", "share", False),
)
#: what a run cost (calls, cache hits, tokens, money) is run accounting, not a metric: it depends on
#: the cache's state, so two identical runs would give different tables. lm-eval's table leaves it
#: out; every item in the samples carries the run's ``judge_usage`` and ``reviser_usage``
#: (:func:`lm_eval_accounting` reads them back) and the task logs them as one line per role
ACCOUNTING = ("calls", "cached", "tokens_in", "tokens_out", "cost", "calls_without_usage", "seconds_per_1000_calls")
#: the judge diagnostics lm-eval's table shows, by their name in :mod:`cnr_plugin.evaluation.diagnostics`
JUDGE_SHARES = ("consistency", "position_a", "prefers_longer", "tie_share", "unparsed_share")
#: per iteration k: (metric template, aggregation, higher is better, first iteration it exists for);
#: an interval's bounds have no direction of their own
PER_ITERATION = (
    ("winrate_iter{k}", "winrate", True, 1),
    ("winrate_iter{k}_ci95_lo", "ci95_lo", None, 1),
    ("winrate_iter{k}_ci95_hi", "ci95_hi", None, 1),
    ("winrate_vs_prev_iter{k}", "winrate", True, 2),
    ("lc_winrate_iter{k}", "lc_winrate", True, 1),
    ("lc_winrate_iter{k}_ci95_lo", "lc_ci95_lo", None, 1),
    ("lc_winrate_iter{k}_ci95_hi", "lc_ci95_hi", None, 1),
    ("len_ratio_iter{k}", "average", None, 1),
    ("stopped_iter{k}", "average", None, 1),
    ("rejected_iter{k}", "average", None, 1),
    # judge: ifeval: IFEval's accuracies of the texts (iteration 0: the originals), as (followed, asked) pairs
    ("ifeval_prompt_strict_iter{k}", "share", True, 0),
    ("ifeval_inst_strict_iter{k}", "share", True, 0),
    ("ifeval_prompt_loose_iter{k}", "share", True, 0),
    ("ifeval_inst_loose_iter{k}", "share", True, 0),
)
_TEXT_METRIC = re.compile(r"^ifeval_(\w+?)_iter(\d+)$")
_WINRATE_METRIC = re.compile(r"^(lc_)?winrate_iter(\d+)(_ci95_lo|_ci95_hi)?$")


def run_metrics(iterations: int, compare_previous: bool = False, text_metrics: bool = False
                ) -> list[tuple[str, str, bool | None]]:
    """The metrics one run reports, as lm-eval declares them (name, aggregation, higher is better):
    iterations 1..``iterations``, the win rates against the previous revision only with
    ``compare_previous``, the judge's own text figures (IFEval's accuracies) only for a judge that
    has them. Every document of the run carries each of them (:func:`run_item_metrics`), so that a
    reader of lm-eval's samples (its W&B logger builds one column per declared metric) finds them all."""
    out = list(PER_RUN)
    for template, aggregation, higher, first in PER_ITERATION:
        if (template.startswith("winrate_vs_prev") and not compare_previous) or \
                (template.startswith("ifeval_") and not text_metrics):
            continue
        out += [(template.format(k=k), aggregation, higher) for k in range(first, iterations + 1)]
    return out


def task_metrics(max_iterations: int) -> list[tuple[str, str, bool | None]]:
    """Every metric the cnr_winrate task can report, as its YAML's ``metric_list`` must name them
    (a run declares the part of it that it reports: :func:`run_metrics`)."""
    return run_metrics(max_iterations, compare_previous=True, text_metrics=True)


def item_metrics(original: str, data: dict[str, Any]) -> dict[str, Any]:
    """One document's metrics (lm-eval's ``process_results``) from its steps and verdicts."""
    steps = data["steps"]
    out: dict[str, Any] = {"n_items": 1, "n_failed": 0, "n_unparsed": 0,
                           "n_skipped_oversized": int(bool(data.get("skipped"))),
                           "n_revision_parse_failures": sum(no_revision(s) for s in steps),
                           # per item: what the run cost (stopped items are not asked again)
                           "reviser_requests": sum(not s.get("stopped") for s in steps),
                           "accept_judgments": data.get("accept_judgments", 0)}
    original_len = max(1, len(original))
    stopped = 0
    for step in steps:
        k = step["iteration"]
        out[f"len_ratio_iter{k}"] = len(step["result"]) / original_len
        stopped = stopped or int(bool(step.get("stopped") or step.get("stop_signal")))
        out[f"stopped_iter{k}"] = stopped  # the item will not be revised after iteration k
        out[f"rejected_iter{k}"] = int(step.get("accepted") is False)
    from .evaluation.diagnostics import SHARES, add_counts, comparison_counts, from_item

    c = add_counts(comparison_counts(j) for j in from_item({"response": original, **data}))
    for name in JUDGE_SHARES:
        num, den = SHARES[name]
        out[f"judge_{name}"] = (c.get(num, 0.0), c.get(den, 0.0))
    for k, figures in (data.get("text_metrics") or {}).items():
        for name, pair in figures.items():
            out[f"ifeval_{name}_iter{k}"] = tuple(pair)
    for j in data.get("judgments", []):
        k = j["iteration"]
        if j["status"] != "ok":
            out[f"n_{j['status']}"] += 1
            continue
        if j["against"] != "original":
            out[f"winrate_vs_prev_iter{k}"] = j["score"]
            continue
        # an interval's bounds carry the run's bootstrap seed with the score (lm-eval aggregates per metric)
        seed = data.get("seed", 0)
        out[f"winrate_iter{k}"] = j["score"]
        out[f"winrate_iter{k}_ci95_lo"] = out[f"winrate_iter{k}_ci95_hi"] = (j["score"], seed)
        # the length-controlled win rate is fitted over all items: each carries its lengths
        result = next(s["result"] for s in steps if s["iteration"] == k)
        lc = (j["score"], len(result), len(original), seed)
        out[f"lc_winrate_iter{k}"] = out[f"lc_winrate_iter{k}_ci95_lo"] = out[f"lc_winrate_iter{k}_ci95_hi"] = lc
    return out


def run_item_metrics(original: str, data: dict[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """:func:`item_metrics`, with every metric the run reports (``names``, :func:`run_metrics`)
    present: None where this document has no value for it (a failed verdict, an item skipped as
    oversized); every aggregation of the task leaves None out. A figure the run does not declare
    (a plugin judge's own text figure, say) is kept as it is."""
    return {**dict.fromkeys(names), **item_metrics(original, data)}


# -- items and outcomes ------------------------------------------------------------------------------

def no_revision(step: dict[str, Any]) -> bool:
    """A step whose generation gave no usable revision (the loop kept the text)."""
    return step.get("revision") is None and not step.get("stopped")


def outcome(score: float | None, status: str) -> str:
    if status != "ok" or score is None:
        return "not judged"
    return "won" if score > 0.5 else "lost" if score < 0.5 else "tied"


def item_outcomes(item: dict[str, Any]) -> dict[int, str]:
    return {j["iteration"]: outcome(j["score"], j["status"]) for j in item.get("judgments", [])
            if j["against"] == "original"}


def counts(items: Iterable[dict[str, Any]], iteration: int) -> dict[str, int]:
    """How many items won, tied, lost or were not judged at ``iteration``, and how many had no
    usable revision there (those are also judged: the kept text against the original)."""
    out = dict.fromkeys(OUTCOMES, 0)
    for it in items:
        o = item_outcomes(it).get(iteration)
        if o:
            out[o] += 1
        out[NO_REVISION] += any(s["iteration"] == iteration and no_revision(s) for s in it.get("steps", []))
    return out


def item_scores(items: Iterable[dict[str, Any]], iteration: int) -> dict[str, float]:
    """Each judged item's score at ``iteration`` (against the original), by id: paired comparisons
    of two runs on the same items read these."""
    return {str(it["id"]): j["score"] for it in items for j in it.get("judgments", [])
            if j["iteration"] == iteration and j["against"] == "original" and j["score"] is not None}


def letter_winrate(items: Sequence[dict[str, Any]], iteration: int) -> float | None:
    """For runs with probability verdicts: the win rate the same verdicts give read as letters
    (None where the verdicts carry no probabilities)."""
    from .evaluation.judging import score_orders
    from .evaluation.stats import win_rate
    from .judges import Verdict

    scores = []
    for it in items:
        for j in it.get("judgments", []):
            if j["iteration"] != iteration or j["against"] != "original" or j["status"] != "ok":
                continue
            if "probs" not in j["forward"]:
                return None
            score, _ = score_orders(Verdict(j["forward"]["winner"], "ok"), Verdict(j["backward"]["winner"], "ok"))
            scores.append(score)
    return win_rate(scores)["winrate"] if scores else None


# -- reading -----------------------------------------------------------------------------------------

class ResultsError(CnRError):
    """A results folder or file that holds no run this module can read."""


@dataclass
class Run:
    """One run's win rates by iteration, wherever they were written."""

    name: str
    source: str
    # iteration -> (win rate, ci low, ci high)
    points: dict[int, tuple[float, float, float]] = field(default_factory=dict)
    # iteration -> (length-controlled win rate, ci low, ci high)
    lc: dict[int, tuple[float, float, float]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def _run_from_lm_eval(path: Path, data: dict[str, Any]) -> Run | None:
    res = data.get("results", {}).get("cnr_winrate")
    if not res:
        return None
    vals: dict[int, dict[str, float]] = {}
    for key, value in res.items():
        m = _WINRATE_METRIC.match(key.split(",")[0])
        if m and isinstance(value, (int, float)):
            vals.setdefault(int(m.group(2)), {})[(m.group(1) or "") + (m.group(3) or "mean")] = float(value)
    args = (data.get("config") or {}).get("model_args") or {}
    if isinstance(args, str):
        args = dict(kv.split("=", 1) for kv in args.split(",") if "=" in kv)
    model = str(args.get("peft") or args.get("pretrained") or args.get("model") or path.parent.name)
    # lm-eval writes <output_path>/<model>/results_*.json: the run is named by its output folder and
    # the model's last path part, never by absolute paths (they cut a plot's legend)
    name = f"{path.parent.parent.name}: {Path(model.rstrip('/')).name or model}"
    run = Run(name, str(path))
    nan = float("nan")
    for k, v in sorted(vals.items()):
        if "mean" in v:
            run.points[k] = (v["mean"], v.get("_ci95_lo", nan), v.get("_ci95_hi", nan))
        if "lc_mean" in v:
            run.lc[k] = (v["lc_mean"], v.get("lc__ci95_lo", nan), v.get("lc__ci95_hi", nan))
    run.extra = {k.split(",")[0]: v for k, v in res.items()
                 if k.startswith(("n_", "len_ratio", "judge_")) and "stderr" not in k}
    by_iteration: dict[str, dict[str, float]] = {}
    for key, value in res.items():
        m = _TEXT_METRIC.match(key.split(",")[0])
        if m and isinstance(value, (int, float)) and value == value:
            by_iteration.setdefault(m.group(2), {})[m.group(1)] = float(value)
    if by_iteration:
        run.extra["text_metrics"] = {"judge": "ifeval", "by_iteration": dict(sorted(by_iteration.items(),
                                                                                    key=lambda kv: int(kv[0])))}
    samples = samples_file(path)
    if samples is not None:  # the run's accounting is in its samples, not among its metrics
        for key, value in lm_eval_accounting(samples).get("judge", {}).items():
            run.extra[f"judge_{key}"] = value
    return run


def lm_eval_accounting(samples: str | Path) -> dict[str, dict[str, Any]]:
    """What an lm-eval run cost, by role (``judge``, ``reviser``): the :data:`ACCOUNTING` figures
    that every item of its samples file carries (the largest, where ranks of a data-parallel run
    each carried their own)."""
    out: dict[str, dict[str, Any]] = {}
    for line, _unit, row in iter_rows(Path(samples), model=LmEvalSample):
        resp = row.filtered_resps
        data = _decoded(resp if isinstance(resp, str) else resp[0], "filtered_resps", str(samples), line)
        for role in ("judge", "reviser"):
            usage = data.get(f"{role}_usage") if isinstance(data, dict) else None
            for key in ACCOUNTING:
                value = usage.get(key) if isinstance(usage, dict) else None
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    figures = out.setdefault(role, {})
                    figures[key] = max(figures.get(key, value), value)
    return out


class _SummaryRow(BaseModel):
    """One row of a ``cnr judge`` / people's summary, as far as a run reads it."""

    model_config = ConfigDict(extra="allow")

    against: str
    iteration: int = Field(ge=1)
    winrate: float | None
    ci95: tuple[float | None, float | None]
    lc_winrate: float | None = None
    lc_ci95: tuple[float | None, float | None] | None = None


class _Summary(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str | None = None
    rows: list[_SummaryRow]
    judge_diagnostics: dict[str, Any] | None = None
    judge_usage: dict[str, Any] | None = None


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON file that must hold one object; anything else is one line naming the file (and line)."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ResultsError(f"{path}: invalid UTF-8 at byte {exc.start}") from None
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise ResultsError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _run_from_summary(path: Path, data: dict[str, Any]) -> Run:
    try:
        _Summary.model_validate(data)
    except ValidationError as exc:
        raise ResultsError(f"{path}: not a run's summary: {one_line(exc)}") from None
    run = Run(data.get("name") or path.parent.name, str(path))
    for row in data["rows"]:
        if row["against"] == "original":
            run.points[row["iteration"]] = (row["winrate"], *row["ci95"])
            if "lc_winrate" in row:
                run.lc[row["iteration"]] = (row["lc_winrate"], *row["lc_ci95"])
    run.extra = {k: data[k] for k in ("n_comparisons", "n_excluded", "kind") if k in data}
    if data.get("text_metrics"):
        run.extra["text_metrics"] = data["text_metrics"]
    agreement = {row["iteration"]: row["human_vs_judge"] for row in data["rows"] if row.get("human_vs_judge")}
    if agreement:  # people's verdicts (cnr annotate compare): how often the LLM judge agreed with them
        run.extra["agreement_with_judge"] = agreement
    for name, value in (data.get("judge_diagnostics") or {}).items():
        run.extra[f"judge_{name}"] = value
    for key, value in (data.get("judge_usage") or {}).items():
        if key in ACCOUNTING:
            run.extra[f"judge_{key}"] = value
    return run


def result_files(paths: Iterable[str | Path]) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += (sorted(p.rglob("results_*.json")) + sorted(p.rglob("cnr_results.json")) +
                      sorted(p.rglob("human_results.json")))
        elif p.is_file():
            files.append(p)
        else:
            raise ResultsError(f"{p} does not exist")
    return files


def read_runs(paths: Sequence[str | Path]) -> list[Run]:
    """Runs from lm-eval output folders / results JSON files, ``cnr judge`` results, or people's
    verdicts (``cnr annotate compare pull``)."""
    runs = []
    for f in result_files(paths):
        data = read_json_object(f)
        run = _run_from_summary(f, data) if "rows" in data else _run_from_lm_eval(f, data)
        if run is not None and run.points:
            runs.append(run)
    if not runs:
        raise ResultsError(f"no cnr_winrate results under {', '.join(map(str, paths))}")
    return runs


def samples_file(results_file: str | Path) -> Path | None:
    """The items file beside a results file (lm-eval's samples of the same run, or ``samples.jsonl``)."""
    results_file = Path(results_file)
    if results_file.name == "cnr_results.json":
        path = results_file.parent / "samples.jsonl"
        return path if path.is_file() else None
    stamp = results_file.stem.removeprefix("results_")
    exact = sorted(results_file.parent.glob(f"samples_cnr_winrate_{stamp}.jsonl"))
    found = exact or sorted(results_file.parent.glob("samples_cnr_winrate_*.jsonl"))
    return found[-1] if found else None


def lm_eval_samples(folder: str | Path) -> Path:
    """The newest ``samples_cnr_winrate_*.jsonl`` under an lm-eval output folder."""
    found = sorted(Path(folder).rglob("samples_cnr_winrate_*.jsonl"))
    if not found:
        raise ResultsError(f"{folder}: no samples_cnr_winrate_*.jsonl (run lm_eval with --log_samples)")
    return found[-1]


class _VerdictRow(BaseModel):
    """One position order of a verdict, as :meth:`cnr_plugin.judges.Verdict.as_dict` writes it."""

    model_config = ConfigDict(extra="allow")

    winner: Literal["A", "B", "tie"] | None = None
    status: Literal["ok", "failed", "unparsed"]
    raw: str | None = None
    error: str | None = None
    probs: dict[Literal["A", "B", "tie"], float] | None = None


class JudgmentRow(BaseModel):
    """One comparison with its two position orders (:class:`cnr_plugin.evaluation.Judged` as a dict)."""

    model_config = ConfigDict(extra="allow")

    item_id: str | None = None
    iteration: int = Field(ge=1)
    against: str
    score: float | None = Field(default=None, ge=0, le=1)
    status: Literal["ok", "failed", "unparsed"]
    forward: _VerdictRow
    backward: _VerdictRow


class _ItemStep(BaseModel):
    """One iteration of an item as the readers use it (:class:`cnr_plugin.evaluation.Step` as a dict; the
    texts a step only records, ``response`` and ``generation``, may be absent)."""

    model_config = ConfigDict(extra="forbid")

    iteration: int = Field(ge=1)
    result: str
    response: str | None = None
    generation: str | None = None
    critique: str | None = None
    revision: str | None = None
    problem: str | None = None
    stopped: bool = False
    stop_signal: str | None = None
    accepted: bool | None = None


class ItemRow(BaseModel):
    """One item of a run in the one item shape (module docstring): what every reader of items checks."""

    model_config = ConfigDict(extra="forbid")
    file_kind: ClassVar[str] = "a run's items (`cnr judge` samples.jsonl, `cnr revise` output or lm-eval samples)"

    id: str
    prompt: str | list[dict[str, str]]
    response: str
    system: str | None = None
    meta: dict[str, Any] | None = None
    steps: list[_ItemStep] = []
    judgments: list[JudgmentRow] = []
    skipped: str | None = None
    final: str | None = None  # `cnr revise` output: the last iteration's text

    _id = field_validator("id", mode="before")(_id_to_str)

    @field_validator("steps")
    @classmethod
    def _iterations_in_order(cls, v: list[_ItemStep]) -> list[_ItemStep]:
        if [s.iteration for s in v] != list(range(1, len(v) + 1)):
            raise ValueError("must hold iterations 1, 2, ... in order")
        return v


class _LmEvalDoc(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    prompt: str
    response: str
    conversation: str = ""
    system: str | None = ""
    meta: str | dict[str, Any] | None = None

    _id = field_validator("id", mode="before")(_id_to_str)


class LmEvalSample(BaseModel):
    """One line of lm-eval's ``samples_cnr_winrate_*.jsonl`` as far as the item shape reads it."""

    model_config = ConfigDict(extra="allow")
    file_kind: ClassVar[str] = "lm-eval's cnr_winrate samples"

    doc: _LmEvalDoc
    filtered_resps: str | list[str] = Field(min_length=1)

    @property
    def id(self) -> str:
        return self.doc.id


def _decoded(text: str, field: str, source: str, line: int | None) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CnRDataError(source, line, f"invalid JSON inside the string: {exc.msg} (column {exc.colno})",
                           field=field) from None


def item_from_lm_eval(row: Mapping[str, Any] | LmEvalSample, source: str = "<row>", line: int | None = None
                      ) -> dict[str, Any]:
    """One line of lm-eval's ``samples_cnr_winrate_*.jsonl`` in the item shape, checked: an error names
    ``source``, ``line`` and the field."""
    sample = row if isinstance(row, LmEvalSample) else validate_row(row, source, line, model=LmEvalSample)
    resp = sample.filtered_resps
    data = _decoded(resp if isinstance(resp, str) else resp[0], "filtered_resps", source, line)
    if not isinstance(data, dict):
        raise CnRDataError(source, line, f"expected a JSON object inside the string, got {type(data).__name__}",
                           field="filtered_resps")
    doc = sample.doc
    meta = _decoded(doc.meta, "doc.meta", source, line) if isinstance(doc.meta, str) and doc.meta else doc.meta
    item = {"id": doc.id,
            "prompt": _decoded(doc.conversation, "doc.conversation", source, line) if doc.conversation else doc.prompt,
            "response": doc.response, "system": doc.system or None, "meta": meta or {},
            "steps": data.get("steps", []), "judgments": data.get("judgments", []), "skipped": data.get("skipped")}
    try:
        ItemRow.model_validate(item)
    except ValidationError as exc:  # name the field of the line, not of the item built from it
        key, msg = validation_error(exc)
        top = key.split(".")[0]
        field = (f"filtered_resps ({key})" if top in ("steps", "judgments", "skipped") else
                 "doc.conversation" if top == "prompt" and doc.conversation else f"doc.{key}")
        raise CnRDataError(source, line, msg, field=field) from None
    return item


def _summary_items(path: Path) -> Path:
    """The items beside a run's summary file (``cnr_results.json``, lm-eval's ``results_*.json``)."""
    found = samples_file(path)
    if found is None:
        raise ResultsError(f"{path}: a run's summary, and its items are not beside it (a `cnr judge` folder has "
                           "samples.jsonl; lm-eval writes them with --log_samples)")
    return found


def read_items(path: str | Path) -> list[dict[str, Any]]:
    """Every item of a run, in the one item shape: from lm-eval samples (a samples file, or an
    output folder), a ``cnr judge`` ``samples.jsonl``, folder or summary, or ``cnr revise`` output.
    Each line is checked (:class:`ItemRow`, :class:`LmEvalSample`) before anything is returned; the first
    bad one raises :class:`cnr_plugin.records.CnRDataError` naming file, line and field."""
    path = Path(path)
    if path.is_dir():
        judged = path / "samples.jsonl"
        path = judged if judged.is_file() else lm_eval_samples(path)
    elif path.name == "cnr_results.json" or (path.name.startswith("results_") and path.suffix == ".json"):
        path = _summary_items(path)
    out = []
    for line, _unit, record in iter_rows(path, model=lambda row: LmEvalSample if "filtered_resps" in row else ItemRow):
        if isinstance(record, LmEvalSample):
            out.append(item_from_lm_eval(record, str(path), line))
        else:
            out.append({"system": None, "meta": {}, "judgments": [], "skipped": None,
                        **record.model_dump(exclude_unset=True)})
    return out


class HumanChoice(BaseModel):
    """One row of ``human_judgments.jsonl`` as far as judge agreement reads it."""

    model_config = ConfigDict(extra="ignore")

    id: None = None  # rows are pairs, not items: no id to check for duplicates
    pair: str
    label: Literal["win", "tie", "loss"]


def read_human_labels(path: Path) -> dict[str, list[str]]:
    """People's choices (``cnr annotate compare pull``: a folder or its ``human_judgments.jsonl``),
    by pair (``<item id>@<iteration>``): the revision's label against the original per annotation."""
    path = path / "human_judgments.jsonl" if path.is_dir() else path
    out: dict[str, list[str]] = {}
    for _line, _unit, row in iter_rows(path, model=HumanChoice):
        out.setdefault(row.pair, []).append(row.label)
    return out


# -- writing -----------------------------------------------------------------------------------------

def _write_whole(path: str | Path, text: str) -> Path:
    """``text`` to ``path``, whole or not at all (a temporary file, then renamed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> Path:
    """Rows as JSON lines, written whole or not at all."""
    return _write_whole(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def write_json(path: str | Path, data: Any) -> Path:
    return _write_whole(path, json.dumps(data, indent=2))


def item_row(item: Any, steps: Sequence[dict[str, Any]], judgments: Sequence[dict[str, Any]] | None = None
             ) -> dict[str, Any]:
    """One item in the item shape (``system`` only where there is one, as records have it)."""
    row = {"id": item.id, "prompt": item.prompt, "response": item.response, "meta": item.meta,
           **({"system": item.system} if item.system is not None else {}), "steps": list(steps)}
    if judgments is not None:
        row["judgments"] = list(judgments)
    return row


def write_revisions(path: str | Path, items: Sequence[Any], steps: Mapping[str, Sequence[Any]]) -> Path:
    """``cnr revise`` output: each item with its steps and its final text."""
    return write_jsonl(path, [{**item_row(it, [s.as_dict() for s in steps[it.id]]), "final": steps[it.id][-1].result}
                              for it in items])


def write_judged(out: str | Path, *, name: str, items: Sequence[Any], steps: dict[str, list[dict[str, Any]]],
                 evaluation: Any, judge: dict[str, Any], plugins: list[dict[str, str]]) -> Path:
    """A ``cnr judge`` folder: verdicts, items with their verdicts, and the summary. Returns the summary's path."""
    out = Path(out)
    write_jsonl(out / "judgments.jsonl", [j.as_dict() for j in evaluation.judged])
    by_item = evaluation.by_item()
    write_jsonl(out / "samples.jsonl", [item_row(it, steps[it.id], by_item.get(it.id, [])) for it in items])
    return write_json(out / "cnr_results.json", {
        "name": name, **evaluation.summary, "judge_calls": evaluation.calls,
        "judge_cache_hits": evaluation.cache_hits, "judge_usage": evaluation.usage, "judge": judge,
        "plugins": plugins})


def write_human(out: str | Path, result: dict[str, Any], rows: Sequence[dict[str, Any]]) -> Path:
    """People's verdicts (``cnr annotate compare pull``): the summary and one row per choice."""
    out = Path(out)
    write_jsonl(out / "human_judgments.jsonl", rows)
    return write_json(out / "human_results.json", result)
