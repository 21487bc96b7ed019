#!/usr/bin/env bash
# Install (first time only) and start the web app on http://127.0.0.1:7860, offline by default.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python app.py "$@"
