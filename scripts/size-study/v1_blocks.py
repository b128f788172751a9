#!/usr/bin/env python3
"""Size study for the format-2 record store (docs/FORMAT.md §9.4), from a format-1 index.

Usage: v1_blocks.py INDEX_DIR OUT_DIR TARGET_RAW_BYTES

Reads the rows, asset columns and e-mail runs of a plain-mode version-1 index and writes
each block that §9.4 would write, uncompressed, as one file OUT_DIR/bNNNNNN: per stored
asset the LEB128 lengths of the rows holding it, then their values; an e-mail that equals
its key is a 0 length and no bytes. Runs (one e-mail key, or one username-only row) are
kept whole in a block up to TARGET_RAW_BYTES. Compress the files with the zstd and lz4
command-line tools to compare codecs and block sizes (BENCHMARKS.md shows the commands).

Approximations: "equals the key" is tested as value == NFC(lower(trim(value))), which is
the e-mail rule of §6 except for the UTS #46 domain mapping (so a few IDN spellings
count as different); the e-mail/username flag bit of §9.4 is not modelled (0 or the
length); no document ids (every asset is stored).
"""
import sys, os
from v1index import body, columns, key_of, offsets, value
idx, out, target = sys.argv[1], sys.argv[2], int(sys.argv[3])
rows, (n, _, _, _) = body(idx, "records.rows")
cols = columns(idx)
rb, (kc, w, email_rows, _) = body(idx, "email.ranges")
starts = offsets(rb, kc + 1, w, 0)
runs = list(zip(starts[:-1], starts[1:])) + [(r, r + 1) for r in range(email_rows, n)]
def varint(x, o):
    while x >= 0x80:
        o.append((x & 0x7f) | 0x80); x >>= 7
    o.append(x)
def val(i, r):
    return value(cols, i, r)
os.makedirs(out, exist_ok=True)
nblocks = 0; raw_total = 0; email_same = 0; email_rows_n = 0
def flush(b0, b1):
    global nblocks, raw_total, email_same, email_rows_n
    lens = bytearray(); data = bytearray()
    for i in sorted(cols):
        for r in range(b0, b1):
            v = val(i, r)
            if not v: continue
            if i == 0:
                email_rows_n += 1
                if r < email_rows and v.decode() == key_of(v.decode()):
                    email_same += 1; varint(0, lens); continue
            varint(len(v), lens); data += v
    blob = bytes(lens) + bytes(data)
    open(os.path.join(out, "b%06d" % nblocks), "wb").write(blob)
    nblocks += 1; raw_total += len(blob)
b0 = 0; size = 0
for (s, e) in runs:
    rs = sum(len(val(i, r)) + 1 for r in range(s, e) for i in cols)
    if size and size + rs > target:
        flush(b0, s); b0 = s; size = 0
    size += rs
flush(b0, n)
print(f"rows {n} blocks {nblocks} raw {raw_total} email_same {email_same}/{email_rows_n}")
