"""Build step that pyproject.toml cannot express: two files outside the cnr_plugin package.

* ``cnr_plugin_lm_eval.pth`` at the top of site-packages imports ``_cnr_plugin_autoregister``
  (a copy of ``cnr_plugin/lm_eval/autoregister.py``, standard library only), which registers
  ``--model cnr`` lazily once lm-eval loads its own models (lm-eval has no entry points for models).
* ``lm_eval/tasks/cnr/cnr_winrate.yaml``: lm-eval's TaskManager finds tasks only in its own
  ``tasks/`` folder and in ``--include_path``; this makes ``--tasks cnr_winrate`` work as is.

Both are listed in the wheel's RECORD, so ``pip uninstall cnr-plugin`` removes them.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PTH = "cnr_plugin_lm_eval.pth"
TASK_FILES = ("cnr_winrate.yaml", "cnr_utils.py")


class BuildPy(build_py):
    def run(self):
        super().run()
        out = Path(self.build_lib)
        shutil.copy(Path("cnr_plugin") / "lm_eval" / "autoregister.py", out / "_cnr_plugin_autoregister.py")
        (out / PTH).write_text("import _cnr_plugin_autoregister\n")
        tasks = out / "lm_eval" / "tasks" / "cnr"
        tasks.mkdir(parents=True, exist_ok=True)
        for name in TASK_FILES:
            shutil.copy(Path("eval_tasks") / name, tasks / name)


setup(cmdclass={"build_py": BuildPy})
