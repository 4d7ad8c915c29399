"""The format core: the one place that knows how CnR text looks.

A format renders (prompt, response) into the reviser's input, (critique, revision) into its
target, and parses a generation back into (critique, revision). The Axolotl strategy and the
lm-eval task both call these functions, so training and evaluation cannot drift apart.

Section markers are whole lines (``### Critique:``). Text written by people or models may
contain the same lines; such lines are escaped with one extra leading backslash when rendered
and unescaped when parsed (mbox-style ``>From`` quoting), so user text is never mistaken for a
marker and render -> parse gives back exactly what was rendered.

A prompt is a string, or a conversation that came before the response: a list of
``{"role": "system" | "user" | "assistant", "content": ...}`` turns ending with a user turn. A
conversation of one user turn is the same prompt as that turn's text, and renders identically.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
import math
from typing import Any, ClassVar

from cnr_plugin.errors import CnRError

SECTIONS = ("Prompt", "Response", "Critique", "Revision")
MARKERS = {name: f"### {name}:" for name in SECTIONS}
ROLES = ("system", "user", "assistant")
#: the turn markers of a conversation prompt in the ``plain`` rendering (inside ``### Prompt:``)
TURN_MARKERS = {role: f"#### {role.capitalize()}:" for role in ROLES}

_MARKER = r"(?:### (?:Prompt|Response|Critique|Revision)|#### (?:System|User|Assistant)):"
_ESCAPE_RE = re.compile(rf"^(\\*)({_MARKER})", re.MULTILINE)
_UNESCAPE_RE = re.compile(rf"^\\(\\*{_MARKER})", re.MULTILINE)
_MARKER_LINE_RE = re.compile(r"^### (Prompt|Response|Critique|Revision):[ \t]*\r?$", re.MULTILINE)

class FormatError(CnRError, ValueError):
    """Text that a format cannot render or read back (a tokenizer without a chat template, say)."""


#: without a tokenizer, tokens are estimated as characters / this (English prose is ~4)
CHARS_PER_TOKEN = 4


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


#: a prompt: text, or the conversation (role/content turns, the last a user turn) before the response
Prompt = str | list[dict[str, str]]


def conversation(prompt: Prompt) -> list[dict[str, str]] | None:
    """The turns of a multi-turn prompt; None for a single-turn one (a string, or one user turn)."""
    if isinstance(prompt, str):
        return None
    turns = [{"role": t["role"], "content": t["content"]} for t in prompt]
    if len(turns) == 1 and turns[0]["role"] == "user":
        return None
    return turns


def prompt_text(prompt: Prompt) -> str:
    """The prompt as text: a string as it is; a conversation as marked turns (``#### User:``
    lines, user text escaped) -- what the ``plain`` format renders, judges read and pages show."""
    turns = conversation(prompt)
    if turns is None:
        return prompt if isinstance(prompt, str) else prompt[0]["content"]
    return "\n\n".join(f"{TURN_MARKERS[t['role']]}\n{escape(t['content'])}" for t in turns)


def escape(text: str) -> str:
    """Quote lines of ``text`` that would read as a section marker."""
    return _ESCAPE_RE.sub(r"\\\1\2", text)


def unescape(text: str) -> str:
    """Undo :func:`escape`."""
    return _UNESCAPE_RE.sub(r"\1", text)


@dataclass(frozen=True)
class Rendered:
    """A record as model text. Spans are (start, end) character offsets into ``target``."""

    input: str
    target: str
    critique_span: tuple[int, int]
    revision_span: tuple[int, int]


@dataclass(frozen=True)
class Prompted:
    """What the reviser is asked: plain text, or chat messages for the host to template."""

    text: str | None = None
    messages: list[dict[str, str]] | None = None


@dataclass(frozen=True)
class Parsed:
    """A generation read back. ``ok`` is False when no usable revision was found."""

    critique: str | None
    revision: str | None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


_TURN_LINE_RE = re.compile(r"^#### (System|User|Assistant):\r?$", re.MULTILINE)


def turns_from_text(text: str) -> list[dict[str, str]]:
    """Read back a conversation that :func:`prompt_text` rendered (the inverse, byte-exact)."""
    marks = list(_TURN_LINE_RE.finditer(text))
    if not marks or marks[0].start() != 0:
        raise FormatError("a rendered conversation starts with a '#### User:' (or System/Assistant) line")
    out = []
    for m, nxt in zip(marks, marks[1:] + [None]):
        body = text[m.end() + 1: nxt.start() - 2 if nxt else len(text)]
        out.append({"role": m.group(1).lower(), "content": unescape(body)})
    return out


def render_sections(prompt: Prompt, response: str) -> str:
    """The input sections shared by every built-in format (a conversation as marked turns)."""
    text = prompt_text(prompt) if conversation(prompt) else escape(prompt_text(prompt))
    return f"{MARKERS['Prompt']}\n{text}\n\n{MARKERS['Response']}\n{escape(response)}\n\n"


def render_answer(critique: str, revision: str) -> tuple[str, tuple[int, int], tuple[int, int]]:
    """``critique\\n\\n### Revision:\\nrevision`` with the spans of both parts.

    The critique span covers the critique text; the revision span starts at the revision
    marker, so a loss on the revision alone still teaches where the revision begins.
    """
    c = escape(critique)
    r = escape(revision)
    text = f"{c}\n\n{MARKERS['Revision']}\n{r}"
    rev_start = len(c) + 2
    return text, (0, len(c)), (rev_start, len(text))


def parse_generation(generation: str) -> Parsed:
    """Split a generation into (critique, revision).

    Tolerates a repeated ``### Critique:`` line at the start, whitespace around the critique, and
    extra text after the revision (cut at the next marker line, with the line breaks before it).
    The revision is returned byte-exact otherwise: leading indentation and trailing text are
    the model's. Escaped marker lines inside the parts are returned unescaped. A missing or
    blank revision gives ``Parsed(problem=...)``.
    """
    text = generation.lstrip()
    markers = list(_MARKER_LINE_RE.finditer(text))
    if markers and markers[0].start() == 0 and markers[0].group(1) == "Critique":
        text = text[markers[0].end():]
        markers = list(_MARKER_LINE_RE.finditer(text))
    rev = next((m for m in markers if m.group(1) == "Revision"), None)
    if rev is None:
        cut = markers[0].start() if markers else len(text)
        critique = unescape(text[:cut]).strip() or None
        return Parsed(critique, None, "no '### Revision:' section in the generation")
    before = [m for m in markers if m.start() < rev.start()]
    crit_end = before[0].start() if before else rev.start()
    critique = unescape(text[:crit_end]).strip() or None
    after = next((m for m in markers if m.start() > rev.start()), None)
    body = text[rev.end():].removeprefix("\n")
    if after is not None:  # cut before the next section and the line breaks that separate it
        body = text[rev.end(): after.start()].removeprefix("\n").rstrip("\r\n")
    revision = unescape(body)
    if not revision.strip():
        return Parsed(critique, None, "the '### Revision:' section is empty")
    return Parsed(critique, revision)


#: how a critique says that nothing is wrong: its ``Cons:`` list holds this one item
NO_CONS = "none"
_CONS_RE = re.compile(r"^Cons:[ \t]*(?P<inline>\S.*)?$", re.MULTILINE | re.IGNORECASE)
_NONE_ITEMS = {"none", "none.", "nothing", "nothing.", "no problems", "no problems.", "n/a"}


def says_no_cons(critique: str | None) -> bool:
    """True when the critique's ``Cons:`` section names no problem (``Cons:`` then ``- none``, or
    ``Cons: none``); a critique with no ``Cons:`` section, or with any other con, is False."""
    if not critique:
        return False
    m = _CONS_RE.search(critique)
    if m is None:
        return False
    if m.group("inline"):
        return m.group("inline").strip().lower() in _NONE_ITEMS
    items = []
    for line in critique[m.end():].lstrip("\r\n").splitlines():
        if not line.strip():
            break
        items.append(line.strip().removeprefix("-").removeprefix("*").strip().lower())
    return bool(items) and all(item in _NONE_ITEMS for item in items)


class CnRFormat:
    """Base class of formats. Subclasses set ``name`` and implement :meth:`render_input` and
    :meth:`render`; parsing is shared, so every format can be read back by the same parser."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: append the tokenizer's EOS token id after the target when training
    append_eos: ClassVar[bool] = True
    #: the format renders through a chat template (the model's own, or the host's)
    uses_chat_template: ClassVar[bool] = False

    def render_input(self, prompt: Prompt, response: str, *, system: str | None = None, tokenizer: Any = None) -> str:
        """The text the reviser reads: the prompt (a string, or a conversation of role/content
        turns -- :func:`prompt_text` renders one as marked turns) and the response to critique.
        It must equal :meth:`render`'s ``input`` for the same arguments, and user text inside
        it must never read as the format's own markers (quote such lines, as :func:`escape`
        does). ``tokenizer`` is given where a chat template is applied (``uses_chat_template``)."""
        raise NotImplementedError

    def render(self, prompt: Prompt, response: str, critique: str, revision: str, *,
               system: str | None = None, tokenizer: Any = None) -> Rendered:
        """A record as model text: ``input`` (:meth:`render_input`) and ``target`` (critique,
        then revision) with the character spans of both inside the target, which Axolotl's
        ``cnr_loss_on`` masks the loss to. :meth:`parse` of the target must give back the
        critique and revision (a revision byte-exact)."""
        raise NotImplementedError

    def render_record(self, record: Any, tokenizer: Any = None) -> Rendered:
        """Render a :class:`~cnr_plugin.records.CnRRecord`."""
        return self.render(record.prompt, record.response, record.critique_text, record.revision,
                           system=record.system, tokenizer=tokenizer)

    def prompt(self, prompt: Prompt, response: str, *, system: str | None = None,
               examples: Sequence[Any] = ()) -> Prompted:
        """The reviser's request at evaluation time, with optional solved examples (records)
        before it, for models that were not trained on the format."""
        shots = "".join(f"{r.input}{r.target}\n\n" for r in (self.render_record(ex) for ex in examples))
        return Prompted(text=shots + self.render_input(prompt, response, system=system))

    def parse(self, generation: str) -> Parsed:
        """Read a generation back into (critique, revision); a generation without a usable
        revision gives ``Parsed(problem=...)`` and the loop keeps the text it had. The host has
        cut the generation at the first of :meth:`stop_sequences` (the stop string removed)."""
        return parse_generation(generation)

    def token_length(self, record: Any, tokenizer: Any) -> int:
        """Tokens of a rendered record as the axolotl strategy makes them (special tokens, EOS)."""
        r = self.render_record(record, tokenizer=tokenizer)
        ids = tokenizer(r.input + r.target, add_special_tokens=True)["input_ids"]
        eos = getattr(tokenizer, "eos_token_id", None)
        return len(ids) + int(self.append_eos and eos is not None and (not ids or ids[-1] != eos))

    def record_tokens(self, record: Any, tokenizer: Any = None) -> int | None:
        """Tokens of a rendered record: exact with ``tokenizer`` (:meth:`token_length`), else estimated
        from its characters; None where it cannot be rendered without a tokenizer (chat templates)."""
        if tokenizer is not None:
            return self.token_length(record, tokenizer)
        if self.uses_chat_template:
            return None
        r = self.render_record(record)
        return estimate_tokens(r.input + r.target)

    def no_cons(self, critique: str | None) -> bool:
        """Whether a generated critique says nothing is wrong (``stop_when: no_cons``). The
        built-in formats train critiques whose ``Cons:`` list is ``- none`` for a response that is
        already right (:data:`NO_CONS`); a format with another convention overrides this."""
        return says_no_cons(critique)

    def stop_sequences(self) -> list[str]:
        """Strings after which a generation is complete (beyond the model's own EOS)."""
        return [f"\n{MARKERS['Prompt']}", f"\n{MARKERS['Response']}"]
