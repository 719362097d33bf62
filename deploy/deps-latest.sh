#!/usr/bin/env bash
# Meet an upstream change on purpose: a scratch venv with the newest versions pyproject.toml allows
# (not the lock), then every test collected and the unit tier run. When it passes, `make lock` takes
# those versions into the lock in a commit of its own; when it fails, the failure is ours to fix
# before any user meets it on a fresh clone.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-latest
rm -rf "$venv"
"${PYTHON:-python3}" -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade --upgrade-strategy eager -e '.[all,dev]'
echo "newest allowed versions against requirements-dev.lock (names compared as pip does):"
"$venv/bin/python" deploy/check-lock.py requirements-dev.lock 2>&1 || true
bash deploy/ensure-services.sh
"$venv/bin/pytest" --collect-only -q >/dev/null
"$venv/bin/pytest" -q tests/unit
