"""Build step that pyproject.toml cannot express: the one start-up hook.

``cnr_plugin_lm_eval.pth`` at the top of site-packages imports ``cnr_plugin.lm_eval.autoregister``
(standard library only at start-up), which adds ``--model cnr`` and the ``cnr_winrate`` task folder
to lm-eval when lm-eval loads (lm-eval 0.4.11-0.4.13 discover neither models nor tasks from
installed packages). The wheel holds ``cnr_plugin/``, its dist-info and this file, nothing else;
it is listed in the wheel's RECORD, so ``pip uninstall cnr-plugin`` removes it. An editable
install (``pip install -e .``) gets the same file.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PTH = "cnr_plugin_lm_eval.pth"
PTH_LINE = "import cnr_plugin.lm_eval.autoregister\n"


class BuildPy(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            # setuptools builds an editable wheel from what it installs into its install_lib
            target = Path(self.get_finalized_command("install").install_lib)
        else:
            target = Path(self.build_lib)
        target.mkdir(parents=True, exist_ok=True)
        (target / PTH).write_text(PTH_LINE)

    def get_outputs(self, include_bytecode=True):
        outputs = super().get_outputs(include_bytecode)
        if not getattr(self, "editable_mode", False):
            outputs.append(str(Path(self.build_lib) / PTH))
        return outputs


setup(cmdclass={"build_py": BuildPy})
