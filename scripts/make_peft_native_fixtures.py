#!/usr/bin/env python3
"""Writes adapters made by Hugging Face PEFT itself, with PEFT's logits, for the C++ import
tests (tests/unit/hf_peft_native_test.cpp).

The fixtures in tests/fixtures/peft/prompt_tuning/hf were written by our own export, which
puts the same prompt in both [p, D] blocks of PEFT's seq2seq prompt_embeddings [2p, D]: an
import that read the wrong block would still pass against them. These are PEFT's own
save_pretrained output, with blocks that differ and LoRA factors that are all nonzero.

On the tiny T5 in tests/fixtures/peft/prompt_tuning/model (loaded from disk; no network):
1. Prompt tuning: get_peft_model(PromptTuningConfig(SEQ_2_SEQ_LM, 3 virtual tokens, RANDOM
   init)); asserts the two blocks differ and that PEFT's forward reads only the first;
   save_pretrained to native/prompt_tuning/, PEFT's logits to native/prompt_tuning_cases.json.
2. LoRA: get_peft_model(LoraConfig(SEQ_2_SEQ_LM, r=2, lora_alpha=4, target q, v, wo)); every
   lora_B set to nonzero values (PEFT inits B = 0, the identity); save_pretrained to
   native/lora/, PEFT's logits to native/lora_cases.json.
3. IA3: get_peft_model(IA3Config(SEQ_2_SEQ_LM), PEFT's T5 defaults: target k, v, wo,
   feed-forward wo); every ia3_l set away from ones (PEFT inits them to ones, the
   identity), with the feed-forward [1, d_ff] vectors far from any [d_ff, 1] reading;
   save_pretrained to native/ia3/, PEFT's logits to native/ia3_cases.json.
4. LN tuning: get_peft_model(LNTuningConfig(SEQ_2_SEQ_LM), PEFT's T5 default: every
   layer_norm and final_layer_norm); every tuned copy's weight set away from the base
   norm's (PEFT starts from a copy, the identity); save_pretrained to native/ln_tuning/,
   PEFT's logits to native/ln_tuning_cases.json.

Each cases file: {"model", "cases": [{input_ids, decoder_input_ids}], "peft_logits":
[case][position][vocab], "tolerance"}, the format of tests/fixtures/peft/prompt_tuning/cases.json.
Deterministic (fixed seeds, CPU, f32); rerunning rewrites the same files.

Needs: torch, transformers, peft, safetensors (tested with torch 2.15, transformers 5.24,
peft 0.21.2).
Usage: python3 scripts/make_peft_native_fixtures.py [--fixtures tests/fixtures/peft]
"""
import argparse
import json
import os
import shutil
import sys

import torch
from peft import (IA3Config, LNTuningConfig, LoraConfig, PromptTuningConfig, PromptTuningInit,
                  get_peft_model)
from transformers import T5ForConditionalGeneration

# What adapter_config.json names as the base model (PEFT would record our absolute path).
BASE_MODEL = "tests/fixtures/peft/prompt_tuning/model"
PROMPT_LENGTH = 3
TOLERANCE = 1e-4
# The cases of scripts/verify_peft_export.py.
CASES = [
    dict(input_ids=[5, 6, 7, 1], decoder_input_ids=[0, 9, 10]),
    dict(input_ids=[12, 1], decoder_input_ids=[0, 3]),
    dict(input_ids=[20, 21, 22, 23, 24, 25, 1], decoder_input_ids=[0, 30, 31, 32]),
]


def load_model(model_dir):
    return T5ForConditionalGeneration.from_pretrained(model_dir).eval()


def case_logits(model):
    with torch.no_grad():
        return [model(input_ids=torch.tensor([c["input_ids"]]),
                      attention_mask=torch.ones(1, len(c["input_ids"]), dtype=torch.long),
                      decoder_input_ids=torch.tensor([c["decoder_input_ids"]])).logits[0].float()
                for c in CASES]


def max_diff(a, b):
    return max((x - y).abs().max().item() for x, y in zip(a, b))


def save_adapter(peft_model, out):
    if os.path.exists(out):
        shutil.rmtree(out)
    peft_model.peft_config["default"].base_model_name_or_path = BASE_MODEL
    peft_model.save_pretrained(out)
    readme = os.path.join(out, "README.md")  # PEFT's model card: not part of the format
    if os.path.exists(readme):
        os.remove(readme)


def write_cases(path, model_rel, logits):
    # 8 significant digits: well inside the tolerance, and half the size of repr().
    rounded = [[[float(f"{v:.8g}") for v in row] for row in l.tolist()] for l in logits]
    with open(path, "w") as f:
        json.dump({"model": model_rel, "cases": CASES, "peft_logits": rounded,
                   "tolerance": TOLERANCE}, f)



def write_fixture(model, fixtures, name, logits, bare):
    """PEFT's save_pretrained to native/<name>/ and its logits to native/<name>_cases.json;
    returns the paths written and how far the adapter moves the logits."""
    out = os.path.join(fixtures, "native", name)
    save_adapter(model, out)
    cases = os.path.join(fixtures, "native", name + "_cases.json")
    write_cases(cases, "../prompt_tuning/model", logits)
    return [out, cases], max_diff(logits, bare)


def write_checked_fixture(model, fixtures, name, label, bare):
    """write_fixture with the adapter's logits in eval mode, which must differ from the bare
    model's (an adapter at its identity init would test nothing)."""
    model.eval()
    logits = case_logits(model)
    assert max_diff(logits, bare) > 100 * TOLERANCE, f"the {label} does not change the logits"
    return write_fixture(model, fixtures, name, logits, bare)


def make_prompt_tuning(model_dir, fixtures, bare):
    torch.manual_seed(1)
    config = PromptTuningConfig(task_type="SEQ_2_SEQ_LM", num_virtual_tokens=PROMPT_LENGTH,
                                prompt_tuning_init=PromptTuningInit.RANDOM)
    model = get_peft_model(load_model(model_dir), config).eval()
    emb = model.get_prompt_embedding_to_save("default")
    d_model = model.config.d_model
    assert emb.shape == (2 * PROMPT_LENGTH, d_model), emb.shape
    first, second = emb[:PROMPT_LENGTH], emb[PROMPT_LENGTH:]
    assert (first - second).abs().min().item() > 1e-3, "PEFT's two prompt blocks coincide"
    logits = case_logits(model)
    assert max_diff(logits, bare) > 100 * TOLERANCE, "the prompt does not change the logits"

    # PEFT's forward reads only the first block: changing the second leaves the logits,
    # changing the first does not.
    weight = model.prompt_encoder["default"].embedding.weight
    saved = weight.detach().clone()
    with torch.no_grad():
        weight[PROMPT_LENGTH:] = torch.randn_like(weight[PROMPT_LENGTH:])
    assert max_diff(case_logits(model), logits) == 0.0, "PEFT read the second block"
    with torch.no_grad():
        weight[:PROMPT_LENGTH] = saved[PROMPT_LENGTH:]
    assert max_diff(case_logits(model), logits) > 100 * TOLERANCE, "blocks give equal logits"
    with torch.no_grad():
        weight.copy_(saved)
    assert max_diff(case_logits(model), logits) == 0.0

    return write_fixture(model, fixtures, "prompt_tuning", logits, bare)


def make_lora(model_dir, fixtures, bare):
    torch.manual_seed(2)
    config = LoraConfig(task_type="SEQ_2_SEQ_LM", r=2, lora_alpha=4, lora_dropout=0.0,
                        target_modules=["q", "v", "wo"])
    model = get_peft_model(load_model(model_dir), config)
    gen = torch.Generator().manual_seed(3)
    n_b = 0
    for name, p in model.named_parameters():
        if "lora_B" in name:  # PEFT inits B = 0: the adapter would be the identity
            with torch.no_grad():
                p.copy_(torch.rand(p.shape, generator=gen) - 0.5)
            assert p.abs().min().item() > 0, name
            n_b += 1
    assert n_b == 2 * 6 + 4, n_b  # q, v of 6 attentions and wo of 4 blocks
    return write_checked_fixture(model, fixtures, "lora", "LoRA", bare)


def make_ia3(model_dir, fixtures, bare):
    torch.manual_seed(4)
    config = IA3Config(task_type="SEQ_2_SEQ_LM")
    model = get_peft_model(load_model(model_dir), config)
    gen = torch.Generator().manual_seed(5)
    n_k_v = n_ff = 0
    for name, p in model.named_parameters():
        if "ia3_l" in name:  # PEFT inits l = 1: the adapter would be the identity
            with torch.no_grad():
                p.copy_(0.5 + torch.rand(p.shape, generator=gen))
            assert (p - 1).abs().min().item() > 0, name
            if ".wo." in name:
                assert p.shape[0] == 1 and p.shape[1] > 1, (name, p.shape)  # [1, in]
                n_ff += 1
            else:
                assert p.shape[1] == 1 and p.shape[0] > 1, (name, p.shape)  # [out, 1]
                n_k_v += 1
    assert (n_k_v, n_ff) == (2 * 6, 4), (n_k_v, n_ff)  # k, v of 6 attentions, wo of 4 blocks
    return write_checked_fixture(model, fixtures, "ia3", "IA3", bare)


def make_ln_tuning(model_dir, fixtures, bare):
    torch.manual_seed(6)
    model = get_peft_model(load_model(model_dir), LNTuningConfig(task_type="SEQ_2_SEQ_LM"))
    gen = torch.Generator().manual_seed(7)
    n = 0
    for name, p in model.named_parameters():
        if "ln_tuning_layers" in name:  # a copy of the base norm: the identity
            with torch.no_grad():
                p.mul_(0.5 + torch.rand(p.shape, generator=gen))
            n += 1
    assert n == 2 * 2 + 1 + 2 * 3 + 1, n  # 2 encoder, 2 decoder blocks and the final norms
    return write_checked_fixture(model, fixtures, "ln_tuning", "LN tuning", bare)


def main():
    # PEFT keeps target_modules in a set and writes it in iteration order, which follows
    # Python's string hashing: fix the seed so that reruns write the same adapter_config.json.
    if os.environ.get("PYTHONHASHSEED") != "0":
        os.environ["PYTHONHASHSEED"] = "0"
        os.execv(sys.executable, [sys.executable] + sys.argv)
    ap = argparse.ArgumentParser()
    ap.add_argument("--fixtures", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "peft"))
    args = ap.parse_args()
    fixtures = os.path.normpath(args.fixtures)
    model_dir = os.path.join(fixtures, "prompt_tuning", "model")
    os.makedirs(os.path.join(fixtures, "native"), exist_ok=True)

    bare = case_logits(load_model(model_dir))
    written = []
    for label, make in (("prompt tuning", make_prompt_tuning), ("lora", make_lora),
                        ("ia3", make_ia3), ("ln tuning", make_ln_tuning)):
        paths, effect = make(model_dir, fixtures, bare)
        print(f"{label}: max |adapter - bare model| logit difference {effect:.3g}")
        written += paths
    for root, _, files in os.walk(os.path.join(fixtures, "native")):
        for name in files:  # PEFT creates some files 0600: fixtures are for everyone to read
            os.chmod(os.path.join(root, name), 0o644)
    print("wrote:")
    for p in written:
        if os.path.isdir(p):
            for name in sorted(os.listdir(p)):
                f = os.path.join(p, name)
                print(f"  {f} ({os.path.getsize(f)} bytes)")
        else:
            print(f"  {p} ({os.path.getsize(p)} bytes)")


if __name__ == "__main__":
    main()
