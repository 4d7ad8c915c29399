"""What a results file records about the run that made it: code, versions, hardware, arguments.

Every script that writes a committed figure (the mini reproduction, its levers, the benchmarks)
puts :func:`provenance` at the top of its JSON, so a number can be traced to the commit (and
whether the tree was dirty), the package versions, the machine, the full arguments and the seeds.
Standard library only.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("cnr-plugin", "torch", "transformers", "axolotl", "lm_eval", "deepspeed", "peft", "numpy", "openai", "httpx2",
            "httpx")
#: the stack `cnr --version` reports: what a bug report needs to reproduce a run
STACK = ("lm_eval", "axolotl", "transformers", "peft", "trl", "deepspeed", "torch", "openai", "pluggy", "pydantic")


def _git(*args: str, cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Python's version and each installed distribution's (None where it is not installed); reads
    package metadata only, imports nothing."""
    return {"python": platform.python_version(), **{p: _version(p) for p in packages}}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpus() -> list[str]:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()] if out.returncode == 0 else []


def provenance(args: dict[str, Any], seeds: dict[str, Any] | None = None, repo: Path | None = None) -> dict[str, Any]:
    """Commit, dirty flag, versions, hardware, full arguments and seeds of this run."""
    repo = repo or Path(__file__).resolve().parents[1]
    # results files are what a run writes, not what it ran: a re-run beside committed results is clean
    status = _git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results", cwd=repo)
    return {
        "commit": _git("rev-parse", "HEAD", cwd=repo),
        "dirty": bool(status) if status is not None else None,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
        "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in args.items()},
        "seeds": seeds or {},
        "versions": versions(),
        "hardware": {"cpu": _cpu_model(), "cores": os.cpu_count(), "gpus": _gpus(),
                     "platform": platform.platform()},
    }
