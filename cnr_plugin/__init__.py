"""cnr-plugin: Critique and Revise (Jin et al. 2023, arXiv 2311.14543) for Axolotl and lm-eval."""

from .hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["hookimpl", "__version__"]
