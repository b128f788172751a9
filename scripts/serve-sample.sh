#!/usr/bin/env bash
# Serves the bundled sample index over HTTP in one command (README: Serving the API):
# builds ./sample-index from testdata/sample if it is not there, creates a demo key in
# ./server-data the first time (printed once: keep it), and runs breachdex serve.
# Usage: scripts/serve-sample.sh [LISTEN_ADDRESS]   (default 127.0.0.1:8080)
set -euo pipefail
cd "$(dirname "$0")/.."
listen="${1:-127.0.0.1:8080}"

cargo build --release --quiet
bin=target/release/breachdex

if [ ! -f sample-index/manifest.json ]; then
  echo "== build: testdata/sample/catalog.json -> sample-index"
  "$bin" build --catalog testdata/sample/catalog.json --out sample-index --quiet
fi

if [ ! -e server-data ]; then
  echo "== a demo key (its \"key\" is shown only this once; more: $bin keys create --data server-data ...)"
  "$bin" keys create --data server-data --org demo --plan professional
fi

echo "== serving sample-index (Ctrl-C stops)"
exec "$bin" serve --index sample-index --data server-data --listen "$listen"
