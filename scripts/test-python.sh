#!/usr/bin/env bash
# The Python module's tests: builds the extension (debug) into a virtual environment,
# then runs pytest on python/tests, mypy --strict on python/examples and the example
# script. Usage: scripts/test-python.sh   (from anywhere; VENV=... to choose the venv)
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

venv="${VENV:-.venv}"
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  step "apt-get install python3-venv"
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq && $sudo_cmd apt-get install -y -qq python3-venv python3-pip
fi
if [ ! -x "$venv/bin/python" ]; then
  step "python3 -m venv $venv"
  python3 -m venv "$venv"
fi
py="$venv/bin/python"

step "pip install maturin, numpy and the test extras"
"$py" -m pip install -q --upgrade pip
"$py" -m pip install -q "maturin>=1.5,<2" "numpy>=1.21" "pytest>=7" "hypothesis>=6" "mypy>=1.5" pandas matplotlib

step "maturin develop (debug build of quantcore-py, --locked)"
VIRTUAL_ENV="$(cd "$venv" && pwd)" "$venv/bin/maturin" develop --locked --quiet

step "pytest python/tests"
"$py" -m pytest -q python/tests

step "mypy --strict python/examples"
"$py" -m mypy --strict python/examples

step "python/examples/research.py"
out="$(mktemp -d)"
MPLBACKEND=Agg "$py" python/examples/research.py "$out"
test -s "$out/report.html"
rm -rf "$out"

echo
echo "python tests passed"
