"""cnr-plugin: Critique and Revise (Jin et al. 2023, arXiv 2311.14543) for Axolotl and lm-eval.

Importing the package is cheap (the standard library only): the start-up hook that makes
``lm_eval --model cnr --tasks cnr_winrate`` work imports it in every interpreter of the environment.
"""

__version__ = "0.1.0"
__all__ = ["hookimpl", "__version__"]


def __getattr__(name: str):  # noqa: ANN202  (no typing import: this module is on every start-up path)
    if name == "hookimpl":  # pluggy loads only when a plugin asks for it
        from .hookspecs import hookimpl

        return hookimpl
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
