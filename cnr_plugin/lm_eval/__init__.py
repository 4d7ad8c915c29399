"""lm-eval adapter: the cnr_winrate task functions, the ``--model cnr`` wrapper, registration."""


class CnRRunError(SystemExit):
    """A cnr_winrate run that cannot go on. A SystemExit, so that the ``lm_eval`` command ends
    with this one line (exit status 1) instead of a traceback; catch it as ``SystemExit`` or
    ``CnRRunError`` when calling lm-eval from Python."""

    def __init__(self, message: str):
        super().__init__(f"cnr_winrate: {message}")
