"""The shipped example format plugin (examples/cnr-tagged-format): its promises hold, and it
works installed as a user installs it. test_train.py trains Axolotl with it."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from conftest import ROOT, SAMPLE, pythonpath

EXAMPLE = ROOT / "examples" / "cnr-tagged-format" / "cnr_tagged_format.py"
_spec = importlib.util.spec_from_file_location("cnr_tagged_format_under_test", EXAMPLE)
tagged = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tagged)  # type: ignore[union-attr]
FMT = tagged.TaggedFormat()

tag_lines = st.sampled_from(["\\" * k + f"<{slash}{t}>{tail}" for t in tagged.TAGS for slash in ("", "/")
                             for k in range(3) for tail in ("", " ", "\r", "x")])
line = st.one_of(st.text(max_size=20), tag_lines)
#: any text, with tag lines (quoted or not), blank lines and edges kept byte-exact
block = st.lists(line, min_size=1, max_size=6).map("\n".join)
turns = st.lists(st.fixed_dictionaries({"role": st.sampled_from(["system", "user", "assistant"]),
                                        "content": block}), min_size=1, max_size=3).map(
    lambda ts: ts + [{"role": "user", "content": "last"}])


@given(st.text())
def test_quoting_round_trips(text):
    assert tagged.unquote(tagged.quote(text)) == text


@settings(max_examples=300, deadline=None)
@given(prompt=st.one_of(block, turns), response=block, critique=block,
       revision=block.filter(str.strip), system=st.one_of(st.none(), block.filter(bool)))
@example(prompt="p", response="</response>", critique="a\n</critique>x", revision="b\n</revision>x\n", system=None)
@example(prompt="p", response="r", critique="\\</critique>\n", revision="\n\\</revision>", system="<system>")
def test_render_then_parse_gives_back_the_parts_byte_exact(prompt, response, critique, revision, system):
    rendered = FMT.render(prompt, response, critique, revision, system=system)
    assert rendered.input == FMT.render_input(prompt, response, system=system)
    # user text never reads as a tag: the input has exactly its own unquoted tag lines
    own = ["<system>", "</system>"] * bool(system) + ["<prompt>", "</prompt>", "<response>", "</response>",
                                                      "<critique>"]
    assert [ln for ln in rendered.input.split("\n") if ln in own] == own
    parsed = FMT.parse(rendered.target)
    assert parsed.ok, parsed.problem
    assert (parsed.critique, parsed.revision) == (critique, revision)
    # a host that stops at the closing tag cuts it off; one that generates on is cut at it
    for generation in (rendered.target.removesuffix(tagged.END), rendered.target + "\n<prompt>\nmore"):
        assert (FMT.parse(generation).critique, FMT.parse(generation).revision) == (critique, revision)
    c0, c1 = rendered.critique_span
    r0, r1 = rendered.revision_span
    assert tagged.unquote(rendered.target[c0:c1]) == critique
    assert rendered.target[r0:r1].startswith("<revision>\n") and r1 == len(rendered.target)
    assert any(rendered.target.endswith(s) for s in FMT.stop_sequences())


def test_a_generation_without_a_revision_is_a_problem_not_a_guess():
    assert FMT.parse("Pros: short.\nCons: none").problem
    assert FMT.parse("Pros: x\n</critique>\n<revision>\n  \n</revision>").problem


def cnr(*args: str, site) -> subprocess.CompletedProcess:
    import os

    env = dict(os.environ, PYTHONPATH=pythonpath(site))
    return subprocess.run([str(Path(sys.executable).parent / "cnr"), *args], capture_output=True, text=True,
                          env=env, timeout=120)


def test_installed_by_pip_it_is_listed_and_used_by_name(tagged_format, tmp_path):
    listed = cnr("plugins", site=tagged_format)
    assert listed.returncode == 0, listed.stderr
    assert "tagged" in listed.stdout and "cnr-tagged-format" in listed.stdout
    checked = cnr("validate", str(SAMPLE), "--format", "tagged", site=tagged_format)
    assert checked.returncode == 0, checked.stderr
    assert "valid CnR records" in checked.stdout
