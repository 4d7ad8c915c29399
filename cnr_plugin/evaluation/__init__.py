"""The evaluation layer: run options, cached generation and the revise loop, and judging of items
with the judges of :mod:`cnr_plugin.judges`. Every entry point (lm-eval's ``cnr_winrate``, ``cnr revise``, ``cnr judge``,
``cnr annotate``) calls these; the adapters only translate their host's data to and from them."""

from .generation import (Backend, Gate, GenerationError, Item, OpenAIBackend, OversizedError, Step, cached_generate,
                         check_lengths, revise, stop_signal)
from .judging import (Comparison, Evaluation, Judged, JudgeGate, JudgeRunner, TooManyFailures,
                      iteration_comparisons, judge_revisions, prepare_judge, score_orders, summarize, verdict_key)
from .stats import bootstrap_ci, length_controlled, paired_difference, win_rate
from .run import (DEFAULT_MAX_INPUT_TOKENS, MAX_ITERATIONS, RunConfig, RunOptionError, examples_for,
                  run_config)

__all__ = ["Backend", "Gate", "GenerationError", "Item", "OpenAIBackend", "OversizedError", "Step", "cached_generate",
           "check_lengths", "revise", "stop_signal", "Comparison", "Evaluation",
           "Judged", "JudgeGate", "JudgeRunner", "TooManyFailures", "bootstrap_ci",
           "iteration_comparisons", "judge_revisions", "prepare_judge", "score_orders", "summarize",
           "verdict_key", "DEFAULT_MAX_INPUT_TOKENS", "MAX_ITERATIONS", "RunConfig",
           "RunOptionError", "examples_for", "run_config", "length_controlled", "paired_difference", "win_rate"]
