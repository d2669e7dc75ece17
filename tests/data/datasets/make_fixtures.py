#!/usr/bin/env python3
"""Regenerates the small dataset fixtures used by tests/pipeline/test_data_*.c and
tests/cli/data_*.sh. Run from this folder: python3 make_fixtures.py

Each file mixes good rows with one bad row of each kind the importer must report; the
expected reasons are listed in tests/pipeline/test_data_import.c next to each file name.
"""
import json

def jl(rows):
    return "".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows)

alpaca = [
    {"instruction": "Give three tips for staying healthy.", "input": "",
     "output": "1. Eat a balanced diet.\n2. Exercise regularly.\n3. Sleep seven to nine hours."},
    {"instruction": "Translate to French.", "input": "Good morning, how are you?",
     "output": "Bonjour, comment allez-vous ?"},
    '{"instruction": "Name the capital of Japan.", "output": "Tokyo"',          # 3 malformed
    {"instruction": "Summarize the text.", "input": "The quick brown fox."},    # 4 missing output
    {"instruction": "   ", "output": "Nothing to do."},                          # 5 empty instruction
    {"instruction": "Add 2 and 3.", "output": 5},                                # 6 wrong type
    {"instruction": "Ring the bell", "output": "Done\u0007 and \u001b[31mred\u001b[0m"},  # 7 warning
    ["not", "an", "object"],                                                     # 8 not an object
    {"instruction": "Write a haiku about autumn.", "input": "",
     "output": "Crisp leaves drift and fall\nthe maple hums its last song\nsoft rain on the roof"},
    {"instruction": "Résumé en une phrase : l'été est chaud.", "output": "L'été est la saison chaude."},
]
open("alpaca_mixed.jsonl", "w").write(jl(alpaca))

sharegpt = [
    {"conversations": [{"from": "human", "value": "What is 2+2?"}, {"from": "gpt", "value": "4"}]},
    {"conversations": [{"from": "system", "value": "You are terse."},
                       {"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello."},
                       {"from": "human", "value": "Bye"}, {"from": "gpt", "value": "Goodbye."}]},
    {"conversations": [{"from": "human", "value": "Hello"}, {"from": "robot", "value": "Beep"}]},   # 3 unknown role
    {"conversations": [{"from": "human", "value": "One"}, {"from": "human", "value": "Two"},
                       {"from": "gpt", "value": "Three"}]},                                       # 4 two user turns
    {"conversations": [{"from": "human", "value": "Anyone there?"}]},                             # 5 no reply
    {"conversations": [{"from": "gpt", "value": "I speak first."}, {"from": "human", "value": "Ok"}]},  # 6 starts with assistant
    {"conversations": [{"from": "human", "value": "Empty answer?"}, {"from": "gpt", "value": ""}]},      # 7 empty content
    {"conversations": "not a list"},                                                              # 8 wrong type
    {"conversations": [{"from": "human", "value": "Explain recursion briefly."},
                       {"from": "gpt", "value": "A function that calls itself on a smaller input until a base case."}]},
]
open("sharegpt_mixed.jsonl", "w").write(jl(sharegpt))

messages = [
    {"messages": [{"role": "system", "content": "You are a helpful assistant."},
                  {"role": "user", "content": "What is the boiling point of water?"},
                  {"role": "assistant", "content": "100 degrees Celsius at sea level."}]},
    {"messages": [{"role": "user", "content": "Tell me a joke."},
                  {"role": "assistant", "content": "Why did the scarecrow win an award? He was outstanding in his field."}]},
    {"messages": [{"role": "user", "content": "Hi"}, {"role": "wizard", "content": "Poof"}]},
    {"messages": [{"role": "user", "content": "Question"}, {"role": "assistant", "content": 42}]},
    {"messages": [{"role": "user", "content": [{"type": "text", "text": "Describe a cat."}]},
                  {"role": "assistant", "content": "A small furry animal that purrs."}]},
]
# a JSON array, one element per line group, pretty enough to have line numbers that matter
with open("messages_array.json", "w") as f:
    f.write("[\n")
    f.write(",\n".join("  " + json.dumps(m) for m in messages))
    f.write("\n]\n")

# the same array cut off in the middle of the fourth element
text = open("messages_array.json").read()
cut = text.index('"content": 42')
open("messages_cut.json", "w").write(text[:cut])

preference = [
    {"prompt": "Write a greeting.", "chosen": "Hello! How can I help you today?", "rejected": "what"},
    {"prompt": "Is the earth flat?", "chosen": "No, it is an oblate spheroid.", "rejected": "No, it is an oblate spheroid."},
    {"prompt": "Pick a color.", "chosen": "Blue."},
    {"prompt": [{"role": "user", "content": "Say hi politely."}],
     "chosen": [{"role": "assistant", "content": "Hello, nice to meet you."}],
     "rejected": [{"role": "assistant", "content": "yo"}]},
]
open("preference_mixed.jsonl", "w").write(jl(preference))

texts = [{"text": "The mitochondria is the powerhouse of the cell."},
         {"text": "Photosynthesis converts light energy into chemical energy."},
         {"text": ""},
         {"body": "wrong field name"}]
open("text_mixed.jsonl", "w").write(jl(texts))

open("qa.csv", "w", newline="").write(
    'instruction,output\r\n'
    '"What is 1+1?","2"\r\n'
    '"Write two lines.","line one\nline two"\r\n'
    '"Quote ""this""","He said ""hi""."\r\n'
    'only one field\r\n'
    'Plain question,Plain answer\r\n')

open("unbalanced.csv", "w").write(
    'instruction,output\n'
    'What is red?,A color\n'
    'Is the sky blue?,Yes\n'
    '"Broken quote,never closed\n'
    'more text\n')

# classification-like data for inspect's label balance
rows = []
for i in range(60):
    label = "positive" if i % 6 else "negative"
    rows.append({"instruction": f"Classify the sentiment of review number {i}.",
                 "input": f"Review {i}: " + ("I loved it" if label == "positive" else "I hated it"),
                 "output": label})
open("sentiment.jsonl", "w").write(jl(rows))
