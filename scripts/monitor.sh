#!/usr/bin/env bash
# The monitoring routine of the README ("Monitoring"), end to end on the bundled sample:
# build the sample index, serve it, create a key and a watched identity, scan it and read
# its findings and risk score, register a webhook with a local receiver that verifies the
# signatures (scripts/webhook-receiver.py), add this week's dump (testdata/sample/week2)
# with `breachdex add`, and wait for the signed `breach.detected` it brings.
# The server runs on 127.0.0.1 with --allow-http-webhooks --allow-private-webhooks, since
# the receiver is a local http one. Needs python3 (standard library only).
# Usage: scripts/monitor.sh [WORK_DIR]   (default: a temporary folder, removed at the end)
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet --locked
bin="$PWD/target/release/breachdex"
# shellcheck source=scripts/lib/serve.sh
. scripts/lib/serve.sh

if [ -n "${1:-}" ]; then
  work="$1"; mkdir -p "$work"; keep=1
else
  work="$(mktemp -d)"; keep=0
fi
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  [ "$keep" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "monitoring routine failed: $1" >&2
  echo "---- server log ----" >&2; cat "$work/server.log" >&2 || true
  echo "---- receiver log ----" >&2; cat "$work/receiver.log" "$work/receiver.err" >&2 || true
  exit 1
}
wait_for() { # FILE PATTERN SECONDS: waits until FILE holds PATTERN
  for _ in $(seq 1 $(($3 * 10))); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}

echo "== the sample index and a server on it"
"$bin" build --catalog testdata/sample/catalog.json --out "$work/index" --force --quiet >"$work/build.log"
"$bin" keys create --data "$work/data" --org acme --plan professional --name monitoring >"$work/key.json"
KEY="$(json_field key <"$work/key.json")"
started=0
start_server "$work/server.log" --index "$work/index" --data "$work/data" \
  --allow-http-webhooks --allow-private-webhooks || started=$?
pids+=("$server_pid")
[ "$started" = 0 ] || fail "the server exited at start, or printed no address within 30 s"
echo "server at $url"
api() { # METHOD PATH [BODY]
  if [ $# -ge 3 ]; then
    curl -sS -X "$1" -H "x-api-key: $KEY" -H 'content-type: application/json' -d "$3" "$url$2"
  else
    curl -sS -X "$1" -H "x-api-key: $KEY" "$url$2"
  fi
}

echo
echo "== watch an identity (an e-mail and a username)"
api POST /api/v1/identities/ \
  '{"name": "Alex at work", "identity_type": "professional", "emails": ["User@Example.com"], "usernames": ["darkstar99"]}' \
  | tee "$work/identity.json"; echo
IDENTITY="$(json_field id <"$work/identity.json")"

echo
echo "== scan it, wait for the scan, read its findings and the risk score"
api POST /api/v1/scans/ "{\"identity_id\": \"$IDENTITY\", \"scan_type\": \"full\"}" >"$work/scan.json"
SCAN="$(json_field scan_id <"$work/scan.json")"
for _ in $(seq 1 300); do
  api GET "/api/v1/scans/$SCAN/" >"$work/scan.json"
  status="$(json_field status <"$work/scan.json")"
  [ "$status" = completed ] && break
  [ "$status" = failed ] && fail "the scan failed: $(cat "$work/scan.json")"
  sleep 0.1
done
[ "$status" = completed ] || fail "the scan did not complete in 30 s"
cat "$work/scan.json"; echo
api GET "/api/v1/scans/$SCAN/findings/?severity=critical" | python3 -c 'import json,sys
page = json.load(sys.stdin)
print(page["total_findings"], "critical findings:")
for f in page["findings"]:
    print(" ", f["severity"], f["category"], "-", f["title"])'
api GET "/api/v1/risk-score/?identity_id=$IDENTITY"; echo

echo
echo "== a webhook to a local receiver that verifies the signatures"
# The receiver's port is only known once it listens: start it with the secret of a
# webhook registered for it, so register first on a port reserved here.
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
api POST /api/v1/webhooks/ \
  "{\"url\": \"http://127.0.0.1:$port/breachdex\", \"events\": [\"breach.detected\", \"scan.completed\", \"finding.new\", \"alert.triggered\"]}" \
  >"$work/webhook.json"
BREACHDEX_WEBHOOK_SECRET="$(json_field secret <"$work/webhook.json")" \
  python3 scripts/webhook-receiver.py "$port" >"$work/receiver.log" 2>"$work/receiver.err" &
pids+=($!)
wait_for "$work/receiver.err" 'listening on' 10 || fail "the receiver did not start"
echo "webhook $(json_field id <"$work/webhook.json") -> receiver on port $port"

echo
echo "== this week's dump: breachdex add (it holds user@example.com in a new breach)"
"$bin" add --index "$work/index" --catalog testdata/sample/week2/catalog.json --quiet
"$bin" info "$work/index" | grep -i generation || true
wait_for "$work/receiver.log" '^breach.detected' 30 || fail "no breach.detected reached the receiver in 30 s"
sleep 1 # the events of the other breaches the dump brings, if any
echo "the receiver verified and printed:"
cat "$work/receiver.log"
if grep -q 'REJECTED' "$work/receiver.err"; then fail "the receiver rejected a signature"; fi
grep -q '"travelsite-2026"' "$work/receiver.log" || fail "breach.detected does not name travelsite-2026"
echo "monitoring routine ok"
