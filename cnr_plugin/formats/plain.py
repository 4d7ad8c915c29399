"""``plain``: marker lines only, for any model, base models such as Falcon-40B included."""

from __future__ import annotations

from typing import Any

from .base import MARKERS, CnRFormat, Prompt, Rendered, escape, render_answer, render_sections


class PlainFormat(CnRFormat):
    """::

        [system text, blank line]
        ### Prompt:
        <prompt>

        ### Response:
        <response>

        ### Critique:
        <critique>

        ### Revision:
        <revision><eos>

    The model input ends after ``### Critique:`` and a newline; the target is the rest.
    """

    name = "plain"
    description = "marker lines (### Prompt/Response/Critique/Revision); works with base models"
    append_eos = True

    def render_input(self, prompt: Prompt, response: str, *, system: str | None = None, tokenizer: Any = None) -> str:
        head = f"{escape(system)}\n\n" if system else ""
        return f"{head}{render_sections(prompt, response)}{MARKERS['Critique']}\n"

    def render(self, prompt: Prompt, response: str, critique: str, revision: str, *,
               system: str | None = None, tokenizer: Any = None) -> Rendered:
        target, c_span, r_span = render_answer(critique, revision)
        return Rendered(self.render_input(prompt, response, system=system), target, c_span, r_span)
