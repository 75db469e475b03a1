#!/usr/bin/env bash
# Builds the notebook bridge (labextension/ -> glm_magic/labextension/) and links
# it into the venv so JupyterLab 4 / Notebook 7 load it (what
# `jupyter labextension develop --overwrite .` does). Idempotent: skips npm
# and the build when the output is newer than every source file. Installs
# Node.js with apt when it is missing. The wheel ships the built files
# (pyproject.toml [tool.setuptools.data-files]), so users need no Node.js.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PY="$VENV/bin/python"
SRC=labextension
OUT=glm_magic/labextension
NAME=glm-magic-bridge

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi

newest_source=$(find "$SRC/src" "$SRC/style" "$SRC/package.json" "$SRC/tsconfig.json" \
    "$SRC/package-lock.json" -newer "$OUT/package.json" 2>/dev/null | head -1 || true)
if [ ! -f "$OUT/package.json" ] || [ -n "$newest_source" ]; then
    if [ ! -d "$SRC/node_modules/@jupyterlab/builder" ] \
        || [ "$SRC/package-lock.json" -nt "$SRC/node_modules/.package-lock.json" ]; then
        (cd "$SRC" && npm ci --no-audit --no-fund --loglevel=error)
    fi
    core=$("$PY" -c "import jupyterlab, os; print(os.path.join(os.path.dirname(jupyterlab.__file__), 'staging'))")
    (cd "$SRC" && npx tsc && node node_modules/@jupyterlab/builder/lib/build-labextension.js \
        --core-path "$core" . >/dev/null)
    cp "$SRC/install.json" "$OUT/install.json"
    touch "$OUT/package.json"
    echo "labextension-build: built $OUT"
fi

# Link the build into the venv (replacing a copy an earlier pip install left there).
dest="$VENV/share/jupyter/labextensions/$NAME"
mkdir -p "$(dirname "$dest")"
if [ "$(readlink "$dest" 2>/dev/null)" != "$(pwd)/$OUT" ]; then
    rm -rf "$dest"
    ln -s "$(pwd)/$OUT" "$dest"
fi
