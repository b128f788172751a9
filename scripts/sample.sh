#!/usr/bin/env bash
# Builds the bundled sample dumps into an index and queries it: the README quick start.
# Usage: scripts/sample.sh [OUT_DIR]   (default: ./sample-index)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-sample-index}"

cargo build --release --quiet
bin=target/release/breachdex

echo "== build: testdata/sample/catalog.json -> $out"
"$bin" build --catalog testdata/sample/catalog.json --out "$out" --force --quiet

echo
echo "== info"
"$bin" info "$out"

echo
echo "== verify"
"$bin" verify "$out"

echo
echo "== check --email USER@Example.com (any spelling finds the same key)"
"$bin" check --index "$out" --email 'USER@Example.com'

echo
echo "== check --batch (one JSON line per input line)"
printf 'müller@bücher.de\ndarkstar99\nshopper@gmail.com\nnot-an-email@\n' > "$out.batch.txt"
"$bin" check --index "$out" --batch "$out.batch.txt"
rm -f "$out.batch.txt"

echo
echo "== records --email USER@Example.com (allow-list, masking, salted output hashing; README)"
"$bin" records --index "$out" --email 'USER@Example.com' \
    --allow email,password_hash,password_type,target_url \
    --hash-assets email=sha256 --output-salt pepper-2026 --limit 2

echo
echo "== weekly routine (README \"Weekly updates\"): add a dump, remove an opted-out identity, compact"
"$bin" add --index "$out" --catalog testdata/sample/week2/catalog.json --quiet
"$bin" remove --index "$out" --identity optout@example.net
"$bin" remove --index "$out" --source gamerforum-2019
"$bin" changes --index "$out" --since 1
"$bin" compact --index "$out" --quiet
"$bin" check --index "$out" --email optout@example.net
"$bin" info "$out"
"$bin" verify "$out"
