#!/usr/bin/env bash
# Creates .venv with the field's reference implementations that the tests check lowbit against
# (never a dependency of the library itself). Prints the interpreter's path.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv
requirements=tests/python/requirements.txt
stamp="$venv/.installed-$(sha1sum "$requirements" | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  python3 -m venv "$venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements" >&2
  touch "$stamp"
fi
echo "$PWD/$venv/bin/python"
