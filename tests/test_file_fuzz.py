"""Files a user hands over by mistake or half-written (issue 31 §3), for every command that reads one: a
generated mutation of a good input (empty, truncated, not UTF-8, a line that is a list or a number, a field
removed, a field of the wrong type, a huge text) either still reads and the command succeeds, or the command
exits 1 with one line and writes nothing. Never a traceback, never a partial output.

The commands run in this process (click's runner) against real inputs: ``cnr revise`` at the scripted
server, ``cnr judge`` and ``cnr rank-judges`` with the keywords oracle, then ``cnr export`` and ``cnr report``
on what they wrote. Hypothesis picks the mutation and where it lands (derandomized: CI sees the same cases)."""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from pathlib import Path

import pytest
from conftest import ROOT, have, missing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

KINDS = ("empty", "truncate", "non_utf8", "list_line", "number_line", "drop_field", "wrong_type", "huge_text",
         "blank_lines")
WRONG = (7, None, [], {}, "x", True, 1.5, [1, "a"])


def _paths(obj, prefix=()):
    """Every key path into a JSON value (dicts and lists), the value itself first."""
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, (*prefix, i))


def _parent(obj, path):
    for key in path[:-1]:
        obj = obj[key]
    return obj


def mutate(data: bytes, kind: str, rnd: random.Random, whole: bool = False) -> bytes:
    """``data`` with one mistake of ``kind`` in it; ``whole``: the file is one JSON value, not JSON lines."""
    lines = [data] if whole else data.split(b"\n")
    full = [i for i, line in enumerate(lines) if line.strip()]
    at = rnd.choice(full)
    if kind == "empty":
        return b""
    if kind == "truncate":
        return data[:rnd.randrange(1, len(data))]
    if kind == "non_utf8":
        pos = rnd.randrange(len(data))
        return data[:pos] + b"\xff\xfe" + data[pos:]
    if kind == "list_line":
        lines[at] = b"[1, 2]"
    elif kind == "number_line":
        lines[at] = b"42"
    elif kind == "blank_lines":
        lines.insert(at, b"   ")
        lines.insert(at, b"")
    else:
        row = json.loads(lines[at])
        paths = [p for p in _paths(row) if p]
        if kind == "huge_text":
            texts = [p for p in paths if isinstance(_parent(row, p)[p[-1]], str)]
            path = rnd.choice(texts)
            _parent(row, path)[path[-1]] = "x" * 2_000_000
        else:
            path = rnd.choice(paths)
            parent = _parent(row, path)
            if kind == "drop_field":
                del parent[path[-1]]
            else:
                parent[path[-1]] = rnd.choice(WRONG)
        lines[at] = json.dumps(row, indent=2 if whole else None).encode()
    return b"\n".join(lines)


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """Good inputs and the real outputs of each command: responses, revise output, a judged folder."""
    if not have("openai") or not have("matplotlib"):
        missing("needs the openai client and matplotlib (cnr-plugin[eval])")
    from click.testing import CliRunner

    from cnr_plugin.cli import main
    from cnr_plugin.testing.fault_server import FaultPlan, FaultServer

    root = tmp_path_factory.mktemp("good")
    srv = FaultServer(FaultPlan(), max_requests=100_000, max_seconds=1200).start()
    mp = pytest.MonkeyPatch()
    mp.setenv("CNR_CACHE_DIR", str(root / "cache"))
    mp.setenv("OPENAI_API_KEY", "sk-fuzz")
    shutil.copy(ROOT / "data" / "sample_cnr.jsonl", root / "records.jsonl")
    (root / "responses.jsonl").write_bytes(b"".join((ROOT / "eval_tasks" / "sample_responses.jsonl")
                                                    .read_bytes().splitlines(keepends=True)[:4]))
    (root / "oracle.yaml").write_text("judge: oracle\nchecker: keywords\n")
    (root / "prompts.jsonl").write_text("".join(json.dumps({"id": r["id"], "prompt": r["prompt"]}) + "\n" for r in map(
        json.loads, (root / "responses.jsonl").read_text().splitlines())))
    (root / "human.jsonl").write_text("".join(json.dumps({"pair": f"r0{i}@1", "iteration": 1, "annotator": a,
                                                          "label": label}) + "\n"
                                              for i in (1, 2) for a, label in ((1, "win"), (2, "loss"))))
    (root / "oracle2.yaml").write_text("judge: oracle\nchecker: keywords\ndisagreement: average\n")
    runner = CliRunner()

    def run(*args):
        return runner.invoke(main, [str(a) for a in args], catch_exceptions=True)

    res = run("revise", root / "responses.jsonl", "--base-url", srv.base_url, "--model", "m", "--iterations", 2,
              "--out", root / "revised.jsonl")
    assert res.exit_code == 0, res.output
    res = run("judge", root / "responses.jsonl", root / "revised.jsonl", "--judge", root / "oracle.yaml",
              "--out", root / "judged")
    assert res.exit_code == 0, res.output
    yield root, srv, run
    mp.undo()
    srv.shutdown()


def commands(root: Path, srv, work: Path) -> dict[str, tuple[Path, list, Path]]:
    """Command name -> (the file the mutation goes into, the arguments, where its output would be)."""
    out = work / "out"
    judged = work / "judged"
    return {
        "validate": (work / "records.jsonl", ["validate", work / "records.jsonl"], out),
        "revise": (work / "responses.jsonl", ["revise", work / "responses.jsonl", "--base-url", srv.base_url,
                                              "--model", "m", "--iterations", 1, "--out", out], out),
        "judge baseline": (work / "responses.jsonl", ["judge", work / "responses.jsonl", work / "revised.jsonl",
                                                      "--judge", work / "oracle.yaml", "--out", out], out),
        "judge candidate": (work / "revised.jsonl", ["judge", work / "responses.jsonl", work / "revised.jsonl",
                                                     "--judge", work / "oracle.yaml", "--out", out], out),
        "judge yaml": (work / "oracle.yaml", ["judge", work / "responses.jsonl", work / "revised.jsonl",
                                              "--judge", work / "oracle.yaml", "--out", out], out),
        "rank-judges": (work / "revised.jsonl", ["rank-judges", work / "responses.jsonl", work / "revised.jsonl",
                                                 "--judge", work / "oracle.yaml", "--judge", work / "oracle2.yaml",
                                                 "--out", out], out),
        "export judged": (judged / "samples.jsonl", ["export", judged, "--out", out], out),
        "export revised": (work / "revised.jsonl", ["export", work / "revised.jsonl", "--out", out], out),
        "export human": (work / "human.jsonl", ["export", judged, "--human", work / "human.jsonl", "--out", out], out),
        "annotate responses": (work / "prompts.jsonl", ["annotate", "responses", work / "prompts.jsonl", "--base-url",
                                                        srv.base_url, "--model", "m", "--out", out], out),
        "report": (judged / "cnr_results.json", ["report", judged, "--plot", out / "plot.png"], out),
    }


def check(run, target: Path, args: list, out: Path) -> None:
    res = run(*args)
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        import traceback

        raise AssertionError("a traceback: " + "".join(traceback.format_exception(res.exception))[-3000:])
    assert res.exit_code in (0, 1), (res.exit_code, res.output[-2000:])
    if os.environ.get("CNR_FUZZ_LOG"):  # what each case did, to read the messages (not needed to pass)
        with open(os.environ["CNR_FUZZ_LOG"], "a") as f:
            f.write(f"{' '.join(map(str, args[:2]))} {target.name} {res.exit_code} {res.stderr.strip()[:200]!r}\n")
    if res.exit_code == 1:
        said = res.stderr.strip().splitlines()
        assert len(said) == 1 and said[0].startswith("Error: "), res.stderr[-2000:]
        assert "Traceback" not in res.output
        assert not out.exists(), f"a failed command left {sorted(p.name for p in out.rglob('*'))}"


NAMES = ("validate", "revise", "judge baseline", "judge candidate", "judge yaml", "rank-judges", "export judged",
         "export revised", "export human", "annotate responses", "report")


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(name=st.sampled_from(NAMES), kind=st.sampled_from(KINDS), seed=st.integers(0, 2**16))
def test_any_mutated_input_fails_in_one_line_or_works(good, name, kind, seed):
    root, srv, run = good
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for f in ("records.jsonl", "responses.jsonl", "revised.jsonl", "oracle.yaml", "oracle2.yaml", "prompts.jsonl",
                  "human.jsonl"):
            shutil.copy(root / f, work / f)
        shutil.copytree(root / "judged", work / "judged")
        target, args, out = commands(root, srv, work)[name]
        if kind in ("list_line", "number_line", "drop_field", "wrong_type", "huge_text") and target.suffix == ".yaml":
            kind = "truncate"  # a YAML file has no JSON lines: cut it instead
        target.write_bytes(mutate(target.read_bytes(), kind, random.Random(seed), whole=target.suffix == ".json"))
        check(run, target, args, out)


def test_the_ordinary_mistakes_of_the_issue(good, tmp_path):
    """Each case issue 31 met with a traceback, now one line naming file, line and field."""
    root, _srv, run = good
    judged = root / "judged"

    def one_line(*args) -> str:
        res = run(*args)
        assert res.exit_code == 1 and not isinstance(res.exception, (KeyError, TypeError, ValueError)), res.output
        said = res.stderr.strip().splitlines()
        assert len(said) == 1, res.stderr
        return said[0]

    # the summary file instead of the folder: its items beside it are read
    res = run("export", judged / "cnr_results.json", "--out", tmp_path / "e1")
    assert res.exit_code == 0, res.output
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes((root / "revised.jsonl").read_bytes()[:-40])
    assert one_line("export", cut, "--out", tmp_path / "e2").startswith(f"Error: {cut}:4: invalid JSON")
    rows = [json.loads(x) for x in (judged / "samples.jsonl").read_text().splitlines()]
    listed = tmp_path / "listed.jsonl"
    listed.write_text(json.dumps(rows[0]) + "\n[1, 2]\n")
    assert one_line("export", listed, "--out", tmp_path / "e3").endswith(f"{listed}:2: expected a JSON object, got list")
    del rows[1]["response"]
    nores = tmp_path / "nores.jsonl"
    nores.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert "nores.jsonl:2: field 'response': is missing" in one_line("export", nores, "--out", tmp_path / "e4")
    folder = tmp_path / "lm" / "model"
    folder.mkdir(parents=True)
    (folder / "samples_cnr_winrate_2026.jsonl").write_text("not json\n")
    assert "samples_cnr_winrate_2026.jsonl:1: invalid JSON" in one_line("export", tmp_path / "lm", "--out", tmp_path / "e5")
    for p in ("e2", "e3", "e4", "e5"):
        assert not (tmp_path / p).exists()
