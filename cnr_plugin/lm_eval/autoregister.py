"""Makes ``lm_eval --model cnr ... --tasks cnr_winrate`` work right after ``pip install``
(wheel or ``pip install -e .``), without ``--include_path`` and without any file in lm-eval's folder.

lm-eval 0.4.11-0.4.13 has no entry points for models or tasks: a model is known once its module
is imported, and tasks are found in lm-eval's own folder and in ``--include_path``. The package
therefore ships one start-up hook, ``cnr_plugin_lm_eval.pth``, which imports this module (it and
the modules it imports at start-up use the standard library only). It imports nothing of lm-eval;
it waits until lm-eval itself imports

* ``lm_eval.models`` (which registers lm-eval's own models): then ``cnr`` is added the same lazy
  way, unless lm-eval already knows it (newer lm-eval discovers models from the ``lm_eval.models``
  entry point group, which the package also declares);
* ``lm_eval.tasks``: then the package's task folder is added to every ``TaskManager``'s
  ``include_path`` (before the user's own paths, so a user's ``--include_path`` still wins), and
  on an lm-eval that passes ``--metadata`` to YAML tasks only, the manager passes it to the
  cnr_winrate task class too (:func:`bridge_metadata`).

An uncaught cnr-plugin error (:class:`cnr_plugin.errors.CnRError`) in that process ends it with its
one-line message instead of a traceback. ``CNR_LM_EVAL_AUTOREGISTER=0`` switches all of it off.
"""

# Only modules every interpreter has loaded before site-packages' .pth files run (os, sys): this module is on
# the start-up path of every Python process of the environment (benchmarks/startup_cost.py measures it)
import os
import sys

MODEL_NAME = "cnr"
MODEL_TARGET = "cnr_plugin.lm_eval.model:CnRLM"


def register(models_module: object = None) -> None:
    """Add ``cnr`` to lm-eval's model registry (lazily: nothing is imported until it is used)."""
    from lm_eval.api.registry import model_registry

    if MODEL_NAME not in model_registry:
        model_registry.register(MODEL_NAME, target=MODEL_TARGET)
    install_excepthook()


def task_folder() -> str:
    from cnr_plugin.resources import eval_tasks_path

    return str(eval_tasks_path())


def add_task_folder(tasks_module: object = None) -> None:
    """Every lm-eval ``TaskManager`` made from now on also searches the package's task folder."""
    import inspect

    manager = getattr(tasks_module or sys.modules["lm_eval.tasks"], "TaskManager", None)
    if manager is None or getattr(manager.__init__, "_cnr_tasks", False):
        return
    original = manager.__init__
    signature = inspect.signature(original)
    if "include_path" not in signature.parameters:
        return  # an lm-eval this hook does not know; `cnr lm-eval` and --include_path still work

    def __init__(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        given = bound.arguments.get("include_path")
        paths = [] if given is None else list(given) if isinstance(given, (list, tuple)) else [given]
        ours = task_folder()
        if all(os.path.realpath(str(p)) != os.path.realpath(ours) for p in paths):
            bound.arguments["include_path"] = [ours, *paths]
        original(*bound.args, **bound.kwargs)
        bridge_metadata(self)

    __init__._cnr_tasks = True  # type: ignore[attr-defined]
    __init__.__wrapped__ = original  # type: ignore[attr-defined]
    __init__.__doc__ = original.__doc__
    manager.__init__ = __init__
    install_excepthook()


def bridge_metadata(manager: object) -> None:
    """Give the cnr_winrate task its run options (``--metadata``) on an lm-eval that passes them to
    YAML tasks only (0.4.11: a task with ``class:`` gets its YAML alone; 0.4.13's task factory
    passes them to both, and this does nothing there). Only this manager's configs of cnr-plugin's
    own task class change: they get the metadata lm-eval merges into every YAML task's, and the
    ``config_source`` that 0.4.13 adds (:mod:`cnr_plugin.lm_eval.task`)."""
    get_config = getattr(manager, "_get_config", None)
    if getattr(manager, "_factory", None) is not None or not callable(get_config):
        return

    def _get_config(name, *args, **kwargs):
        config = get_config(name, *args, **kwargs)
        if isinstance(config, dict) and getattr(config.get("class"), "_cnr_task", False):
            extra = getattr(manager, "metadata", None) or {}
            config = {**config, "metadata": {**(config.get("metadata") or {}), **extra,
                                             "config_source": str(manager._get_yaml_path(name))}}
        return config

    manager._get_config = _get_config  # type: ignore[attr-defined]


def _one_line_hook(previous):
    def hook(exc_type, exc, tb):
        # cnr-plugin's own errors are one line for the user, no traceback; every other
        # exception goes to the hook that was there before
        if getattr(exc_type, "_cnr_one_line", False):
            print(f"{getattr(exc_type, 'prefix', 'cnr')}: {exc}", file=sys.stderr)
        else:
            previous(exc_type, exc, tb)

    hook._cnr_one_line_hook = True  # type: ignore[attr-defined]
    return hook


def install_excepthook() -> None:
    """In a process that loaded lm-eval: an uncaught cnr-plugin error ends it with its one-line
    message (exit status 1, as for any uncaught exception) instead of a traceback."""
    if not getattr(sys.excepthook, "_cnr_one_line_hook", False):
        sys.excepthook = _one_line_hook(sys.excepthook)


HOOKS = {"lm_eval.models": register, "lm_eval.tasks": add_task_folder}


class _Loader:
    """lm-eval's own loader of ``lm_eval.models`` / ``lm_eval.tasks``, then the hook (a loader by its
    methods, as the import system reads it: no ``importlib.abc`` at start-up)."""

    def __init__(self, inner, after):
        self.inner, self.after = inner, after

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module) -> None:
        self.inner.exec_module(module)
        try:
            self.after(module)
        except Exception as exc:  # never break lm-eval itself; say why cnr is missing
            print(f"cnr-plugin: could not add cnr_winrate / --model cnr to lm-eval: {exc}", file=sys.stderr)


class _Finder:
    """A meta path finder that answers only for the two lm-eval modules it waits for."""

    _cnr_autoregister = True

    def find_spec(self, fullname, path, target=None):
        after = HOOKS.get(fullname)
        if after is None:
            return None
        from importlib.machinery import PathFinder

        spec = PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader, after)
        return spec


def register_now() -> None:
    """Register ``cnr`` and the task folder in this process now, importing lm-eval's parts first."""
    import lm_eval.models  # noqa: F401  (registers lm-eval's own models; an empty registry would skip them)
    import lm_eval.tasks

    register()
    add_task_folder(lm_eval.tasks)


def install() -> None:
    if os.environ.get("CNR_LM_EVAL_AUTOREGISTER", "1") == "0":
        return
    for name, after in HOOKS.items():
        if name in sys.modules:
            try:
                after(sys.modules[name])
            except Exception as exc:
                print(f"cnr-plugin: could not add cnr_winrate / --model cnr to lm-eval: {exc}", file=sys.stderr)
    if not any(getattr(f, "_cnr_autoregister", False) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())


install()
