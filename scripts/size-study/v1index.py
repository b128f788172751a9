"""Reading a format-1 index for the size-study scripts (docs/FORMAT.md §3-§4): file
bodies after the 64-byte header, asset columns with their offset tables, values."""
import os, struct, unicodedata

ASSETS = ["email","username","password_plaintext","password_hash","password_type","salt","full_name","phone","dob","address","ip_address","target_url"]

def body(idx, name):
    """The body of one index file and the four u64 parameters of its header."""
    b = open(os.path.join(idx, name), "rb").read()
    body_len, p0, p1, p2, p3 = struct.unpack_from("<QQQQQ", b, 16)
    return b[64:64+body_len], (p0, p1, p2, p3)

def offsets(b, count, width, at):
    """`count` u32 or u64 offsets (by `width`) read from `b` at `at`."""
    return struct.unpack_from("<%d%s" % (count, "I" if width == 4 else "Q"), b, at)

def columns(idx):
    """{asset index: (column body, row offsets)} for every stored asset column."""
    cols = {}
    for i, a in enumerate(ASSETS):
        if not os.path.exists(os.path.join(idx, f"asset.{a}.col")): continue
        bb, (rc, w, dl, _) = body(idx, f"asset.{a}.col")
        cols[i] = (bb, offsets(bb, rc + 1, w, dl))
    return cols

def value(cols, i, r):
    """The bytes of asset `i` in row `r` (empty when absent)."""
    bb, offs = cols[i]
    return bb[offs[r]:offs[r+1]]

def key_of(v):
    """The e-mail/username key rule of §6 without the UTS #46 domain mapping."""
    return unicodedata.normalize("NFC", v.strip().lower())
