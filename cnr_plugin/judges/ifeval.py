"""The ``ifeval`` judge: IFEval's own instruction checkers (Zhou et al. 2023) as a pairwise judge.

The checkers are lm-eval's (``lm_eval/tasks/ifeval``: Google's instruction registry and its
strict and loose tests), imported from the installed lm-eval, never copied. An item carries
IFEval's row schema in its ``meta`` (``instruction_id_list`` and ``kwargs``; a ``google/IFEval``
row read with the ``ifeval`` field map preset keeps the whole row there). A text scores the number
of its prompt's instructions it follows (``loose: true``: IFEval's loose test, which also accepts
the text without its first line, its last line, or its ``*`` marks); the text that follows more
wins, equal counts tie.

Two instruction types need nltk's ``punkt`` data (``length_constraints:number_sentences``,
``change_case:capital_word_frequency``). nltk downloads it at import time where it can; where it
cannot (offline), those types cannot be checked: an item that uses one is refused before any work,
in one line naming the types, and nothing is counted as followed or not followed for them.
"""

from __future__ import annotations

import contextlib
import functools
import io
import threading
from typing import Any

from pydantic import Field

from cnr_plugin.errors import closest, require

from .base import JudgeBase, JudgeConfigError, JudgeOptions, JudgePair, Verdict

#: the instruction types whose checkers tokenize with nltk's punkt data
NEEDS_PUNKT = ("length_constraints:number_sentences", "change_case:capital_word_frequency")
#: IFEval's figures of one text: prompt-level (all instructions followed) and instruction-level
METRICS = ("prompt_strict", "inst_strict", "prompt_loose", "inst_loose")


@functools.lru_cache(maxsize=1)
def checkers() -> Any:
    """lm-eval's IFEval module (``lm_eval.tasks.ifeval.utils``), imported quietly: its import tries
    to download nltk's punkt_tab and prints about it on stdout, which must not reach a user's pipe.
    Offline, the download is not attempted (a missing resource stays missing)."""
    require("the ifeval judge", "ifeval", "lm_eval", "nltk", "langdetect", "immutabledict")
    import nltk

    real_download = nltk.download
    nltk.download = lambda *a, **k: False  # type: ignore[assignment]  # never from a judge: see the docstring
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            from lm_eval.tasks.ifeval import instructions_registry, utils
    finally:
        nltk.download = real_download
    # the language checks (english_capital, english_lowercase, response_language) call langdetect,
    # which samples at random: unseeded, a borderline text is "en" in one run and not in the next,
    # and a verdict would depend on the run. langdetect's documented fix: seed its factory.
    from langdetect import DetectorFactory, detector_factory

    DetectorFactory.seed = 0
    # langdetect loads its language profiles lazily into a module global on the first detect(); two
    # threads that both get there first race ("Need to load profiles") and one text's language
    # comes out wrong. Loaded now, once, before any judge thread exists.
    detector_factory.init_factory()
    utils.registry = instructions_registry
    return utils


#: lm-eval's IFEval checkers reach module globals that are not thread-safe (langdetect's factory,
#: nltk's lazy corpus loaders): judge threads run them one at a time. They are pure-Python and
#: cheap (microseconds to a millisecond a text), so the lock costs a judge run next to nothing
#: and every verdict is a function of its inputs alone, at any concurrency.
CHECK_LOCK = threading.Lock()


@functools.lru_cache(maxsize=1)
def uncheckable() -> frozenset[str]:
    """The instruction types this machine cannot check (their nltk data is not installed)."""
    utils = checkers()
    missing = set()
    probe = {"length_constraints:number_sentences": {"num_sentences": 1, "relation": "at least"},
             "change_case:capital_word_frequency": {"capital_frequency": 1, "capital_relation": "at least"}}
    for instruction_id in NEEDS_PUNKT:
        inp = utils.InputExample(0, [instruction_id], "p", [probe[instruction_id]])
        try:
            utils.test_instruction_following_strict(inp, "One sentence. Two SENTENCES.")
        except LookupError:  # nltk: "Resource punkt_tab not found"
            missing.add(instruction_id)
    return frozenset(missing)


class IFEvalOptions(JudgeOptions):
    """Options of the ``ifeval`` judge."""

    loose: bool = Field(False, description="IFEval's loose test (also accepts the text without its first or last "
                        "line or its * marks); strict by default")


class IFEvalJudge(JudgeBase):
    name = "ifeval"
    Options = IFEvalOptions
    #: the verdict depends on the texts and on the instructions in meta (the prompt is passed to checkers that read it)
    reads = frozenset({"prompt", "a", "b", "meta"})
    #: lm-eval's checkers may change with its version: verdicts are recomputed (they are cheap), never cached
    cacheable = False
    options: IFEvalOptions

    def __init__(self, options: IFEvalOptions):
        super().__init__(options)
        self.utils = checkers()

    def check_item(self, item: Any) -> None:
        """The item's instructions must be IFEval's, with their arguments, and checkable here."""
        ids, kwargs = _instructions(item.meta)
        known = self.utils.registry.INSTRUCTION_DICT
        for instruction_id in ids:
            if instruction_id not in known:
                raise JudgeConfigError(f"instruction_id_list: {closest(instruction_id, known, 'instruction id')}")
        refused = sorted(set(ids) & uncheckable())
        if refused:
            raise JudgeConfigError(f"instruction type(s) {', '.join(refused)} cannot be checked here: they need nltk's "
                                   "punkt_tab data, which is not installed (python -m nltk.downloader punkt_tab "
                                   "where the network allows; or leave those prompts out)")
        try:
            self.follows(_text(item.prompt), item.response, item.meta, loose=False)
        except (TypeError, ValueError) as exc:
            raise JudgeConfigError(f"kwargs do not fit the instructions: {type(exc).__name__}: {exc}") from None

    def follows(self, prompt: str, text: str, meta: dict[str, Any], loose: bool | None = None) -> list[bool]:
        """Which of the prompt's instructions ``text`` follows (IFEval's strict or loose test)."""
        ids, kwargs = _instructions(meta)
        inp = self.utils.InputExample(0, ids, prompt, kwargs)
        test = (self.utils.test_instruction_following_loose if (self.options.loose if loose is None else loose)
                else self.utils.test_instruction_following_strict)
        with CHECK_LOCK:
            return list(test(inp, text).follow_instruction_list)

    def text_metrics(self, prompt: str, text: str, meta: dict[str, Any]) -> dict[str, tuple[float, float]]:
        """IFEval's figures of one text, as (followed, asked): prompt-level (1 if all followed, of 1)
        and instruction-level (instructions followed, of all), strict and loose."""
        out = {}
        for kind in ("strict", "loose"):
            followed = self.follows(prompt, text, meta, loose=kind == "loose")
            out[f"prompt_{kind}"] = (float(all(followed)), 1.0)
            out[f"inst_{kind}"] = (float(sum(followed)), float(len(followed)))
        return out

    def judge_one(self, pair: JudgePair) -> Verdict:
        prompt = _text(pair.prompt)
        a, b = self.follows(prompt, pair.a, pair.meta), self.follows(prompt, pair.b, pair.meta)
        winner = "A" if sum(a) > sum(b) else "B" if sum(b) > sum(a) else "tie"
        return Verdict(winner, "ok", f"A follows {sum(a)}/{len(a)}, B follows {sum(b)}/{len(b)}")  # type: ignore[arg-type]


def _text(prompt: Any) -> str:
    from cnr_plugin.formats.base import prompt_text

    return prompt_text(prompt)


def _instructions(meta: dict[str, Any] | None) -> tuple[list[str], list[dict[str, Any]]]:
    meta = meta or {}
    ids, kwargs = meta.get("instruction_id_list"), meta.get("kwargs")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise JudgeConfigError("meta.instruction_id_list: expected a list of IFEval instruction ids "
                               "(a google/IFEval row: read it with fields: ifeval)")
    if kwargs is None:
        kwargs = [{} for _ in ids]
    if not isinstance(kwargs, list) or len(kwargs) != len(ids) or not all(isinstance(k, dict) for k in kwargs):
        raise JudgeConfigError(f"meta.kwargs: expected a list of {len(ids)} objects, one per instruction id")
    return ids, kwargs
