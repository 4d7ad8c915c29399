"""The suite's own rule (issue 12): under scripts/test.sh every skip fails unless the environment's
allowlist names it — skip marks, skipif, importorskip at module level, a fixture's skip alike."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent

SOURCE = '''
import pytest

pytest.importorskip("{module}")


def test_skipped():
    pytest.skip("needs torch to build a tiny model")


@pytest.mark.skipif(True, reason="needs an unknown thing")
def test_skipif():
    pass


def test_passes():
    pass
'''


def run_suite(tmp_path: Path, env_name: str, module: str = "json") -> subprocess.CompletedProcess:
    for name in ("conftest.py", "allowed_skips.yaml"):
        shutil.copy(HERE / name, tmp_path / name)
    (tmp_path / "test_sample.py").write_text(SOURCE.format(module=module))
    env = dict(os.environ, CNR_REQUIRE_INTEGRATION="1", CNR_TEST_ENV=env_name)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def outcomes(proc: subprocess.CompletedProcess) -> dict[str, int]:
    """pytest's closing counts; a refused skip in the call phase is 'failed', in setup (skipif) 'error'."""
    last = proc.stdout.strip().splitlines()[-1]
    return {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|skipped|errors?)", last)}


def test_a_skip_not_on_the_allowlist_fails(tmp_path):
    proc = run_suite(tmp_path, "venv")
    counts = outcomes(proc)
    assert proc.returncode == 1 and counts.get("passed") == 1 and "skipped" not in counts
    assert counts.get("failed", 0) + counts.get("error", 0) == 2
    assert "allows no skip here that is not in tests/allowed_skips.yaml" in proc.stdout


def test_an_allowed_skip_stays_a_skip(tmp_path):
    proc = run_suite(tmp_path, "eval")  # "needs torch" is allowed in the torch-free environment
    counts = outcomes(proc)
    assert proc.returncode == 1 and counts.get("skipped") == 1 and counts.get("passed") == 1
    assert counts.get("failed", 0) + counts.get("error", 0) == 1  # the skipif reason is not allowed


def test_a_module_skipped_at_collection_fails(tmp_path):
    proc = run_suite(tmp_path, "venv", module="surely_not_installed_module")
    assert proc.returncode != 0 and "surely_not_installed_module" in proc.stdout
    assert "1 error" in proc.stdout or "1 failed" in proc.stdout


@pytest.mark.parametrize("env_name", ["venv", "py312", "annotate"])
def test_full_environments_allow_no_skip(env_name):
    from conftest import allowed_skips

    assert allowed_skips(env_name) == []


def test_readme_tables_are_the_results_files():
    """The tables of README.md and docs/ are generated from results/ (benchmarks/tables.py);
    a typed-in or stale figure fails here."""
    import subprocess
    import sys

    from conftest import ROOT

    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "tables.py"), "--check"], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_provenance_dirty_flag_counts_code_not_results(tmp_path):
    """A results file the run itself rewrites does not make the tree dirty; a changed source does."""
    import subprocess

    from cnr_plugin.provenance import provenance

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "r.json").write_text("{}")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("add", ".")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "init")
    assert provenance({}, repo=tmp_path)["dirty"] is False
    (tmp_path / "results" / "r.json").write_text('{"a": 1}')
    assert provenance({}, repo=tmp_path)["dirty"] is False
    (tmp_path / "code.py").write_text("x = 2\n")
    prov = provenance({"k": 1}, {"seed": 0}, repo=tmp_path)
    assert prov["dirty"] is True and len(prov["commit"]) == 40 and prov["arguments"] == {"k": 1}
