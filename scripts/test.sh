#!/usr/bin/env bash
# The one test command: sets up what a fresh Debian machine lacks, then runs every test
# of the workspace. Usage: scripts/test.sh   (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

need_apt=()
command -v cc >/dev/null || need_apt+=(build-essential)
command -v make >/dev/null || need_apt+=(make)   # librdkafka builds from source
command -v curl >/dev/null || need_apt+=(curl)
command -v python3 >/dev/null || need_apt+=(python3 python3-venv python3-pip)
if [ ${#need_apt[@]} -gt 0 ]; then
  step "apt-get install ${need_apt[*]}"
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq && $sudo_cmd apt-get install -y -qq "${need_apt[@]}"
fi
if ! command -v cargo >/dev/null; then
  step "install Rust (rustup)"
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi

step "dependency check: exactly one ndarray (linfa 0.8 and numpy must share it)"
dups=$(cargo tree --workspace --locked -d -e normal,build 2>/dev/null | grep -E '^ndarray v' || true)
if [ -n "$dups" ]; then
  echo "error: more than one ndarray in the build:"; cargo tree --workspace --locked -d -i ndarray@0.17.2 || true
  exit 1
fi
echo "one ndarray: $(grep -A1 '^name = "ndarray"$' Cargo.lock | grep version)"

step "cargo test (workspace: unit, doc and integration tests; PostgreSQL tests on a throwaway cluster)"
scripts/with-postgres.sh cargo test --workspace --locked

step "Python module: build, pytest, mypy --strict, example script"
scripts/test-python.sh

step "main command smoke run (quickstart example on the bundled sample data)"
out="$(mktemp -d)"
cargo run --locked -q -p quantcore --example quickstart -- "$out/report.html" > "$out/stdout.txt"
grep -q "HTML report written" "$out/stdout.txt" && test -s "$out/report.html"
rm -rf "$out"

echo
echo "all tests passed"
