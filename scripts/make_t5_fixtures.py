#!/usr/bin/env python3
"""Tiny random T5 checkpoints and what Hugging Face transformers computes for them.

Writes tests/fixtures/t5/<case>/{config.json, model.safetensors, expected.safetensors}.
The checkpoint files are written here (not by save_pretrained) so that each case has
exactly the layout it is meant to test (transformers 4 or 5 config conventions, a separate
lm_head.weight, bf16 on disk); the expected outputs come from transformers loading those
files with from_pretrained, eager attention, eval mode, in float32.

expected.safetensors holds: input_ids, attention_mask (padded cases), labels, logits,
encoder_hidden_states, loss, grad.inputs_embeds, grad.<parameter> for a few parameters
(loss.backward() with inputs_embeds = shared(input_ids) as the leaf), greedy (the
generated ids without the start token, pad after eos).

Needs: pip install torch transformers safetensors (tested with torch 2.15, transformers 5.24).
Usage: python3 scripts/make_t5_fixtures.py [--out tests/fixtures/t5]
"""
import argparse
import json
import os
import shutil

import torch
from safetensors.torch import save_file
from transformers import T5Config, T5ForConditionalGeneration

BASE = dict(
    vocab_size=128,
    d_model=32,
    d_kv=8,
    d_ff=48,
    num_layers=2,
    num_heads=4,
    relative_attention_num_buckets=8,
    relative_attention_max_distance=16,
    dropout_rate=0.1,
    layer_norm_epsilon=1e-6,
    initializer_factor=1.0,
    feed_forward_proj="relu",
    pad_token_id=0,
    eos_token_id=1,
    decoder_start_token_id=0,
)

# name -> (config overrides, options)
CASES = {
    # T5 1.0: relu, tied head, output scale, transformers-4 config.
    "v10_tied_relu": (dict(), dict()),
    # T5 1.1: gated-gelu, separate lm_head.weight, tie_word_embeddings false (no scale).
    "v11_gated_gelu_untied": (dict(feed_forward_proj="gated-gelu", tie_word_embeddings=False), dict(untied=True)),
    # inner dim 3 * 8 = 24 != d_model 32; gated-silu.
    "inner_dim_differs": (dict(num_heads=3, feed_forward_proj="gated-silu"), dict()),
    # num_decoder_layers != num_layers.
    "decoder_layers_differ": (dict(num_layers=3, num_decoder_layers=1), dict()),
    # inputs longer than relative_attention_max_distance (16).
    "long_inputs": (dict(), dict(src_len=40, tgt_len=24)),
    # padded batch: encoder padding and -100 labels.
    "padded_batch": (dict(feed_forward_proj="gated-gelu", tie_word_embeddings=False), dict(untied=True, padded=True, eos_swap=True)),
    # transformers-5 config: tie_word_embeddings true and scale_decoder_outputs false.
    "v5_config_no_scale": (dict(feed_forward_proj="gated-gelu"), dict(v5_scale=False)),
    # bf16 weights on disk (expected outputs from those weights upcast to f32).
    "bf16_on_disk": (dict(feed_forward_proj="gated-gelu", tie_word_embeddings=False), dict(untied=True, bf16=True)),
}


def config_json(cfg, opts):
    c = dict(cfg)
    tie = c.pop("tie_word_embeddings", True)
    out = {"architectures": ["T5ForConditionalGeneration"], "model_type": "t5", **c}
    out["num_decoder_layers"] = c.get("num_decoder_layers", c["num_layers"])
    out["is_encoder_decoder"] = True
    if "v5_scale" in opts:  # what transformers 5 writes: both fields, tie forced true
        out["tie_word_embeddings"] = True
        out["scale_decoder_outputs"] = opts["v5_scale"]
    else:  # transformers 4 / hub layout
        out["tie_word_embeddings"] = tie
    return out


def make_case(name, overrides, opts, out_dir, seed):
    cfg = dict(BASE, **overrides)
    d = os.path.join(out_dir, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    conf = config_json(cfg, opts)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(conf, f, indent=2)

    # Random weights: transformers' init, scaled up so that errors are not hidden by tiny
    # activations; layer norms away from 1 so that their weights matter.
    torch.manual_seed(seed)
    src = T5ForConditionalGeneration(T5Config(**{k: v for k, v in cfg.items()}))
    sd = {}
    g = torch.Generator().manual_seed(seed + 1)
    for k, v in src.state_dict().items():
        if k in ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "lm_head.weight"):
            continue
        if "layer_norm" in k:
            v = 0.5 + torch.rand(v.shape, generator=g)
        elif "relative_attention_bias" in k:
            v = torch.randn(v.shape, generator=g) * 1.5
        elif k == "shared.weight":
            v = torch.randn(v.shape, generator=g)
        else:
            v = v * 2.0
        sd[k] = v.detach().float().contiguous()
    if opts.get("untied"):
        sd["lm_head.weight"] = torch.randn(sd["shared.weight"].shape, generator=g) * 0.5
    if opts.get("bf16"):
        sd = {k: v.to(torch.bfloat16) for k, v in sd.items()}
    save_file(sd, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})

    def load():
        m = T5ForConditionalGeneration.from_pretrained(d, attn_implementation="eager", dtype=torch.float32)
        return m.eval()

    model = load()
    loaded = model.state_dict()
    for k, v in sd.items():  # transformers read exactly what we wrote
        assert torch.equal(loaded[k].float(), v.float()), k
    if "v5_scale" in opts:
        assert model.config.scale_decoder_outputs == opts["v5_scale"]
    if opts.get("untied"):
        assert not torch.equal(model.lm_head.weight, model.shared.weight)
    else:
        assert torch.equal(model.lm_head.weight, model.shared.weight)

    B = 3 if opts.get("padded") else 2
    S = opts.get("src_len", 9)
    T = opts.get("tgt_len", 6)
    V = cfg["vocab_size"]
    input_ids = torch.randint(2, V, (B, S), generator=g)
    labels = torch.randint(2, V, (B, T), generator=g)
    labels[:, -1] = 1
    attention_mask = None
    if opts.get("padded"):
        attention_mask = torch.ones(B, S, dtype=torch.long)
        for b, n in enumerate([S, S - 3, S - 6]):
            attention_mask[b, n:] = 0
            input_ids[b, n:] = 0
            input_ids[b, n - 1] = 1
        labels[1, T - 2:] = -100
        labels[2, 2:] = -100

    if opts.get("eos_swap"):
        # Swap the head rows of eos and of the token row 0 generates at step 3, so that
        # greedy decoding stops early on one row and runs to max_new_tokens on others.
        with torch.no_grad():
            first = model.generate(input_ids=input_ids, attention_mask=attention_mask, max_new_tokens=8,
                                   do_sample=False, num_beams=1)
        t = int(first[0, 4])
        w = sd["lm_head.weight"].clone()
        w[[1, t]] = w[[t, 1]]
        sd["lm_head.weight"] = w
        save_file(sd, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
        model = load()

    embeds = model.shared(input_ids).detach().requires_grad_(True)
    out = model(inputs_embeds=embeds, attention_mask=attention_mask, labels=labels)
    out.loss.backward()
    exp = {
        "input_ids": input_ids,
        "labels": labels,
        "logits": out.logits.detach(),
        "encoder_hidden_states": out.encoder_last_hidden_state.detach(),
        "loss": out.loss.detach().reshape(()),
        "grad.inputs_embeds": embeds.grad,
    }
    if attention_mask is not None:
        exp["attention_mask"] = attention_mask
    n_dec = cfg.get("num_decoder_layers", cfg["num_layers"])
    ff = "wi_0" if cfg["feed_forward_proj"].startswith("gated") else "wi"
    params = [
        "shared.weight",
        "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
        "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
        "encoder.block.0.layer.0.SelfAttention.q.weight",
        f"encoder.block.1.layer.1.DenseReluDense.{ff}.weight",
        f"decoder.block.{n_dec - 1}.layer.1.EncDecAttention.k.weight",
        f"decoder.block.{n_dec - 1}.layer.2.DenseReluDense.wo.weight",
        "decoder.block.0.layer.0.layer_norm.weight",
        "encoder.final_layer_norm.weight",
    ]
    if opts.get("untied"):
        params.append("lm_head.weight")
    named = dict(model.named_parameters())
    for p in params:
        exp["grad." + p] = named[p].grad
    with torch.no_grad():
        gen = model.generate(input_ids=input_ids, attention_mask=attention_mask, max_new_tokens=8,
                             do_sample=False, num_beams=1)
    exp["greedy"] = gen[:, 1:]
    exp = {k: (v.detach().float() if v.is_floating_point() else v.long()).contiguous() for k, v in exp.items()}
    save_file(exp, os.path.join(d, "expected.safetensors"))
    for f in os.listdir(d):
        os.chmod(os.path.join(d, f), 0o644)
    return exp


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "t5"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    for i, (name, (overrides, opts)) in enumerate(CASES.items()):
        exp = make_case(name, overrides, opts, args.out, 1000 + i)
        print(f"{name}: loss {exp['loss'].item():.4f}, greedy {exp['greedy'].tolist()}")


if __name__ == "__main__":
    main()
