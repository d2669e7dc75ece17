#!/usr/bin/env python3
"""gen_corpus.py - the text lathe's bundled model and examples are made of, from a seed.

Everything here is generated (no scraped text), so the bundled model and datasets can ship
under the project's licence. The same seed gives the same bytes on every machine (Python's
random.Random with an integer seed is stable across versions for the calls used here).

  scripts/gen_corpus.py corpus   --out DIR [--seed 12] [--paragraphs N]
      DIR/corpus.txt    plain paragraphs, for `lathe tokenizer train`
      DIR/corpus.jsonl  the same paragraphs plus ChatML question/answer chats as
                        {"text": ...} rows, for pretraining (`objective: pretrain`)
  scripts/gen_corpus.py examples --out DIR [--seed 12]
      DIR/people.jsonl        the demo task (alpaca rows): a sentence about a person ->
                              {"age_group":"young"|"middle"|"senior"}, with planted exact and near
                              duplicates and malformed rows (counts in PLANTED below)
      DIR/people_prefs.jsonl  preference pairs for DPO: chosen = the right record, rejected =
                              a plausible wrong one
      DIR/people_text.jsonl   raw text ({"text": ...}) for continued pretraining

The corpus teaches the domain (people, ages, cities, countries, jobs, numbers, JSON syntax,
and the chat format) but never the task itself: no sentence is followed by its record, so
the base model has to learn the mapping from the instruction dataset.
"""
import argparse
import json
import os
import random
import sys

NAMES = """Alice Bob Carol David Emma Frank Grace Henry Irene Jack Karen Leo Maria Nina
Oscar Paula Quentin Rosa Sam Tina Umar Vera Walter Xenia Yusuf Zoe Aaron Bella Carlos Diana
Ethan Fiona George Hannah Ivan Julia Kevin Laura Mohamed Nora Omar Priya Rafael Sara Tom
Ursula Victor Wendy Yara Anton Chloe Daniel Elena Felix Greta Hugo Ines Jonas Lina Marco""".split()
CITIES = [
    ("Paris", "France"), ("Lyon", "France"), ("Berlin", "Germany"), ("Munich", "Germany"),
    ("Hamburg", "Germany"), ("Madrid", "Spain"), ("Seville", "Spain"), ("Rome", "Italy"),
    ("Milan", "Italy"), ("Naples", "Italy"), ("Lisbon", "Portugal"), ("Porto", "Portugal"),
    ("London", "England"), ("Leeds", "England"), ("Dublin", "Ireland"), ("Oslo", "Norway"),
    ("Bergen", "Norway"), ("Stockholm", "Sweden"), ("Helsinki", "Finland"),
    ("Copenhagen", "Denmark"), ("Vienna", "Austria"), ("Prague", "Czechia"),
    ("Warsaw", "Poland"), ("Krakow", "Poland"), ("Athens", "Greece"), ("Cairo", "Egypt"),
    ("Nairobi", "Kenya"), ("Lagos", "Nigeria"), ("Tokyo", "Japan"), ("Osaka", "Japan"),
    ("Seoul", "Korea"), ("Delhi", "India"), ("Mumbai", "India"), ("Lima", "Peru"),
    ("Quito", "Ecuador"), ("Bogota", "Colombia"), ("Toronto", "Canada"),
    ("Montreal", "Canada"), ("Boston", "America"), ("Denver", "America"),
    ("Sydney", "Australia"), ("Perth", "Australia"), ("Auckland", "Zealand"),
]
JOBS = """baker teacher nurse pilot farmer painter doctor lawyer chef driver writer
engineer gardener dentist plumber singer tailor carpenter librarian grocer""".split()
THINGS = """apples pears books letters chairs lamps cups plates coins stamps shirts shoes
boxes bottles candles pencils""".split()
DAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
FEMALE = set("""Alice Carol Emma Grace Irene Karen Maria Nina Paula Rosa Tina Vera Xenia Zoe
Bella Diana Fiona Hannah Julia Laura Nora Priya Sara Ursula Wendy Yara Chloe Elena Greta Ines
Lina""".split())

# Sentences that state a name, an age and a city: the task's inputs (and, one at a time,
# part of the corpus's prose, never next to a record).
TASK_TEMPLATES = [
    "{n} is {a} and lives in {c}.",
    "{n}, {a}, lives in {c}.",
    "{n} lives in {c} and is {a} years old.",
    "At {a}, {n} lives in {c}.",
    "{c} is home to {n}, who is {a}.",
    "{n} is {a} years old and lives in {c}.",
    "Aged {a}, {n} now lives in {c}.",
    "{n} from {c} is {a}.",
]
INSTRUCTION = "Give the age group of the person as JSON: young (under 40), middle or senior (65 and over)."

# What the demo test asserts (tests/cli/demo.sh): keep in step with plant() below.
PLANTED = {"unique": 420, "exact": 12, "near": 8, "malformed": 5}


def pron(n):
    return "She" if n in FEMALE else "He"


def group(a):
    return "young" if a < 40 else ("middle" if a < 65 else "senior")


def record(n, a, c):
    """The demo task's answer. (The first version asked for {"name","age","city"}; a model
    of this size pretrained this briefly does not copy from its context, so no amount of
    LoRA reached an exact match there. A class read off the age is within its reach.)"""
    return json.dumps({"age_group": group(a)}, separators=(",", ":"))


def person(r):
    return r.choice(NAMES), r.randint(18, 89), r.choice(CITIES)


def paragraph(r):
    """A few sentences of prose about people, places and numbers."""
    kind = r.randrange(8)
    n, a, (c, country) = person(r)
    p = pron(n)
    if kind == 0:
        s = [r.choice(TASK_TEMPLATES).format(n=n, a=a, c=c),
             f"{p} works as a {r.choice(JOBS)}.",
             r.choice([f"{c} is a city in {country}.", f"{p} likes {c} very much.",
                       f"Every {r.choice(DAYS)} {p.lower()} walks to the market."])]
    elif kind == 1:
        m, b = r.choice(NAMES), r.randint(18, 89)
        older = n if a > b else m
        s = [f"{n} is {a} and {m} is {b}.", f"{older} is the older one." if a != b
             else "They are the same age.", f"Together they are {a + b} years old."]
    elif kind == 2:
        k = r.randint(2, 40)
        s = [f"{c} is a city in {country}.", f"About {r.randint(2, 90)} hundred thousand "
             f"people live in {c}.", f"The train from {c} to {r.choice(CITIES)[0]} takes "
             f"{r.randint(2, 19)} hours.", f"{n} visited {c} {k} times."]
    elif kind == 3:
        x, y, t = r.randint(1, 30), r.randint(1, 30), r.choice(THINGS)
        s = [f"{n} bought {x} {t} and then {y} more.", f"Now {p.lower()} has {x + y} {t}.",
             f"{p} paid {r.randint(2, 99)} euros on {r.choice(DAYS)}."]
    elif kind == 4:
        # JSON syntax in other shapes than the task's record (spaces, other keys)
        obj = r.choice([
            {"city": c, "country": country},
            {"name": n, "job": r.choice(JOBS)},
            {"city": c, "trains": r.randint(1, 60)},
            {"item": r.choice(THINGS), "count": r.randint(1, 99)},
            {"name": n, "visits": r.randint(1, 40), "country": country},
        ])
        s = [f"The file lists {r.choice(['a place', 'an entry', 'a row', 'an item'])}:",
             json.dumps(obj) + ".", f"It was saved on {r.choice(DAYS)}."]
    elif kind >= 6:
        # a fact, then the same fact again in other words: reading the context pays
        fact = r.choice(TASK_TEMPLATES).format(n=n, a=a, c=c)
        s = [fact, r.choice([f"So {n} is {a}, and {p.lower()} lives in {c}.",
                             f"In short: {n}, {a}, {c}.",
                             f"That is {n}, aged {a}, from {c}.",
                             f"Remember: {n} lives in {c} and is {a}."])]
    else:
        s = [f"{n} was born in {c}.", f"{p} is {a} years old.",
             f"{p} moved to {r.choice(CITIES)[0]} at {r.randint(18, a) if a > 18 else 18}.",
             f"Today {p.lower()} is a {r.choice(JOBS)}."]
    return " ".join(s)


def chat(r):
    """A ChatML question and answer about a stated fact: gives the base model the chat
    format and the habit of reading the user's sentence, but answers in prose."""
    n, a, (c, country) = person(r)
    fact = r.choice(TASK_TEMPLATES).format(n=n, a=a, c=c)
    q, ans = r.choice([
        (f"How old is {n}?", f"{n} is {a} years old."),
        (f"Where does {n} live?", f"{n} lives in {c}."),
        (f"Which country is {c} in?", f"{c} is in {country}."),
        (f"Who lives in {c}?", f"{n} lives in {c}."),
        ("Tell me about this person.", f"This is {n}. {pron(n)} is {a} and lives in {c}."),
        ("Who is it, how old, and where?", f"{n}, {a}, {c}."),
        ("What is the name?", f"{n}."),
        ("What is the age?", f"{a}."),
        ("Which city?", f"{c}."),
    ])
    return (f"<|im_start|>user\n{fact} {q}<|im_end|>\n<|im_start|>assistant\n{ans}<|im_end|>\n")


def write_lines(path, lines):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for line in lines:
            f.write(line + "\n")


def corpus(out, seed, n_paragraphs):
    r = random.Random(seed)
    paras = [paragraph(r) for _ in range(n_paragraphs)]
    chats = [chat(r) for _ in range(n_paragraphs // 2)]
    write_lines(os.path.join(out, "corpus.txt"), paras)
    rows = paras + chats
    random.Random(seed + 1).shuffle(rows)
    write_lines(os.path.join(out, "corpus.jsonl"),
                [json.dumps({"text": t}, ensure_ascii=False) for t in rows])


def task_rows(r, count):
    """Unique (name, city, age) triples, each in one template."""
    seen, rows = set(), []
    while len(rows) < count:
        n, a, (c, _) = person(r)
        if (n, c) in seen:
            continue
        seen.add((n, c))
        rows.append((r.choice(TASK_TEMPLATES).format(n=n, a=a, c=c), record(n, a, c), n, a, c))
    return rows


def plant(r, rows):
    """The instruction dataset with planted problems; returns its JSONL lines."""
    lines = [json.dumps({"instruction": INSTRUCTION, "input": s, "output": o})
             for s, o, *_ in rows]
    dup = r.sample(range(len(rows)), PLANTED["exact"] + PLANTED["near"])
    extra = []
    for i in dup[:PLANTED["exact"]]:   # exact: same text after case and space folding
        s, o = rows[i][0], rows[i][1]
        s = r.choice([s.upper(), s.lower(), "  " + s.replace(" ", "   ")])
        extra.append(json.dumps({"instruction": INSTRUCTION, "input": s, "output": o}))
    for i in dup[PLANTED["exact"]:]:   # near: the same words, other punctuation
        s, o = rows[i][0], rows[i][1]
        s = s.replace(",", "").rstrip(".") + r.choice(["!", " ...", ";"])
        extra.append(json.dumps({"instruction": INSTRUCTION + "!", "input": s, "output": o}))
    bad = [  # malformed: each is one issue with its own reason
        '{"instruction": "' + INSTRUCTION + '", "input": "Eve is 41 and lives in Oslo.", ',
        json.dumps({"instruction": INSTRUCTION, "input": "Ben is 29 and lives in Lima."}),
        json.dumps({"instruction": "", "input": "", "output": ""}),
        json.dumps({"instruction": INSTRUCTION, "input": "Ada is 50.", "output": 50}),
        "name=Kim age=33 city=Seoul",
    ]
    for x in extra + bad:   # spread through the file, deterministically
        lines.insert(r.randrange(len(lines) + 1), x)
    return lines


def wrong_record(r, n, a, c):
    """A plausible wrong answer: another group, the age instead of the group, another key,
    or prose instead of JSON."""
    g = group(a)
    return r.choice([
        json.dumps({"age_group": r.choice([x for x in ("young", "middle", "senior") if x != g])},
                   separators=(",", ":")),
        json.dumps({"age_group": a}, separators=(",", ":")),
        json.dumps({"group": g}, separators=(",", ":")),
        f"{n} is {a} years old and lives in {c}.",
    ])


def examples(out, seed):
    r = random.Random(seed * 7919 + 3)
    rows = task_rows(r, PLANTED["unique"] + 200)
    write_lines(os.path.join(out, "people.jsonl"), plant(r, rows[:PLANTED["unique"]]))
    prefs = []
    for s, o, n, a, c in rows[PLANTED["unique"]:]:
        prefs.append(json.dumps({"prompt": INSTRUCTION + "\n\n" + s, "chosen": o,
                                 "rejected": wrong_record(r, n, a, c)}))
    write_lines(os.path.join(out, "people_prefs.jsonl"), prefs)
    r2 = random.Random(seed * 7919 + 5)
    write_lines(os.path.join(out, "people_text.jsonl"),
                [json.dumps({"text": paragraph(r2) + " " + paragraph(r2)}) for _ in range(300)])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=["corpus", "examples"])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--paragraphs", type=int, default=60000)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    if a.what == "corpus":
        corpus(a.out, a.seed, a.paragraphs)
    else:
        examples(a.out, a.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
