#!/usr/bin/env bash
# Everything the tests need, then the tests: a venv per Python from the test lock, Debian chromium
# for the browser tests, Debian tesseract for OCR, ruff, and pytest (which starts the Chroma server, the fake model server,
# PostgreSQL where a test needs it, and the app itself).
#
# The whole suite runs on the default Python (.venv); the suite without the browser tests then runs
# on every other supported Python found on the machine (.venv-3.12, .venv-3.13). Test files run in
# parallel (pytest-xdist, one worker per core up to 4; TEST_WORKERS=N to choose, 0 for none).
# Arguments go to every pytest run. TEST_PYTHONS="" runs the default Python only.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
# Debian packages the tests start: chromium (browser tests), postgresql (server-mode tests; only
# its programs are used: the tests run their own throw-away server, never the system's one),
# tesseract-ocr with its English data (OCR tests)
need=()
command -v chromium >/dev/null || need+=(chromium)
{ command -v tesseract >/dev/null && tesseract --list-langs 2>/dev/null | grep -qx eng; } || need+=(tesseract-ocr tesseract-ocr-eng)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing Debian packages for the tests: ${need[*]}..." >&2
    SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
export ANONYMIZED_TELEMETRY=False HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 GRADIO_ANALYTICS_ENABLED=False
.venv/bin/ruff check .

# python3.X on the PATH, else one that pyenv has installed but not activated
find_python() {
    if "python$1" -c "" 2>/dev/null; then echo "python$1"; return; fi
    local root
    root=$(pyenv root 2>/dev/null) || return 0
    for candidate in "$root"/versions/"$1".*/bin/"python$1"; do
        if [ -x "$candidate" ]; then echo "$candidate"; return; fi
    done
}

workers=${TEST_WORKERS:-$(nproc 2>/dev/null || echo 2)}
[ "$workers" -gt 4 ] && workers=4
parallel=(-n "$workers" --dist loadfile)
[ "$workers" = 0 ] && parallel=()

default=$(.venv/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
ran=() failed=() missing=()
if .venv/bin/python -m pytest "${parallel[@]}" "$@"; then ran+=("$default (whole suite)"); else failed+=("$default"); fi
for version in ${TEST_PYTHONS-3.11 3.12 3.13}; do
    [ "$version" = "$default" ] && continue
    python=$(find_python "$version")
    if [ -z "$python" ]; then
        missing+=("$version")
        continue
    fi
    PYTHON="$python" VENV=".venv-$version" bash scripts/setup.sh test
    if ".venv-$version/bin/python" -m pytest "${parallel[@]}" "$@" --ignore=tests/test_browser.py -p no:cacheprovider; then
        ran+=("$version (without the browser tests)")
    else
        failed+=("$version")
    fi
done
echo "tests passed on Python: ${ran[*]:-none}${missing:+; not installed here: ${missing[*]}}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "tests FAILED on Python: ${failed[*]}" >&2
    exit 1
fi
