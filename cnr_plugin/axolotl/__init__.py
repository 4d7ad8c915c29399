"""Axolotl integration: ``plugins: [cnr_plugin.axolotl.CnRPlugin]``.

The plugin class lives in :mod:`.plugin` and is loaded on first use, so importing
``cnr_plugin.axolotl.args`` or running ``cnr check-memory`` does not import axolotl.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CnRPlugin"]


def __getattr__(name: str) -> Any:
    # axolotl resolves "cnr_plugin.axolotl.CnRPlugin" with getattr on this module
    if name == "CnRPlugin":
        from .plugin import CnRPlugin

        return CnRPlugin
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
