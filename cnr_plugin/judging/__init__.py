"""The judges (an OpenAI-compatible endpoint, a programmatic oracle), their YAML config, and how a
verdict is read. Running them over a run's items is :mod:`cnr_plugin.evaluation`'s."""

from .base import JudgePair, Verdict, parse_verdict, render_judge_prompt
from .config import JudgeConfig, JudgeConfigError, load_judge_config

__all__ = ["JudgePair", "Verdict", "parse_verdict", "render_judge_prompt", "JudgeConfig", "JudgeConfigError",
           "load_judge_config"]
