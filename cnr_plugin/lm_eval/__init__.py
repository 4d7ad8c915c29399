"""lm-eval adapter: the cnr_winrate task functions, the ``--model cnr`` wrapper, registration.

It translates lm-eval's documents and results to and from :mod:`cnr_plugin.evaluation`.
"""

# nothing is imported here: the start-up hook (cnr_plugin_lm_eval.pth) imports .autoregister, and with it
# this package, in every interpreter of the environment
_LAZY = {"CnRRunError": "errors", "run_errors": "errors"}


def __getattr__(name):  # noqa: ANN001, ANN202
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
