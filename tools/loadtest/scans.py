#!/usr/bin/env python3
"""Scan throughput under check load (SPEC §14): how many identities `breachdex serve`
scans per minute while wrk drives POST /api/v1/breach-check/, and how much check
throughput a scan burst costs. Standard library only; needs wrk.

    tools/loadtest/scans.py --bin target/release/breachdex --index IDX --emails FILE

What a run does:

1. A temporary --data directory with an enterprise key whose limits do not bind, and
   `breachdex serve` on 127.0.0.1 (--scan-workers as given, default 1).
2. --identities N watched identities, each with two e-mails: one of FILE (present in
   the index) and an absent one made from it (`.q7z` appended to the local part).
3. --rounds rounds of two wrk runs of --duration seconds each (`wrk -t 2 -c 64`, the
   check script of this directory, half present and half absent e-mails): first without
   scans, then with a scan burst: every identity is scanned (one POST /api/v1/scans/
   each, sent as fast as one client connection allows, the queue then drains), and
   again, as long as wrk runs. Scans completed during the wrk run are counted from the
   state database at its start and end.
4. Prints per round the check requests/s without and with scans, their ratio, and the
   scans completed per minute during the run; then the medians.
"""

import argparse
import http.client
import json
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def request(conn, method, path, key, body=None):
    headers = {"x-api-key": key}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["content-type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    r = conn.getresponse()
    payload = r.read()
    if r.status >= 300:
        raise RuntimeError(f"{method} {path}: {r.status} {payload[:300]!r}")
    return json.loads(payload) if payload else None


def completed_scans(db):
    with sqlite3.connect(db, timeout=30) as c:
        return c.execute("SELECT COUNT(*) FROM scans WHERE status = 'completed'").fetchone()[0]


def pending_scans(db):
    with sqlite3.connect(db, timeout=30) as c:
        return c.execute("SELECT COUNT(*) FROM scans WHERE status IN ('pending', 'running')").fetchone()[0]


def wrk(port, key, emails, duration):
    env = dict(os.environ, LOADTEST_KEY=key, LOADTEST_EMAILS=emails, LOADTEST_DIR=HERE)
    out = subprocess.run(
        ["wrk", "--latency", "-t", "2", "-c", "64", "-d", f"{duration}s", "-s", os.path.join(HERE, "check.lua"),
         f"http://127.0.0.1:{port}"],
        env=env, capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+(\S+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rate, (p99.group(1) if p99 else "?"), int(errors.group(1)) if errors else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--index", required=True)
    ap.add_argument("--emails", required=True, help="present e-mails, one a line")
    ap.add_argument("--identities", type=int, default=10000)
    ap.add_argument("--duration", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--scan-workers", type=int, default=1)
    ap.add_argument("--port", type=int, default=18181)
    ap.add_argument("--clients", type=int, default=8, help="connections posting scans")
    a = ap.parse_args()

    present = [line.strip() for line in open(a.emails, encoding="utf-8") if "@" in line]
    present = present[: a.identities]
    if len(present) < a.identities:
        sys.exit(f"{a.emails} has {len(present)} e-mails; --identities {a.identities} needs as many")
    absent = [e.replace("@", ".q7z@", 1) for e in present]

    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data")
        created = subprocess.run(
            [a.bin, "keys", "create", "--data", data, "--org", "bench", "--plan", "enterprise",
             "--rpm", "4000000000", "--monthly", "1000000000000"],
            capture_output=True, text=True, check=True).stdout
        key = json.loads(created)["key"]
        mixed = os.path.join(tmp, "emails.txt")
        with open(mixed, "w", encoding="utf-8") as f:
            for p, q in zip(present, absent):
                f.write(f"{p}\n{q}\n")
        server = subprocess.Popen(
            [a.bin, "serve", "--index", a.index, "--data", data, "--listen", f"127.0.0.1:{a.port}",
             "--scan-workers", str(a.scan_workers)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            conn = None
            for _ in range(600):
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=60)
                    request(conn, "GET", "/api/v1/health/", key)
                    break
                except (OSError, RuntimeError, http.client.HTTPException):
                    conn = None
                    time.sleep(0.1)
            if conn is None:
                sys.exit("the server did not start")
            db = os.path.join(data, "breachdex-server.sqlite3")
            t = time.monotonic()
            ids = []
            for i, (p, q) in enumerate(zip(present, absent)):
                body = {"name": f"bench {i}", "emails": [p, q]}
                ids.append(request(conn, "POST", "/api/v1/identities/", key, body)["id"])
            print(f"{len(ids)} identities created in {time.monotonic() - t:.1f} s", flush=True)

            rows = []
            for round_no in range(1, a.rounds + 1):
                base, base_p99, base_err = wrk(a.port, key, mixed, a.duration)
                stop = threading.Event()
                posted = [0]

                lock = threading.Lock()

                def post_some(part):
                    c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=60)
                    for identity in part:
                        if stop.is_set():
                            return
                        request(c, "POST", "/api/v1/scans/", key, {"identity_id": identity})
                        with lock:
                            posted[0] += 1

                def burst():
                    while not stop.is_set():
                        posters = [threading.Thread(target=post_some, args=(ids[k::a.clients],))
                                   for k in range(a.clients)]
                        for t in posters:
                            t.start()
                        for t in posters:
                            t.join()
                        while pending_scans(db) > 0 and not stop.is_set():
                            time.sleep(0.1)

                before = completed_scans(db)
                t0 = time.monotonic()
                poster = threading.Thread(target=burst)
                poster.start()
                loaded, loaded_p99, loaded_err = wrk(a.port, key, mixed, a.duration)
                elapsed = time.monotonic() - t0
                done = completed_scans(db) - before
                stop.set()
                poster.join()
                while pending_scans(db) > 0:
                    time.sleep(0.2)
                per_minute = done / elapsed * 60
                rows.append((base, loaded, per_minute))
                print(f"round {round_no}: check {base:,.0f} req/s (p99 {base_p99}, non-2xx {base_err}) without scans, "
                      f"{loaded:,.0f} req/s (p99 {loaded_p99}, non-2xx {loaded_err}) during the burst: "
                      f"{loaded / base:.2f}; {done:,} scans completed in {elapsed:.1f} s "
                      f"({per_minute:,.0f} per minute; {posted[0]:,} posted)", flush=True)
            print("medians: check without scans {:,.0f} req/s, with scans {:,.0f} req/s, ratio {:.2f}, "
                  "{:,.0f} scans per minute".format(
                      statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows),
                      statistics.median(r[1] / r[0] for r in rows), statistics.median(r[2] for r in rows)))
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
