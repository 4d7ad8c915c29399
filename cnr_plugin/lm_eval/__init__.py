"""lm-eval adapter: the cnr_winrate task functions, the ``--model cnr`` wrapper, registration.

It translates lm-eval's documents and results to and from :mod:`cnr_plugin.evaluation`.
"""

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
