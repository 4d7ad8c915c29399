"""The built-in judges: an OpenAI-compatible endpoint, and a programmatic oracle."""

from cnr_plugin.hookspecs import hookimpl


def _openai(config):
    from cnr_plugin.errors import require

    require("the openai judge", "eval", "openai")
    from cnr_plugin.judging.openai_judge import OpenAIJudge

    return OpenAIJudge(config)


def _oracle(config):
    from cnr_plugin.judging.oracle import OracleJudge

    return OracleJudge(config)


@hookimpl
def register_judges(register):
    register("openai", _openai)
    register("oracle", _oracle)
