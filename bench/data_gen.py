#!/usr/bin/env python3
"""Writes a synthetic instruction dataset (alpaca JSONL) of about SIZE_MB megabytes for the
data benchmark: varied prompts and responses over a 30000-word vocabulary, with about 4%
exact duplicates (some differing only in case and spacing) and 4% near duplicates (a few
words swapped, deleted or inserted). Deterministic for a seed.

usage: data_gen.py OUT.jsonl [SIZE_MB=100] [SEED=1]
"""
import json
import random
import sys

out = sys.argv[1]
size = int(float(sys.argv[2]) * 1e6) if len(sys.argv) > 2 else 100_000_000
rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 1)

syl = ["ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "de", "va", "zu", "be", "qo", "fi",
       "gu", "ha", "je", "wy", "xo", "ce", "an", "or", "it", "el"]
vocab = ["".join(rng.choice(syl) for _ in range(rng.randint(1, 4))) for _ in range(30000)]
common = ["the", "a", "of", "to", "and", "in", "is", "that", "for", "it", "with", "as"]
verbs = ["Explain", "Describe", "Summarize", "Write", "List", "Compare", "Translate", "Classify"]

def words(n):
    return [rng.choice(common) if rng.random() < 0.3 else rng.choice(vocab) for _ in range(n)]

def sentence_text(n):
    w = words(n)
    return " ".join(w).capitalize() + "."

def row():
    ins = f"{rng.choice(verbs)} {' '.join(words(rng.randint(4, 14)))}."
    inp = sentence_text(rng.randint(0, 40)) if rng.random() < 0.4 else ""
    out = " ".join(sentence_text(rng.randint(8, 25)) for _ in range(rng.randint(2, 9)))
    return {"instruction": ins, "input": inp, "output": out}

def near(r):
    w = r["output"].split(" ")
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(w) - 1)
        k = rng.random()
        if k < 0.34:
            w[i], w[i + 1] = w[i + 1], w[i]
        elif k < 0.67 and len(w) > 20:
            del w[i]
        else:
            w.insert(i, rng.choice(vocab))
    return dict(r, output=" ".join(w))

written = 0
recent = []
with open(out, "w") as f:
    while written < size:
        p = rng.random()
        if recent and p < 0.04:
            r = dict(rng.choice(recent))
            if rng.random() < 0.5:
                r["instruction"] = r["instruction"].upper().replace(" ", "  ")
        elif recent and p < 0.08:
            r = near(rng.choice(recent))
        else:
            r = row()
            recent.append(r)
            if len(recent) > 5000:
                recent.pop(rng.randrange(len(recent)))
        line = json.dumps(r) + "\n"
        f.write(line)
        written += len(line)
