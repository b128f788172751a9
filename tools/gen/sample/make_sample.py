#!/usr/bin/env python3
"""Writes testdata/sample/ and testdata/sample-gz/ (the bundled sample of the README).

The files are committed; this script documents how the bytes that an editor cannot
type (invalid UTF-8, a BOM, CRLF, NFD) were produced. Run from the repository root:
    python3 tools/gen/sample/make_sample.py
"""
import hashlib, os, subprocess, unicodedata

OUT = "testdata/sample"
GZ = "testdata/sample-gz"


def sha1(s): return hashlib.sha1(s.encode()).hexdigest()
def md5(s): return hashlib.md5(s.encode()).hexdigest()
def bcrypt(tag):
    # Well-formed bcrypt strings (not real hashes of anything).
    b64 = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    h = hashlib.sha512(tag.encode()).digest()
    return "$2b$10$" + "".join(b64[b % 64] for b in (h + h)[:53])


def write(path, lines, eol=b"\n", bom=False):
    """lines: str or bytes, one per physical line (a str may hold an embedded \\n)."""
    data = b"\xef\xbb\xbf" if bom else b""
    for line in lines:
        data += (line.encode() if isinstance(line, str) else line) + eol
    with open(path, "wb") as f:
        f.write(data)


LONG_USER = "x" * 130  # over the 128-byte username limit
NFD_JOSE = unicodedata.normalize("NFD", "josé.núñez@example.com")

# examplecorp.csv: comma-separated, CRLF line ends (the embedded newline stays LF).
write(f"{OUT}/examplecorp.csv", [
    "email,username,password_hash,password_type,full_name,phone,address",                   # 1 header
    f"user@example.com,,{sha1('password')},sha1,Alex Example,,",                             # 2
    f"John.Doe@Example.COM,jdoe,{sha1('123456')},sha1,John Doe,+1 555 0100,\"12 Main Street, Springfield\"",  # 3
    f"müller@bücher.de,,{sha1('Passwort')},sha1,Jürgen Müller,+49 30 1234567,",              # 4
    f"maria.garcia@example.org,,{sha1('maria1990')},sha1,Maria Garcia,+34 600 123 456,\"Flat 2, \"\"The Old Mill\"\"\nMill Lane, Leeds\"",  # 5-6
    f"shopper+deals@gmail.com,,{sha1('deals4ever')},sha1,Sam Shopper,,",                     # 7
    f"shopper+deals@gmail.com,,{sha1('deals4ever')},sha1,Sam Shopper,,",                     # 8 exact duplicate of 7
    f"José.Núñez@Example.com,,{sha1('olé')},sha1,José Núñez,,",                              # 9
    f"alice@example.net,alice,{sha1('wonderland')},sha1,Alice Liddell,,",                    # 10
    b"bad\xffbyte@example.com,,0000,sha1,Broken Bytes,,",                                    # 11 invalid UTF-8
    f"no-at-sign,,{sha1('x')},sha1,Nobody,,",                                                # 12 invalid email, no other identifier
    f"toofew@example.com,,{sha1('y')}",                                                      # 13 wrong field count (3 of 7)
    f"bob.smith@example.com,,{sha1('bobby')},sha1,Bob Smith,+1 555 0199,",                   # 14
    f"toomany@example.com,,{sha1('z')},sha1,Too Many,,,extra",                               # 15 wrong field count (8 of 7)
    f"\"unterminated@example.com,,{sha1('q')},sha1,Open Quote,,",                            # 16 broken quoting (never closed; last line)
], eol=b"\r\n")

# stealer-logs.jsonl: UTF-8 BOM, blank lines, aliases, null and number values.
write(f"{OUT}/stealer-logs.jsonl", [
    '{"url": "https://accounts.google.com/signin", "email": "user@example.com", "password": "Summer2024!", "ip": "203.0.113.7"}',  # 1
    '{"url": "https://www.netflix.com/login", "login": "darkstar99", "password": "hunter2", "ip": "198.51.100.23"}',            # 2
    '',                                                                                                                          # 3 blank
    '{"url": "https://github.com/session", "mail": "JOHN.DOE@EXAMPLE.COM", "pass": "p@ss:w0rd", "ip": "203.0.113.50"}',       # 4
    '{"url": "https://mail.example.de/", "email": "müller@xn--bcher-kva.de", "password": "Passwort123", "ip": null}',         # 5
    '{"id": 1234, "url": "https://discord.com/login", "email": "shopper+deals@gmail.com", "password": "deals4ever", "ip_address": "192.0.2.44"}',  # 6
    '{"url": "https://www.paypal.com/signin", "email": "' + NFD_JOSE + '", "password": "olé olé", "ip": "192.0.2.45"}',     # 7 NFD e-mail
    '',                                                                                                                          # 8 blank
    '{"url": "https://example.com/login", "email": "broken@example.com", "password": "x"',                                    # 9 JSON syntax error
    '{"url": "https://example.com/", "email": "a@@b.com", "password": "secret"}',                                               # 10 invalid email
    b'{"url": "https://example.com/", "email": "utf8\xc3\x28bad@example.com", "password": "pw"}',                              # 11 invalid UTF-8
    '{"url": "https://accounts.google.com/signin", "email": "user@example.com", "password": "Summer2024!", "ip": "203.0.113.7"}',  # 12 exact duplicate of 1
    '{"email": "trailing@example.com", "password": "pw",}',                                                                     # 13 JSON syntax error
    '{"url": "https://steamcommunity.com/login/home/", "user": "Gamer_Girl", "password": "pixel:art:42", "ip": "203.0.113.99"}',  # 14
    '{"url": "https://login.live.com/login.srf", "email": "alice@example.net", "password": "wonderland!", "ip": "2001:db8::1"}',  # 15
], bom=True)

# gamerforum.csv: ';'-delimited (catalog "delimiter"), LF, header aliases in mixed case.
write(f"{OUT}/gamerforum.csv", [
    "user_name;E-Mail;hash;password_type;ip;dob",                                   # 1 header
    f"darkstar99;;{bcrypt('darkstar99')};bcrypt;198.51.100.23;1999-09-09",         # 2 username only
    f"Gamer_Girl;gamergirl@example.com;{bcrypt('gg')};bcrypt;203.0.113.99;2001-02-03",  # 3
    f"jdoe;john.doe@example.com;{bcrypt('jdoe')};bcrypt;203.0.113.50;1985-06-15",  # 4
    f"pixelpete;user@example.com;{bcrypt('pp')};bcrypt;192.0.2.10;",               # 5
    f"jmueller;MÜLLER@BÜCHER.DE;{bcrypt('jm')};bcrypt;192.0.2.20;1970-01-31",      # 6
    f";;{bcrypt('nobody')};bcrypt;192.0.2.11;",                                     # 7 no identifier at all
    f"shortrow;short@example.com;{bcrypt('short')}",                                # 8 wrong field count (3 of 6)
    f"{LONG_USER};;{bcrypt('long')};bcrypt;192.0.2.12;",                            # 9 over-long username, no e-mail
    f";@domain.com;{bcrypt('dom')};bcrypt;192.0.2.13;",                             # 10 invalid email, no username
    f"\"quoted\"tail;tail@example.com;{bcrypt('tail')};bcrypt;192.0.2.14;",         # 11 broken quoting (text after closing quote)
    f"alice;;{bcrypt('alice')};bcrypt;192.0.2.15;1990-05-04",                       # 12 username only
])

# oldshop-users.jsonl: MD5 hashes, LF.
write(f"{OUT}/oldshop-users.jsonl", [
    '{"email": "user@example.com", "name": "Alex Example", "password_hash": "' + md5('password123') + '", "password_type": "md5"}',  # 1
    '{"email": "bob.smith@example.com", "full_name": "Bob Smith", "hash": "' + md5('letmein') + '", "password_type": "md5", "phone": 15550199}',  # 2
    '{"email": "old.timer@example.org", "hash": "' + md5('geocities') + '", "password_type": "md5", "dob": null}',  # 3
    '{"username": "retro_gamer", "hash": "' + md5('nintendo64') + '", "password_type": "md5"}',  # 4 username only
    '{"email": "unquoted@example.com", password: "x"}',                                         # 5 JSON syntax error
    '{"email": "", "username": "", "hash": "' + md5('empty') + '", "password_type": "md5"}',     # 6 no identifier (empty strings)
])

# oldshop-cracked.txt: combo list of cracked passwords, LF.
write(f"{OUT}/oldshop-cracked.txt", [
    "user@example.com:password123",             # 1
    "Bob.Smith@Example.com:letmein",            # 2
    "darkstar99:hunter2",                       # 3 username
    "shopper+deals@gmail.com:deals:2012:summer", # 4 password with ':'
    "retro_gamer:nintendo64",                   # 5 username
    "noseparator@example.com password",         # 6 no ':'
    "a@@b.com:pw",                              # 7 invalid email
    b"caf\xe9@example.com:latin1",              # 8 invalid UTF-8 (Latin-1 byte)
    "@example.com:nolocal",                     # 9 invalid email (empty local part)
    "",                                         # 10 blank
    "Bob.Smith@Example.com:letmein",            # 11 exact duplicate of 2
    "ALICE@EXAMPLE.NET:Wonderland",             # 12
    f"{LONG_USER}:toolong",                     # 13 over-long username
])

with open(f"{OUT}/catalog.json", "w") as f:
    f.write('''{"sources": [
  {"id": 1, "name": "examplecorp-2024", "title": "ExampleCorp Data Breach 2024",
   "date": "2024-03-15", "description": "Database exposed via misconfigured server",
   "domain": "examplecorp.example", "added_date": "2024-04-02",
   "logo_path": "https://examplecorp.example/logo.png",
   "files": [{"path": "examplecorp.csv", "format": "csv"}]},
  {"id": 2, "name": "infostealer-2025", "title": "Infostealer Logs 2025",
   "date": "2025-01-20", "description": "Browser credentials harvested by infostealer malware",
   "publish_date": "2025-02-01", "malware": true, "stealer_log": true,
   "files": [{"path": "stealer-logs.jsonl", "format": "jsonl"}]},
  {"id": 3, "name": "gamerforum-2019", "title": "GamerForum Breach 2019",
   "date": "2019-07-04", "description": "Forum user table with bcrypt hashes leaked after an SQL injection",
   "domain": "gamerforum.example", "added_date": "2019-08-01", "modified_date": "2019-09-15",
   "files": [{"path": "gamerforum.csv", "format": "csv", "delimiter": ";"}]},
  {"id": 4, "name": "oldshop-2012", "title": "OldShop Breach 2012",
   "date": "2012-11-02", "description": "Old web shop: MD5 hashes and a list of cracked passwords; all passwords were reset in 2013",
   "severity": "medium", "domain": "oldshop.example", "verified": false,
   "files": [{"path": "oldshop-users.jsonl", "format": "jsonl"},
             {"path": "oldshop-cracked.txt"}]}
]}
''')

os.makedirs(GZ, exist_ok=True)
with open(f"{GZ}/examplecorp.csv.gz", "wb") as out:
    subprocess.run(["gzip", "-9", "-n", "-c", f"{OUT}/examplecorp.csv"], stdout=out, check=True)
with open(f"{GZ}/catalog.json", "w") as f:
    f.write('''{"sources": [
  {"id": 1, "name": "examplecorp-2024", "title": "ExampleCorp Data Breach 2024",
   "date": "2024-03-15", "description": "Database exposed via misconfigured server",
   "files": [{"path": "examplecorp.csv.gz", "format": "csv"}]}
]}
''')
