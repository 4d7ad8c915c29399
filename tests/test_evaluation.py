"""The evaluation layer's promises (issue 11): a win rate does not depend on row order, duplicated
prompts or the cache; what fails is not cached; bad input fails before work, in one line."""

from __future__ import annotations

import json
import logging
import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnr_plugin.cache import Cache
from cnr_plugin.errors import CnRError
from cnr_plugin.evaluation import (
    MAX_ITERATIONS,
    Item,
    JudgeRunner,
    OversizedError,
    RunConfig,
    RunOptionError,
    cached_generate,
    check_lengths,
    judge_revisions,
    prepare_judge,
    revise,
    run_config,
    verdict_key,
)
from cnr_plugin.formats import Prompted
from cnr_plugin.judges import JudgeBase, JudgeConfigError, JudgePair, Verdict, load_judge_config
from cnr_plugin.plugins import get_format

REFERENCE = {"judge": "oracle", "checker": "reference"}


def reference_items():
    """Two items with the same prompt and texts; only the reference in meta tells them apart."""
    return [Item("x", "Say the word.", "cat", meta={"reference": "dog"}),
            Item("y", "Say the word.", "cat", meta={"reference": "cat"})]


def win_rates(evaluation):
    return {(r["against"], r["iteration"]): (r["winrate"], tuple(r["ci95"])) for r in evaluation.summary["rows"]}


def scores(evaluation):
    return sorted((j.comparison.item_id, j.comparison.iteration, j.comparison.against, j.score)
                  for j in evaluation.judged)


# 1. a verdict's identity covers what the judge reads ---------------------------------------------

@pytest.mark.parametrize("order", [[0, 1], [1, 0]])
def test_items_differing_only_in_meta_get_their_own_verdicts(order):
    items = [reference_items()[i] for i in order]
    results = {"x": [(1, "dog")], "y": [(1, "dog")]}  # x: fixed (win), y: broken (loss)
    config = load_judge_config(REFERENCE)
    ev = judge_revisions(items, results, config, progress=False)
    assert {j.comparison.item_id: j.score for j in ev.judged} == {"x": 1.0, "y": 0.0}
    assert win_rates(ev)[("original", 1)][0] == 0.5


def test_plugin_judge_reading_meta_is_keyed_by_meta_and_not_cached_by_default(tmp_path):
    class MetaJudge:  # a plugin judge that declares nothing: the safe defaults apply
        calls = 0

        def judge_one(self, pair):
            MetaJudge.calls += 1
            return Verdict("A" if pair.a == pair.meta["good"] else "B", "ok")

        def check_reachable(self):
            pass

    config = load_judge_config(REFERENCE)
    cache = Cache(tmp_path / "c.sqlite")
    pairs = [JudgePair("p", "u", "v", {"good": "u"}), JudgePair("p", "u", "v", {"good": "v"})]
    runner = JudgeRunner(MetaJudge(), config, cache, progress=False)
    assert [v.winner for v in runner.judge_pairs(pairs)] == ["A", "B"]
    assert cache.count("judge") == 0 and MetaJudge.calls == 2
    assert verdict_key(config, MetaJudge(), pairs[0]) != verdict_key(config, MetaJudge(), pairs[1])


def test_a_judge_that_does_not_read_meta_shares_verdicts_across_meta():
    class TextJudge(JudgeBase):
        reads = frozenset({"prompt", "a", "b"})

    config = load_judge_config(REFERENCE)
    a, b = JudgePair("p", "u", "v", {"k": 1}), JudgePair("p", "u", "v", {"k": 2})
    assert verdict_key(config, TextJudge(), a) == verdict_key(config, TextJudge(), b)


item_strategy = st.builds(
    lambda prompt, response, reference, revisions: (prompt, response, reference, revisions),
    st.sampled_from(["p1", "p2"]), st.sampled_from(["a", "b", "  a\n"]), st.sampled_from(["a", "b"]),
    st.lists(st.sampled_from(["a", "b", "c"]), min_size=2, max_size=2))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(item_strategy, min_size=1, max_size=8), data=st.data())
def test_results_do_not_depend_on_row_order_or_duplicated_prompts(rows, data):
    """Permuting the items, or adding items that repeat a prompt and texts with another meta,
    changes no item's scores and no win rate of the original items."""
    items = [Item(f"i{n}", p, r, meta={"reference": ref}) for n, (p, r, ref, _) in enumerate(rows)]
    results = {f"i{n}": list(enumerate(revs, start=1)) for n, (*_, revs) in enumerate(rows)}
    config = load_judge_config(REFERENCE)
    base = judge_revisions(items, results, config, progress=False)

    shuffled = data.draw(st.permutations(items))
    again = judge_revisions(shuffled, results, config, progress=False)
    assert scores(again) == scores(base) and win_rates(again) == win_rates(base)

    dupes = [Item(f"d{n}", it.prompt, it.response, meta={"reference": "zzz" + it.meta["reference"]})
             for n, it in enumerate(items)]
    mixed = data.draw(st.permutations(items + dupes))
    both = judge_revisions(mixed, {**results, **{d.id: results[it.id] for d, it in zip(dupes, items)}}, config,
                           progress=False)
    assert [s for s in scores(both) if s[0].startswith("i")] == scores(base)
    # the duplicates' references are never met: every duplicate comparison ties
    assert {s[3] for s in scores(both) if s[0].startswith("d")} == {0.5}


# 2. unparsed verdicts are not cached -------------------------------------------------------------

def test_unparsed_verdicts_are_asked_again_next_run(tmp_path):
    class Flaky(JudgeBase):
        reads = frozenset({"prompt", "a", "b"})
        cacheable = True

        def __init__(self, garbage):
            self.garbage, self.calls = garbage, 0

        def judge_one(self, pair):
            self.calls += 1
            if self.garbage:
                return Verdict(None, "unparsed", "I cannot decide", "reply is not exactly [[A]]")
            return Verdict("A" if pair.a == "new" else "B", "ok")

    config = load_judge_config({**REFERENCE, "max_failed_fraction": 1.0})
    items, results = [Item("1", "p", "old")], {"1": [(1, "new")]}
    cache = Cache(tmp_path / "c.sqlite")
    first = Flaky(garbage=True)
    with pytest.raises(CnRError, match="no comparison could be judged"):
        judge_revisions(items, results, config, first, cache=cache, progress=False)
    assert first.calls == 2 and cache.count("judge") == 0
    second = Flaky(garbage=False)
    ev = judge_revisions(items, results, config, second, cache=cache, progress=False)
    assert second.calls == 2 and ev.summary["rows"][0]["winrate"] == 1.0 and cache.count("judge") == 2


# 3. the judge is checked against every item before generation; its errors are counted ----------

def test_checker_that_cannot_score_an_item_stops_before_generation():
    items = [Item("ok", "p", "r", meta={"reference": "r"}), Item("bad", "p", "r", meta={})]
    with pytest.raises(JudgeConfigError) as info:
        prepare_judge(REFERENCE, items, source="responses.jsonl")
    msg = str(info.value)
    assert msg.startswith("responses.jsonl: item 'bad': oracle checker 'reference' cannot score") and "\n" not in msg
    assert "meta has no 'reference'" in msg


def test_a_judge_error_on_one_pair_is_counted_as_failed(caplog):
    class Boom(JudgeBase):
        def judge_one(self, pair):
            if pair.prompt == "explode":
                raise ZeroDivisionError("division by zero")
            return Verdict("A" if pair.a == "new" else "B", "ok")

    config = load_judge_config({**REFERENCE, "max_failed_fraction": 0.5})
    items = [Item("1", "explode", "old"), Item("2", "fine", "old")]
    with caplog.at_level(logging.WARNING, logger="cnr_plugin.evaluation"):
        ev = judge_revisions(items, {"1": [(1, "new")], "2": [(1, "new")]}, config, Boom(), progress=False)
    row = ev.summary["rows"][0]
    assert (row["n_failed"], row["n_judged"], row["winrate"]) == (1, 1, 1.0)
    failed = next(j for j in ev.judged if j.status == "failed")
    assert "ZeroDivisionError" in failed.forward.error
    assert "1 of 2 comparisons are excluded" in caplog.text


class Scripted:
    """A reviser that appends '!' to what it is given; counts what it generates."""

    identity = "scripted-v1"

    def __init__(self):
        self.generated = 0

    def generate(self, requests):
        self.generated += len(requests)
        out = []
        for req in requests:
            response = req.text.split("### Response:\n")[-1].split("\n\n### Critique:")[0]
            out.append(f"Needs emphasis.\n\n### Revision:\n{response}!")
        return out


def test_generations_survive_a_failed_judging_and_are_not_regenerated(tmp_path):
    cache = Cache(tmp_path / "c.sqlite")
    items = [Item("1", "p", "    return x\n  "), Item("2", "q", "y")]
    first = Scripted()
    steps = revise(items, get_format("plain"), first, 2, cache=cache, progress=False)
    assert first.generated == 4 and cache.count("revision") == 4
    config = load_judge_config({**REFERENCE, "max_failed_fraction": 0.0})

    class Down(JudgeBase):
        def judge_one(self, pair):
            raise ConnectionError("judge went away")

    results = {k: [(s.iteration, s.result) for s in v] for k, v in steps.items()}
    with pytest.raises(CnRError, match=r"no comparison could be judged \(first error: .*judge went away"):
        judge_revisions(items, results, config, Down(), progress=False)
    second = Scripted()
    again = revise(items, get_format("plain"), second, 2, cache=cache, progress=False)
    assert second.generated == 0 and again == steps


# 4. texts are byte-exact ------------------------------------------------------------------------

def test_whitespace_significant_text_is_revised_and_judged_exactly():
    code = "    return x\n  "
    seen = []

    class Echo(JudgeBase):
        def judge_one(self, pair):
            seen.append((pair.a, pair.b))
            return Verdict("tie", "ok")

    steps = revise([Item("1", "def f(x):", code)], get_format("plain"), Scripted(), 1, progress=False)
    assert steps["1"][0].response == code and steps["1"][0].result == code + "!"
    judge_revisions([Item("1", "def f(x):", code)], {"1": [(1, code + "!")]}, load_judge_config(REFERENCE),
                    Echo(), progress=False)
    assert (code + "!", code) in seen and (code, code + "!") in seen


def test_parse_keeps_the_revision_indentation():
    parsed = get_format("plain").parse("Indent it.\n\n### Revision:\n    return x\n")
    assert parsed.revision == "    return x\n"


# 5. unknown run options fail with a suggestion; 10. one iteration limit --------------------------

def test_unknown_run_option_is_an_error_with_a_suggestion():
    with pytest.raises(RunOptionError) as info:
        run_config({"iteration": 3}, source="--metadata")
    assert "unknown key 'iteration'; did you mean 'iterations'?" in str(info.value)
    assert run_config({"iterations": 3, "pretrained": "x"}, ignore={"pretrained"}).iterations == 3


def test_iteration_limit_is_one_constant_everywhere():
    import yaml

    from cnr_plugin.resources import eval_tasks_path

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))
    task = yaml.load(eval_tasks_path("cnr_winrate.yaml").read_text(), Loader=Loader)
    metrics = {m["metric"] for m in task["metric_list"]}
    for family in ("winrate_iter{}", "winrate_iter{}_ci95_lo", "winrate_iter{}_ci95_hi", "len_ratio_iter{}",
                   "stopped_iter{}", "rejected_iter{}", "lc_winrate_iter{}", "lc_winrate_iter{}_ci95_lo",
                   "lc_winrate_iter{}_ci95_hi"):
        assert {family.format(k) for k in range(1, MAX_ITERATIONS + 1)} <= metrics
        assert family.format(MAX_ITERATIONS + 1) not in metrics
    # the YAML names exactly the metrics results.py defines, with their aggregations (one home)
    from cnr_plugin.results import task_metrics

    listed = [(m["metric"], m["aggregation"].removeprefix("cnr_utils."), m["higher_is_better"])
              for m in task["metric_list"]]
    assert listed == task_metrics(MAX_ITERATIONS)
    assert RunConfig(iterations=MAX_ITERATIONS).iterations == MAX_ITERATIONS
    with pytest.raises(RunOptionError, match="iterations"):
        run_config({"iterations": MAX_ITERATIONS + 1})


def test_axolotl_and_cli_share_the_iteration_limit():
    import click
    from pydantic import ValidationError

    from cnr_plugin.axolotl.args import CnRArgs
    from cnr_plugin.cli import revise as revise_cmd

    CnRArgs(cnr_eval_iterations=MAX_ITERATIONS)
    with pytest.raises(ValidationError):
        CnRArgs(cnr_eval_iterations=MAX_ITERATIONS + 1)
    option = next(p for p in revise_cmd.params if p.name == "iterations")
    assert isinstance(option.type, click.IntRange) and option.type.max == MAX_ITERATIONS


# 9. oversized input ------------------------------------------------------------------------------

def test_oversized_inputs_error_or_are_skipped_by_id():
    items = [Item("small", "p", "r"), Item("huge", "p", "x" * 1_250_000)]
    fmt = get_format("plain")
    with pytest.raises(OversizedError) as info:
        check_lengths(items, fmt, max_tokens=32768, policy="error")
    assert "huge" in str(info.value) and "small" not in str(info.value) and "oversized: skip" in str(info.value)
    kept, skipped = check_lengths(items, fmt, max_tokens=32768, policy="skip")
    assert [it.id for it in kept] == ["small"] and skipped == ["huge"]
    # with the reviser's tokenizer the count is its own, not the estimate
    kept, skipped = check_lengths(items, fmt, max_tokens=10, policy="skip", count_tokens=lambda t: t.count("x"))
    assert skipped == ["huge"]


# 11. one error base ------------------------------------------------------------------------------

#: builtin exceptions the package may raise, by file, and why none reaches a user as a traceback
BUILTIN_RAISES_ALLOWED = {
    ("cnr_plugin/__init__.py", "AttributeError"): "module __getattr__ (Python's protocol)",
    ("cnr_plugin/axolotl/__init__.py", "AttributeError"): "module __getattr__ (Python's protocol)",
    ("cnr_plugin/lm_eval/__init__.py", "AttributeError"): "module __getattr__ (Python's protocol)",
    ("cnr_plugin/formats/base.py", "NotImplementedError"): "abstract methods of CnRFormat",
    ("cnr_plugin/judges/base.py", "NotImplementedError"): "JudgeBase.judge_one is abstract",
    ("cnr_plugin/judges/oracle.py", "KeyError"): "a checker's contract; OracleJudge.check_item turns it into "
                                                 "JudgeConfigError before any generation",
    ("cnr_plugin/records.py", "ValueError"): "inside pydantic validators: read back as CnRDataError",
    ("cnr_plugin/results.py", "ValueError"): "inside the item reader's pydantic validator: read back as CnRDataError",
    ("cnr_plugin/lm_eval/cli.py", "SystemExit"): "the command-line boundary itself",
    ("cnr_plugin/testing/fault_server.py", "KeyError"): "the scripted Batch API's bad request: its handler answers 400",
    ("cnr_plugin/testing/fault_server.py", "ValueError"): "the scripted upload without a file: its handler answers 400",
}


def _package_modules():
    import importlib
    import pkgutil

    import cnr_plugin

    found, unimportable = [], []
    for info in pkgutil.walk_packages(cnr_plugin.__path__, "cnr_plugin."):
        try:
            found.append(importlib.import_module(info.name))
        except ModuleNotFoundError as exc:  # a host package this environment does not have (axolotl, lm_eval)
            assert not (exc.name or "").startswith("cnr_plugin"), exc
            unimportable.append((info.name, exc.name))
    return found, unimportable


def test_every_error_class_is_a_cnr_error_and_none_is_a_system_exit():
    """Discovered, not listed: every exception class defined anywhere in the package."""
    import inspect
    import os

    modules, unimportable = _package_modules()
    if os.environ.get("CNR_TEST_ENV") == "venv":  # the full stack imports every module
        assert unimportable == []
    classes = {cls for m in modules for _, cls in inspect.getmembers(m, inspect.isclass)
               if issubclass(cls, BaseException) and cls.__module__.startswith("cnr_plugin")}
    assert len(classes) >= 15, sorted(c.__qualname__ for c in classes)
    for cls in classes:
        assert issubclass(cls, CnRError) and not issubclass(cls, SystemExit), cls


def test_the_package_raises_no_other_builtin_exception():
    """Every error a user can cause is a CnRError (one line at any command line): a builtin
    exception raised anywhere in the package is on the list above, with the reason it is safe."""
    import ast
    import builtins
    from pathlib import Path

    root = Path(CnRError.__module__.replace(".", "/")).parent
    package = Path(__file__).resolve().parents[1] / root
    found = set()
    for f in package.rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Raise) and node.exc is not None:
                exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                if isinstance(exc, ast.Name) and isinstance(getattr(builtins, exc.id, None), type):
                    found.add((str(f.relative_to(package.parent)), exc.id))
    assert found <= set(BUILTIN_RAISES_ALLOWED), sorted(found - set(BUILTIN_RAISES_ALLOWED))


# 12. the cache's timestamp works on any SQLite ----------------------------------------------------

def test_cache_rows_have_a_timestamp(tmp_path):
    cache = Cache(tmp_path / "c.sqlite")
    cache.put("judge", "k", {"winner": "A"})
    (created,) = sqlite3.connect(tmp_path / "c.sqlite").execute("SELECT created FROM judge").fetchone()
    assert isinstance(created, float) and created > 1.7e9


def test_cached_generation_is_keyed_by_identity_and_request(tmp_path):
    cache = Cache(tmp_path / "c.sqlite")
    reviser = Scripted()
    req = [Prompted(text="### Prompt:\np\n\n### Response:\nr\n\n### Critique:\n")]
    out, n = cached_generate(reviser, req, cache)
    assert n == 1 and cached_generate(reviser, req, cache) == (out, 0)
    other = Scripted()
    other.identity = "scripted-v2"
    assert cached_generate(other, req, cache)[1] == 1
    assert json.loads(sqlite3.connect(tmp_path / "c.sqlite").execute("SELECT value FROM revision").fetchone()[0])


# issue 15: the length-controlled win rate --------------------------------------------------------

def length_items(n: int = 120):
    """Revisions of varied length: 70 % longer than the original, 30 % shorter."""
    import random

    rng = random.Random(0)
    out = []
    for i in range(n):
        base = rng.randint(40, 200)
        longer = i % 10 < 7
        out.append((f"q{i}", "x" * base, "x" * (base + rng.randint(5, 150) if longer else base - rng.randint(5, 30)),
                    rng.random() < 0.5))  # last: whether the revision is really better (for the oracle)
    return out


def test_lc_win_rate_removes_a_length_preference():
    from cnr_plugin.evaluation import length_controlled

    judged = [(1.0 if len(rev) > len(base) else 0.0, len(rev), len(base)) for _, base, rev, _ in length_items()]
    raw = sum(s for s, *_ in judged) / len(judged)
    lc = length_controlled(judged)
    assert raw == pytest.approx(0.7) and abs(lc["winrate"] - 0.5) < 0.1, lc
    assert lc["ci95"][0] <= lc["winrate"] <= lc["ci95"][1]


def test_lc_win_rate_of_a_judge_that_ignores_length_is_the_raw_win_rate():
    from cnr_plugin.evaluation import length_controlled

    judged = [(1.0 if better else 0.0, len(rev), len(base)) for _, base, rev, better in length_items()]
    raw = sum(s for s, *_ in judged) / len(judged)
    assert length_controlled(judged)["winrate"] == pytest.approx(raw, abs=0.05)


def test_lc_win_rate_in_the_judged_summary_does_not_depend_on_order():
    items = [Item(q, "p", base) for q, base, _, _ in length_items(40)]
    results = {q: [(1, rev)] for q, _, rev, _ in length_items(40)}

    class Longer(JudgeBase):
        def judge_one(self, pair):
            return Verdict("A" if len(pair.a) > len(pair.b) else "B" if len(pair.b) > len(pair.a) else "tie", "ok")

    config = load_judge_config(REFERENCE)
    a = judge_revisions(items, results, config, Longer(), progress=False).summary["rows"][0]
    b = judge_revisions(items[::-1], results, config, Longer(), progress=False).summary["rows"][0]
    assert a["winrate"] == pytest.approx(0.7) and abs(a["lc_winrate"] - 0.5) < 0.15
    assert (a["lc_winrate"], a["lc_ci95"]) == (b["lc_winrate"], b["lc_ci95"])


def test_lc_interval_does_not_collapse_when_every_pair_ties():
    """Issue 24: forty ties gave LC 0.500 [0.500, 0.500] beside the raw [0.466, 0.534]."""
    from cnr_plugin.evaluation import bootstrap_ci, length_controlled

    ties = [(0.5, 100 + i, 100) for i in range(40)]
    lc = length_controlled(ties)
    raw = bootstrap_ci([0.5] * 40)
    assert lc["winrate"] == pytest.approx(0.5)
    # around 0.5, and no narrower than the raw interval (the length term is one more parameter)
    assert 0.35 < lc["ci95"][0] <= raw[0] < 0.5 < raw[1] <= lc["ci95"][1] < 0.65
    assert lc == length_controlled(ties[::-1])  # the order of the items does not move it
    # one item: an interval, not a point
    one = length_controlled([(1.0, 10, 5)])
    assert one["ci95"][1] - one["ci95"][0] > 0.3


# issue 22 (in part): no duplicate calls within a run ------------------------------------------------

class CountingReviser:
    """A deterministic reviser that counts what it is sent; ``reports_each`` like OpenAIBackend."""

    identity = "counting"

    def __init__(self, reports_each: bool):
        self.reports_each, self.sent = reports_each, []

    def generate(self, requests, on_done=None):
        self.sent += [r.text for r in requests]
        texts = [f"### Critique:\nfine\n\n### Revision:\n{r.text[-12:]}" for r in requests]
        if on_done is not None:
            for j, t in enumerate(texts):
                on_done(j, t)
        return texts


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(0, 4), min_size=1, max_size=25), st.booleans(), st.booleans())
def test_each_distinct_request_is_sent_once_within_a_run(tmp_path, picks, reports_each, cached):
    requests = [Prompted(text=f"### Prompt:\nq{k}\n\n### Response:\nr{k}\n\n### Critique:\n") for k in picks]
    backend = CountingReviser(reports_each)
    cache = Cache(tmp_path / f"c-{len(picks)}-{reports_each}-{cached}-{'-'.join(map(str, picks))}.sqlite") \
        if cached else None
    out, sent = cached_generate(backend, requests, cache)
    assert sent == len(backend.sent) == len(set(picks))  # calls per distinct request: 1.00
    assert sorted(backend.sent) == sorted({r.text for r in requests})
    by_request = {}
    for r, text in zip(requests, out):
        assert by_request.setdefault(r.text, text) == text  # copies get the same generation
    # the same requests in another order, with more copies: the same texts, nothing sent again if cached
    again = CountingReviser(reports_each)
    out2, sent2 = cached_generate(again, requests[::-1] + requests, cache)
    assert out2 == out[::-1] + out and sent2 == (0 if cached else len(set(picks)))


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=4), st.tuples(st.sampled_from([0.0, 0.5, 1.0]),
                                                                   st.sampled_from([0.0, 0.5, 1.0])),
                       min_size=1, max_size=12), st.randoms())
def test_paired_difference_is_a_function_of_the_items_not_their_order(scores, rnd):
    """trained minus control: the same number whatever order the items come in, the opposite sign
    when the two sides swap, and a finite p-value (1 where no item changed sides; a NaN broke the JSON)."""
    from cnr_plugin.evaluation.stats import paired_difference

    a = {k: v[0] for k, v in scores.items()}
    b = {k: v[1] for k, v in scores.items()}
    keys = list(scores)
    rnd.shuffle(keys)
    d = paired_difference(a, b, n_boot=200)
    assert d == paired_difference({k: a[k] for k in keys}, {k: b[k] for k in keys}, n_boot=200)
    swapped = paired_difference(b, a, n_boot=200)
    assert swapped["mean"] == pytest.approx(-d["mean"]) and (swapped["wins"], swapped["losses"]) == (d["losses"], d["wins"])
    assert swapped["sign_test_p"] == pytest.approx(d["sign_test_p"])
    assert 0.0 < d["sign_test_p"] <= 1.0
    if d["wins"] == d["losses"] == 0:
        assert d["sign_test_p"] == 1.0
