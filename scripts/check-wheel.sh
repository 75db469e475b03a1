#!/usr/bin/env bash
# Builds the wheel (with the prebuilt notebook bridge), installs it into a fresh venv
# on a PATH without Node.js, and checks that JupyterLab lists the extension as enabled.
# Slow (downloads JupyterLab into the scratch venv): run by hand, not by `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
bash scripts/labextension-build.sh
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
"$VENV/bin/python" -m pip install --quiet build
"$VENV/bin/python" -m build --outdir "$scratch/dist" . >/dev/null
python3 -m venv "$scratch/venv"
# No Node.js on this PATH: the wheel must not need it.
clean_path="$scratch/venv/bin:/usr/bin:/bin"
if PATH="$clean_path" command -v node >/dev/null 2>&1; then
    mkdir -p "$scratch/bin"
    clean_path="$scratch/venv/bin:$scratch/bin"
    for tool in python3 sh; do ln -s "$(command -v $tool)" "$scratch/bin/$tool"; done
fi
PATH="$clean_path" "$scratch/venv/bin/python" -m pip install --quiet "$scratch"/dist/*.whl "jupyterlab>=4,<5"
out=$(PATH="$clean_path" "$scratch/venv/bin/jupyter" labextension list 2>&1)
echo "$out"
echo "$out" | grep -E "glm-magic-bridge v[0-9.]+ .*enabled.*OK" >/dev/null
echo "check-wheel: the wheel installs without Node.js and glm-magic-bridge is enabled"
