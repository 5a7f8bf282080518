#!/usr/bin/env python3
"""PyTorch baseline for the GPU benchmark families, on the same shapes as bench/cuda/.

Each result carries the name and args of the sp_bench family it mirrors (gpu_matmul_bf16
with M/N/K/tA/tB, gpu_softmax with rows/cols/bf16/log, ...) so scripts/gpu_table.py can pair
them, and the same byte or FLOP count, so GB/s and TFLOP/s compare directly:

  gpu_matmul_{bf16,f32}     a @ b (b a transposed view where tB=1, as x @ W^T); f32 strict
                            (torch.backends.cuda.matmul.allow_tf32 = False); 2*M*N*K flops
  gpu_softmax / _backward   softmax / log_softmax over the last dim; its backward from y, dy
  gpu_add_softmax           torch.softmax(scores + bias, -1), T5's attention (bias broadcast)
  gpu_rms_norm              T5LayerNorm: w * (x * rsqrt(mean(x^2) + eps)) in f32, cast to w's
                            dtype before the multiply; forward, or forward + backward
  gpu_cross_entropy         lse - logit[target] + 1e-4 * lse^2 per row; forward (+ backward)
  gpu_copy                  a device-to-device copy of n bytes (GBps counts 2n)
  gpu_copy_kernel, gpu_unary (gelu tanh), gpu_binary (mul), gpu_binary_broadcast
  gpu_reduce_sum, gpu_embedding (F.embedding; backward: index_add_ into an f32 table),
  gpu_dropout (F.dropout p=0.1), gpu_random (uniform_, normal_)
  gpu_t5_step               transformers' T5ForConditionalGeneration (random init from a
                            T5Config: t5-v1_1-base sizes, vocab 32128), train mode,
                            forward + backward of the loss, batch 8, inputs 512, targets 128

Timing: CUDA events around batches of launches (each batch >= 0.5 ms), after warm-up; the
median over 31 batches (the T5 step: 30 single steps). Writes JSON:
  {"device", "torch", "results": [{"name", "args", "median_us", "TFLOPs" | "GBps"}]}

  python3 bench/torch_gpu_bench.py --out torch_bench.json [--only REGEX] [--no-t5]
"""
import argparse
import json
import re
import sys
import time

import torch
import torch.nn.functional as F

SAMPLES = 31
# --cpu-dry-run: the same code on the CPU at tiny sizes, to check the script without a GPU.
DEVICE = "cuda"
SHRINK = 1


class HostEvent:
    """torch.cuda.Event's interface over the host clock, for the CPU dry run."""

    def record(self):
        self.t = time.perf_counter()

    def synchronize(self):
        pass

    def elapsed_time(self, end):
        return (end.t - self.t) * 1e3


def event():
    return torch.cuda.Event(enable_timing=True) if DEVICE == "cuda" else HostEvent()


def sync():
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def rows_(n):
    """A leading size, shrunk for the CPU dry run."""
    return max(1, n // SHRINK)


def median_us(fn, samples=SAMPLES, min_batch_ms=0.5):
    """Median microseconds per call of fn (which queues GPU work on the current stream)."""
    if SHRINK > 1:
        samples = 3
    for _ in range(3):
        fn()
    sync()
    start, stop = event(), event()
    start.record()
    fn()
    stop.record()
    stop.synchronize()
    one_ms = max(start.elapsed_time(stop), 1e-4)
    launches = min(max(int(min_batch_ms / one_ms) + 1, 1), 10000)
    per = []
    for _ in range(samples):
        start.record()
        for _ in range(launches):
            fn()
        stop.record()
        stop.synchronize()
        per.append(start.elapsed_time(stop) * 1e3 / launches)
    per.sort()
    return per[len(per) // 2]


def median_us_grad(fn, grad):
    """median_us of fn, under torch.no_grad() unless grad (a step with a backward)."""
    if grad:
        return median_us(fn)
    with torch.no_grad():
        return median_us(fn)


def randn(shape, dtype, scale=1.0, shift=0.0):
    # Random data, never zeros: uniform in [shift - scale, shift + scale).
    return ((torch.rand(shape, device=DEVICE, dtype=torch.float32) * 2 - 1) * scale + shift).to(dtype)


def dt_of(code):
    return torch.bfloat16 if int(code) else torch.float32


class Results:
    def __init__(self, only):
        self.items = []
        self.only = re.compile(only) if only else None

    def wanted(self, name):
        return self.only is None or self.only.search(name)

    def add(self, name, args, us, flops=None, nbytes=None, **extra):
        r = {"name": name, "args": args, "median_us": round(us, 3)}
        if flops is not None:
            r["TFLOPs"] = round(flops / (us * 1e-6) * 1e-12, 3)
        if nbytes is not None:
            r["GBps"] = round(nbytes / (us * 1e-6) * 1e-9, 2)
        r.update(extra)
        self.items.append(r)
        figure = f"{r['TFLOPs']} TFLOP/s" if "TFLOPs" in r else (
            f"{r['GBps']} GB/s" if "GBps" in r else "")
        print(f"{name:22s} {json.dumps(args):60s} {us:12.1f} us  {figure}", flush=True)


# Shapes of bench/cuda/matmul_bench.cpp: {M, N, K, tA, tB}.
MATMUL_SHAPES = [
    (4096, 4096, 4096, 0, 0),
    (8192, 2048, 768, 0, 1),
    (8192, 768, 2048, 0, 1),
    (8192, 768, 768, 0, 1),
    (8192, 32128, 768, 0, 1),
    (8192, 5120, 2048, 0, 1),
    (8192, 2048, 5120, 0, 1),
    (2048, 768, 8192, 1, 0),
]


def bench_matmul(res):
    for dt_name, dt in (("bf16", torch.bfloat16), ("f32", torch.float32)):
        name = f"gpu_matmul_{dt_name}"
        if not res.wanted(name):
            continue
        for M, N, K, ta, tb in MATMUL_SHAPES:
            m, n, k = rows_(M), rows_(N), rows_(K)
            a = randn((k, m), dt).t() if ta else randn((m, k), dt)
            b = randn((n, k), dt).t() if tb else randn((k, n), dt)
            out = torch.empty((m, n), device=DEVICE, dtype=dt)
            us = median_us(lambda: torch.matmul(a, b, out=out))
            res.add(name, {"M": M, "N": N, "K": K, "tA": ta, "tB": tb}, us, flops=2.0 * m * n * k)
            del a, b, out


def t5_rms_norm(x, w, eps=1e-6):
    # transformers' T5LayerNorm.
    variance = x.to(torch.float32).pow(2).mean(-1, keepdim=True)
    h = x * torch.rsqrt(variance + eps)
    if w.dtype in (torch.float16, torch.bfloat16):
        h = h.to(w.dtype)
    return w * h


def bench_rows(res):
    if res.wanted("gpu_softmax"):
        for rows, cols, bf, log in ((32768, 512, 0, 0), (32768, 512, 1, 0), (4096, 32128, 0, 0),
                                    (4096, 32128, 1, 0), (4096, 32128, 1, 1)):
            x = randn((rows_(rows), cols), dt_of(bf))
            f = torch.log_softmax if log else torch.softmax
            us = median_us(lambda: f(x, -1))
            res.add("gpu_softmax", {"rows": rows, "cols": cols, "bf16": bf, "log": log}, us,
                    nbytes=2.0 * x.nbytes)
    if res.wanted("gpu_add_softmax"):
        for bf in (1, 0):
            batch, heads, length = rows_(8), 12, 512
            x = randn((batch, heads, length, length), dt_of(bf))
            bias = randn((1, heads, length, length), dt_of(bf))
            us = median_us(lambda: torch.softmax(x + bias, -1))
            res.add("gpu_add_softmax", {"batch": 8, "heads": heads, "len": length, "bf16": bf}, us,
                    nbytes=2.0 * x.nbytes + bias.nbytes)
    if res.wanted("gpu_softmax_backward"):
        for rows, cols, bf in ((32768, 512, 1), (4096, 32128, 1)):
            dt = dt_of(bf)
            y = torch.softmax(randn((rows_(rows), cols), dt), -1)
            dy = randn(y.shape, dt)
            us = median_us(lambda: torch._softmax_backward_data(dy, y, -1, dt))
            res.add("gpu_softmax_backward", {"rows": rows, "cols": cols, "bf16": bf}, us,
                    nbytes=3.0 * y.nbytes)
    if res.wanted("gpu_rms_norm"):
        for rows, d, bf, bwd in ((8192, 768, 0, 0), (8192, 768, 1, 0), (8192, 768, 1, 1),
                                 (65536, 4096, 0, 0), (65536, 4096, 1, 0), (65536, 4096, 0, 1),
                                 (65536, 4096, 1, 1)):
            dt = dt_of(bf)
            x = randn((rows_(rows), d), dt, 2.0).requires_grad_(bwd == 1)
            w = randn((d,), dt, 0.5, 1.0).requires_grad_(bwd == 1)
            dy = randn(x.shape, dt)

            def step():
                y = t5_rms_norm(x, w)
                if bwd:
                    x.grad = w.grad = None
                    y.backward(dy)
            us = median_us_grad(step, bwd)
            big, small, rstd = x.nbytes, w.nbytes, x.shape[0] * 4
            fwd_b = 2 * big + small + rstd
            bwd_b = 3 * big + 2 * small + rstd
            res.add("gpu_rms_norm", {"rows": rows, "d": d, "bf16": bf, "bwd": bwd}, us,
                    nbytes=fwd_b + bwd_b if bwd else fwd_b, impl="T5LayerNorm eager")
    if res.wanted("gpu_cross_entropy"):
        for rows, vocab, bf, bwd in ((8192, 32128, 0, 0), (8192, 32128, 1, 0),
                                     (8192, 32128, 0, 1), (8192, 32128, 1, 1)):
            r = rows_(rows)
            logits = randn((r, vocab), dt_of(bf)).requires_grad_(bwd == 1)
            targets = torch.randint(0, vocab, (r,), device=DEVICE)
            dloss = randn((r,), torch.float32, 0.5, 1.0)

            def step():
                lf = logits.float()
                lse = torch.logsumexp(lf, -1)
                loss = lse - lf.gather(1, targets[:, None]).squeeze(1) + 1e-4 * lse * lse
                if bwd:
                    logits.grad = None
                    loss.backward(dloss)
            us = median_us_grad(step, bwd)
            big = logits.nbytes
            fwd_b = big + r * 16
            bwd_b = 2 * big + r * 16
            res.add("gpu_cross_entropy", {"rows": rows, "vocab": vocab, "bf16": bf, "bwd": bwd}, us,
                    nbytes=fwd_b + bwd_b if bwd else fwd_b, impl="logsumexp + gather eager")


def bench_elementwise(res):
    if res.wanted("gpu_copy"):
        for bpe, rows, cols in ((4, 16384, 4096), (4, 8192, 2048), (2, 16384, 4096), (2, 8192, 2048)):
            n = bpe * rows_(rows) * cols
            src = torch.randint(0, 255, (n,), dtype=torch.uint8, device=DEVICE)
            dst = torch.empty_like(src)
            us = median_us(lambda: dst.copy_(src))
            res.add("gpu_copy", {"bytes_per_elem": bpe, "rows": rows, "cols": cols}, us, nbytes=2.0 * n)
    if res.wanted("gpu_copy_kernel"):
        for rows, cols in ((16384, 4096), (8192, 2048)):
            src = randn((rows_(rows), cols), torch.float32)
            dst = torch.empty(src.shape, device=DEVICE, dtype=torch.bfloat16)
            us = median_us(lambda: dst.copy_(src))
            res.add("gpu_copy_kernel", {"dtype": 0, "rows": rows, "cols": cols}, us,
                    nbytes=src.nbytes + dst.nbytes)
    for code in (0, 1):
        for rows, cols in ((16384, 4096), (8192, 2048)):
            args = {"dtype": code, "rows": rows, "cols": cols}
            dt = dt_of(code)
            a, b = randn((rows_(rows), cols), dt, 2.0), randn((rows_(rows), cols), dt, 2.0)
            w = randn((cols,), dt, 2.0)
            out = torch.empty_like(a)
            if res.wanted("gpu_unary"):
                us = median_us(lambda: F.gelu(a, approximate="tanh"))
                res.add("gpu_unary", args, us, nbytes=2.0 * a.nbytes)
            if res.wanted("gpu_binary"):
                us = median_us(lambda: torch.mul(a, b, out=out))
                res.add("gpu_binary", args, us, nbytes=3.0 * a.nbytes)
            if res.wanted("gpu_binary_broadcast"):
                us = median_us(lambda: torch.mul(a, w, out=out))
                res.add("gpu_binary_broadcast", args, us, nbytes=2.0 * a.nbytes + w.nbytes)
            del a, b, w, out


def bench_gather_random(res):
    """gather_bench.cpp and random_bench.cpp (the latter has no ArgNames: positional args)."""
    if res.wanted("gpu_reduce_sum"):
        for bf, dim in ((0, 1), (1, 1), (0, 0), (1, 0)):
            x = randn((rows_(8192), 32128), dt_of(bf))
            out = x.sum(dim=dim, keepdim=True)
            us = median_us(lambda: torch.sum(x, dim=dim, keepdim=True, out=out))
            res.add("gpu_reduce_sum", {"bf16": bf, "dim": dim}, us, nbytes=x.nbytes + out.nbytes)
            del x, out
    if res.wanted("gpu_embedding"):
        v, d, n = 32128, 768, rows_(8192)
        ids = torch.randint(0, v, (n,), device=DEVICE)
        for bf, bwd in ((0, 0), (1, 0), (0, 1), (1, 1)):
            dt = dt_of(bf)
            esize = 2 if bf else 4
            if not bwd:
                weight = randn((v, d), dt)
                us = median_us(lambda: F.embedding(ids, weight))
                res.add("gpu_embedding", {"bf16": bf, "backward": 0}, us,
                        nbytes=4 * n + 2.0 * n * d * esize)
            else:
                # Accumulate into an f32 table, as ours: index_add_ needs dy in f32.
                dy = randn((n, d), dt)
                dweight = randn((v, d), torch.float32)
                distinct = torch.unique(ids).numel()
                us = median_us(lambda: dweight.index_add_(0, ids, dy.float()))
                res.add("gpu_embedding", {"bf16": bf, "backward": 1}, us,
                        nbytes=dy.nbytes + 4 * n + 2.0 * distinct * d * 4, impl="index_add_")
    if res.wanted("gpu_dropout"):
        for code, r, c in ((0, 16384, 4096), (1, 32768, 4096), (0, 4096, 768), (1, 4096, 768)):
            x = randn((rows_(r), c), dt_of(code), 2.0)
            us = median_us(lambda: F.dropout(x, 0.1, training=True))
            res.add("gpu_dropout", {"0": code, "1": r, "2": c}, us, nbytes=2.0 * x.nbytes)
            del x
    if res.wanted("gpu_random"):
        for kind in (0, 1):
            out = torch.empty((rows_(16384), 4096), device=DEVICE, dtype=torch.float32)
            fill = (lambda: out.normal_(0.0, 1.0)) if kind else (lambda: out.uniform_(-1.0, 1.0))
            us = median_us(fill)
            res.add("gpu_random", {"0": kind, "1": 16384, "2": 4096}, us, nbytes=out.nbytes)
            del out


# t5-v1_1-base sizes (bench/cuda/t5_step_bench.cpp builds ours with the same).
T5_BATCH, T5_INPUT, T5_TARGET, T5_VOCAB = 8, 512, 128, 32128


def bench_t5(res):
    if not res.wanted("gpu_t5_step"):
        return
    from transformers import T5Config, T5ForConditionalGeneration

    layers = 12 if SHRINK == 1 else 1
    batch, inp, tgt = T5_BATCH, T5_INPUT, T5_TARGET
    if SHRINK > 1:
        batch, inp, tgt = 1, 32, 8
    cfg = T5Config(vocab_size=T5_VOCAB, d_model=768, d_kv=64, d_ff=2048, num_layers=layers,
                   num_decoder_layers=layers, num_heads=12, relative_attention_num_buckets=32,
                   relative_attention_max_distance=128, dropout_rate=0.1,
                   feed_forward_proj="gated-gelu", tie_word_embeddings=False,
                   decoder_start_token_id=0, pad_token_id=0)
    g = torch.Generator(device=DEVICE).manual_seed(99)
    ids = torch.randint(2, 32000, (batch, inp), device=DEVICE, generator=g)
    labels = torch.randint(2, 32000, (batch, tgt), device=DEVICE, generator=g)
    for bf in (1, 0):
        dt = dt_of(bf)
        torch.manual_seed(1234)
        with torch.device(DEVICE):
            model = T5ForConditionalGeneration(cfg).to(dt)
        model.train()
        params = list(model.parameters())

        def step():
            for p in params:
                p.grad = None
            loss = model(input_ids=ids, labels=labels).loss
            loss.backward()
        t0 = time.time()
        us = median_us(step, samples=30, min_batch_ms=0)
        tokens = batch * (inp + tgt)
        res.add("gpu_t5_step", {"bf16": bf}, us, tokens_per_s=round(tokens / (us * 1e-6)),
                impl=f"transformers T5ForConditionalGeneration, train mode, "
                     f"attn={getattr(model.config, '_attn_implementation', '?')}",
                wall_s=round(time.time() - t0, 1))
        del model, params
        empty_cache()


def empty_cache():
    if DEVICE == "cuda":
        torch.cuda.empty_cache()


def main():
    global DEVICE, SHRINK
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--only", help="regex on the family names")
    p.add_argument("--no-t5", action="store_true", help="skip the T5 training step")
    p.add_argument("--cpu-dry-run", action="store_true",
                   help="run every part on the CPU at tiny sizes (checks the script, times nothing useful)")
    a = p.parse_args()
    if a.cpu_dry_run:
        DEVICE, SHRINK = "cpu", 64
        torch.set_num_threads(1)  # a loaded build machine: no thread oversubscription
    elif not torch.cuda.is_available():
        print("torch_gpu_bench: no CUDA device visible to torch", file=sys.stderr)
        return 1
    # Strict FP32, as our f32 matmul (CUBLAS_COMPUTE_32F): no TF32 anywhere.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    res = Results(a.only)
    device_name = torch.cuda.get_device_name(0) if DEVICE == "cuda" else "cpu (dry run)"
    doc = {"device": device_name, "torch": torch.__version__, "results": res.items}
    status = 0
    for part in (bench_matmul, bench_rows, bench_elementwise, bench_gather_random) + (() if a.no_t5 else (bench_t5,)):
        try:
            part(res)
        except Exception as e:  # one failing part must not lose the others' results
            print(f"torch_gpu_bench: {part.__name__} failed: {type(e).__name__}: {e}", file=sys.stderr)
            status = 1
        empty_cache()
        with open(a.out, "w") as f:
            json.dump(doc, f, indent=1)
    return status


if __name__ == "__main__":
    sys.exit(main())
