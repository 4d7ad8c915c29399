"""Run the ``lm_eval`` command with cnr_winrate available, however cnr-plugin was installed.

A wheel install ships the task into lm-eval's task folder and registers ``--model cnr`` from a
``.pth`` file; an editable (``pip install -e``) install has neither. This entry point does both
itself, then hands over to lm-eval's own command line: ``cnr lm-eval <lm_eval arguments>``.
"""

from __future__ import annotations

import sys
from pathlib import Path


def task_installed() -> bool:
    import lm_eval

    return (Path(lm_eval.__file__).parent / "tasks" / "cnr" / "cnr_winrate.yaml").is_file()


def lm_eval_argv(args: list[str]) -> list[str]:
    """lm_eval arguments, plus ``--include_path`` to our tasks when lm-eval cannot find them itself."""
    from cnr_plugin.resources import eval_tasks_path

    if task_installed() or "--include_path" in args:
        return list(args)
    return [*args, "--include_path", str(eval_tasks_path())]


def main(args: list[str] | None = None) -> None:
    from cnr_plugin.errors import CnRError
    from cnr_plugin.lm_eval import autoregister

    autoregister.register_now()
    from lm_eval.__main__ import cli_evaluate

    sys.argv = ["lm_eval", *lm_eval_argv(list(sys.argv[1:] if args is None else args))]
    try:
        cli_evaluate()
    except CnRError as exc:  # the command-line boundary: one line and exit status 1
        print(f"{exc.prefix}: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
