"""Data-parallel evaluation the way lm-eval runs it on a node (issue 31 §1): two ranks under torchrun (gloo on
CPU) through lm-eval's own evaluator, sharding and gather. ``--model cnr`` takes its rank and world size from
the process group (its inner model, ``local-completions`` at the scripted server, is not data-parallel
itself; HFLM only is on several GPUs), so each rank revises and judges its own share of the documents and
rank 0 writes the one results file. Every per-item result equals the single-process run's, and the server
answers no request twice, even for documents that repeat on different ranks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import free_port, have, missing

from cnr_plugin.testing.fault_server import FaultPlan, FaultServer

pytestmark = pytest.mark.integration
N_ITEMS, ITERATIONS = 7, 2  # odd: the ranks get 4 and 3 documents, so lm-eval pads one rank's requests


def lm_eval_args(tmp_path: Path, srv: FaultServer, responses: Path, out: Path, judge: Path) -> list[str]:
    meta = {"responses": str(responses), "iterations": ITERATIONS, "judge": str(judge)}
    return ["-m", "lm_eval", "--model", "cnr", "--model_args",
            f"inner=local-completions,base_url={srv.base_url}/completions,model=fault-model,"
            "tokenizer_backend=None,tokenized_requests=False",
            "--tasks", "cnr_winrate", "--metadata", json.dumps(meta), "--log_samples", "--output_path", str(out)]


def evaluate(tmp_path: Path, name: str, responses: Path, ranks: int) -> tuple[subprocess.CompletedProcess, Path, dict]:
    srv = FaultServer(FaultPlan(seed=0), max_seconds=600).start()
    try:
        judge = tmp_path / f"judge-{name}.yaml"
        judge.write_text(yaml.safe_dump({"judge": "openai", "model": "fault-model", "base_url": srv.base_url,
                                         "api_key_env": None, "structured_output": "none", "concurrency": 4}))
        out = tmp_path / name
        launcher = [sys.executable] if ranks == 1 else [
            sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(ranks), "--master_port",
            str(free_port())]
        env = dict(os.environ, CNR_CACHE_DIR=str(tmp_path / f"cache-{name}"), OPENAI_API_KEY="sk-x",
                   OMP_NUM_THREADS="1")
        proc = subprocess.run([*launcher, *lm_eval_args(tmp_path, srv, responses, out, judge)], env=env,
                              capture_output=True, text=True, timeout=900, cwd=tmp_path)
        stats = srv.stats.snapshot()
    finally:
        srv.shutdown()
    return proc, out, stats


def why(proc: subprocess.CompletedProcess) -> str:
    """The lines of a failed run that say why (errors and tracebacks), not its progress bars."""
    lines = [x for x in proc.stderr.splitlines() if "Requesting API" not in x and "it/s]" not in x]
    return f"exit {proc.returncode}:\n" + "\n".join(lines[-60:])


def per_item(out: Path) -> dict[str, tuple]:
    (samples,) = list(out.rglob("samples_cnr_winrate_*.jsonl"))
    items = {}
    for line in samples.read_text().splitlines():
        row = json.loads(line)
        data = json.loads(row["filtered_resps"][0] if isinstance(row["filtered_resps"], list) else row["filtered_resps"])
        assert row["doc"]["id"] not in items, f"item {row['doc']['id']} evaluated twice"
        items[row["doc"]["id"]] = (tuple(s["result"] for s in data["steps"]),
                                   tuple((j["iteration"], j["against"], j["score"]) for j in data["judgments"]))
    return items


def test_two_ranks_under_torchrun_split_the_documents_and_agree_with_one_process(tmp_path):
    if not have("torch") or not have("lm_eval"):
        missing("needs torch (torchrun, gloo) and lm-eval")
    # d1 repeats d0 and d5 repeats d4: lm-eval gives each pair's two documents to different ranks, which
    # ask the same reviser and judge requests; the shared cache's claims send each once (test_claims.py)
    rows = [{"id": f"d{i}", "prompt": f"Question {i - (i in (1, 5))}?", "response": f"Answer {i - (i in (1, 5))}."}
            for i in range(N_ITEMS)]
    responses = tmp_path / "responses.jsonl"
    responses.write_text("".join(json.dumps(r) + "\n" for r in rows))

    one, out1, stats1 = evaluate(tmp_path, "one", responses, ranks=1)
    assert one.returncode == 0, why(one)
    two, out2, stats2 = evaluate(tmp_path, "two", responses, ranks=2)
    assert two.returncode == 0, why(two)

    log = two.stdout + two.stderr
    assert "Building contexts for cnr_winrate on rank 0" in log and "Building contexts for cnr_winrate on rank 1" in log
    assert len(list(out2.rglob("results_*.json"))) == 1 and len(list(out2.rglob("samples_*.jsonl"))) == 1
    assert two.stdout.count("|cnr_winrate|") <= one.stdout.count("|cnr_winrate|")  # one table, from rank 0
    assert per_item(out2) == per_item(out1) and len(per_item(out2)) == N_ITEMS
    res1 = json.loads(next(out1.rglob("results_*.json")).read_text())["results"]["cnr_winrate"]
    res2 = json.loads(next(out2.rglob("results_*.json")).read_text())["results"]["cnr_winrate"]
    for key in ("winrate_iter1,judged", "winrate_iter2,judged", "n_items,judged"):
        assert res2.get(key) == res1.get(key), key
    # the two ranks asked the server what one process asked, no request twice
    assert stats2["requests"] == stats1["requests"], (stats1["requests"], stats2["requests"])


ENDS_GROUP = '''
import atexit, os
from pathlib import Path
import torch.distributed as dist
# registered first, so it runs last (atexit is last in, first out): after every handler cnr registered;
# each rank writes its own file (their prints interleave on torchrun's shared stdout)
atexit.register(lambda: Path(f"alive-{os.environ['RANK']}.txt").write_text(str(dist.is_initialized())))
from cnr_plugin.lm_eval.model import CnRLM

class Inner:  # not data-parallel itself, as local-completions
    world_size = 1

lm = CnRLM(Inner(), "inner", {}, cache_revisions=False)
assert (lm.rank, lm.world_size) == (dist.get_rank(), 2)
'''


def test_the_process_group_cnr_starts_is_ended_before_the_interpreter_finalizes(tmp_path):
    """A rank left its gloo group to the interpreter's finalization and aborted after its last gather
    ("terminate called without an active exception", exit -6; 4 of 40 bare torchrun runs here, 0 of 40 with
    the group destroyed at exit; pytorch/pytorch#190489). The group ``--model cnr`` starts, it ends."""
    if not have("torch") or not have("lm_eval"):
        missing("needs torch (torchrun, gloo) and lm-eval")
    (tmp_path / "ends_group.py").write_text(ENDS_GROUP)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                           str(free_port()), str(tmp_path / "ends_group.py")],
                          env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True, text=True, timeout=300,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [(tmp_path / f"alive-{r}.txt").read_text() for r in range(2)] == ["False", "False"]
