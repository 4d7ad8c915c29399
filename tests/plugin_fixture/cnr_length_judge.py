"""A third-party judge with an option of its own: the whole plugin is this file and an entry point
(see the dist-info). It prefers the longer text, or with ``prefer: shorter`` the shorter one."""

from typing import Literal

from cnr_plugin import hookimpl
from cnr_plugin.judges import JudgeBase, JudgeOptions, Verdict


class LengthOptions(JudgeOptions):
    prefer: Literal["longer", "shorter"] = "longer"


class LengthJudge(JudgeBase):
    name = "length"
    Options = LengthOptions
    reads = frozenset({"a", "b"})
    cacheable = True

    def judge_one(self, pair):
        a, b = len(pair.a), len(pair.b)
        if self.options.prefer == "shorter":
            a, b = b, a
        return Verdict("A" if a > b else "B" if b > a else "tie", "ok", f"{len(pair.a)} vs {len(pair.b)}")


@hookimpl
def register_judges(register):
    register(LengthJudge)
