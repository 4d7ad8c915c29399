"""Files shipped inside the package: axolotl configs, evaluation tasks, sample data.

In the source tree they live at the top level (``axolotl_configs/``, ``eval_tasks/``, ``data/``);
the wheel maps them into ``cnr_plugin.axolotl_configs`` and friends.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

_SOURCE_FOLDERS = {"cnr_plugin.axolotl_configs": "axolotl_configs", "cnr_plugin.eval_tasks": "eval_tasks",
                   "cnr_plugin.data": "data"}


def _path(package: str, name: str = "") -> Path:
    try:
        path = Path(str(resources.files(package)))
    except ModuleNotFoundError:
        # the package imported from a source checkout (e.g. `python -m` in the repository root
        # shadows the installed wheel): the folders sit at the top of the checkout
        path = Path(__file__).resolve().parents[1] / _SOURCE_FOLDERS[package]
        if not path.is_dir():
            raise
    return path / name if name else path


def config_path(name: str = "") -> Path:
    """An axolotl config shipped with the package (``cnr.yaml``, ``cnr-tiny-cpu.yaml``, ...)."""
    return _path("cnr_plugin.axolotl_configs", name)


def eval_tasks_path(name: str = "") -> Path:
    """The lm-eval task folder (for ``--include_path``) or a file in it."""
    return _path("cnr_plugin.eval_tasks", name)


def data_path(name: str = "") -> Path:
    """Sample data shipped with the package (``sample_cnr.jsonl``)."""
    return _path("cnr_plugin.data", name)
