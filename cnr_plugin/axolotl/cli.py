"""``axolotl cnr-eval CONFIG``: cnr_winrate on the model a config trained (axolotl.cli_commands)."""

from __future__ import annotations

from pathlib import Path

import click
import yaml


@click.command("cnr-eval")
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--device", default=None, help="cpu, cuda, cuda:0 ... (default: cuda if available)")
def cnr_eval(config: Path, device: str | None) -> None:
    """Evaluate the model CONFIG trained with cnr_winrate (cnr_eval_* keys of the config)."""
    from .evaluate import evaluate_trained

    cfg = yaml.safe_load(config.read_text())
    try:
        results = evaluate_trained(cfg, device)
    except (FileNotFoundError, RuntimeError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"cnr_winrate results: {results}")
