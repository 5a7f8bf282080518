#!/usr/bin/env python3
"""Checks our Hugging Face PEFT export of a prompt against PEFT itself, and writes the fixture
the C++ test (tests/unit/hf_peft_test.cpp) replays.

1. Builds a tiny random T5 1.1-style model in transformers and saves it (HF format).
2. Writes a prompt in our format (peft_config.json + peft_model.safetensors).
3. Runs `softprompt peft export` on it (our code writes adapter_config.json and
   adapter_model.safetensors).
4. Loads that export with PeftModel.from_pretrained and computes logits on fixed inputs;
   runs `softprompt peft forward` on the same inputs, once with our prompt directory and once
   importing the HF export; all three must agree (max abs difference <= 1e-4).
5. LoRA the same way (verify_lora): a random LoRA in our format exported, loaded by PEFT and
   imported back, and a LoRA made by PEFT's get_peft_model imported by us; same tolerance.
   LN tuning likewise (verify_ln_tuning), PEFT wrapping exactly the norms we tuned.
6. Writes tests/fixtures/peft/prompt_tuning/: model/, prompt/, hf/ (our export), cases.json
   (inputs and PEFT's logits).

Needs: torch, transformers, peft, safetensors (tested with torch 2.15, transformers 5.24,
peft 0.21.2) and a built softprompt binary.
Usage: python3 scripts/verify_peft_export.py --softprompt build/bin/softprompt
           [--out tests/fixtures/peft/prompt_tuning]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import torch
from peft import PeftModel
from safetensors.torch import save_file
from transformers import T5Config, T5ForConditionalGeneration

CONFIG = dict(
    vocab_size=64,
    d_model=16,
    d_kv=4,
    d_ff=32,
    num_layers=2,
    num_decoder_layers=2,
    num_heads=2,
    relative_attention_num_buckets=8,
    relative_attention_max_distance=16,
    dropout_rate=0.0,
    feed_forward_proj="gated-gelu",
    tie_word_embeddings=False,
    pad_token_id=0,
    eos_token_id=1,
    decoder_start_token_id=0,
)
PROMPT_LENGTH = 3
CASES = [
    dict(input_ids=[5, 6, 7, 1], decoder_input_ids=[0, 9, 10]),
    dict(input_ids=[12, 1], decoder_input_ids=[0, 3]),
    dict(input_ids=[20, 21, 22, 23, 24, 25, 1], decoder_input_ids=[0, 30, 31, 32]),
]


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stdout}\n{r.stderr}")
    return r.stdout


def our_logits(softprompt, model_dir, flag, adapter, data):
    out = run([softprompt, "peft", "forward", "--model", model_dir, flag, adapter, "--data", data])
    return [torch.tensor(json.loads(line)["logits"]) for line in out.splitlines() if line]


def peft_case_logits(peft_model):
    with torch.no_grad():
        return [peft_model(input_ids=torch.tensor([c["input_ids"]]),
                           attention_mask=torch.ones(1, len(c["input_ids"]), dtype=torch.long),
                           decoder_input_ids=torch.tensor([c["decoder_input_ids"]])).logits[0].float()
                for c in CASES]


def report(checks):
    """Prints max |ours - PEFT| per case of each (label, ours, PEFT's) check; returns the worst."""
    worst = 0.0
    for label, got, ref in checks:
        for i in range(len(CASES)):
            diff = (got[i] - ref[i]).abs().max().item()
            worst = max(worst, diff)
            print(f"case {i} {label}: max |ours - PEFT| = {diff:.3g}")
    return worst


def verify_lora(softprompt, model_dir, work, data):
    """LoRA both ways: our adapter (q, v, wo) exported and loaded by PEFT, and an adapter
    PEFT made (k, o) imported by us. Returns the worst max abs logit difference."""
    from peft import LoraConfig, get_peft_model
    rank, targets = 2, ["q", "v", "wo"]
    base = T5ForConditionalGeneration.from_pretrained(model_dir).eval()
    ours_dir = os.path.join(work, "lora")
    os.makedirs(ours_dir)
    tensors = {}
    for name, mod in base.named_modules():
        if isinstance(mod, torch.nn.Linear) and name.split(".")[-1] in targets:
            tensors[name + ".lora_A.weight"] = torch.rand(rank, mod.in_features) - 0.5
            tensors[name + ".lora_B.weight"] = torch.rand(mod.out_features, rank) - 0.5
    with open(os.path.join(ours_dir, "peft_config.json"), "w") as f:
        json.dump({"method": "lora", "settings": {"rank": rank, "alpha": 4.0,
                                                  "target_modules": targets}}, f, indent=2)
    save_file(tensors, os.path.join(ours_dir, "peft_model.safetensors"), metadata={"format": "pt"})
    hf_dir = os.path.join(work, "lora_hf")
    run([softprompt, "peft", "export", "--model", model_dir, "--adapter", ours_dir, "--out", hf_dir])
    reference = peft_case_logits(PeftModel.from_pretrained(base, hf_dir).eval())
    checks = [("lora ours", our_logits(softprompt, model_dir, "--adapter", ours_dir, data), reference),
              ("lora imported", our_logits(softprompt, model_dir, "--hf", hf_dir, data), reference)]

    theirs = get_peft_model(T5ForConditionalGeneration.from_pretrained(model_dir).eval(),
                            LoraConfig(task_type="SEQ_2_SEQ_LM", r=3, lora_alpha=5,
                                       target_modules=["k", "o"]))
    for name, p in theirs.named_parameters():
        if "lora_B" in name:  # PEFT inits B = 0: make the adapter matter
            p.data.uniform_(-0.5, 0.5)
    peft_dir = os.path.join(work, "lora_peft")
    theirs.save_pretrained(peft_dir)
    checks.append(("lora from PEFT", our_logits(softprompt, model_dir, "--hf", peft_dir, data),
                   peft_case_logits(theirs.eval())))
    return report(checks)


def verify_ln_tuning(softprompt, model_dir, work, data):
    """LN tuning both ways: our adapter (every norm, random scales) exported and loaded by
    PEFT, and an adapter PEFT made (final norms only) imported by us. Returns the worst max
    abs logit difference."""
    from peft import LNTuningConfig, get_peft_model
    base = T5ForConditionalGeneration.from_pretrained(model_dir).eval()
    ours_dir = os.path.join(work, "ln_tuning")
    os.makedirs(ours_dir)
    tensors = {name + ".weight": 0.5 + torch.rand(mod.weight.shape)
               for name, mod in base.named_modules() if name.endswith("layer_norm")}
    with open(os.path.join(ours_dir, "peft_config.json"), "w") as f:
        json.dump({"method": "ln_tuning", "settings": {}}, f, indent=2)
    save_file(tensors, os.path.join(ours_dir, "peft_model.safetensors"), metadata={"format": "pt"})
    hf_dir = os.path.join(work, "ln_tuning_hf")
    run([softprompt, "peft", "export", "--model", model_dir, "--adapter", ours_dir, "--out", hf_dir])
    loaded = PeftModel.from_pretrained(base, hf_dir).eval()
    wrapped = sum(1 for n, _ in loaded.named_modules() if n.endswith("ln_tuning_layers"))
    assert wrapped == len(tensors), f"PEFT wrapped {wrapped} modules, we tuned {len(tensors)}"
    reference = peft_case_logits(loaded)
    checks = [("ln ours", our_logits(softprompt, model_dir, "--adapter", ours_dir, data), reference),
              ("ln imported", our_logits(softprompt, model_dir, "--hf", hf_dir, data), reference)]

    theirs = get_peft_model(T5ForConditionalGeneration.from_pretrained(model_dir).eval(),
                            LNTuningConfig(task_type="SEQ_2_SEQ_LM",
                                           target_modules=["final_layer_norm"]))
    for name, p in theirs.named_parameters():
        if "ln_tuning_layers" in name:  # a copy of the norm: make the adapter matter
            p.data.uniform_(0.5, 1.5)
    peft_dir = os.path.join(work, "ln_tuning_peft")
    theirs.save_pretrained(peft_dir)
    checks.append(("ln from PEFT", our_logits(softprompt, model_dir, "--hf", peft_dir, data),
                   peft_case_logits(theirs.eval())))
    return report(checks)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--softprompt", required=True)
    ap.add_argument("--out", default="tests/fixtures/peft/prompt_tuning")
    args = ap.parse_args()

    torch.manual_seed(0)
    work = tempfile.mkdtemp(prefix="sp_verify_peft_")
    model_dir = os.path.join(work, "model")
    model = T5ForConditionalGeneration(T5Config(**CONFIG)).eval()
    model.save_pretrained(model_dir, safe_serialization=True)

    prompt_dir = os.path.join(work, "prompt")
    os.makedirs(prompt_dir)
    prompt = (torch.rand(1, PROMPT_LENGTH, CONFIG["d_model"]) - 0.5).float()
    with open(os.path.join(prompt_dir, "peft_config.json"), "w") as f:
        json.dump({"method": "prompt_tuning",
                   "settings": {"length": PROMPT_LENGTH, "init": "random_uniform"}}, f, indent=2)
    save_file({"prompt": prompt.contiguous()}, os.path.join(prompt_dir, "peft_model.safetensors"),
              metadata={"format": "pt"})

    hf_dir = os.path.join(work, "hf")
    run([args.softprompt, "peft", "export", "--model", model_dir, "--adapter", prompt_dir,
         "--out", hf_dir])

    peft_model = PeftModel.from_pretrained(model, hf_dir).eval()
    got_prompt = peft_model.get_prompt_embedding_to_save("default")
    assert torch.equal(got_prompt[:PROMPT_LENGTH], prompt[0]), "PEFT read another prompt"
    peft_logits = []
    with torch.no_grad():
        for c in CASES:
            out = peft_model(input_ids=torch.tensor([c["input_ids"]]),
                             attention_mask=torch.ones(1, len(c["input_ids"]), dtype=torch.long),
                             decoder_input_ids=torch.tensor([c["decoder_input_ids"]]))
            peft_logits.append(out.logits[0].float())

    data = os.path.join(work, "cases.jsonl")
    with open(data, "w") as f:
        for c in CASES:
            f.write(json.dumps(c) + "\n")
    worst = report([
        ("prompt ours", our_logits(args.softprompt, model_dir, "--adapter", prompt_dir, data),
         peft_logits),
        ("prompt imported", our_logits(args.softprompt, model_dir, "--hf", hf_dir, data),
         peft_logits)])
    worst = max(worst, verify_lora(args.softprompt, model_dir, work, data))
    worst = max(worst, verify_ln_tuning(args.softprompt, model_dir, work, data))
    if worst > 1e-4:
        sys.exit(f"MISMATCH: {worst} > 1e-4")

    out = args.out
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    for name in ("model", "prompt", "hf"):
        shutil.copytree(os.path.join(work, name), os.path.join(out, name))
    for junk in ("generation_config.json", "README.md"):
        for sub in ("model", "hf"):
            p = os.path.join(out, sub, junk)
            if os.path.exists(p):
                os.remove(p)
    with open(os.path.join(out, "cases.json"), "w") as f:
        json.dump({"cases": CASES, "peft_logits": [l.tolist() for l in peft_logits],
                   "tolerance": 1e-4}, f)
    # Library writers create some files 0600: fixtures are for everyone to read.
    for root, _, files in os.walk(out):
        for name in files:
            os.chmod(os.path.join(root, name), 0o644)
    shutil.rmtree(work)
    print(f"OK: our export loads in PEFT with the same logits; fixture in {out}")


if __name__ == "__main__":
    main()
