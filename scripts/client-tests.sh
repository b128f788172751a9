#!/usr/bin/env bash
# The real Have I Been Pwned clients against a local server: builds the fixture dumps
# (tests/clients/fixture) into an index with the CLI, creates keys, starts
# `breachdex serve` on a free port, then runs the `hibp` npm client's tests (node --test)
# and the `pyhibp` PyPI client's tests against it. The clients are installed into a
# temporary folder each run (npm and a Python venv; needs network access to the npm
# registry and PyPI). On failure the server's log is printed.
# Usage: scripts/client-tests.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"

for tool in node npm python3; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "client tests need $tool (node 18 or newer, npm, python3 with venv)" >&2
    exit 1
  fi
done

cargo build --release --quiet --locked
bin="$root/target/release/breachdex"
# shellcheck source=scripts/lib/serve.sh
. scripts/lib/serve.sh

tmp="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
  echo "client tests failed: $1" >&2
  echo "---- server log ----" >&2
  cat "$tmp/server.log" >&2 || true
  exit 1
}

echo "== client tests: installing hibp@15 (npm) and pyhibp (PyPI) into a temporary folder"
npm install --prefix "$tmp/node" --no-audit --no-fund --silent hibp@15 >"$tmp/npm.log" 2>&1 \
  || { cat "$tmp/npm.log" >&2; echo "npm install hibp@15 failed" >&2; exit 1; }
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install --quiet --disable-pip-version-check pyhibp >"$tmp/pip.log" 2>&1 \
  || { cat "$tmp/pip.log" >&2; echo "pip install pyhibp failed" >&2; exit 1; }

echo "== client tests: fixture index and keys"
"$bin" build --catalog tests/clients/fixture/catalog.json --out "$tmp/index" --quiet
"$bin" keys create --data "$tmp/data" --org clients --plan enterprise --name main >"$tmp/key.json"
"$bin" keys create --data "$tmp/data" --org clients --plan starter --name starter >"$tmp/starter.json"
HIBP_KEY="$(json_field key <"$tmp/key.json")"
STARTER_KEY="$(json_field key <"$tmp/starter.json")"
export HIBP_KEY STARTER_KEY

start_server "$tmp/server.log" --index "$tmp/index" --data "$tmp/data" \
  || fail "the server exited at start, or printed no address within 30 s"
export BREACHDEX_URL="$url"
echo "server at $url"

echo "== client tests: hibp (node --test)"
# Run from the install folder: ES modules resolve `hibp` from the test file's folder.
cp tests/clients/*.test.mjs "$tmp/node/"
node --test "$tmp/node/"*.test.mjs 2>&1 | tee "$tmp/node.log" || fail "hibp tests"

echo "== client tests: pyhibp"
"$tmp/venv/bin/python" -m unittest discover -s tests/clients -p 'test_*.py' -v 2>&1 | tee "$tmp/python.log" \
  || fail "pyhibp tests"
