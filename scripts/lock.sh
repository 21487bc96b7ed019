#!/usr/bin/env bash
# Refresh the lock files from pyproject.toml's ranges: one hash-checked lock for all supported
# Pythons (3.11-3.13, markers inside). Existing pins are kept unless asked:
#   bash scripts/lock.sh                              after changing pyproject.toml
#   bash scripts/lock.sh --upgrade                    take every upgrade the ranges allow
#   bash scripts/lock.sh --upgrade-package gradio     one package
#   requirements.lock       the app            (scripts/run.sh)
#   requirements-test.lock  the app, the test tools and the optional parts (scripts/test.sh)
# Then run the tests and compare an evaluation report with its baseline (README: Upgrading).
set -euo pipefail
cd "$(dirname "$0")/.."
UV=$(command -v uv || true)
if [ -z "$UV" ]; then
    tools=$(mktemp -d)
    python3 -m venv "$tools"
    "$tools/bin/pip" install --quiet uv
    UV="$tools/bin/uv"
fi
common=(--universal --python-version 3.11 --generate-hashes --quiet --custom-compile-command "bash scripts/lock.sh" "$@")
"$UV" pip compile pyproject.toml "${common[@]}" -o requirements.lock
"$UV" pip compile pyproject.toml --extra test --extra postgres "${common[@]}" -o requirements-test.lock
echo "wrote requirements.lock and requirements-test.lock"
