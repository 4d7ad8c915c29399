"""Files shipped inside the package: axolotl configs, evaluation tasks, sample data.

In the source tree they live at the top level (``axolotl_configs/``, ``eval_tasks/``, ``data/``);
the wheel maps them into ``cnr_plugin.axolotl_configs`` and friends.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def _path(package: str, name: str = "") -> Path:
    path = Path(str(resources.files(package)))
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
