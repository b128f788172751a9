#!/usr/bin/env bash
# Writes seed corpora for the dump-parser, normalize, build_and_query, store_block and changes_file targets into
# fuzz/corpus/<target>/ (not committed: the fuzzer grows them). Run from anywhere.
set -euo pipefail
cd "$(dirname "$0")"
sample=../testdata/sample
seed() { mkdir -p "corpus/$1"; printf '%b' "$3" > "corpus/$1/$2"; }

for t in parse_csv parse_jsonl parse_combo; do
  mkdir -p "corpus/$t"
  for f in "$sample"/*; do
    case "$f" in *.csv|*.jsonl|*.txt) head -c 4096 "$f" > "corpus/$t/sample-$(basename "$f")" ;; esac
  done
  seed "$t" bom-crlf '\xef\xbb\xbfemail,password\r\na@b.c,pw\r\n\r\n'
  seed "$t" utf16 '\xff\xfee\x00m\x00'
  seed "$t" nul-and-bad-utf8 'email,user\n\x00@x.y,\xff\xfe\nb\xc3@c.d,\x00\n'
  seed "$t" mixed-line-ends 'a@b.c:1\rb@c.d:2\r\nc@d.e:3\n\n'
done
seed parse_csv quoted 'e-mail,login,pass\n"a\n@b.c","x""y",\n"open,"q\n'
seed parse_csv unclosed 'email,pw\n"never closed,x\nmore\n\n'
seed parse_jsonl nested '{"email":"a@b.c","x":[[[[{"y":[[]]}]]]]}\n{"mail":1e400}\n{"user":"\\u0000"}\n'
seed parse_jsonl dup '{"email":"a@b.c","mail":"d@e.f"}\n{"email":"x@y.z","email":null}\n'
seed parse_combo colons 'a@b.c:p:w\nbob:\n:pw\nnothing\n'

mkdir -p corpus/normalize
for s in 'User@Bücher.DE' ' a.b+tag@example.com ' 'İstanbul@x.tr' 'ΣΑΣ@x.gr' 'x@ｅｘａｍｐｌｅ.com' \
         'a@xn--bcher-kva.de' 'u@\xc2\xad' 'ǅemo' 'straße' 'a\tb' 'x@y\xef\xbc\xa0z' 'a@b.c.'; do
  printf '%b' "$s" > "corpus/normalize/$(printf '%s' "$s" | cksum | cut -d' ' -f1)"
done

mkdir -p corpus/build_and_query
for i in 1 2 3 4 5 6 7 8; do head -c $((64 * i)) /dev/urandom > "corpus/build_and_query/random-$i"; done
# store_block: sample blocks written by the record store writer, in every input mode.
BREACHDEX_SEED_DIR="$(pwd)/corpus/store_block" cargo test --quiet --manifest-path ../Cargo.toml \
  --test fuzz_regressions -- --ignored --exact write_store_block_seeds
# changes_file: change feed files written by the writer (plain and hashed, one and several blocks).
BREACHDEX_SEED_DIR="$(pwd)/corpus/changes_file" cargo test --quiet --manifest-path ../Cargo.toml \
  --test fuzz_regressions -- --ignored --exact write_changes_file_seeds

echo "seeds written under $(pwd)/corpus"
