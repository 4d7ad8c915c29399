"""A third-party CnR format, installed through a ``cnr_plugin`` entry point (see the dist-info)."""

from cnr_plugin import hookimpl
from cnr_plugin.formats import CnRFormat, Parsed, Rendered

SEP = "\n[REVISION]\n"


class BracketFormat(CnRFormat):
    name = "brackets"
    description = "[PROMPT]/[RESPONSE]/[CRITIQUE]/[REVISION] tags (test plugin)"

    def render_input(self, prompt, response, *, system=None, tokenizer=None):
        return f"[PROMPT]\n{prompt}\n[RESPONSE]\n{response}\n[CRITIQUE]\n"

    def render(self, prompt, response, critique, revision, *, system=None, tokenizer=None):
        target = f"{critique}{SEP}{revision}"
        return Rendered(self.render_input(prompt, response), target, (0, len(critique)),
                        (len(critique) + 1, len(target)))

    def parse(self, generation):
        critique, sep, revision = generation.partition(SEP)
        return Parsed(critique.strip(), revision.strip()) if sep else Parsed(critique.strip(), None, "no [REVISION]")


@hookimpl
def register_formats(register):
    register(BracketFormat())
