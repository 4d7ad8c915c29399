"""The built-in judges: an OpenAI-compatible endpoint, and a programmatic oracle."""

from cnr_plugin.hookspecs import hookimpl
from cnr_plugin.judges.openai_judge import OpenAIJudge
from cnr_plugin.judges.oracle import OracleJudge


@hookimpl
def register_judges(register):
    register(OpenAIJudge)
    register(OracleJudge)
