#!/usr/bin/env python3
"""Exports the records of a format-1 index as one CSV for the sqlite3 shell.

Usage: v1_to_csv.py INDEX_DIR OUT.csv

Columns: email_key, username_key (NFC, lower-cased, trimmed: the §6 rule without the
UTS #46 domain mapping), source_id, publish_date (days), severity, assets (bits), then
the twelve assets as stored (empty when absent or not stored). No document id.
"""
import struct, sys, os, csv, unicodedata
idx, out = sys.argv[1], sys.argv[2]
ASSETS = ["email","username","password_plaintext","password_hash","password_type","salt","full_name","phone","dob","address","ip_address","target_url"]
def body(name):
    b = open(os.path.join(idx, name), "rb").read()
    body_len, p0, p1, p2, p3 = struct.unpack_from("<QQQQQ", b, 16)
    return b[64:64+body_len], (p0, p1, p2, p3)
rows, (n, _, _, _) = body("records.rows")
cols = {}
for i, a in enumerate(ASSETS):
    if not os.path.exists(os.path.join(idx, f"asset.{a}.col")): continue
    bb, (rc, w, dl, _) = body(f"asset.{a}.col")
    cols[i] = (bb, struct.unpack_from("<%d%s" % (rc + 1, "I" if w == 4 else "Q"), bb, dl))
norm = lambda v: unicodedata.normalize("NFC", v.strip().lower())
with open(out, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["email_key", "username_key", "source_id", "publish_date", "severity", "assets"] + ASSETS)
    for r in range(n):
        src, date, assets, sev = struct.unpack_from("<IiHB", rows, 32 * r + 16)
        vals = []
        for i in range(12):
            if i in cols:
                bb, offs = cols[i]
                vals.append(bb[offs[r]:offs[r+1]].decode())
            else:
                vals.append("")
        w.writerow([norm(vals[0]) if vals[0] else "", norm(vals[1]) if vals[1] else "", src, date, sev, assets] + vals)
