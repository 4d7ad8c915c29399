"""``axolotl cnr-eval CONFIG``: cnr_winrate on the model a config trained (axolotl.cli_commands)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("cnr-eval")
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--device", default=None, help="cpu, cuda, cuda:0 ... (default: cuda if available)")
def cnr_eval(config: Path, device: str | None) -> None:
    """Evaluate the model CONFIG trained with cnr_winrate (cnr_eval_* keys of the config)."""
    from cnr_plugin.errors import CnRError

    from .evaluate import evaluate_trained
    from .memory import read_config

    try:
        results = evaluate_trained(read_config(config), device)
    except CnRError as exc:  # the command-line boundary: one line, exit status 1
        raise click.ClickException(str(exc)) from None
    click.echo(f"cnr_winrate results: {results}")
