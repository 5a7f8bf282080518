#!/usr/bin/env python3
"""The prompt-tuning step of bench/t5_step_bench.cpp in PyTorch + transformers + PEFT.

Same shapes as sp_bench's t5_step/<model>/<dtype>/<mode>: T5 1.1 LM-adapted shapes, random
init, vocab 32128, gated-gelu, untied head; batch 8 of 256 input tokens behind PEFT's 100
virtual tokens (prompt tuning, task_type SEQ_2_SEQ_LM) = 356 encoder positions, 8 target
tokens.
  forward:        model.eval(), torch.no_grad(), forward with labels (the loss)
  prompt_tuning:  model.train() (dropout 0.1), forward with labels + loss.backward(); only the
                  prompt embedding needs a gradient (PEFT freezes the backbone); no optimizer
                  update, as in sp_bench
bf16 is the whole model in bfloat16 (model.to(torch.bfloat16)), as sp_bench's bf16 backbone.
Times are the median over --iters steps after --warmup steps, on torch.set_num_threads(N)
threads. tokens/s counts 8 * (356 + 8) tokens per step, as sp_bench does.

With --sp-bench PATH (build/bin/sp_bench), runs our benchmark with the matching filter on
the same thread count (OMP_NUM_THREADS) right after, and prints ours beside theirs with the
speedup (their time / ours: > 1 means softprompt is faster).

Needs: pip install torch transformers peft.
Usage: python3 bench/compare_hf.py [--threads 2] [--models small,base] [--dtypes f32,bf16]
           [--modes forward,prompt_tuning] [--iters 3] [--warmup 1] [--sp-bench build/bin/sp_bench]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

BATCH, PROMPT, INPUT, TARGET = 8, 100, 256, 8
SHAPES = {  # T5 1.1 LM-adapted: d_model, d_ff, heads, encoder / decoder layers
    "small": dict(d_model=512, d_ff=1024, num_heads=6, num_layers=8, num_decoder_layers=8),
    "base": dict(d_model=768, d_ff=2048, num_heads=12, num_layers=12, num_decoder_layers=12),
}


def build_model(size, dtype, seed=1234):
    import torch
    from peft import PromptTuningConfig, TaskType, get_peft_model
    from transformers import T5Config, T5ForConditionalGeneration

    cfg = T5Config(vocab_size=32128, d_kv=64, feed_forward_proj="gated-gelu", tie_word_embeddings=False,
                   dropout_rate=0.1, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
                   **SHAPES[size])
    torch.manual_seed(seed)
    model = T5ForConditionalGeneration(cfg)
    if dtype == "bf16":
        model = model.to(torch.bfloat16)
    peft_cfg = PromptTuningConfig(task_type=TaskType.SEQ_2_SEQ_LM, num_virtual_tokens=PROMPT)
    return get_peft_model(model, peft_cfg)


def time_steps(model, mode, iters, warmup, seed=99):
    import torch

    g = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(2, 32000, (BATCH, INPUT), generator=g)
    attention_mask = torch.ones(BATCH, INPUT, dtype=torch.long)
    labels = torch.randint(2, 32000, (BATCH, TARGET), generator=g)

    def step():
        if mode == "forward":
            with torch.no_grad():
                out = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
            return out.loss
        out = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
        out.loss.backward()
        model.zero_grad(set_to_none=True)
        return out.loss

    model.train(mode != "forward")
    times, cpu = [], []
    for i in range(warmup + iters):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    return statistics.median(times), statistics.median(cpu)


def run_ours(sp_bench, threads, size, dtype):
    """Our times in seconds: {mode: real time per step} from one sp_bench run."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    cmd = [sp_bench, f"--benchmark_filter=^t5_step/{size}/{dtype}/", "--benchmark_format=json"]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    res = {}
    for b in json.loads(out)["benchmarks"]:
        mode = b["name"].split("/")[3]
        unit = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b["time_unit"]]
        res[mode] = (b["real_time"] * unit, b.get("pct_ceiling"), b.get("ceiling_GFLOPS"), b.get("cpu_s_step"))
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--models", default="small,base")
    ap.add_argument("--dtypes", default="f32,bf16")
    ap.add_argument("--modes", default="forward,prompt_tuning")
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--sp-bench", default=None, help="path to sp_bench: also run ours and print the ratio")
    args = ap.parse_args()

    import peft
    import torch
    import transformers

    torch.set_num_threads(args.threads)
    tokens = BATCH * (PROMPT + INPUT + TARGET)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}; "
          f"{args.threads} threads; batch {BATCH}, {PROMPT} prompt + {INPUT} input tokens, {TARGET} targets; "
          f"median of {args.iters} after {args.warmup} warm-up", flush=True)
    rows = []
    for size in args.models.split(","):
        for dtype in args.dtypes.split(","):
            model = build_model(size, dtype)
            attn = getattr(model.base_model.config, "_attn_implementation", "?")
            theirs = {m: time_steps(model, m, args.iters, args.warmup) for m in args.modes.split(",")}
            del model
            ours = run_ours(args.sp_bench, args.threads, size, dtype) if args.sp_bench else {}
            for mode, (t, cpu) in theirs.items():
                rows.append((size, dtype, mode, attn, t, cpu, ours.get(mode)))
                o = ours.get(mode)
                print(f"  t5-{size} {dtype} {mode}: PyTorch+PEFT {t * 1e3:.0f} ms ({cpu:.2f} CPU s)"
                      + (f", softprompt {o[0] * 1e3:.0f} ms ({o[3]:.2f} CPU s)" if o else ""), flush=True)

    print()
    print("| model | dtype | step | PyTorch+PEFT ms | CPU s | tokens/s | softprompt ms | CPU s | tokens/s "
          "| speedup (time) | speedup (CPU s) | softprompt % of matmul ceiling |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size, dtype, mode, attn, t, cpu, o in rows:
        cells = ["-"] * 6
        if o:
            cells = [f"{o[0] * 1e3:.0f}", f"{o[3]:.2f}", f"{tokens / o[0]:.0f}", f"{t / o[0]:.2f}x",
                     f"{cpu / o[3]:.2f}x", f"{o[1]:.0f}% of {o[2]:.0f} GFLOP/s"]
        print(f"| t5-{size} | {dtype} | {mode} | {t * 1e3:.0f} | {cpu:.2f} | {tokens / t:.0f} | "
              + " | ".join(cells) + " |")
    print(f"\n(PyTorch attention implementation: {rows[0][3] if rows else '?'}; speedup = their / our "
          "time per step, > 1: softprompt is faster; CPU s = process CPU seconds per step, all threads)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
