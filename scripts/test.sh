#!/usr/bin/env bash
# Everything the tests need, then the tests: venv + packages, Debian chromium for the browser
# tests, and pytest (which starts the Chroma server, the fake model server and the app itself).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
if ! command -v chromium >/dev/null; then
    echo "installing Debian chromium for the browser tests..." >&2
    SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
export ANONYMIZED_TELEMETRY=False HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 GRADIO_ANALYTICS_ENABLED=False
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
