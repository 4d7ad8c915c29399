"""Calls per distinct request within one run: identical requests are sent once.

60 items of 20 distinct (prompt, response) pairs, shuffled, 2 iterations, against the fault
server (scripted reviser and judge) in its own process; each path on a fresh cache:

* ``cnr revise`` (the command, served reviser) and ``cnr judge`` on its output;
* ``cnr_winrate`` in process: lm-eval's ``local-completions`` inside ``--model cnr``, then the judge filter;
* ``cnr revise --sampling per_item``: independent samples asked for, so each item is its own request.

Calls per distinct request = the server's count of requests on a path / the distinct request
bodies it saw there (with ``per_item``, the reviser's distinct requests are item x request: each
item asked for its own sample). Goal: 1.00 everywhere (a retry would show as more; none are injected).

    python benchmarks/duplicate_calls.py        # in .venv-eval
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from _common import write_result  # noqa: E402
from eval_throughput import ServerProcess  # noqa: E402

N_ITEMS, N_DISTINCT, ITERATIONS, SEED = 60, 20, 2, 0


def responses(path: Path) -> Path:
    rows = [{"id": f"q{i}", "prompt": f"Question {i % N_DISTINCT}?", "response": f"Answer {i % N_DISTINCT}."}
            for i in range(N_ITEMS)]
    random.Random(SEED).shuffle(rows)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def judge_yaml(path: Path, srv: ServerProcess) -> Path:
    path.write_text(yaml.safe_dump({"judge": "openai", "model": "m", "base_url": srv.base_url, "api_key_env": None,
                                    "structured_output": "none"}))
    return path


def ratios(srv: ServerProcess) -> dict:
    s = srv.stats()
    out = {}
    for path, role in (("/v1/completions", "reviser"), ("/v1/chat/completions", "judge")):
        calls, distinct = s["requests"].get(path, 0), s["distinct_by_path"].get(path, 0)
        out[role] = {"calls": calls, "distinct": distinct, "per_distinct": calls / distinct if distinct else None}
    return out


def cli_path(tmp: Path, sampling: str) -> dict:
    srv = ServerProcess(0.0, 16)
    try:
        env = dict(os.environ, CNR_CACHE_DIR=str(tmp / f"cache-cli-{sampling}"))
        src = responses(tmp / "responses.jsonl")
        cnr = [sys.executable, "-m", "cnr_plugin.cli"]
        subprocess.run([*cnr, "revise", src, "--base-url", srv.base_url, "--model", "m", "--iterations",
                        str(ITERATIONS), "--sampling", sampling, "--out", tmp / f"rev-{sampling}.jsonl"],
                       env=env, check=True, capture_output=True)
        subprocess.run([*cnr, "judge", src, tmp / f"rev-{sampling}.jsonl", "--judge", judge_yaml(tmp / "j.yaml", srv),
                        "--out", tmp / f"judged-{sampling}"], env=env, check=True, capture_output=True)
        return ratios(srv)
    finally:
        srv.stop()


def lm_eval_path(tmp: Path) -> dict:
    from lm_eval.api.instance import Instance

    from cnr_plugin.lm_eval import tasks
    from cnr_plugin.lm_eval.model import CnRLM

    srv = ServerProcess(0.0, 16)
    try:
        cache = tmp / "cache-lm-eval"
        os.environ["CNR_CACHE_DIR"] = str(cache)
        docs = list(tasks.load_docs(inner="local-completions", responses=str(responses(tmp / "responses.jsonl")),
                                    iterations=ITERATIONS, judge=str(judge_yaml(tmp / "j.yaml", srv)))["test"])
        lm = CnRLM.create_from_arg_string(
            f"inner=local-completions,base_url={srv.base_url}/completions,model=m,tokenizer_backend=None,"
            f"tokenized_requests=False,num_concurrent=16,max_retries=1,cache={cache}/cache.sqlite")
        reqs = [Instance("generate_until", d, (tasks.doc_to_text(d), {"until": []}), i, ("cnr_winrate", i, 1))
                for i, d in enumerate(docs)]
        tasks.judge([[o] for o in lm.generate_until(reqs, disable_tqdm=True)], docs)
        return ratios(srv)
    finally:
        srv.stop()


def main() -> int:
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for name, measured in (("cnr revise + cnr judge", cli_path(tmp, "shared")),
                               ("lm_eval cnr_winrate (local-completions)", lm_eval_path(tmp)),
                               ("cnr revise --sampling per_item + cnr judge", cli_path(tmp, "per_item"))):
            for role, r in measured.items():
                if "per_item" in name and role == "reviser":  # each item asked for its own sample: item x request
                    r = {**r, "distinct": N_ITEMS * ITERATIONS, "per_distinct": r["calls"] / (N_ITEMS * ITERATIONS)}
                met = r["per_distinct"] == 1.0
                rows.append({"path": name, "role": role, **r, "met": met})
    print(f"{'path':<44} {'role':<8} {'calls':>6} {'distinct':>8} {'per distinct':>12}")
    for r in rows:
        print(f"{r['path']:<44} {r['role']:<8} {r['calls']:>6} {r['distinct']:>8} {r['per_distinct']:>12.2f}")
    ok = all(r["met"] for r in rows)
    print("goal: 1.00 calls per distinct request:", "met" if ok else "MISSED")
    write_result("duplicate_calls", {"items": N_ITEMS, "distinct": N_DISTINCT, "iterations": ITERATIONS}, rows,
                 "1.00 calls per distinct request on every path", ok, seeds={"shuffle": SEED})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
