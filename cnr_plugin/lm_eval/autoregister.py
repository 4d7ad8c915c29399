"""Makes ``lm_eval --model cnr`` work right after ``pip install``.

lm-eval has no entry points for models: a model is known once its module is imported, and the
``lm_eval`` command imports only its own. The wheel therefore ships a one-line
``cnr_plugin_lm_eval.pth`` that imports a copy of this file (top-level module
``_cnr_plugin_autoregister``, so that nothing of cnr_plugin or its dependencies loads at
interpreter start). It uses the standard library only and imports nothing of lm-eval; it waits
for ``lm_eval.models`` to be imported (which registers lm-eval's own models as lazy
placeholders) and then adds ``cnr`` the same lazy way. ``CNR_LM_EVAL_AUTOREGISTER=0`` switches it off.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys

TARGET = "lm_eval.models"
MODEL_NAME = "cnr"
MODEL_TARGET = "cnr_plugin.lm_eval.model:CnRLM"


def register(models_module: object = None) -> None:
    from lm_eval.api.registry import model_registry

    if MODEL_NAME not in model_registry:
        model_registry.register(MODEL_NAME, target=MODEL_TARGET)


class _Loader(importlib.abc.Loader):
    def __init__(self, inner: importlib.abc.Loader):
        self.inner = inner

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module) -> None:
        self.inner.exec_module(module)
        try:
            register(module)
        except Exception as exc:  # never break lm-eval itself; say why `--model cnr` is missing
            print(f"cnr-plugin: could not register the lm-eval model 'cnr': {exc}", file=sys.stderr)


class _Finder(importlib.abc.MetaPathFinder):
    _cnr_autoregister = True  # recognised across the two copies of this module

    def find_spec(self, fullname, path, target=None):
        if fullname != TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader)
        return spec


def register_now() -> None:
    """Register ``cnr`` in this process now, importing lm-eval's model list first."""
    import lm_eval.models  # noqa: F401  (registers lm-eval's own models; an empty registry would skip them)

    register()


def install() -> None:
    if os.environ.get("CNR_LM_EVAL_AUTOREGISTER", "1") == "0":
        return
    if TARGET in sys.modules:
        register()
    elif not any(getattr(f, "_cnr_autoregister", False) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())


install()
