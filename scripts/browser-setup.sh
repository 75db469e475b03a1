#!/usr/bin/env bash
# Installs what tests/browser/ needs, idempotently: Debian's Chromium and, in the
# project venv, JupyterLab 4, Notebook 7 and Playwright (the Python driver only).
# Never runs `playwright install`: that downloads a browser build, which fails
# on machines that reach only the package registries; we drive /usr/bin/chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PY="$VENV/bin/python"

if [ ! -x /usr/bin/chromium ]; then
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

if [ ! -x "$PY" ]; then
    echo "browser-setup: $PY is missing; run 'make venv' first" >&2
    exit 1
fi

# Skip pip when everything imports already (pip resolving costs ~10 s even when satisfied).
if ! "$PY" -c "import jupyterlab, notebook, playwright, ipywidgets" 2>/dev/null; then
    "$PY" -m pip install --quiet "jupyterlab>=4,<5" "notebook>=7,<8" "ipywidgets>=8" playwright
fi
"$PY" -c "import jupyterlab, notebook, playwright; print('browser-setup: jupyterlab', jupyterlab.__version__, '/ notebook', notebook.__version__)"
/usr/bin/chromium --version 2>/dev/null || true
