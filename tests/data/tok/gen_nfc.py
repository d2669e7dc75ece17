#!/usr/bin/env python3
"""Writes nfc_ref.jsonl.gz: random strings rich in combining marks, Hangul jamo, precomposed
letters and singletons, each with its NFC from Python's unicodedata (the same Unicode version as
pipeline/tokenizer/unicode_tables.c). Deterministic. Usage: python3 tests/data/tok/gen_nfc.py"""
import gzip
import json
import os
import random
import unicodedata

rng = random.Random(1234)
pools = [
    [chr(c) for c in range(0x41, 0x7B)],                       # ASCII letters
    [chr(c) for c in range(0xC0, 0x250)],                      # Latin-1 and Latin Extended
    [chr(c) for c in range(0x300, 0x370)],                     # combining diacritics
    [chr(c) for c in range(0x1DC0, 0x1E00)],                   # more combining marks
    [chr(c) for c in range(0x1E00, 0x1F00)],                   # Latin Extended Additional
    [chr(c) for c in range(0x1F00, 0x2000)],                   # Greek Extended
    [chr(c) for c in range(0x1100, 0x1200)],                   # Hangul jamo
    [chr(c) for c in range(0xAC00, 0xAC00 + 400)],             # Hangul syllables
    [chr(c) for c in range(0x0900, 0x0980)],                   # Devanagari (nukta compositions)
    [chr(c) for c in range(0x0590, 0x0600)],                   # Hebrew points
    ["\u212b", "\u2126", "\u0344", "\u0f73", "\u2000", "\u1e9b\u0323", "\u0958", "\ufb1d"],
    [chr(c) for c in range(0x3040, 0x3100)],                   # kana (dakuten compositions)
    [chr(c) for c in range(0x1D15E, 0x1D165)] + [chr(c) for c in range(0x1D165, 0x1D16A)],
]
lines = []
for i in range(3000):
    s = "".join(rng.choice(rng.choice(pools)) for _ in range(rng.randint(1, 12)))
    lines.append(json.dumps({"text": s, "nfc": unicodedata.normalize("NFC", s)}))
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nfc_ref.jsonl.gz")
with gzip.GzipFile(out, "wb", mtime=0) as f:
    f.write(("\n".join(lines) + "\n").encode())
print(unicodedata.unidata_version, len(lines), "strings")
