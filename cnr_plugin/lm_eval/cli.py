"""Run the ``lm_eval`` command with cnr_winrate available: ``cnr lm-eval <lm_eval arguments>``.

The plain ``lm_eval`` command finds ``--model cnr`` and the task folder through the start-up hook
(``cnr_plugin_lm_eval.pth``, which the wheel and an editable install both add; nothing goes into
lm-eval's own folder). This entry point registers both itself as well, then hands over to
lm-eval's own command line, adding ``--include_path`` to the shipped tasks where lm-eval would not
find them.
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
