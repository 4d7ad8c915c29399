"""``chat``: the model's own chat template (ChatML, Llama, Falcon-Instruct, ...).

The user turn carries the prompt and the response in marker sections; the assistant turn is
``### Critique:`` + critique + ``### Revision:`` + revision. A multi-turn prompt is templated as
the conversation it is: its turns, the response as the assistant's turn, then a user turn asking
for the critique and revision. Rendering to text goes through whatever applies the template: the
tokenizer when training, the lm-eval model when evaluating.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .base import (MARKERS, CnRFormat, FormatError, Prompt, Prompted, Rendered, conversation, render_answer,
                   render_sections)

INSTRUCTION = (
    "Critique the response to the prompt above: say what is good about it and what is wrong "
    "or missing. Then write a revised response that fixes the problems."
)
INSTRUCTION_TURNS = (
    "Critique your last response in this conversation: say what is good about it and what is wrong or "
    "missing. Then write a revised response that fixes the problems. Start with '### Critique:' and "
    "give the revised response after a '### Revision:' line."
)


class ChatTemplateFormat(CnRFormat):
    name = "chat"
    description = "the tokenizer's chat template; user turn = prompt + response, assistant turn = critique + revision"
    append_eos = False  # the template closes the assistant turn itself
    uses_chat_template = True

    @staticmethod
    def turns(prompt: Prompt, response: str) -> list[dict[str, str]]:
        """The request without a system message: one user turn with the marker sections, or the
        conversation, the response as the assistant's turn, and the request to critique it."""
        convo = conversation(prompt)
        if convo is None:
            return [{"role": "user", "content": f"{render_sections(prompt, response)}{INSTRUCTION}"}]
        return [*convo, {"role": "assistant", "content": response}, {"role": "user", "content": INSTRUCTION_TURNS}]

    def messages(self, prompt: Prompt, response: str, *, system: str | None = None) -> list[dict[str, str]]:
        return ([{"role": "system", "content": system}] if system else []) + self.turns(prompt, response)

    def prompt(self, prompt: Prompt, response: str, *, system: str | None = None,
               examples: Sequence[Any] = ()) -> Prompted:
        turns = self.turns(prompt, response)
        # one system turn, first: the item's own (given or from its conversation); examples' are left out
        msgs = [{"role": "system", "content": system}] if system else [t for t in turns if t["role"] == "system"]
        for ex in examples:  # solved examples as earlier exchanges
            content, _, _ = self.assistant_content(ex.critique_text, ex.revision)
            msgs += [m for m in self.turns(ex.prompt, ex.response) if m["role"] != "system"]
            msgs.append({"role": "assistant", "content": content})
        msgs += [t for t in turns if t["role"] != "system"]
        return Prompted(messages=msgs)

    @staticmethod
    def assistant_content(critique: str, revision: str) -> tuple[str, tuple[int, int], tuple[int, int]]:
        head = f"{MARKERS['Critique']}\n"
        answer, (cs, ce), (rs, re_) = render_answer(critique, revision)
        return head + answer, (cs + len(head), ce + len(head)), (rs + len(head), re_ + len(head))

    @staticmethod
    def _templater(tokenizer: Any) -> Any:
        if tokenizer is None or not getattr(tokenizer, "chat_template", None):
            name = getattr(tokenizer, "name_or_path", None) or "the tokenizer"
            raise FormatError(
                f"format 'chat' needs a tokenizer with a chat template, and {name} has none: "
                "set `chat_template:` in the axolotl config or use `cnr_format: plain`"
            )
        return tokenizer

    def render_input(self, prompt: Prompt, response: str, *, system: str | None = None, tokenizer: Any = None) -> str:
        tok = self._templater(tokenizer)
        return tok.apply_chat_template(self.messages(prompt, response, system=system),
                                       tokenize=False, add_generation_prompt=True)

    def render(self, prompt: Prompt, response: str, critique: str, revision: str, *,
               system: str | None = None, tokenizer: Any = None) -> Rendered:
        tok = self._templater(tokenizer)
        msgs = self.messages(prompt, response, system=system)
        content, c_span, r_span = self.assistant_content(critique, revision)
        head = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        full = tok.apply_chat_template(msgs + [{"role": "assistant", "content": content}], tokenize=False)
        if not full.startswith(head):
            raise FormatError("the chat template renders the conversation so that the prompt part is not a "
                             "prefix of the full text; format 'chat' cannot mask the input with it")
        target = full[len(head):]
        at = target.find(content)
        if at < 0:
            raise FormatError("the chat template changed the assistant text (stripped or rewrote it); "
                             "use `cnr_format: plain` with this model")
        return Rendered(head, target, (c_span[0] + at, c_span[1] + at), (r_span[0] + at, len(target)))
