"""Evaluation throughput of cnr_winrate against a local OpenAI-compatible server with injected
latency and a bounded number of server slots, compared with the ideal wall time.

Ideal = K iterations x ceil(N / C) reviser rounds x latency  (iteration k+1 needs iteration k)
      + ceil(judge calls / C) x latency,  for C = server slots = client concurrency.
The pipeline runs in-process (no lm-eval start-up in the timing): lm-eval's `local-completions`
model as the reviser inside `--model cnr`, then the judge filter. A second run with the same
cache must make 0 calls. Exits 1 if a measured time exceeds 1.15x ideal or the cached run calls.

    python benchmarks/eval_throughput.py [--items 32] [--iterations 2] [--latency 0.2]
    python benchmarks/eval_throughput.py --items 100 1000 --concurrency 32 --latency 0.05   # scaling
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from _common import write_result  # noqa: E402


class ServerProcess:
    """The fault server in its own process (as a real server would be: no shared GIL)."""

    def __init__(self, latency: float, concurrency: int):
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.proc = subprocess.Popen([sys.executable, "-m", "cnr_plugin.testing.fault_server", "--port", str(port),
                                      "--latency", str(latency), "--concurrency", str(concurrency),
                                      "--max-seconds", "1800"], stdout=subprocess.DEVNULL)
        self.base_url = f"http://127.0.0.1:{port}/v1"
        for _ in range(100):
            try:
                urllib.request.urlopen(self.base_url + "/models", timeout=1)
                break
            except OSError:
                time.sleep(0.1)

    def stats(self) -> dict:
        return json.loads(urllib.request.urlopen(self.base_url.removesuffix("/v1") + "/stats").read())

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def run_pipeline(srv: ServerProcess, n: int, k: int, c: int, tmp: Path, cache: Path) -> dict:
    from lm_eval.api.instance import Instance

    from cnr_plugin.lm_eval import tasks
    from cnr_plugin.lm_eval.model import CnRLM

    responses = tmp / "responses.jsonl"
    responses.write_text("".join(json.dumps({"id": f"q{i}", "prompt": f"Question {i}?", "response": f"Answer {i}."})
                                 + "\n" for i in range(n)))
    judge = tmp / "judge.yaml"
    judge.write_text(yaml.safe_dump({"judge": "openai", "model": "m", "base_url": srv.base_url, "api_key_env": None,
                                     "structured_output": "none", "concurrency": c, "check_reachable": False}))
    os.environ["CNR_CACHE_DIR"] = str(cache)
    docs = list(tasks.load_docs(inner="local-completions", responses=str(responses), iterations=k,
                                judge=str(judge))["test"])
    lm = CnRLM.create_from_arg_string(
        f"inner=local-completions,base_url={srv.base_url}/completions,model=m,tokenizer_backend=None,"
        f"tokenized_requests=False,num_concurrent={c},max_retries=1,cache_revisions=true,cache={cache}/cache.sqlite")
    reqs = [Instance("generate_until", d, (tasks.doc_to_text(d), {"until": []}), i, ("cnr_winrate", i, 1))
            for i, d in enumerate(docs)]
    before = dict(srv.stats()["requests"])
    t0 = time.perf_counter()
    outs = lm.generate_until(reqs, disable_tqdm=True)
    t_revise = time.perf_counter() - t0
    filtered = tasks.judge([[o] for o in outs], docs)
    wall = time.perf_counter() - t0
    after = srv.stats()["requests"]
    calls = {p: after.get(p, 0) - before.get(p, 0) for p in after}
    data = [json.loads(f) for f in filtered]
    return {"wall": wall, "revise": t_revise, "reviser_calls": calls.get("/v1/completions", 0),
            "judge_calls": calls.get("/v1/chat/completions", 0),
            "pairs": sum(len(d["judgments"]) for d in data), "cache_hits": data[0]["judge_cache_hits"]}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, nargs="+", default=[32])
    ap.add_argument("--iterations", type=int, default=2)
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--out", type=Path, default=None, help="results JSON (default results/benchmarks/eval_throughput.json)")
    a = ap.parse_args()
    ok, rows = True, []
    print(f"{'C':>3} {'items':>5} {'K':>2} {'rev calls':>9} {'judge calls':>11} {'calls/pair':>10} "
          f"{'ideal s':>8} {'measured s':>10} {'ratio':>6} {'2nd run s':>9} {'2nd calls':>9} {'hit rate':>8}")
    for n, c in [(n, c) for n in a.items for c in a.concurrency]:
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            srv = ServerProcess(a.latency, c)
            try:
                first = run_pipeline(srv, n, a.iterations, c, tmp, tmp / "cache")
                second = run_pipeline(srv, n, a.iterations, c, tmp, tmp / "cache")
            finally:
                srv.stop()
        ideal = (a.iterations * math.ceil(n / c) + math.ceil(first["judge_calls"] / c)) * a.latency
        ratio = first["wall"] / ideal
        calls2 = second["reviser_calls"] + second["judge_calls"]
        hit = second["cache_hits"] / max(1, second["cache_hits"] + second["judge_calls"])
        print(f"[revise {first['revise']:.2f}s, judge {first['wall'] - first['revise']:.2f}s]", file=sys.stderr)
        print(f"{c:>3} {n:>5} {a.iterations:>2} {first['reviser_calls']:>9} {first['judge_calls']:>11} "
              f"{first['judge_calls'] / max(1, first['pairs']):>10.2f} {ideal:>8.2f} {first['wall']:>10.2f} "
              f"{ratio:>5.2f}x {second['wall']:>9.2f} {calls2:>9} {hit:>8.0%}")
        met = ratio <= 1.15 and calls2 == 0
        ok &= met
        rows.append({"concurrency": c, "items": n, "iterations": a.iterations, "latency_s": a.latency,
                     "reviser_calls": first["reviser_calls"], "judge_calls": first["judge_calls"],
                     "calls_per_pair": first["judge_calls"] / max(1, first["pairs"]), "ideal_s": ideal,
                     "measured_s": first["wall"], "ratio": ratio, "cached_s": second["wall"], "cached_calls": calls2,
                     "cache_hit_rate": hit, "met": met})
    print("goal: measured <= 1.15x ideal, cached run 0 calls:", "met" if ok else "MISSED")
    write_result("eval_throughput", vars(a), rows, "measured <= 1.15x ideal and the cached re-run makes 0 calls", ok,
                 out=a.out)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
