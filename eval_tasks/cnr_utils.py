"""The task class and functions of cnr_winrate.yaml.

lm-eval resolves ``!function cnr_utils.<name>`` by loading the file ``cnr_utils.py`` beside the
YAML (not by importing a dotted path), so this short module re-exports them from the package.
"""

from cnr_plugin.lm_eval.task import CnRWinrateTask
from cnr_plugin.lm_eval.tasks import (average, ci95_hi, ci95_lo, doc_to_text, judge, lc_ci95_hi, lc_ci95_lo,
                                      lc_winrate, load_docs, process_results, share, total, winrate)

__all__ = ["CnRWinrateTask", "load_docs", "doc_to_text", "judge", "process_results", "total", "average", "share",
           "winrate", "ci95_lo", "ci95_hi", "lc_winrate", "lc_ci95_lo", "lc_ci95_hi"]
