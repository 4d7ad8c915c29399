#!/usr/bin/env bash
# Runs the whole test suite: installs (or reuses) both environments, then runs pytest in each.
#   .venv       everything: unit tests, real axolotl trainings, Falcon-40B checks, lm_eval 0.4.11 runs
#   .venv-eval  the tests that need no torch, against the newest lm-eval
#   .venv-annotate  the Label Studio round trip (API and a real browser)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
# CNR_REQUIRE_INTEGRATION=1: a missing model server or model package fails the run instead of skipping
export AXOLOTL_DO_NOT_TRACK=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false CNR_REQUIRE_INTEGRATION=1
printf '\n== tests in .venv (axolotl stack)\n'
.venv/bin/pytest -p no:cacheprovider -m "not annotate" "$@"
printf '\n== tests in .venv-eval (torch-free, newest lm-eval)\n'
.venv-eval/bin/pytest -p no:cacheprovider -m "not annotate" "$@"
printf '\n== annotation tests in .venv-annotate (Label Studio, Chromium)\n'
.venv-annotate/bin/pytest -p no:cacheprovider tests/test_annotate.py "$@"
