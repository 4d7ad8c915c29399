"""The cnr_winrate task as lm-eval builds it: its YAML (``class: !function cnr_utils.CnRWinrateTask``)
with the metric list narrowed to what this run reports.

The YAML names every metric the task can report (:func:`cnr_plugin.results.task_metrics`: ten
iterations, the win rates against the previous revision, IFEval's figures). A run reports a part of
them: its iterations, ``compare_previous`` only if set, the text figures only for a judge that has
them. lm-eval's readers of a run's samples take the task's declared list as the set every sample
carries (its W&B logger builds one table column per declared metric, and a missing one loses the
whole samples table), and its results list the directions of all of them. So the task declares
exactly what the run reports, and every document carries each of those metrics
(:func:`cnr_plugin.lm_eval.tasks.process_results`).

That needs the run options (``--metadata``) when the task is built. lm-eval 0.4.13's task factory
passes them to a class task, as to a YAML one; 0.4.11 passes them to YAML tasks only, and
cnr-plugin's start-up hook (:mod:`cnr_plugin.lm_eval.autoregister`) hands them to this task there.
This module imports lm-eval: only lm-eval loads it (through ``cnr_utils``).
"""

from __future__ import annotations

from typing import Any

from lm_eval.api.task import ConfigurableTask

from .errors import CnRRunError
from .tasks import metrics_of, run_options

#: the key lm-eval 0.4.13's task factory adds to every task's metadata (the YAML it was read
#: from); cnr-plugin's hook adds it on an lm-eval that passes no metadata to class tasks. Its
#: absence means the run options never reached the task
DELIVERED = "config_source"


class CnRWinrateTask(ConfigurableTask):
    """``cnr_winrate``: lm-eval's configurable task, declaring the metrics this run reports."""

    #: how cnr-plugin's start-up hook knows its own task among the configs lm-eval loads
    _cnr_task = True

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        config = {k: v for k, v in (config or {}).items() if k != "class"}
        metadata = config.get("metadata") or {}
        if DELIVERED not in metadata:
            raise CnRRunError("this lm-eval hands --metadata to the cnr_winrate task only through cnr-plugin's "
                              "start-up hook, which CNR_LM_EVAL_AUTOREGISTER=0 switched off: unset it, or run "
                              "`cnr lm-eval ...`, which registers it")
        reported = set(metrics_of(run_options(metadata)))
        config["metric_list"] = [m for m in config.get("metric_list") or [] if m["metric"] in reported]
        super().__init__(config=config)


__all__ = ["CnRWinrateTask", "DELIVERED"]
