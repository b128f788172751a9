#!/usr/bin/env python3
"""Exports the records of a format-1 index as one CSV for the sqlite3 shell.

Usage: v1_to_csv.py INDEX_DIR OUT.csv

Columns: email_key, username_key (NFC, lower-cased, trimmed: the §6 rule without the
UTS #46 domain mapping), source_id, publish_date (days), severity, assets (bits), then
the twelve assets as stored (empty when absent or not stored). No document id.
"""
import struct, sys, csv
from v1index import ASSETS, body, columns, key_of, value
idx, out = sys.argv[1], sys.argv[2]
rows, (n, _, _, _) = body(idx, "records.rows")
cols = columns(idx)
with open(out, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["email_key", "username_key", "source_id", "publish_date", "severity", "assets"] + ASSETS)
    for r in range(n):
        src, date, assets, sev = struct.unpack_from("<IiHB", rows, 32 * r + 16)
        vals = []
        for i in range(12):
            if i in cols:
                vals.append(value(cols, i, r).decode())
            else:
                vals.append("")
        w.writerow([key_of(vals[0]) if vals[0] else "", key_of(vals[1]) if vals[1] else "", src, date, sev, assets] + vals)
