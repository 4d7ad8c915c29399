"""Pairwise judging of revisions against the original (or previous) response."""

from cnr_plugin.plugins import get_judge_factory

from .base import JudgePair, Verdict, parse_verdict, render_judge_prompt
from .config import JudgeConfig, JudgeConfigError, load_judge_config
from .runner import (Comparison, Judged, JudgeRunner, TooManyFailures, bootstrap_ci, iteration_comparisons,
                     score_orders, summarize)


def make_judge(config: JudgeConfig):
    """The judge the config names, built by the plugin that registered it."""
    return get_judge_factory(config.judge)(config)


__all__ = ["JudgePair", "Verdict", "parse_verdict", "render_judge_prompt", "JudgeConfig", "JudgeConfigError",
           "load_judge_config", "Comparison", "iteration_comparisons", "Judged", "JudgeRunner", "TooManyFailures", "bootstrap_ci",
           "score_orders", "summarize", "make_judge"]
