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
      DIR/people.jsonl        the demo task (alpaca rows): a sentence about a person and their
                              job -> {"field":"health"} (the job's field of work, one of six),
                              with planted exact and near duplicates and malformed rows (counts
                              in PLANTED below)
      DIR/people_prefs.jsonl  preference pairs for DPO: chosen = the right record, rejected =
                              a plausible wrong one
      DIR/people_text.jsonl   raw text ({"text": ...}) for continued pretraining

The corpus teaches the domain (people, ages, cities, countries, jobs, numbers, JSON syntax,
and the chat format) and the skill the task needs, copying words from earlier in the text
(facts restated, key: value cards, lists read back, JSON rows of purchases and trains), but
never the task itself: jobs are named but never their field of work, and no sentence about a
person is followed by a JSON record of it, so the base model has to learn the mapping from the
instruction dataset.
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
# The demo task: the field of work a person's job belongs to. The label is signalled by a
# word of the sentence (the job), not by a number or by copying: within reach of LoRA on a model
# this small, out of reach of the base model, which never saw a field named.
FIELDS = {
    "food": ["baker", "chef", "farmer", "grocer", "gardener"],
    "health": ["nurse", "doctor", "dentist"],
    "arts": ["painter", "writer", "singer", "tailor"],
    "trades": ["plumber", "carpenter", "engineer"],
    "transport": ["pilot", "driver"],
    "office": ["teacher", "lawyer", "librarian"],
}
FIELD_OF = {j: f for f, jobs in FIELDS.items() for j in jobs}
JOB_TEMPLATES = [
    "{n} is {a} and works as {aj} in {c}.",
    "{n}, {aj} from {c}, is {a}.",
    "In {c}, {n} works as {aj}.",
    "{n} is {aj} and lives in {c}.",
    "At {a}, {n} is {aj} in {c}.",
    "{n} from {c} works as {aj}.",
    "The {j} {n} lives in {c}.",
    "{n}, {a}, has been {aj} in {c} for years.",
]
INSTRUCTION = ("Give the field of work of the person as JSON: food, health, arts, trades, "
               "transport or office.")

# What the demo test asserts (tests/cli/demo.sh): keep in step with plant() below.
PLANTED = {"unique": 420, "exact": 12, "near": 8, "malformed": 5}


def pron(n):
    return "She" if n in FEMALE else "He"


def with_article(j):
    return ("an " if j[0] in "aeiou" else "a ") + j


def job_sentence(r, n, a, c, j):
    return r.choice(JOB_TEMPLATES).format(n=n, a=a, c=c, j=j, aj=with_article(j))


def record(j):
    """The demo task's answer. (Earlier versions asked for an age group, a class read off a
    number, and for {"name","city"} copied out of the sentence: a model this small, pretrained
    for minutes, learned the format and the commonest answer, neither the comparison nor the
    copy. A field named by a word of the sentence is learned.)"""
    return json.dumps({"field": FIELD_OF[j]}, separators=(",", ":"))


def person(r):
    return r.choice(NAMES), r.randint(18, 89), r.choice(CITIES)


def paragraph(r):
    """A few sentences of prose about people, places and numbers."""
    kind = r.randrange(13)
    n, a, (c, country) = person(r)
    p = pron(n)
    if kind == 0:
        j = r.choice(JOBS)
        s = [r.choice([job_sentence(r, n, a, c, j),
                       r.choice(TASK_TEMPLATES).format(n=n, a=a, c=c)
                       + f" {p} works as {with_article(j)}."]),
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
    elif kind in (6, 7):
        # a fact, then the same fact again in other words: reading the context pays
        fact = r.choice(TASK_TEMPLATES).format(n=n, a=a, c=c)
        s = [fact, r.choice([f"So {n} is {a}, and {p.lower()} lives in {c}.",
                             f"In short: {n}, {a}, {c}.",
                             f"That is {n}, aged {a}, from {c}.",
                             f"Remember: {n} lives in {c} and is {a}.",
                             f"{c} is where {n} lives.",
                             f"The person is {n} and the place is {c}."])]
    elif kind in (8, 9):
        # a fact, then a card of key: value lines restating it (fields in any order)
        fact = r.choice(TASK_TEMPLATES).format(n=n, a=a, c=c)
        fields = [("Name", n), ("City", c), ("Age", str(a))]
        r.shuffle(fields)
        fields = fields[:r.randint(1, 3)]
        style = r.randrange(3)
        if style == 0:
            card = " ".join(f"{k}: {v}." for k, v in fields)
        elif style == 1:
            card = "; ".join(f"{k.lower()} = {v}" for k, v in fields) + "."
        else:
            card = "(" + ", ".join(v for _, v in fields) + ")."
        s = [fact, r.choice(["Card:", "On file:", "Noted:", "Summary:"]), card]
    elif kind == 10:
        # a list, then the same list read back: copying a span from earlier in the text
        pool = r.choice([NAMES, [x for x, _ in CITIES], JOBS, THINGS])
        items = r.sample(pool, r.randint(2, 5))
        s = [f"{r.choice(['The list', 'The first list', 'On the board', 'In the notes'])}: "
             f"{', '.join(items)}.",
             f"{r.choice(['Read back', 'Again', 'Once more', 'Copied'])}: {', '.join(items)}."]
    elif kind == 11:
        # two people, then one of them picked out again: which words belong together
        m, b, (d, _) = person(r)
        first = r.random() < 0.5
        s = [r.choice(TASK_TEMPLATES).format(n=n, a=a, c=c),
             r.choice(TASK_TEMPLATES).format(n=m, a=b, c=d),
             f"The {'first' if first else 'second'} one is {n if first else m}, "
             f"from {c if first else d}."]
    elif kind == 12:
        # a sentence, then a record of it in JSON with other keys than the demo task's
        x, t = r.randint(1, 30), r.choice(THINGS)
        d, h = r.choice(CITIES)[0], r.randint(2, 19)
        s = r.choice([
            [f"{n} bought {x} {t} in {c}.", "Logged as",
             json.dumps({"item": t, "count": x, "town": c}) + "."],
            [f"The train from {c} to {d} takes {h} hours.", "As a row:",
             json.dumps({"from": c, "to": d, "hours": h}) + "."],
        ])
    else:
        s = [f"{n} was born in {c}.", f"{p} is {a} years old.",
             f"{p} moved to {r.choice(CITIES)[0]} at {r.randint(18, a) if a > 18 else 18}.",
             f"Today {p.lower()} is {with_article(r.choice(JOBS))}."]
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
        ("What is the job?", f"{with_article(r.choice(JOBS)).capitalize()}."),
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
    """People with distinct (name, city) pairs and a job, each in one template."""
    seen, rows = set(), []
    while len(rows) < count:
        n, a, (c, _) = person(r)
        if (n, c) in seen:
            continue
        seen.add((n, c))
        j = r.choice(JOBS)
        rows.append((job_sentence(r, n, a, c, j), record(j), n, a, c, j))
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
        '{"instruction": "' + INSTRUCTION + '", "input": "Eve is 41 and works as a nurse in Oslo.", ',
        json.dumps({"instruction": INSTRUCTION, "input": "Ben is a pilot and lives in Lima."}),
        json.dumps({"instruction": "", "input": "", "output": ""}),
        json.dumps({"instruction": INSTRUCTION, "input": "Ada is a chef.", "output": 50}),
        "name=Kim job=baker city=Seoul",
    ]
    for x in extra + bad:   # spread through the file, deterministically
        lines.insert(r.randrange(len(lines) + 1), x)
    return lines


def wrong_record(r, n, a, c, j):
    """A plausible wrong answer: another field, the job instead of its field, another key,
    or prose instead of JSON."""
    f = FIELD_OF[j]
    return r.choice([
        json.dumps({"field": r.choice([x for x in FIELDS if x != f])}, separators=(",", ":")),
        json.dumps({"field": j}, separators=(",", ":")),
        json.dumps({"job": f}, separators=(",", ":")),
        f"{n} works as {with_article(j)} in {c}.",
    ])


def examples(out, seed):
    r = random.Random(seed * 7919 + 3)
    rows = task_rows(r, PLANTED["unique"] + 200)
    write_lines(os.path.join(out, "people.jsonl"), plant(r, rows[:PLANTED["unique"]]))
    prefs = []
    for s, o, n, a, c, j in rows[PLANTED["unique"]:]:
        prefs.append(json.dumps({"prompt": INSTRUCTION + "\n\n" + s, "chosen": o,
                                 "rejected": wrong_record(r, n, a, c, j)}))
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
