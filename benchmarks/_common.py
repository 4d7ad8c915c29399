"""Shared helpers of the benchmark scripts: synthetic CnR records and a saved tokenizer."""

from __future__ import annotations

import gzip
import json
import random
import resource
import time
from collections.abc import Iterable
from pathlib import Path

WORDS = ("the model answer is wrong because it forgets units and the revision adds them with a short "
         "explanation of each step so that a reader can check every number against the question").split()


def sentence(rng: random.Random, lo: int, hi: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi))).capitalize() + "."


def synthetic_records(n: int, seed: int = 0) -> list[dict]:
    """CnR records with lengths like the sample data (prompt ~20, response ~60, critique ~40,
    revision ~80 words)."""
    rng = random.Random(seed)
    return [{"id": f"b{i}", "prompt": sentence(rng, 8, 30), "response": sentence(rng, 30, 90),
             "critique": sentence(rng, 20, 60), "revision": sentence(rng, 40, 120)} for i in range(n)]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def write_jsonl_gz(path: Path, rows: Iterable[dict]) -> Path:
    """``rows`` as gzip-compressed JSON lines (the results folders keep samples and data this way)."""
    with gzip.open(path, "wt") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    return path


def saved_tokenizer(folder: Path) -> Path:
    """A tiny model directory with the SmolLM2 tokenizer (axolotl wants a model config beside it)."""
    if not (folder / "tokenizer.json").exists():
        from cnr_plugin.small_models import make_tiny_model

        make_tiny_model(folder)
    return folder


ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results" / "benchmarks"
T0 = time.time()  # the benchmark's start (this module is imported first)


def peak_memory_mb() -> int:
    """The largest resident set of this process or any of its children so far, in MB."""
    return round(max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
                 / 1024)


def write_result(name: str, args: dict, rows: list[dict], goal: str, met: bool, out: Path | None = None,
                 seeds: dict | None = None, extra: dict | None = None) -> Path:
    """A benchmark's figures as JSON with the run's provenance (commit, dirty flag, versions,
    hardware, arguments, seeds); each row says whether it meets ``goal`` (``met``), so the tables
    made from these files (benchmarks/tables.py) mark every miss."""
    from cnr_plugin.provenance import provenance

    path = out or RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"benchmark": name, "provenance": provenance(args, seeds or {}, repo=ROOT), "goal": goal, "met": met,
            "wall_s": round(time.time() - T0, 1), "peak_memory_mb": peak_memory_mb(), "rows": rows, **(extra or {})}
    path.write_text(json.dumps(data, indent=2))
    print(f"-> {path}")
    return path
