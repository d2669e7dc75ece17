#!/usr/bin/python3
"""gen_metrics_ref.py - reference values for lathe's BLEU and ROUGE-L tests.

An independent re-implementation of the documented algorithms in Python with the `re`
module, written from sacrebleu 2.x's source description (Tokenizer13a + TokenizerRegexp,
BLEU corpus statistics, closest reference length, brevity penalty, "exp" smoothing) and
rouge-score's tokenizer and LCS. It also prints NLTK's corpus_bleu on the same tokens for
comparison (python3-nltk from Debian). NLTK differs: it has no smoothing by default (a
zero n-gram precision gives 0 or a warning), and its method3 ("NIST geometric sequence
smoothing") is the closest to sacrebleu's "exp", so the two are printed side by side but
only this script's own values are written to the fixture. nltk_comparison.txt holds the
last run's side-by-side numbers: they agree on the sacrebleu README example (48.5308) and
wherever every n-gram order has a match, and differ where an order has none or a
hypothesis is empty (NLTK 3.8 smooths and counts those cases its own way).

usage: /usr/bin/python3 gen_metrics_ref.py > metrics_ref.json
"""
import json
import math
import re
import sys
from collections import Counter

_RE = [
    (re.compile(r'([\{-\~\[-\` -\&\(-\+\:-\@\/])'), r' \1 '),
    (re.compile(r'([^0-9])([\.,])'), r'\1 \2 '),
    (re.compile(r'([\.,])([^0-9])'), r' \1 \2'),
    (re.compile(r'([0-9])(-)'), r'\1 \2 '),
]


def tok13a(line):
    line = line.rstrip()
    line = line.replace('<skipped>', '')
    line = line.replace('-\n', '')
    line = line.replace('\n', ' ')
    if '&' in line:
        line = line.replace('&quot;', '"').replace('&amp;', '&')
        line = line.replace('&lt;', '<').replace('&gt;', '>')
    line = f' {line} '
    for r, repl in _RE:
        line = r.sub(repl, line)
    return ' '.join(line.split())


def ngrams(words, n):
    return Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


def stats(hyps, ref_streams):
    correct, total = [0] * 4, [0] * 4
    sys_len = ref_len = 0
    for i, h in enumerate(hyps):
        hw = tok13a(h).split()
        rws = [tok13a(s[i]).split() for s in ref_streams]
        closest, best = None, None
        for rw in rws:
            d = abs(len(hw) - len(rw))
            if best is None or d < best or (d == best and len(rw) < closest):
                best, closest = d, len(rw)
        sys_len += len(hw)
        ref_len += closest
        for n in range(1, 5):
            hc = ngrams(hw, n)
            rmax = Counter()
            for rw in rws:
                for g, c in ngrams(rw, n).items():
                    rmax[g] = max(rmax[g], c)
            correct[n - 1] += sum(min(c, rmax[g]) for g, c in hc.items())
            total[n - 1] += max(0, len(hw) - n + 1)
    return correct, total, sys_len, ref_len


def score(correct, total, sys_len, ref_len, effective_order=False):
    p = [0.0] * 4
    smooth, eff = 1.0, 4
    if sys_len == 0:
        return 0.0, p, 0.0
    for n in range(1, 5):
        if total[n - 1] == 0:
            break
        if effective_order:
            eff = n
        if correct[n - 1] == 0:
            smooth *= 2
            p[n - 1] = 100.0 / (smooth * total[n - 1])
        else:
            p[n - 1] = 100.0 * correct[n - 1] / total[n - 1]
    bp = 1.0 if sys_len >= ref_len else math.exp(1 - ref_len / sys_len)
    logs = [math.log(x) if x > 0 else -9999999999 for x in p[:eff]]
    return bp * math.exp(sum(logs) / eff), p, bp


def rouge_tok(s):
    s = re.sub(r'[^a-z0-9]+', ' ', s.lower())
    return [t for t in re.split(r'\s+', s) if re.match(r'^[a-z0-9]+$', t)]


def rouge_l(pred, ref):
    a, b = rouge_tok(pred), rouge_tok(ref)
    if not a or not b:
        return 0.0, 0.0, 0.0
    t = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            t[i][j] = t[i - 1][j - 1] + 1 if a[i - 1] == b[j - 1] else max(t[i - 1][j], t[i][j - 1])
    l = t[len(a)][len(b)]
    p, r = l / len(a), l / len(b)
    return p, r, (2 * p * r / (p + r) if p + r > 0 else 0.0)


CASES = [
    ("sacrebleu README",
     ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."],
     [["The dog bit the man.", "It was not unexpected.", "The man bit him first."],
      ["The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."]]),
    ("single reference, short hypothesis",
     ["the cat sat", "a quick brown fox"],
     [["the cat sat on the mat", "the quick brown fox jumps"]]),
    ("no 4-gram matches (exp smoothing)",
     ["one two three four five", "alpha beta"],
     [["one two three x five", "alpha beta gamma"]]),
    ("numbers, dashes, entities, punctuation",
     ["Pay $3.50, not 1,000 - it's 2-3 days &amp; (maybe) more!",
      "e.g. U.S.A. costs 5.00/kg; x=y<z>w"],
     [["Pay $3.50 , not 1,000 - it is 2-3 days & maybe more !",
       "e.g. USA costs 5.00 per kg ; x = y < z > w"]]),
    ("empty hypothesis",
     ["", "hello world"],
     [["something here", "hello world"]]),
    ("unicode and trailing whitespace",
     ["Grüße aus Köln — 東京 tower.\n", "naïve café  \t"],
     [["Grüße aus Köln — 東京 tower .", "naive café"]]),
]

TOK_CASES = [
    "The dog bit the man.", "It wasn't surprising.", "Pay $3.50, not 1,000 - it's 2-3 days",
    "a..b,,c", "x.y 1.2 3,4 .5 ,6 a. b, 7-8 a-b 9-", "&quot;hi&quot; &amp; &lt;b&gt;",
    "line one-\nline two\nthree", "<skipped> word", "[brackets] {braces} `tick` ~tilde^ _u_ \\",
    "trailing space   ", "", "Grüße, Köln. 東京。", "@user #tag 100% *bold* +1 =2 ?!",
]

ROUGE_CASES = [
    ("police killed the gunman", "the gunman was shot dead by police"),
    ("The cat sat on the mat.", "the cat was sitting on a mat"),
    ("A-B_C d!e", "a b c D e"),
    ("", "nothing"),
    ("Same words, same ORDER", "same words same order"),
    ("Grüße aus Köln", "grusse aus koln"),
]


def main():
    out = {"bleu": [], "tokenize_13a": [], "rouge_l": []}
    for name, hyps, refs in CASES:
        c, t, sl, rl = stats(hyps, refs)
        s, p, bp = score(c, t, sl, rl)
        sent = []
        for i, h in enumerate(hyps):
            ci, ti, si, ri = stats([h], [[r[i]] for r in refs])
            sent.append(score(ci, ti, si, ri, effective_order=True)[0])
        out["bleu"].append({"name": name, "hyps": hyps, "refs": refs, "score": s,
                            "precisions": p, "bp": bp, "sys_len": sl, "ref_len": rl,
                            "correct": c, "total": t, "sentence": sent})
        try:
            from nltk.translate.bleu_score import corpus_bleu, SmoothingFunction
            lr = [[tok13a(r[i]).split() for r in refs] for i in range(len(hyps))]
            lh = [tok13a(h).split() for h in hyps]
            nl = 100 * corpus_bleu(lr, lh, smoothing_function=SmoothingFunction().method3)
            print(f"{name}: this script {s:.4f}, nltk corpus_bleu (method3) {nl:.4f}",
                  file=sys.stderr)
        except Exception as e:  # nltk absent or refusing an empty corpus
            print(f"{name}: this script {s:.4f}, nltk: {e}", file=sys.stderr)
    for t in TOK_CASES:
        out["tokenize_13a"].append({"in": t, "out": tok13a(t)})
    for p, r in ROUGE_CASES:
        pr, rc, f = rouge_l(p, r)
        out["rouge_l"].append({"pred": p, "ref": r, "p": pr, "r": rc, "f": f})
    json.dump(out, sys.stdout, indent=1, ensure_ascii=False)
    print()


if __name__ == "__main__":
    main()
