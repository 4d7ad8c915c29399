"""The built-in judges: an OpenAI-compatible endpoint, a programmatic oracle, and IFEval's checkers."""

from cnr_plugin.hookspecs import hookimpl
from cnr_plugin.judges.ifeval import IFEvalJudge
from cnr_plugin.judges.openai_judge import OpenAIJudge
from cnr_plugin.judges.oracle import OracleJudge


@hookimpl
def register_judges(register):
    register(OpenAIJudge)
    register(OracleJudge)
    register(IFEvalJudge)
