"""Functions of the cnr_winrate task (the YAML reaches them through eval_tasks/cnr_utils.py).

Data flows: ``load_docs`` (responses + run options) -> ``--model cnr`` (K iterations of
critique and revision) -> ``judge`` filter (all pairs at once: both orders, cache, bounded
concurrency) -> ``process_results`` (per-document scores) -> aggregations (win rate, CI).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from cnr_plugin.cache import Cache
from cnr_plugin.judging import (JudgeConfigError, JudgeRunner, TooManyFailures, bootstrap_ci, iteration_comparisons,
                                load_judge_config, make_judge, summarize)
from cnr_plugin.plugins import get_format

from . import CnRRunError
from .docs import RunConfig, make_docs

LOG = logging.getLogger("cnr_plugin.lm_eval")
RUN_KEYS = frozenset(RunConfig.model_fields)


def _check(fn, *args, **kwargs):
    """Run a check; turn the plugin's own errors into a one-line CnRRunError."""
    from pydantic import ValidationError

    from cnr_plugin.plugins import PluginError
    from cnr_plugin.records import CnRDataError

    try:
        return fn(*args, **kwargs)
    except (CnRDataError, PluginError, JudgeConfigError, TooManyFailures, FileNotFoundError) as exc:
        raise CnRRunError(str(exc)) from None
    except ValidationError as exc:
        err = exc.errors()[0]
        raise CnRRunError(f"--metadata '{'.'.join(map(str, err['loc']))}': {err['msg']}") from None


def load_docs(**kwargs: Any):
    """``custom_dataset``: lm-eval passes ``--metadata`` (merged with ``--model_args``) here.

    Everything a run needs is checked now, before any generation: the responses file, the
    judge config and whether the judge answers, the format, and that the reviser is ``--model cnr``.
    """
    import datasets

    if "inner" not in kwargs:
        raise CnRRunError("the reviser runs through the CnR wrapper model: use --model cnr --model_args "
                          "inner=<your lm-eval model>,<its arguments> (e.g. inner=hf,pretrained=runs/cnr-tiny-cpu)")
    run = _check(RunConfig.model_validate, {k: v for k, v in kwargs.items() if k in RUN_KEYS})
    _check(get_format, run.format)
    docs = _check(make_docs, run)
    judge_config = _check(load_judge_config, run.judge)
    judge = _check(make_judge, judge_config)
    if judge_config.check_reachable:
        _check(judge.check_reachable)
    LOG.info("cnr_winrate: %d responses, %d iterations, judge %s", len(docs), run.iterations, judge_config.judge)
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(docs)})


def doc_to_text(doc: dict[str, Any]) -> str:
    """The request context. ``--model cnr`` renders its own inputs through the format core;
    this is what a log shows: the first iteration's input."""
    run = RunConfig.from_doc(doc)
    return get_format(run.format).prompt(doc["prompt"], doc["response"]).text or doc["prompt"]


def judge(resps: list[list[str]], docs: list[dict[str, Any]]) -> list[str]:
    """Filter: judge every iteration of every document at once (both position orders).

    Takes the one generation of each document, like lm-eval's ``take_first``, and returns it
    with the verdicts added."""
    if not docs:
        return resps
    run = RunConfig.from_doc(docs[0])
    config = load_judge_config(run.judge)
    runner = JudgeRunner(make_judge(config), config, Cache(run.cache))  # judges that are not cacheable skip it
    comparisons, outputs = [], []
    for resp, doc in zip(resps, docs):
        try:
            data = json.loads(resp[0])
        except (json.JSONDecodeError, IndexError, TypeError):
            raise CnRRunError("needs --model cnr (got a plain generation instead of CnR iterations)") from None
        comparisons += iteration_comparisons(doc["id"], doc["prompt"], doc["response"],
                                             [(s["iteration"], s["result"]) for s in data["steps"]],
                                             json.loads(doc.get("meta") or "{}"), run.compare_previous)
        outputs.append(data)
    judged = runner.judge_comparisons(comparisons)
    summary = _check(summarize, judged, config.max_failed_fraction)
    LOG.info("cnr_winrate: %d judge calls, %d cache hits", runner.calls, runner.cache_hits)
    by_doc: dict[str, list[dict[str, Any]]] = {}
    for j in judged:
        by_doc.setdefault(j.comparison.item_id, []).append(j.as_dict())
    for data, doc in zip(outputs, docs):
        data["judgments"] = by_doc.get(doc["id"], [])
        data["judge_calls"] = runner.calls
        data["judge_cache_hits"] = runner.cache_hits
    for row in summary["rows"]:
        LOG.info("cnr_winrate: %s iteration %d: win rate %.3f [%.3f, %.3f] over %d judged",
                 row["against"], row["iteration"], row["winrate"], *row["ci95"], row["n_judged"])
    return [json.dumps(d) for d in outputs]


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    data = json.loads(results[0])
    out: dict[str, float] = {"n_items": 1, "n_failed": 0, "n_unparsed": 0,
                             "n_revision_parse_failures": sum(s["revision"] is None for s in data["steps"])}
    original_len = max(1, len(doc["response"]))
    for step in data["steps"]:
        out[f"len_ratio_iter{step['iteration']}"] = len(step["result"]) / original_len
    for j in data["judgments"]:
        it = j["iteration"]
        if j["status"] != "ok":
            out[f"n_{j['status']}"] += 1
            continue
        name = f"winrate_iter{it}" if j["against"] == "original" else f"winrate_vs_prev_iter{it}"
        out[name] = j["score"]
        if j["against"] == "original":
            out[f"{name}_ci95_lo"] = out[f"{name}_ci95_hi"] = j["score"]
    return out


def total(items: list[float]) -> float:
    return float(sum(items))


def ci95_lo(items: list[float]) -> float:
    return bootstrap_ci(items)[0]


def ci95_hi(items: list[float]) -> float:
    return bootstrap_ci(items)[1]


__all__ = ["load_docs", "doc_to_text", "judge", "process_results", "total", "ci95_lo", "ci95_hi", "CnRRunError"]
