"""Judges: the protocol, the base class, the shared config, and the built-in judges (an
OpenAI-compatible endpoint, a programmatic oracle). A judge is one class with its own ``Options``
model, registered through the ``register_judges`` hook; adding one is a module and an entry point.

Running judges over a run's items (both position orders, cache, scoring) is
:mod:`cnr_plugin.evaluation`'s; nothing here imports it.
"""

from .base import (PAIR_FIELDS, Judge, JudgeBase, JudgeConfigError, JudgeOptions, JudgePair, Verdict, judge_reads,
                   parse_verdict, render_judge_prompt)
from .config import JudgeConfig, load_judge_config

__all__ = ["PAIR_FIELDS", "Judge", "JudgeBase", "JudgeConfigError", "JudgeOptions", "JudgePair", "Verdict",
           "judge_reads", "parse_verdict", "render_judge_prompt", "JudgeConfig", "load_judge_config", "make_judge"]


def make_judge(config: JudgeConfig) -> Judge:
    """The judge the config names, built from its validated options by the class its plugin registered."""
    from cnr_plugin.plugins import get_judge

    judge = get_judge(config.judge)(config.options)
    judge_reads(judge)
    return judge
