"""`pip install "cnr-plugin[axolotl]"` into the training stack this suite runs in (axolotl 0.19 on
Python 3.11, axolotl 0.21 on Python 3.12) changes no installed version, and `pip check` passes
there (issue 23: the old bound `axolotl<0.20` made pip downgrade a 0.21 stack wholesale)."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import distributions

import pytest
from conftest import ROOT, needs_torch

pytestmark = [needs_torch, pytest.mark.integration]


def test_installing_the_axolotl_extra_changes_no_installed_version(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                           str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    wheel = next(tmp_path.glob("cnr_plugin-*.whl"))
    report = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--report", str(report),
                           f"{wheel}[axolotl]"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    installed = {d.metadata["Name"].lower().replace("_", "-"): d.version for d in distributions()}
    would = {i["metadata"]["name"].lower().replace("_", "-"): i["metadata"]["version"]
             for i in json.loads(report.read_text())["install"]}
    changed = {name: (installed[name], new) for name, new in would.items()
               if name != "cnr-plugin" and name in installed}
    assert changed == {}, f"pip would change these installed versions: {changed}"


def test_pip_check_passes_in_this_stack():
    proc = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
