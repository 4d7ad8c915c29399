"""The work behind ``cnr revise`` and ``cnr judge``: files in, results files out.

Everything that can fail is checked before the first request: the files, the options, input
lengths, whether the servers answer and whether the judge can judge every item. The command line
only parses its options, calls these and prints what they return.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnr_plugin.cache import Cache
from cnr_plugin.costs import Tally
from cnr_plugin.costs import describe as describe_usage
from cnr_plugin.formats.base import CHARS_PER_TOKEN, estimate_tokens, prompt_text
from cnr_plugin.records import CnRDataError, read_candidates, read_responses

from .generation import Item, OpenAIBackend, OversizedError, check_lengths, revise
from .judging import Evaluation, JudgeGate, judge_revisions, prepare_judge
from .run import DEFAULT_MAX_INPUT_TOKENS, examples_for, run_config


def load_tokenizer(tokenizer: str, command: str) -> Any:
    """A local tokenizer directory, through transformers (the [axolotl] extra)."""
    from cnr_plugin.errors import require

    require(command, "axolotl", "transformers")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tokenizer)


def token_counter(tokenizer: str, command: str) -> Callable[[str], int]:
    """Exact token counts of a text with a local tokenizer directory."""
    tok = load_tokenizer(tokenizer, command)
    return lambda text: len(tok.encode(text, add_special_tokens=False))


@dataclass
class Revised:
    """What ``cnr revise`` did, for the line it prints."""

    out: Path
    n_items: int
    iterations: int
    stop_when: str
    no_revision: int = 0
    saved: int = 0
    rejected: int = 0
    judge_calls: int | None = None
    skipped: list[str] = field(default_factory=list)
    usage: dict[str, Any] = field(default_factory=dict)
    usage_file: Path | None = None

    def describe(self) -> str:
        notes = [f"{self.no_revision} generations with no usable revision"]
        if self.stop_when != "never":
            notes.append(f"{self.saved} reviser requests saved by stop_when={self.stop_when}")
        if self.judge_calls is not None:
            notes.append(f"{self.rejected} revisions rejected by the judge, {self.judge_calls} judge calls")
        if self.skipped:
            notes.append(f"{len(self.skipped)} oversized left out: {', '.join(self.skipped)}")
        line = f"{self.n_items} responses x {self.iterations} iterations -> {self.out} ({'; '.join(notes)})"
        if self.usage:
            line += f"\n{describe_usage(self.usage)} -> {self.usage_file}"
        return line


def revise_file(responses: Path, out: Path, *, base_url: str, model: str, api_key: str, options: Mapping[str, Any],
                tokenizer: str | None = None, concurrency: int = 8, cache: bool = True,
                temperature: float = 0.0) -> Revised:
    """K critique-and-revise iterations of a served reviser over a responses file, written to ``out``.
    ``options`` are run options (:class:`~cnr_plugin.evaluation.RunConfig`)."""
    from cnr_plugin.plugins import get_format
    from cnr_plugin.results import no_revision, write_json, write_revisions

    run = run_config({**options, "responses": str(responses)}, source="cnr revise")
    fmt = get_format(run.format)
    items = [Item.from_record(p) for p in read_responses(responses, fields=run.field_map())]
    examples = examples_for(run)
    count = token_counter(tokenizer, "cnr revise --tokenizer") if tokenizer else None
    items, skipped = check_lengths(items, fmt, max_tokens=run.max_input_tokens or DEFAULT_MAX_INPUT_TOKENS,
                                   policy=run.oversized, count_tokens=count, examples=examples, source=str(responses))
    backend = OpenAIBackend(base_url, model, api_key=api_key, max_tokens=run.max_gen_toks,
                            stop=fmt.stop_sequences(), concurrency=concurrency, temperature=temperature)
    backend.check_reachable()
    gate = None
    if run.accept == "judge":
        judge_config, judge = prepare_judge(run.judge, items, source=str(responses))
        gate = JudgeGate(judge, judge_config, Cache())
    tally = Tally("reviser")
    steps = revise(items, fmt, backend, run.iterations, examples=examples, cache=Cache() if cache else None,
                   stop_when=run.stop_when, gate=gate, sampling=run.sampling, tally=tally)
    write_revisions(out, items, steps)
    usage = {"reviser": tally.report(run.reviser_price), "run": run.model_dump(mode="json"),
             "reviser_server": {"base_url": base_url, "model": model}}
    if gate is not None:
        usage["judge"] = gate.runner.tally.report(gate.runner.config.price)
    usage_file = write_json(out.with_name(out.name + ".usage.json"), usage)
    all_steps = [s for st in steps.values() for s in st]
    return Revised(out, len(items), run.iterations, run.stop_when,
                   no_revision=sum(no_revision(s.as_dict()) for s in all_steps),
                   saved=sum(s.stopped for s in all_steps), rejected=sum(s.accepted is False for s in all_steps),
                   judge_calls=gate.calls if gate is not None else None, skipped=skipped,
                   usage=usage["reviser"], usage_file=usage_file)


def check_judge_lengths(items: Sequence[Item], results: Mapping[str, Sequence[tuple[int, str]]], max_tokens: int,
                        source: str) -> None:
    """Every comparison's texts (prompt, original, result) must fit ``max_tokens`` (estimated as
    characters / 4): one line naming the items before any judge call, never megabytes sent."""
    over = []
    for it in items:
        longest = max((text for _k, text in results[it.id]), key=len, default="")
        n = estimate_tokens(prompt_text(it.prompt) + it.response + longest)
        if n > max_tokens:
            over.append(f"{it.id} ({n})")
    if over:
        raise OversizedError(f"{source}: {len(over)} item(s) would send the judge more than max_input_tokens="
                             f"{max_tokens} tokens (estimated as characters / {CHARS_PER_TOKEN}): "
                             f"{', '.join(over[:10])}{' ...' if len(over) > 10 else ''}; raise --max-input-tokens "
                             "if the judge takes them")


def judge_files(baseline: Path, candidate: Path, out: Path, *, judge: Any = "default", name: str | None = None,
                compare_previous: bool = False, max_input_tokens: int = DEFAULT_MAX_INPUT_TOKENS,
                fields: Any = None, seed: int = 0) -> tuple[Evaluation, Path]:
    """Judge CANDIDATE (responses, or ``cnr revise`` output) against BASELINE by id, in both
    position orders; writes a ``cnr judge`` folder (:func:`cnr_plugin.results.write_judged`).
    ``seed``: the bootstrap intervals' (the run option ``seed`` of ``cnr_winrate``).
    ``fields``: the field map of both files (a preset such as ``ifeval``, or field=column pairs; not
    applied to ``cnr revise`` output, which is the project's own).
    Returns the evaluation and the summary's path."""
    from cnr_plugin.plugins import plugin_versions
    from cnr_plugin.records import ResponseRecord, field_map
    from cnr_plugin.results import write_judged

    fmap = field_map(fields, option="--fields", model=ResponseRecord)
    base = {r.id: r for r in read_responses(baseline, fields=fmap)}
    items: list[Item] = []
    results: dict[str, list[tuple[int, str]]] = {}
    steps: dict[str, list[dict[str, Any]]] = {}
    for line, unit, row in read_candidates(candidate, fields=fmap):
        if row.id not in base:
            raise CnRDataError(str(candidate), line, f"id {row.id!r} is not in {baseline}", field="id", unit=unit)
        item = Item.from_record(base[row.id])
        items.append(item)
        if hasattr(row, "steps"):
            results[item.id] = [(s.iteration, s.result) for s in row.steps]
            steps[item.id] = [s.model_dump() for s in row.steps]
        else:  # a plain (prompt, response) file: its response is iteration 1 of the baseline
            results[item.id] = [(1, row.response)]
            steps[item.id] = [{"iteration": 1, "response": item.response, "generation": "", "critique": None,
                               "revision": row.response, "problem": None, "result": row.response}]
    check_judge_lengths(items, results, max_input_tokens, str(candidate))
    config, judge_impl = prepare_judge(judge, items, source=str(baseline))
    evaluation = judge_revisions(items, results, config, judge_impl, cache=Cache(), compare_previous=compare_previous,
                                 seed=seed)
    path = write_judged(out, name=name or candidate.stem, items=items, steps=steps, evaluation=evaluation,
                        judge=config.describe(), plugins=plugin_versions())
    return evaluation, path


def rank_judges(baseline: Path, candidate: Path, judges: Sequence[str], out: Path, *, human: Path | None = None,
                max_input_tokens: int = DEFAULT_MAX_INPUT_TOKENS) -> tuple[list[dict[str, Any]], Path]:
    """Judge the same pairs with each judge configuration (cached as usual) and rank them: by
    Cohen's kappa with people where their verdicts are given, else by position consistency.
    Each judge's run is a ``cnr judge`` folder under ``out``; the ranking is ``out/judges.json``."""
    from cnr_plugin.results import write_json

    from .diagnostics import diagnose, from_judged
    from .stats import agreement, label

    from cnr_plugin.results import read_human_labels

    people = read_human_labels(human) if human is not None else None
    # every configuration is checked before the first judge call
    for spec in judges:
        prepare_judge(spec, source=str(spec))
    names: list[str] = []
    for spec in judges:
        name = Path(spec).stem if spec != "default" else "default"
        names.append(name if name not in names else f"{name}-{len(names) + 1}")
    rows = []
    for spec, name in zip(judges, names):
        evaluation, path = judge_files(baseline, candidate, out / name, judge=spec, name=name,
                                       max_input_tokens=max_input_tokens)
        d = diagnose(from_judged(evaluation.judged))
        last = max((r for r in evaluation.summary["rows"] if r["against"] == "original"), key=lambda r: r["iteration"])
        row: dict[str, Any] = {"judge": name, "config": str(spec), "results": str(path), "iteration": last["iteration"],
                               "winrate": last["winrate"], "ci95": last["ci95"], **{k: d[k] for k in (
                                   "consistency", "position_a", "prefers_longer", "tie_share", "unparsed_share")},
                               "usage": evaluation.usage}
        if people is not None:
            mine, theirs = [], []
            for j in evaluation.judged:
                pair = f"{j.comparison.item_id}@{j.comparison.iteration}"
                if j.comparison.against == "original" and j.score is not None and pair in people:
                    for choice in people[pair]:
                        mine.append(label(j.score))
                        theirs.append(choice)
            row["people"] = agreement(theirs, mine)
        rows.append(row)

    def rank(r: dict[str, Any]) -> tuple[float, float, float]:
        kappa = (r.get("people") or {}).get("cohen_kappa")
        return (-(kappa if kappa is not None else -2.0), -(r["consistency"] or 0.0), r["usage"].get("cost") or 0.0)

    rows.sort(key=rank)
    return rows, write_json(out / "judges.json", {"baseline": str(baseline), "candidate": str(candidate),
                                                  "human": str(human) if human else None, "judges": rows})
