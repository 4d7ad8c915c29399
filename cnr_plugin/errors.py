"""The one error base of cnr-plugin.

Library code raises a :class:`CnRError` subclass whose message is one line that names the file,
line and field (or the option, with a suggestion). Only the command-line boundaries turn it into
an exit status: ``cnr`` (click), the ``lm_eval`` command (an exception hook installed by the
start-up hook, see :mod:`cnr_plugin.lm_eval.autoregister`) and ``cnr lm-eval``. A Python caller
catches it like any other exception.
"""

from __future__ import annotations

from typing import Any


class CnRError(Exception):
    """A run that cannot go on, for a reason the user can fix; ``str()`` is one line."""

    #: recognised by the lm_eval exception hook without importing this module
    _cnr_one_line = True
    #: what the one line starts with at the command line
    prefix = "cnr"

    def __str__(self) -> str:
        return " ".join(super().__str__().split("\n"))


def did_you_mean(name: str, known: Any) -> str:
    """``; did you mean 'y'?`` when a known name is close to ``name``, else nothing."""
    import difflib

    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def closest(name: str, known: Any, what: str = "key") -> str:
    """``unknown key 'x'; did you mean 'y'?`` (the suggestion only when one is close)."""
    return f"unknown {what} '{name}'{did_you_mean(name, known)}"


class MissingExtra(CnRError):
    """A command needs a package that an optional extra of cnr-plugin installs."""


def require(command: str, extra: str, *modules: str) -> None:
    """Stop before work, in one line naming the extra, when one of ``modules`` is not installed."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingExtra(f"{command} needs {', '.join(missing)}: pip install \"cnr-plugin[{extra}]\"")


def validation_error(exc: Any) -> tuple[str, str]:
    """The first error of a pydantic ``ValidationError`` as (dotted key, message): the one
    translation every options model and record reader builds its one line from."""
    err = exc.errors()[0]
    key = ".".join(str(p) for p in err["loc"])
    msg = "is missing" if err["type"] == "missing" else err["msg"].removeprefix("Value error, ")
    return key, msg


def one_line(exc: Any) -> str:
    """``'key': message`` of a pydantic ``ValidationError``."""
    key, msg = validation_error(exc)
    return f"'{key}': {msg}" if key else msg


def read_yaml_mapping(path: Any, error: type[CnRError], what: str, empty: Any = None) -> Any:
    """A YAML file that must hold a mapping of ``what`` (``yaml.safe_load``): invalid YAML fails in one
    line naming file and line, another shape naming what it got; an empty file gives ``empty``."""
    import yaml

    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise error(f"{path}:{line}: invalid UTF-8 at byte {exc.start}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise error(f"{path}{f':{mark.line + 1}' if mark else ''}: invalid YAML: "
                    f"{getattr(exc, 'problem', exc)}") from None
    data = empty if data is None else data
    if not isinstance(data, dict):
        raise error(f"{path}: expected a mapping of {what}, got {type(data).__name__}")
    return data
