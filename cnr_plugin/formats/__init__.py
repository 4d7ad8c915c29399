"""CnR text formats. Look them up by name with :func:`cnr_plugin.plugins.get_format`."""

from .base import MARKERS, CnRFormat, Parsed, Prompted, Rendered, escape, parse_generation, unescape

__all__ = ["MARKERS", "CnRFormat", "Parsed", "Prompted", "Rendered", "escape", "unescape", "parse_generation"]
