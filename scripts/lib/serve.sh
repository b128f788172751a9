# Shared by the scripts that drive a real server (client-tests.sh, monitor.sh); source it
# after setting $bin to the breachdex binary.

# start_server LOG ARGS...: starts `$bin serve ARGS... --listen 127.0.0.1:0` in the
# background with its output in LOG, and sets $server_pid and, once it listens, $url
# (http://ADDR, from the "serving ... on http://ADDR" line it prints). Returns 1 if the
# server exits, or prints no address within 30 s.
start_server() {
  local log="$1"
  shift
  "$bin" serve "$@" --listen 127.0.0.1:0 >"$log" 2>&1 &
  server_pid=$!
  url=""
  for _ in $(seq 1 300); do
    url="$(grep -o 'on http://[0-9.:]*' "$log" | head -n 1 | sed 's/^on //' || true)"
    [ -n "$url" ] && return 0
    kill -0 "$server_pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# json_field PATH < JSON: prints the member at PATH (dot-separated) of the JSON on stdin.
json_field() {
  python3 -c 'import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v[k]
print(v)' "$1"
}
