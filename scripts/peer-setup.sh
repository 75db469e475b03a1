#!/usr/bin/env bash
# Install LiteLLM's proxy for the `peer` tests (tests/peer/) into its own virtualenv, .peer-venv/,
# so none of its ~115 dependencies mix with .venv. Idempotent: a second run only prints the path.
#
#   bash scripts/peer-setup.sh          # prints the path of the `litellm` executable on stdout
#
# Needs python3 (3.10-3.14; CI uses 3.11) with venv and pip, and PyPI; nothing else from the network.
# Everything pip says goes to stderr (and to .peer-venv/setup.log), so stdout is only the path.
#
# Environment: PYTHON (default python3), PEER_VENV (default <repo>/.peer-venv).
# To move to another LiteLLM release: change LITELLM_VERSION, install without the constraints file,
# check that `pytest -m peer tests/peer` passes, then regenerate scripts/peer-constraints.txt with
# `.peer-venv/bin/pip freeze | grep -v '^litellm=='` (keep its header).
set -euo pipefail

# The newest release whose `proxy` extra resolves from PyPI as of this pin (1.108.8 and later
# require litellm-enterprise / litellm-proxy(-extras) builds that were never published there).
LITELLM_VERSION=1.108.7

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${PEER_VENV:-$root/.peer-venv}"
python="${PYTHON:-python3}"
constraints="$root/scripts/peer-constraints.txt"
stamp="$venv/.installed-litellm-$LITELLM_VERSION"
log="$venv/setup.log"

mkdir -p "$venv"
# One installer at a time (two pytest sessions may start at once); the lock lives in the venv.
exec 9>"$venv/.setup.lock"
flock 9

if [ ! -f "$stamp" ]; then
    start=$SECONDS
    echo "peer-setup: installing litellm[proxy]==$LITELLM_VERSION into $venv (takes about a minute)" >&2
    if [ ! -x "$venv/bin/python" ]; then
        "$python" -m venv "$venv" >&2
    fi
    # Offline guards for the smoke check below (LiteLLM fetches its model cost map at import).
    export LITELLM_LOCAL_MODEL_COST_MAP=True LITELLM_TELEMETRY=False LITELLM_MODE=PRODUCTION
    if ! "$venv/bin/python" -m pip install --disable-pip-version-check --no-input \
        -c "$constraints" "litellm[proxy]==$LITELLM_VERSION" >"$log" 2>&1; then
        grep -v "is ignored: it is neither a file nor a directory" "$log" | tail -n 30 >&2
        echo "peer-setup: pip install failed; the whole log is $log" >&2
        exit 1
    fi
    version="$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("litellm"))')"
    if [ "$version" != "$LITELLM_VERSION" ]; then
        echo "peer-setup: expected litellm $LITELLM_VERSION, found $version" >&2
        exit 1
    fi
    # The proxy's own modules must import (they pull in fastapi, uvicorn, ...).
    "$venv/bin/python" -c 'import litellm.proxy.proxy_server' >&2
    rm -f "$venv"/.installed-litellm-*
    touch "$stamp"
    echo "peer-setup: done in $((SECONDS - start)) s" >&2
fi

echo "$venv/bin/litellm"
