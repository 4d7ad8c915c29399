"""The built-in CnR formats."""

from cnr_plugin.formats.chat import ChatTemplateFormat
from cnr_plugin.formats.plain import PlainFormat
from cnr_plugin.hookspecs import hookimpl


@hookimpl
def register_formats(register):
    register(PlainFormat())
    register(ChatTemplateFormat())
