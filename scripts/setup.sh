#!/usr/bin/env bash
# Create a virtual environment and install the project from its lock file (hash-checked, so two
# installs a month apart get the same packages).
#   bash scripts/setup.sh           .venv with the app            (requirements.lock)
#   bash scripts/setup.sh test      .venv with the app, test tools and optional parts (requirements-test.lock)
#   PYTHON=python3.13 VENV=.venv-3.13 bash scripts/setup.sh test
# Python: $PYTHON, else the first of python3.11, python3.12, python3.13, python3 found (3.11-3.13).
# Re-running is cheap: it installs only when the lock or pyproject.toml changed.
# OCR (scanned PDFs, images) needs Debian's Tesseract: installed here when this runs as root with
# apt-get; otherwise one line says how, and everything else works without it.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-app}
VENV=${VENV:-.venv}
PY=${PYTHON:-}
if [ -z "$PY" ]; then
    for candidate in python3.11 python3.12 python3.13 python3; do
        if "$candidate" -c "" 2>/dev/null; then PY=$candidate; break; fi
    done
fi
if ! "${PY:-python3}" -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))' 2>/dev/null; then
    echo "error: needs Python 3.11, 3.12 or 3.13 (set PYTHON=...); found: $("${PY:-python3}" --version 2>&1)" >&2
    exit 2
fi
case "$what" in
    app) lock=requirements.lock ;;
    test) lock=requirements-test.lock ;;
    *) echo "usage: bash scripts/setup.sh [app|test]" >&2; exit 2 ;;
esac
has_ocr() { command -v tesseract >/dev/null && tesseract --list-langs 2>/dev/null | grep -qx eng; }
if ! has_ocr; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing Tesseract for OCR (tesseract-ocr tesseract-ocr-eng)..." >&2
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tesseract-ocr tesseract-ocr-eng >/dev/null; } || true
    fi
    has_ocr || echo "note: OCR is off until Tesseract is installed (apt-get install tesseract-ocr tesseract-ocr-eng): scanned PDFs and images are skipped" >&2
fi
stamp() { echo "$VENV/.installed-$1-$(cat "$2" pyproject.toml | sha256sum | cut -c1-16)"; }
# the test install holds the app's packages too
if [ -f "$(stamp "$what" "$lock")" ] || { [ "$what" = app ] && [ -f "$(stamp test requirements-test.lock)" ]; }; then
    exit 0
fi
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet --require-hashes -r "$lock"
"$VENV/bin/python" -m pip install --quiet --no-deps -e .
rm -f "$VENV"/.installed-*
touch "$(stamp "$what" "$lock")"
