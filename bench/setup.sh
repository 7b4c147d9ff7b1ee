#!/usr/bin/env bash
# Create bench/.venv with the benchmark's peers (numpy, JAX on CPU), pinned in requirements.txt.
# Idempotent: an existing venv is reused, and pip only installs what is missing or differs.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    echo "setup: creating $venv with $("$python" --version 2>&1)"
    "$python" -m venv "$venv"
else
    echo "setup: reusing $venv ($("$venv/bin/python" --version 2>&1))"
fi

echo "setup: installing $here/requirements.txt"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"

"$venv/bin/python" - <<'PY'
import importlib
for name in ("numpy", "jax", "jaxlib"):
    try:
        print(f"setup: {name} {importlib.import_module(name).__version__}")
    except ImportError as e:
        print(f"setup: {name} missing ({e})")
PY
