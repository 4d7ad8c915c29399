"""The built-in judges (filled in by the evaluation half)."""

from cnr_plugin.hookspecs import hookimpl


@hookimpl
def register_judges(register):
    pass
