"""What `pip install` puts where (issue 12): the wheel holds cnr_plugin/, its dist-info and one start-up
hook; a core-only install fakes no lm-eval and names the extra each command needs; uninstall leaves
nothing; an editable install gives the same lm_eval commands (scripts/test.sh runs test_lm_eval.py again
after `pip install -e .`)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT, SAMPLE

pytestmark = pytest.mark.integration
PTH = "cnr_plugin_lm_eval.pth"


#: what building the wheel printed (pip -v shows setuptools' own warnings)
BUILD_OUTPUT: list[str] = []


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    build = tmp_path_factory.mktemp("build")  # a private build folder: the source tree is left as it is
    for isolation in (["--no-build-isolation"], []):  # this environment's setuptools, else pip's own build
        proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", *isolation,
                               "-w", str(out), str(ROOT)], capture_output=True, text=True, timeout=300,
                              env=dict(os.environ, TMPDIR=str(build)))
        if proc.returncode == 0:
            break
    assert proc.returncode == 0, proc.stderr[-3000:]
    BUILD_OUTPUT.append(proc.stdout + proc.stderr)
    return next(out.glob("cnr_plugin-*.whl"))


def test_building_the_wheel_warns_of_no_missing_package(wheel):
    """setuptools warned that cnr_plugin.axolotl_configs.deepspeed was not in the packages list (issue 24)."""
    assert BUILD_OUTPUT and "is absent from the `packages` configuration" not in BUILD_OUTPUT[-1]


def test_wheel_holds_only_the_package_its_metadata_and_one_hook(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    outside = [n for n in names if not n.startswith(("cnr_plugin/", "cnr_plugin-")) and n != PTH]
    assert outside == []
    assert PTH in names and sum(n.endswith(".pth") for n in names) == 1
    assert zipfile.ZipFile(wheel).read(PTH).decode() == "import cnr_plugin.lm_eval.autoregister\n"
    for shipped in ("cnr_plugin/eval_tasks/cnr_winrate.yaml", "cnr_plugin/eval_tasks/cnr_utils.py",
                    "cnr_plugin/axolotl_configs/cnr.yaml", "cnr_plugin/data/sample_cnr.jsonl", "cnr_plugin/py.typed",
                    "cnr_plugin/testing/fault_server.py", "cnr_plugin/evaluation/judging.py",
                    "cnr_plugin/axolotl_configs/deepspeed/zero3_bf16.json", "cnr_plugin/judges/oracle.py"):
        assert shipped in names, shipped
    entry_points = next(zipfile.ZipFile(wheel).read(n).decode() for n in names if n.endswith("entry_points.txt"))
    assert "[lm_eval.models]\ncnr = cnr_plugin.lm_eval.model:CnRLM" in entry_points


@pytest.fixture(scope="module")
def core_venv(tmp_path_factory, wheel) -> Path:
    venv = tmp_path_factory.mktemp("core") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    proc = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", str(wheel)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return venv


def site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))


def run(venv: Path, *args, cwd=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=300, cwd=cwd,
                          env=dict(env, PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"))


def test_core_install_fakes_no_other_package(core_venv):
    py = core_venv / "bin" / "python"
    proc = run(core_venv, py, "-c", "import importlib.util as u; print(u.find_spec('lm_eval'))")
    assert proc.stdout.strip() == "None" and proc.stderr == ""  # the start-up hook is silent without lm-eval
    assert run(core_venv, py, "-c", "import lm_eval").returncode == 1
    top = {p.name for p in site_packages(core_venv).iterdir()}
    assert "lm_eval" not in top and PTH in top


def test_the_start_up_hook_costs_other_programs_nothing(core_venv):
    """Issue 31 §6: the hook's line runs in every interpreter of the environment. It brings in its own three
    modules and nothing else (the benchmark, benchmarks/startup_cost.py, measures the time: before, 64 modules
    and 45 ms, typing and importlib.resources among them); lm-eval's parts wait until lm-eval is imported."""
    py, pth = core_venv / "bin" / "python", site_packages(core_venv) / PTH
    code = "import sys; print(' '.join(sorted(sys.modules)))"
    with_hook = set(run(core_venv, py, "-c", code).stdout.split())
    pth.rename(pth.with_suffix(".off"))
    try:
        without = set(run(core_venv, py, "-c", code).stdout.split())
    finally:
        pth.with_suffix(".off").rename(pth)
    assert with_hook - without == {"cnr_plugin", "cnr_plugin.lm_eval", "cnr_plugin.lm_eval.autoregister"}


@pytest.mark.parametrize("args, extra", [
    (["report", "{tmp}"], "cnr report needs matplotlib: pip install \"cnr-plugin[eval]\""),
    (["revise", "{responses}", "--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--out", "{tmp}/o.jsonl"],
     "cnr revise needs openai: pip install \"cnr-plugin[eval]\""),
    (["judge", "{responses}", "{responses}", "--out", "{tmp}/j"], "the openai judge needs openai: pip install \"cnr-plugin[eval]\""),
    (["validate", str(SAMPLE), "--tokenizer", "{tmp}"], "cnr validate --tokenizer needs transformers: pip install \"cnr-plugin[axolotl]\""),
    (["models", "smollm2", "{tmp}/m"], "cnr models smollm2 needs gguf, torch, transformers: pip install \"cnr-plugin[axolotl]\""),
    (["models", "tiny", "{tmp}/m"], "pip install \"cnr-plugin[axolotl]\""),
    (["check-memory"], "cnr check-memory needs torch, transformers, deepspeed: pip install \"cnr-plugin[axolotl]\""),
    (["lm-eval", "--tasks", "cnr_winrate"], "cnr lm-eval needs lm_eval: pip install \"cnr-plugin[eval]\""),
    (["annotate", "push", "{responses}", "--project", "p"], "pip install \"cnr-plugin[annotate]\""),
    (["annotate", "responses", "{responses}", "--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--out", "{tmp}/a"],
     "cnr annotate responses needs openai: pip install \"cnr-plugin[annotate]\""),
])
def test_each_command_names_its_missing_extra(core_venv, tmp_path, args, extra):
    responses = tmp_path / "r.jsonl"
    responses.write_text('{"id": "1", "prompt": "p", "response": "r"}\n')
    args = [a.format(tmp=tmp_path, responses=responses) for a in args]
    proc = run(core_venv, core_venv / "bin" / "cnr", *args, cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert extra in proc.stderr


def test_core_commands_work_without_extras(core_venv, tmp_path):
    cnr = core_venv / "bin" / "cnr"
    assert run(core_venv, cnr, "validate", SAMPLE).returncode == 0
    base = tmp_path / "b.jsonl"
    base.write_text('{"id": "1", "prompt": "p", "response": "cat", "meta": {"reference": "dog"}}\n')
    cand = tmp_path / "c.jsonl"
    cand.write_text('{"id": "1", "prompt": "p", "response": "dog"}\n')
    judge = tmp_path / "j.yaml"
    judge.write_text("judge: oracle\nchecker: reference\n")
    proc = run(core_venv, cnr, "judge", base, cand, "--judge", judge, "--out", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    assert '"winrate": 1.0' in (tmp_path / "out" / "cnr_results.json").read_text()


def test_uninstall_leaves_nothing(core_venv):
    before = {p.name for p in site_packages(core_venv).iterdir()}
    proc = run(core_venv, core_venv / "bin" / "pip", "uninstall", "-y", "-q", "cnr-plugin")
    assert proc.returncode == 0, proc.stderr
    left = {p.name for p in site_packages(core_venv).iterdir()}
    ours = {n for n in before - left}
    assert {"cnr_plugin", PTH} <= ours
    assert not [n for n in left if "cnr" in n.lower()]


def test_install_kind_is_what_this_run_tests():
    """scripts/test.sh runs the suite on the built wheel, then the lm_eval tests on an editable install."""
    import cnr_plugin

    site = Path(sys.executable).parent.parent
    location = Path(cnr_plugin.__file__).resolve()
    editable = os.environ.get("CNR_EXPECT_EDITABLE") == "1"
    source = ROOT / "cnr_plugin"
    if editable:
        assert location.is_relative_to(source), location
        assert (next(site.glob("lib/python3*/site-packages")) / PTH).is_file()
    else:
        assert not location.is_relative_to(source), location
