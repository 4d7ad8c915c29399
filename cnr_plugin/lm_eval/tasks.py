"""Functions of the cnr_winrate task (the YAML reaches them through eval_tasks/cnr_utils.py).

Data flows: ``load_docs`` (responses + run options, everything checked) -> ``--model cnr`` (K
iterations of critique and revision) -> ``judge`` filter (all pairs at once, through
:func:`cnr_plugin.evaluation.judge_revisions`) -> ``process_results`` (per-document scores) ->
aggregations (win rate, CI). This module only translates between lm-eval and the evaluation layer.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from typing import Any

from cnr_plugin.cache import Cache
from cnr_plugin.costs import describe
from cnr_plugin.evaluation import (RunConfig, examples_for, judge_revisions, length_controlled, prepare_judge,
                                   run_config, win_rate)
from cnr_plugin.judges import load_judge_config
from cnr_plugin.plugins import get_format, get_judge
from cnr_plugin.results import run_item_metrics, run_metrics

from .errors import CnRRunError, run_errors
from . import docs as _shared
from .docs import doc_items, doc_to_text, make_docs, read_items

#: under lm-eval's logger, whose handler and --verbosity the lm_eval command sets up: a logger of our
#: own would have no handler there, and its INFO lines (the win rates, what the run cost) would vanish
LOG = logging.getLogger("lm_eval.cnr_winrate")
#: keys lm-eval itself puts among the task's metadata: the task YAML's ``metadata:`` (version),
#: and 0.4.13's task factory (config_source, config, _metadata)
LM_EVAL_KEYS = frozenset({"version", "config_source", "config", "_metadata"})


def _check(fn, *args, **kwargs):
    """Run a step; the plugin's own errors become a one-line ``cnr_winrate: ...`` error."""
    with run_errors():
        return fn(*args, **kwargs)


def run_options(metadata: dict[str, Any]) -> RunConfig:
    """The run options among the task's metadata: lm-eval's own keys and the ``--model cnr``
    arguments it merges in are not run options; any other unknown key is an error (one line)."""
    return _check(run_config, metadata, ignore=LM_EVAL_KEYS | _shared.MODEL_ARG_KEYS | {"inner"})


def load_docs(**kwargs: Any):
    """``custom_dataset``: lm-eval passes ``--metadata`` (merged with ``--model_args``) here.

    Everything a run needs is checked now, before any generation: the options (an unknown key is
    an error), the responses file, the format, the few-shot file, the judge config, whether the
    judge answers and whether it can judge every item, and that the reviser is ``--model cnr``.
    """
    import datasets

    if "inner" not in kwargs and not _shared.WRAPPERS_MADE:
        raise CnRRunError("the reviser runs through the CnR wrapper model: use --model cnr --model_args "
                          "inner=<your lm-eval model>,<its arguments> (e.g. inner=hf,pretrained=runs/cnr-tiny-cpu)")
    run = run_options(kwargs)
    _check(get_format, run.format)
    items = _check(read_items, run)
    _check(examples_for, run)
    judge_config, _ = _check(prepare_judge, run.judge, items, source=run.responses)
    LOG.info("cnr_winrate: %d responses, %d iterations, judge %s", len(items), run.iterations, judge_config.judge)
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(make_docs(run, items))})


def judge(resps: list[list[str]], docs: list[dict[str, Any]]) -> list[str]:
    """Filter: judge every iteration of every document at once (both position orders).

    Takes the one generation of each document, like lm-eval's ``take_first``, and returns it
    with the verdicts added."""
    if not docs:
        return []
    run = RunConfig.from_doc(docs[0])
    outputs = []
    for resp in resps:
        try:
            outputs.append(json.loads(resp[0]))
        except (json.JSONDecodeError, IndexError, TypeError):
            raise CnRRunError("needs --model cnr (got a plain generation instead of CnR iterations)") from None
    judged = [(it, data) for it, data in zip(doc_items(docs), outputs) if not data.get("skipped")]
    items = [it for it, _ in judged]
    results = {it.id: [(s["iteration"], s["result"]) for s in data["steps"]] for it, data in judged}
    config = _check(load_judge_config, run.judge)
    evaluation = _check(judge_revisions, items, results, config, cache=Cache(run.cache),
                        compare_previous=run.compare_previous, seed=run.seed)
    LOG.info("cnr_winrate: bootstrap seed %d (the run option \"seed\"; lm-eval's --seed seeds its global "
             "generators, which no figure of this task reads)", run.seed)
    by_item = evaluation.by_item()
    for data, doc in zip(outputs, docs):
        data["judgments"] = by_item.get(doc["id"], [])
        data["seed"] = run.seed
        data["judge_calls"] = evaluation.calls
        data["judge_cache_hits"] = evaluation.cache_hits
        data["judge_usage"] = evaluation.usage
        if doc["id"] in evaluation.text_metrics:
            data["text_metrics"] = evaluation.text_metrics[doc["id"]]
    for row in evaluation.summary["rows"]:
        LOG.info("cnr_winrate: %s iteration %d: win rate %.3f [%.3f, %.3f] over %d judged",
                 row["against"], row["iteration"], row["winrate"], *row["ci95"], row["n_judged"])
    # what the run cost is accounting, not a metric (it depends on the cache): logged here, and kept
    # in every sample's judge_usage / reviser_usage (cnr_plugin.results.lm_eval_accounting)
    reviser = next((d["reviser_usage"] for d in outputs if isinstance(d.get("reviser_usage"), dict)), None)
    for report in (reviser, evaluation.usage):
        if report:
            LOG.info("cnr_winrate: %s", describe(report))
    return [json.dumps(d) for d in outputs]


@functools.lru_cache(maxsize=16)
def _metrics(iterations: int, compare_previous: bool, judge_spec: str) -> tuple[str, ...]:
    config = load_judge_config(json.loads(judge_spec))
    text = callable(getattr(get_judge(config.judge), "text_metrics", None))
    return tuple(name for name, _agg, _hib in run_metrics(iterations, compare_previous, text))


def metrics_of(run: RunConfig) -> tuple[str, ...]:
    """The metrics this run reports (:func:`cnr_plugin.results.run_metrics`): its iterations, the
    win rates against the previous revision if it compares them, the judge's text figures if the
    judge has them. The task declares exactly these (:class:`cnr_plugin.lm_eval.task.CnRWinrateTask`)."""
    return _check(_metrics, run.iterations, run.compare_previous, json.dumps(run.judge, sort_keys=True))


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, Any]:
    """Per-document metrics, named and computed by :mod:`cnr_plugin.results`: every document
    carries every metric the run reports (None where it has no value), as lm-eval's samples
    readers expect."""
    return run_item_metrics(doc["response"], json.loads(results[0]), metrics_of(RunConfig.from_doc(doc)))


def _finite(x: float) -> float | None:
    """A figure for lm-eval's results: None (JSON null) where there is nothing to measure; a NaN
    would be written as ``NaN``, which strict JSON readers refuse."""
    return None if x is None or math.isnan(x) else float(x)


# Every aggregation leaves out the documents that have no value for its metric (None: a failed
# verdict, an item skipped as oversized); with none left, the figure is None (JSON null).

def _present(items: list[Any]) -> list[Any]:
    return [x for x in items if x is not None]


def total(items: list[float | None]) -> float:
    return float(sum(_present(items)))


def average(items: list[float | None]) -> float | None:
    """The mean over the documents that have a value (lm-eval's ``mean`` would fail on None)."""
    values = _present(items)
    return float(sum(values) / len(values)) if values else None


def share(items: list[tuple[float, float] | None]) -> float | None:
    """A judge diagnostic over the run: its numerators over its denominators, summed over
    documents (None where nothing was there to measure: every verdict a tie, say)."""
    values = _present(items)
    den = sum(d for _n, d in values)
    return float(sum(n for n, _d in values) / den) if den else None


def _seeded(items: list[Any]) -> tuple[tuple[Any, ...], int]:
    """Per-document values of an interval's metric: (value..., the run's bootstrap seed), sorted
    (so the order of documents never moves a figure), and that seed."""
    rows = tuple(sorted(map(tuple, _present(items))))
    return tuple(r[:-1] for r in rows), int(rows[0][-1]) if rows else 0


@functools.lru_cache(maxsize=64)
def _win_rate(scores: tuple[float, ...], seed: int = 0) -> dict[str, Any]:
    return win_rate(scores, seed=seed)


def winrate(items: list[float | None]) -> float | None:
    return _finite(_win_rate(tuple(sorted(_present(items))))["winrate"])


def ci95_lo(items: list[tuple[float, int]]) -> float | None:
    rows, seed = _seeded(items)
    return _finite(_win_rate(tuple(r[0] for r in rows), seed)["ci95"][0])


def ci95_hi(items: list[tuple[float, int]]) -> float | None:
    rows, seed = _seeded(items)
    return _finite(_win_rate(tuple(r[0] for r in rows), seed)["ci95"][1])


@functools.lru_cache(maxsize=64)
def _lc(items: tuple[tuple[float, int, int], ...], seed: int) -> dict[str, Any]:
    return length_controlled(list(items), seed=seed)


def lc_winrate(items: list[tuple[float, int, int, int]]) -> float | None:
    return _finite(_lc(*_seeded(items))["winrate"])


def lc_ci95_lo(items: list[tuple[float, int, int, int]]) -> float | None:
    return _finite(_lc(*_seeded(items))["ci95"][0])


def lc_ci95_hi(items: list[tuple[float, int, int, int]]) -> float | None:
    return _finite(_lc(*_seeded(items))["ci95"][1])


__all__ = ["load_docs", "run_options", "doc_to_text", "judge", "process_results", "metrics_of", "total", "average", "share",
           "winrate", "ci95_lo", "ci95_hi", "lc_winrate", "lc_ci95_lo", "lc_ci95_hi", "CnRRunError"]
