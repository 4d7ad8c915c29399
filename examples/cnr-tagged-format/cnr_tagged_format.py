"""An example CnR format: the record's parts between XML-like tags, one tag per line.

    <prompt>                      the input the reviser reads (render_input)
    Write a haiku about rain.
    </prompt>
    <response>
    Rain falls.
    </response>
    <critique>
    Pros: ...                     the target it learns to write (render)
    Cons: ...
    </critique>
    <revision>
    Soft rain on the roof ...
    </revision>

What a format must get right, and how this one does it:

* Byte-exact round trip. ``parse(render(...).target)`` gives back the critique and revision
  exactly as rendered. Text that contains a tag line of its own (a user pasting ``</critique>``)
  would end a part early, so such lines are quoted with one extra leading backslash when rendered
  and unquoted when parsed (mbox-style, as the built-in formats quote ``### Critique:``).
* Spans. ``Rendered.critique_span`` and ``revision_span`` are character offsets into the target;
  Axolotl's ``cnr_loss_on`` option masks the loss to them. The revision span includes the
  closing tag, so the model learns where a revision ends.
* Stop sequences. Hosts stop generation at :meth:`stop_sequences` and cut the stop string off,
  so :meth:`parse` accepts a revision with or without its closing tag.
* Conversations. A prompt may be a list of turns; :func:`prompt_text` renders it as marked
  turns (``#### User:`` lines), the same text the judges and pages show.
"""

from __future__ import annotations

import re

from cnr_plugin import hookimpl
from cnr_plugin.formats import CnRFormat, Parsed, Rendered
from cnr_plugin.formats.base import prompt_text

TAGS = ("system", "prompt", "response", "critique", "revision")
_TAG = r"</?(?:system|prompt|response|critique|revision)>[ \t]*\r?$"
_QUOTE = re.compile(rf"^(\\*)({_TAG})", re.MULTILINE)
_UNQUOTE = re.compile(rf"^\\(\\*{_TAG})", re.MULTILINE)
#: between the critique and the revision in every target
SEPARATOR = "\n</critique>\n<revision>\n"
END = "\n</revision>"
#: the first line that is the closing tag ends the revision (a quoted one in the text is not)
_END_LINE = re.compile(r"\n</revision>[ \t]*\r?$", re.MULTILINE)


def quote(text: str) -> str:
    """Quote the lines of ``text`` that would read as a tag."""
    return _QUOTE.sub(r"\\\1\2", text)


def unquote(text: str) -> str:
    """Undo :func:`quote`."""
    return _UNQUOTE.sub(r"\1", text)


class TaggedFormat(CnRFormat):
    name = "tagged"
    description = "<prompt>/<response>/<critique>/<revision> tags, one per line (example plugin)"

    def render_input(self, prompt, response, *, system=None, tokenizer=None):
        system_part = f"<system>\n{quote(system)}\n</system>\n" if system else ""
        return (f"{system_part}<prompt>\n{quote(prompt_text(prompt))}\n</prompt>\n"
                f"<response>\n{quote(response)}\n</response>\n<critique>\n")

    def render(self, prompt, response, critique, revision, *, system=None, tokenizer=None):
        c, r = quote(critique), quote(revision)
        target = f"{c}{SEPARATOR}{r}{END}"
        revision_start = len(c) + len("\n</critique>\n")
        return Rendered(self.render_input(prompt, response, system=system), target,
                        (0, len(c)), (revision_start, len(target)))

    def parse(self, generation):
        critique, sep, rest = generation.partition(SEPARATOR)
        if not sep:
            return Parsed(unquote(critique).strip() or None, None, "no '</critique>' then '<revision>' lines")
        end = _END_LINE.search(rest)  # the closing tag, where the host did not cut it off
        revision = unquote(rest[:end.start()] if end else rest)
        if not revision.strip():
            return Parsed(unquote(critique), None, "the <revision> part is empty")
        return Parsed(unquote(critique), revision)

    def stop_sequences(self):
        # a complete revision ends at its closing tag; a model that starts a new record went too far
        return [END, "\n<prompt>"]


@hookimpl
def register_formats(register):
    register(TaggedFormat())
