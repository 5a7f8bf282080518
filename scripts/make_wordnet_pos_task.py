#!/usr/bin/env python3
"""A part-of-speech custom task from WordNet's example sentences (bench/RESULTS.md).

Each example is a quoted gloss example that contains one of its synset's lemmas as a whole
word, labelled with the synset's part of speech (noun, verb, adjective, adverb). Lemmas are
split 90/10 into train/validation by a hash, classes are balanced per split (at most 1500
per class in train, 200 in validation). Writes OUT/{train,validation}.jsonl and
OUT/task.yaml for `softprompt tune --task custom --data OUT --set task_config=OUT/task.yaml`.

    scripts/make_wordnet_pos_task.py /tmp/pos [--wordnet /usr/share/wordnet]
"""
import argparse
import hashlib
import json
import os
import random
import re

POS = {"noun": "noun", "verb": "verb", "adj": "adjective", "adv": "adverb"}
TASK_YAML = """name: wordnet_pos
splits:
  train: train.jsonl
  validation: validation.jsonl
input_template: "sentence: {sentence} word: {word}"
label_field: label
verbalizers: {noun: "noun", verb: "verb", adjective: "adjective", adverb: "adverb"}
id_field: idx
"""


def examples(wordnet):
    rows = {label: [] for label in POS.values()}
    for suffix, label in POS.items():
        with open(os.path.join(wordnet, f"data.{suffix}"), encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(" "):
                    continue
                head, _, gloss = line.partition(" | ")
                fields = head.split()
                count = int(fields[3], 16)
                words = [re.sub(r"\(.*\)$", "", fields[4 + 2 * i]).replace("_", " ").lower()
                         for i in range(count)]
                for sentence in re.findall(r'"([^"]+)"', gloss):
                    for word in words:
                        if re.search(r"\b" + re.escape(word) + r"\b", sentence.lower()):
                            rows[label].append({"sentence": sentence.strip(), "word": word,
                                                "label": label})
                            break
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--wordnet", default="/usr/share/wordnet")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    splits = {"train": {}, "validation": {}}
    for label, rows in examples(args.wordnet).items():
        for row in rows:
            bucket = int(hashlib.sha256(row["word"].encode()).hexdigest(), 16) % 10
            split = "validation" if bucket == 0 else "train"
            splits[split].setdefault(label, []).append(row)
    os.makedirs(args.out, exist_ok=True)
    for split, by_label in splits.items():
        cap = 1500 if split == "train" else 200
        per_class = min(cap, min(len(rows) for rows in by_label.values()))
        out = []
        for rows in by_label.values():
            rng.shuffle(rows)
            out += rows[:per_class]
        rng.shuffle(out)
        with open(os.path.join(args.out, f"{split}.jsonl"), "w") as f:
            for i, row in enumerate(out):
                f.write(json.dumps(dict(row, idx=i)) + "\n")
        print(split, len(out))
    with open(os.path.join(args.out, "task.yaml"), "w") as f:
        f.write(TASK_YAML)


if __name__ == "__main__":
    main()
