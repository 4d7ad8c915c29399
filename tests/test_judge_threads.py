"""Issue 31 §2: a verdict is a function of its inputs alone, at any concurrency.

lm-eval's IFEval checkers call langdetect, which loaded its profiles lazily into a module global:
judge threads that reached it first raced, and the same all-capitals text was judged to follow
`change_case:english_capital` in one position order and not in the other. The ifeval judge now
loads the profiles before any thread and runs the checkers one at a time; the oracle runs a
user's checker one at a time unless it says `thread_safe: true`. Each run starts a fresh process,
so the lazy state is cold as it is for a user."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = r"""
import json, random, sys
from cnr_plugin.evaluation import Item, judge_revisions
from cnr_plugin.judges import load_judge_config

judge, concurrency, seed = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
texts = ["THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG AND RUNS AWAY.", "the quick brown fox jumps over the lazy dog.",
         "Der schnelle braune Fuchs springt über den faulen Hund.", "LE RENARD BRUN RAPIDE SAUTE PAR-DESSUS LE CHIEN.",
         "a short one", "OK, FINE."]
meta = {"instruction_id_list": ["change_case:english_capital", "change_case:english_lowercase",
                                "language:response_language"], "kwargs": [{}, {}, {"language": "en"}]}
rows = [(f"i{a}-{b}", texts[a], texts[b]) for a in range(len(texts)) for b in range(len(texts))]
rows = rows + rows[:7]  # duplicates: the same item id twice is one item; copies under new ids are others
rows = [(f"{i}" if n < len(texts) ** 2 else f"{i}-copy", o, r) for n, (i, o, r) in enumerate(rows)]
random.Random(seed).shuffle(rows)
items = [Item(i, "Write one sentence.", o, None, meta) for i, o, _ in rows]
results = {i: [(1, r)] for i, _, r in rows}
config = load_judge_config({**judge, "concurrency": concurrency})
ev = judge_revisions(items, results, config, progress=False)
print(json.dumps({it_id: [(j["score"], j["forward"]["winner"], j["backward"]["winner"], j["forward"]["raw"],
                           j["backward"]["raw"]) for j in js] for it_id, js in sorted(ev.by_item().items())}))
"""

CHECKER = '''
import random, time

def score(prompt, response, meta):
    """Module state a user's checker might have: the global random, reseeded per text."""
    random.seed(response)
    time.sleep(0.0005)  # another thread may reseed here
    return round(random.random() * 3)
'''


def verdicts(judge: dict, concurrency: int, seed: int, tmp_path: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(judge), str(concurrency), str(seed)],
                          capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(tmp_path),
                                                                                       os.environ.get("PYTHONPATH")]))))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("judge", [
    pytest.param({"judge": "ifeval", "loose": True}, id="ifeval-loose"),
    pytest.param({"judge": "ifeval"}, id="ifeval-strict"),
    pytest.param({"judge": "oracle", "checker": "unsafe_checker:score"}, id="oracle-with-module-state"),
])
def test_verdicts_do_not_depend_on_threads_order_or_duplicates(tmp_path, judge):
    if judge["judge"] == "ifeval":
        pytest.importorskip("lm_eval")
        pytest.importorskip("langdetect")
    (tmp_path / "unsafe_checker.py").write_text(CHECKER)
    sequential = verdicts(judge, 1, 0, tmp_path)
    assert len(sequential) == 36 + 7
    rng = random.Random(0)
    for _ in range(3):
        assert verdicts(judge, 16, rng.randrange(1000), tmp_path) == sequential
