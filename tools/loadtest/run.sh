#!/usr/bin/env bash
# The serve load benchmark: `breachdex serve` (release build) on 127.0.0.1 under wrk,
# the measured route interleaved with /healthz (the HTTP stack's ceiling on the same
# machine, in the same run). See tools/loadtest/README.md.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: tools/loadtest/run.sh [options]

Data (one of):
  --index DIR        serve this index; e-mails for the check route come from --dumps or --emails
  --dumps DIR        the dumps the index was built from (a directory holding catalog.json);
                     without --index, an index is built from them into the cache
  --emails FILE      present e-mails, one a line (instead of sampling --dumps)
  (none)             generate --records records with breachdex-gen into the cache and build them

Options:
  --route R          check (POST /api/v1/breach-check/, default) or range (GET /range/{5 hex})
  --records N        records to generate when no data is given (default 10000000)
  --cache DIR        where generated dumps, indexes and samples are kept
                     (default ${XDG_CACHE_HOME:-$HOME/.cache}/breachdex-loadtest)
  --bin DIR          directory of the breachdex binaries (default target/release)
  --compare DIR      a second build (directory of binaries): its server is measured in
                     turn with the first on the same route (A/B/A/B), for before/after tables
  --no-build         do not run cargo build --release first
  --duration D       each wrk run (default 30s)
  --connections N    wrk connections (default 64)
  --threads N        wrk threads (default 2)
  --rounds N         rounds of (healthz, route) runs, interleaved (default 2)
  --warmup D         a first unreported run of the route (default 5s)
  --sample N         e-mails sampled, present and absent each (default 50000)
  -h, --help         this text

Run it alone on the machine (e.g. flock a shared lock file) and read BENCHMARKS.md's
"Serving" section for the figures it produced.
EOF
}

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

route=check
index=""
dumps=""
emails=""
records=10000000
cache="${XDG_CACHE_HOME:-$HOME/.cache}/breachdex-loadtest"
bin="$repo/target/release"
compare=""
build=1
duration=30s
connections=64
threads=2
rounds=2
warmup=5s
sample=50000

need() { [[ $# -ge 2 && -n "$2" ]] || { echo "run.sh: $1 needs a value" >&2; exit 2; }; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --route) need "$@"; route="$2"; shift 2 ;;
    --index) need "$@"; index="$2"; shift 2 ;;
    --dumps) need "$@"; dumps="$2"; shift 2 ;;
    --emails) need "$@"; emails="$2"; shift 2 ;;
    --records) need "$@"; records="$2"; shift 2 ;;
    --cache) need "$@"; cache="$2"; shift 2 ;;
    --bin) need "$@"; bin="$2"; shift 2 ;;
    --compare) need "$@"; compare="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    --duration) need "$@"; duration="$2"; shift 2 ;;
    --connections) need "$@"; connections="$2"; shift 2 ;;
    --threads) need "$@"; threads="$2"; shift 2 ;;
    --rounds) need "$@"; rounds="$2"; shift 2 ;;
    --warmup) need "$@"; warmup="$2"; shift 2 ;;
    --sample) need "$@"; sample="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
  esac
done

case "$route" in
  check|range) ;;
  *) echo "run.sh: --route must be check or range, not '$route'" >&2; exit 2 ;;
esac
for tool in wrk curl shuf; do
  command -v "$tool" >/dev/null || { echo "run.sh: '$tool' is not installed" >&2; exit 2; }
done

log() { echo "== $*" >&2; }

if [[ $build == 1 ]]; then
  log "cargo build --release -p breachdex-cli -p breachdex-gen"
  (cd "$repo" && cargo build --release --locked --quiet -p breachdex-cli -p breachdex-gen)
fi
bin="$(cd "$bin" && pwd)"
for b in "$bin/breachdex" ${compare:+"$compare/breachdex"}; do
  [[ -x "$b" ]] || { echo "run.sh: no binary $b (build with cargo build --release, or pass --bin)" >&2; exit 2; }
done
[[ -z "$compare" ]] || compare="$(cd "$compare" && pwd)"

mkdir -p "$cache"

# --- the index ------------------------------------------------------------------------
if [[ -z "$index" ]]; then
  if [[ -z "$dumps" ]]; then
    dumps="$cache/gen-$records/dumps"
    if [[ ! -f "$dumps/.complete" ]]; then
      [[ -x "$bin/breachdex-gen" ]] || { echo "run.sh: no $bin/breachdex-gen" >&2; exit 2; }
      log "generating $records records into $dumps"
      rm -rf "$dumps"
      "$bin/breachdex-gen" --records "$records" --seed 7 --out "$dumps" >&2
      touch "$dumps/.complete"
    fi
  fi
  [[ -f "$dumps/catalog.json" ]] || { echo "run.sh: no catalog.json in $dumps" >&2; exit 2; }
  index="$cache/index-$(cd "$dumps" && pwd | cksum | cut -d' ' -f1)"
  if [[ ! -f "$index/.complete" ]]; then
    log "building $dumps into $index"
    "$bin/breachdex" build --catalog "$dumps/catalog.json" --out "$index" --force --quiet >&2
    touch "$index/.complete"
  fi
fi
[[ -d "$index" ]] || { echo "run.sh: no index directory $index" >&2; exit 2; }
index="$(cd "$index" && pwd)"

work="$(mktemp -d "${TMPDIR:-/tmp}/breachdex-loadtest.XXXXXX")"
pids=()
cleanup() {
  for p in "${pids[@]}"; do
    kill -TERM "$p" 2>/dev/null || true
  done
  for p in "${pids[@]}"; do
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

# --- the e-mails: present ones sampled from the dumps, absent ones derived from them ----
if [[ $route == check ]]; then
  if [[ -z "$emails" ]]; then
    [[ -n "$dumps" ]] || { echo "run.sh: --index needs --dumps DIR or --emails FILE for --route check" >&2; exit 2; }
    emails="$cache/emails-$(cd "$dumps" && pwd | cksum | cut -d' ' -f1)-$sample.txt"
    if [[ ! -s "$emails" ]]; then
      log "sampling e-mails from $dumps"
      # Every e-mail-looking token of every dump file (gzip or not), deduplicated, then a
      # seeded sample; candidates are confirmed against the index below.
      find "$dumps" -type f ! -name catalog.json ! -name '.*' -print0 \
        | xargs -0 -n 1 sh -c 'case "$0" in *.gz) gzip -dc "$0" ;; *) cat "$0" ;; esac' \
        | grep -ohE '[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+' \
        | sort -u -S 256M \
        | shuf -n "$((sample * 2))" --random-source=<(yes 7) > "$emails.tmp"
      mv "$emails.tmp" "$emails"
    fi
  fi
  # Keep the candidates the index finds (present) and, from the same candidates with a
  # changed local part, those it does not find and accepts as valid (absent): equal
  # numbers of each, so the run is 50/50 hits and misses.
  check_batch() {
    "$bin/breachdex" check --index "$index" --batch "$1" \
      | grep -oE '"checked":"[^"]*"|"total_breaches":[0-9]+|"code":"[a-z_]+"' \
      | paste -d' ' - - | awk -v want="$2" '
          $2 ~ /^"total_breaches":/ {
            split($2, t, ":"); found = (t[2] > 0)
            sub(/^"checked":"/, "", $1); sub(/"$/, "", $1)
            if ((want == "present" && found) || (want == "absent" && !found)) print $1
          }'
  }
  head -n "$((sample * 2))" "$emails" > "$work/candidates.txt"
  check_batch "$work/candidates.txt" present | awk -v n="$sample" 'NR <= n' > "$work/present.txt"
  sed 's/@/.q7z@/' "$work/present.txt" > "$work/mutated.txt"
  check_batch "$work/mutated.txt" absent | awk -v n="$sample" 'NR <= n' > "$work/absent.txt"
  n=$(wc -l < "$work/present.txt")
  m=$(wc -l < "$work/absent.txt")
  (( n > 0 && n == m )) || { echo "run.sh: $n present and $m absent e-mails; need equal, non-zero numbers" >&2; exit 1; }
  cat "$work/present.txt" "$work/absent.txt" > "$work/emails.txt"
  log "e-mails: $n present, $m absent"
fi

# --- the servers ------------------------------------------------------------------------
# start_server NAME BIN_DIR: a state directory with an enterprise key whose limits do not
# bind during the run, then `breachdex serve` on a free port; sets url_NAME and key_NAME.
start_server() {
  local name="$1" dir="$2" data="$work/data-$1"
  local created
  created="$("$dir/breachdex" keys create --data "$data" --org loadtest --name "$name" \
    --plan enterprise --rpm 4000000000 --monthly 1000000000000)"
  local key
  key="$(printf '%s' "$created" | grep -oE '"key":"bdx_[A-Za-z0-9]+"' | cut -d'"' -f4)"
  [[ -n "$key" ]] || { echo "run.sh: keys create printed no key: $created" >&2; exit 1; }
  "$dir/breachdex" serve --index "$index" --data "$data" --listen 127.0.0.1:0 2> "$work/serve-$name.log" &
  pids+=("$!")
  local addr=""
  for _ in $(seq 1 300); do
    addr="$(grep -oE -m 1 'http://127\.0\.0\.1:[0-9]+' "$work/serve-$name.log" || true)"
    [[ -n "$addr" ]] && break
    kill -0 "${pids[-1]}" 2>/dev/null || { cat "$work/serve-$name.log" >&2; exit 1; }
    sleep 0.1
  done
  [[ -n "$addr" ]] || { echo "run.sh: server $name did not report its address" >&2; exit 1; }
  curl -fsS "$addr/healthz" >/dev/null
  printf -v "url_$name" '%s' "$addr"
  printf -v "key_$name" '%s' "$key"
  log "server $name ($dir/breachdex) on $addr"
}

start_server A "$bin"
[[ -z "$compare" ]] || start_server B "$compare"

# run_wrk SCRIPT URL KEY DURATION: one wrk run; prints its RESULT line.
run_wrk() {
  local out
  out="$(LOADTEST_DIR="$here" LOADTEST_KEY="$3" LOADTEST_EMAILS="$work/emails.txt" \
    wrk --latency -t "$threads" -c "$connections" -d "$4" -s "$here/$1.lua" "$2")"
  printf '%s\n' "$out" >> "$work/wrk.log"
  local result
  result="$(printf '%s\n' "$out" | grep '^RESULT ' || true)"
  [[ -n "$result" ]] || { printf '%s\n' "$out" >&2; echo "run.sh: wrk printed no RESULT" >&2; exit 1; }
  printf '%s\n' "$result"
}
field() { printf '%s\n' "$1" | grep -oE "(^| )$2=[0-9.]+" | cut -d= -f2; }

# A sanity request, then the warm-up (page cache, connections, allocator).
if [[ $route == check ]]; then
  first="$(head -n 1 "$work/emails.txt")"
  curl -fsS -X POST -H "Authorization: Bearer $key_A" -H 'Content-Type: application/json' \
    -d "{\"email\":\"$first\"}" "$url_A/api/v1/breach-check/" | grep -q '"total_breaches":[1-9]' \
    || { echo "run.sh: the check of a present e-mail did not find it" >&2; exit 1; }
fi
servers=(A)
[[ -z "$compare" ]] || servers=(A B)
for s in "${servers[@]}"; do
  u="url_$s"; k="key_$s"
  log "warm-up $s: $route for $warmup"
  run_wrk "$route" "${!u}" "${!k}" "$warmup" >/dev/null
done

printf '%-6s %-7s %-6s %10s %9s %9s %9s %8s\n' round server route "req/s" "p50 ms" "p99 ms" "max ms" "errors"
results=()
for r in $(seq 1 "$rounds"); do
  for s in "${servers[@]}"; do
    u="url_$s"; k="key_$s"
    for what in healthz "$route"; do
      line="$(run_wrk "$what" "${!u}" "${!k}" "$duration")"
      errors=$(( $(field "$line" errors_connect) + $(field "$line" errors_read) + $(field "$line" errors_write) \
        + $(field "$line" errors_timeout) + $(field "$line" errors_status) ))
      printf '%-6s %-7s %-6s %10s %9.2f %9.2f %9.2f %8s\n' "$r" "$s" "$what" "$(field "$line" rps)" \
        "$(echo "$(field "$line" p50_us) / 1000" | bc -l)" "$(echo "$(field "$line" p99_us) / 1000" | bc -l)" \
        "$(echo "$(field "$line" max_us) / 1000" | bc -l)" "$errors"
      results+=("$s $what $(field "$line" rps) $(field "$line" p99_us) $errors")
    done
  done
done

# Medians per server and route, and each server's route rate against its /healthz rate.
echo
printf '%s\n' "${results[@]}" | awk -v route="$route" '
  { n[$1" "$2]++; rps[$1" "$2, n[$1" "$2]] = $3; p99[$1" "$2, n[$1" "$2]] = $4; err[$1" "$2] += $5 }
  function median(arr, key, count,   i, j, t, v) {
    for (i = 1; i <= count; i++) v[i] = arr[key, i]
    for (i = 1; i <= count; i++) for (j = i + 1; j <= count; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
    return count % 2 ? v[(count + 1) / 2] : (v[count / 2] + v[count / 2 + 1]) / 2
  }
  END {
    for (s = 1; s <= 2; s++) {
      name = s == 1 ? "A" : "B"
      if (!((name " " route) in n)) continue
      h = median(rps, name " healthz", n[name " healthz"])
      m = median(rps, name " " route, n[name " " route])
      p = median(p99, name " " route, n[name " " route])
      printf "server %s: %s median %.0f req/s, p99 %.2f ms, %d errors; /healthz median %.0f req/s; ratio %.2f\n",
        name, route, m, p / 1000, err[name " " route], h, m / h
    }
  }'
