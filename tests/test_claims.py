"""Ranks of a data-parallel run share one cache (issue 31 §1): a request that several of them need is
sent once, by the first to claim it; the others read the answer from the cache. Real processes,
started together, with a slow backend and judge so that their requests overlap in time."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from cnr_plugin.cache import Cache, Claims

WORKER = textwrap.dedent('''
    import json, os, sys, time
    from pathlib import Path
    from cnr_plugin.cache import Cache
    from cnr_plugin.evaluation.generation import cached_generate
    from cnr_plugin.evaluation.judging import JudgeRunner
    from cnr_plugin.formats import Prompted
    from cnr_plugin.judges import JudgePair, Verdict, load_judge_config

    folder, rank, kind = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    sent = folder / f"sent-{rank}.txt"

    def note(text):
        with open(sent, "a", encoding="utf-8") as f:
            f.write(text + "\\n")

    class SlowBackend:
        identity = "slow"
        def generate(self, requests):
            out = []
            for r in requests:
                note(r.text)
                time.sleep(0.2)
                out.append("revised " + r.text)
            return out

    class SlowJudge:
        name, cacheable, reads = "slow", True, frozenset({"prompt", "a", "b"})
        options = None
        def judge_one(self, pair):
            note(pair.a + " | " + pair.b)
            time.sleep(0.2)
            if "fails" in pair.a:
                return Verdict(None, "failed", "", "HTTP 500")
            return Verdict("A" if len(pair.a) >= len(pair.b) else "B", "ok")

    while not (folder / "go").exists():
        time.sleep(0.01)
    cache = Cache(folder / "cache.sqlite")
    # every rank needs the shared requests (in its own order) and one of its own
    shared = [f"request {i}" for i in range(6)]
    mine = shared[rank:] + shared[:rank] + [f"own {rank}"]
    if kind == "generate":
        texts, n = cached_generate(SlowBackend(), [Prompted(text=t) for t in mine], cache)
        result = dict(zip(mine, texts))
    else:
        config = load_judge_config({"judge": "oracle", "checker": "keywords", "concurrency": 2})
        runner = JudgeRunner(SlowJudge(), config, cache, progress=False)
        pairs = [JudgePair("p", t, "x") for t in mine] + [JudgePair("p", "fails", "x")]
        result = {p.a: v.status for p, v in zip(pairs, runner.judge_pairs(pairs))}
    print(json.dumps(result))
''')


def run_ranks(tmp_path: Path, kind: str, ranks: int = 3) -> tuple[list[dict], list[str]]:
    (tmp_path / "worker.py").write_text(WORKER)
    env = dict(os.environ, WORLD_SIZE=str(ranks))
    procs = [subprocess.Popen([sys.executable, str(tmp_path / "worker.py"), str(tmp_path), str(r), kind],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in range(ranks)]
    time.sleep(2.0)  # every process imported and waiting
    (tmp_path / "go").touch()
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-3000:]
        outs.append(json.loads(out.strip().splitlines()[-1]))
    sent = [line for r in range(ranks) for line in
            (tmp_path / f"sent-{r}.txt").read_text(encoding="utf-8").splitlines()] if any(
        (tmp_path / f"sent-{r}.txt").exists() for r in range(ranks)) else []
    return outs, sent


def test_ranks_generate_each_shared_request_once(tmp_path):
    outs, sent = run_ranks(tmp_path, "generate")
    # 6 shared requests and 3 own ones: 9 sent in all, none twice, and every rank got every text
    assert sorted(sent) == sorted({*sent}) and len(sent) == 9, sent
    for rank, out in enumerate(outs):
        assert out == {t: "revised " + t for t in out} and len(out) == 7 and f"own {rank}" in out
    assert not Cache(tmp_path / "cache.sqlite")._con().execute("SELECT COUNT(*) FROM claims").fetchone()[0]


def test_ranks_judge_each_shared_pair_once_and_a_failed_one_is_asked_again(tmp_path):
    outs, sent = run_ranks(tmp_path, "judge")
    ok = [s for s in sent if "fails" not in s]
    assert sorted(ok) == sorted({*ok}) and len(ok) == 9, sent
    # a failed verdict is not cached, so no rank can read it from another: each asks for itself
    assert sum("fails" in s for s in sent) == 3
    for out in outs:
        assert out["fails"] == "failed" and all(v == "ok" for k, v in out.items() if k != "fails")


OPEN = textwrap.dedent('''
    import sys, time
    from pathlib import Path
    from cnr_plugin.cache import Cache
    folder = Path(sys.argv[1])
    while not (folder / "go").exists():
        time.sleep(0.001)
    cache = Cache(folder / "cache.sqlite")
    cache.put("judge", sys.argv[2], {"winner": "A"})
''')


def test_processes_that_open_a_new_cache_together_all_get_it(tmp_path):
    """Ranks start together and open the same new cache: switching it to WAL made the losers of that
    race fail at once with "database is locked" (seen in 1 of 6 runs of the tests above)."""
    (tmp_path / "open.py").write_text(OPEN)
    for attempt in range(4):
        folder = tmp_path / f"a{attempt}"
        folder.mkdir()
        procs = [subprocess.Popen([sys.executable, str(tmp_path / "open.py"), str(folder), f"k{r}"],
                                  stderr=subprocess.PIPE, text=True) for r in range(8)]
        time.sleep(1.0)
        (folder / "go").touch()
        errors = [p.communicate(timeout=120)[1] for p in procs]
        assert [p.returncode for p in procs] == [0] * 8, [e[-500:] for e in errors if e]
        assert Cache(folder / "cache.sqlite").count("judge") == 8


def test_a_dead_or_silent_owners_claim_is_taken_over(tmp_path):
    cache = Cache(tmp_path / "cache.sqlite")
    me = Claims(cache, "judge", stale_s=5)
    con = cache._con()
    with con:
        # a process on this machine that is gone, and one elsewhere whose heartbeat stopped
        con.execute("INSERT INTO claims VALUES (?, ?, ?)", ("judge:k1", f"{socket.gethostname()}|999999999|x", time.time()))
        con.execute("INSERT INTO claims VALUES (?, ?, ?)", ("judge:k2", "other-host|1|y", time.time() - 60))
        con.execute("INSERT INTO claims VALUES (?, ?, ?)", ("judge:k3", "other-host|1|z", time.time()))
    assert me.take(["k1", "k2", "k3"]) == {"k1", "k2"}
    # a live owner is waited for, until its row arrives
    done = threading.Event()
    threading.Thread(target=lambda: (me.wait(["k3"], lambda k: cache.get("judge", k)), done.set()), daemon=True).start()
    assert not done.wait(1.0)
    cache.put("judge", "k3", {"winner": "A"})
    assert done.wait(10.0)
    assert me.wait(["k3"], lambda k: cache.get("judge", k)) == ({"k3": {"winner": "A"}}, [])
