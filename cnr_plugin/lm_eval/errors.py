"""The lm-eval adapter's error: a cnr_winrate run that cannot go on, one line at the ``lm_eval`` command."""

from collections.abc import Iterator
from contextlib import contextmanager

from cnr_plugin.errors import CnRError


class CnRRunError(CnRError):
    """A cnr_winrate run that cannot go on. The ``lm_eval`` command prints it as one line
    (``cnr_winrate: ...``, exit status 1) through the hook :mod:`.autoregister` installs; a Python
    caller catches it as :class:`~cnr_plugin.errors.CnRError` (or ``Exception``)."""

    prefix = "cnr_winrate"


@contextmanager
def run_errors() -> Iterator[None]:
    """Inside lm-eval: the plugin's own errors become one ``cnr_winrate: ...`` line."""
    try:
        yield
    except CnRRunError:
        raise
    except CnRError as exc:
        raise CnRRunError(str(exc)) from None
