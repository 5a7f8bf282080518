#!/bin/bash
# Reproduces bench/RESULTS.md's "Pretraining demo" from the repository root (after a build):
# the built-in corpus with the quickstart's 2000-piece vocabulary, 4000 steps of span
# corruption and 800 of LM adaptation of t5-tiny (about 4 minutes on 2 idle cores), the plots.
set -euo pipefail
B=build/bin/softprompt
OUT=${OUT:-runs/pretrain_demo}
mkdir -p "$OUT"
$B data build-corpus --out "$OUT/corpus" --vocab-size 2000 > "$OUT/corpus.json"
$B pretrain --data "$OUT/corpus" --out "$OUT/pt" --preset t5-tiny --steps 4000 \
  --batch-size 32 --inputs-length 64 --schedule constant --lr 0.01 --eval-every 250 \
  --eval-examples 256 --log-every 50 --progress plain --seed 0 > "$OUT/pt.json"
$B lm-adapt --data "$OUT/corpus" --model "$OUT/pt/model" --out "$OUT/lm" --steps 800 \
  --batch-size 32 --inputs-length 64 --schedule constant --lr 0.01 --eval-every 100 \
  --eval-examples 256 --log-every 50 --progress plain --seed 0 > "$OUT/lm.json"
# One curves file per stage (validation from the eval lines and the loss before training,
# train loss, the unigram baseline as a flat line), then the SVG plots.
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
for name, d in [("span_corruption", "pt"), ("prefix_lm", "lm")]:
    summ = json.load(open(f"{out}/{d}/pretrain.json"))
    rows, last = [{"step": 0, "validation": summ["initial_validation_loss"]}], 0
    for line in open(f"{out}/{d}/metrics.jsonl"):
        j = json.loads(line)
        if "eval" in j:
            rows.append({"step": j["step"], "validation": j["eval"]["loss"]})
        elif "loss" in j:
            rows.append({"step": j["step"], "train": j["loss"]})
            last = max(last, j["step"])
    rows += [{"step": s, "unigram": summ["unigram_baseline"]} for s in (0, last)]
    with open(f"{out}/{name}_curves.jsonl", "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
PY
$B plot --metrics "$OUT/span_corruption_curves.jsonl" --x step --y validation,train,unigram \
  --out "$OUT/span_corruption.svg" --y-label cross-entropy --markers \
  --title "t5-tiny span corruption on the WordNet corpus (nats per target token)"
$B plot --metrics "$OUT/prefix_lm_curves.jsonl" --x step --y validation,train,unigram \
  --out "$OUT/prefix_lm.svg" --y-label cross-entropy --markers \
  --title "LM adaptation (prefix LM) of the span-corruption checkpoint"
