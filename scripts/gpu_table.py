#!/usr/bin/env python3
"""The short table scripts/gpu-check.sh prints last.

  tests: passed / failed / skipped / crashed, with the names (and first message line) of
         every failure, read from sp_gpu_tests' log (a crash loses the JSON, not the log)
  bench: each GPU family beside its reference:
         gpu_matmul_<dt>  vs cublaslt_raw_<dt> at the same args: ours / raw TFLOPs
         a family with GBps vs the best gpu_copy GBps (a device-to-device cudaMemcpy): percent
         any family vs PyTorch (bench/torch_gpu_bench.py) at the same name and args
  Targets (from the briefs) are flagged with "<-": matmul >= 0.95x raw; softmax (add_softmax
  too), rms_norm, cross-entropy and elementwise families >= 70% of the copy where they move
  >= 200 MB.

Exit status: 0 when at least one test passed and none failed or crashed, 1 otherwise,
2 when an input could not be read at all.
"""
import argparse
import json
import os
import re
import sys

MATMUL_TARGET = 0.95
COPY_TARGET = 70.0
# The briefs set the copy target for these families, at sizes well past the L2
# (bench/cuda/rows_bench.cu sets it for add_softmax too: its f32 case moves 214 MB).
COPY_TARGET_FAMILIES = re.compile(
    r"^gpu_(softmax|add_softmax|rms_norm|cross_entropy|copy_kernel|unary|binary)")
COPY_TARGET_MIN_BYTES = 200e6
# Rows that time the unfused path a fused kernel is measured against (gpu_add_softmax
# fused:0: the binary add, then softmax) are references, not targets.
UNFUSED_REFERENCE_ARGS = re.compile(r"(^|/)fused:0(/|$)")


def load_json_tolerant(path):
    """Google Benchmark writes its JSON as it goes: a crash leaves it unterminated."""
    if not path or not os.path.exists(path):
        return None
    text = open(path, encoding="utf-8", errors="replace").read()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    # Cut after the last complete benchmark object and close the list and the document.
    cut = text.rfind("}")
    while cut > 0:
        candidate = text[: cut + 1].rstrip().rstrip(",") + "\n  ]\n}\n"
        try:
            return json.loads(candidate)
        except json.JSONDecodeError:
            cut = text.rfind("}", 0, cut)
    return None


# --- tests ------------------------------------------------------------------------------------

RESULT_RE = re.compile(r"^\[\s+(OK|FAILED|SKIPPED)\s+\] (\S+\.\S+) \(\d+ ms\)")
RUN_RE = re.compile(r"^\[ RUN      \] (\S+)")
CRASH_RE = re.compile(r"^\[  CRASHED \] (\S+)(.*)$")


def test_messages(json_path):
    """First line of the first failure message of each failed test, from gtest's JSON."""
    doc = load_json_tolerant(json_path)
    messages = {}
    if not doc:
        return messages
    for suite in doc.get("testsuites", []):
        for t in suite.get("testsuite", []):
            fails = t.get("failures") or []
            if fails:
                first = fails[0].get("failure", "").strip().splitlines()
                # "file:line\nmessage": the message is the interesting part.
                text = " | ".join(first[1:3] if len(first) > 1 else first)
                messages[f"{suite.get('name')}.{t.get('name')}"] = text[:160]
    return messages


def tests_section(log_path, json_path):
    lines = []
    if not log_path or not os.path.exists(log_path):
        return ["tests: no log (sp_gpu_tests did not run)"], False
    status = {}
    running = None
    for line in open(log_path, encoding="utf-8", errors="replace"):
        line = line.rstrip("\n")
        m = RUN_RE.match(line)
        if m:
            running = m.group(1)
            status.setdefault(running, "unfinished")
            continue
        m = RESULT_RE.match(line)
        if m:
            status[m.group(2)] = {"OK": "passed", "FAILED": "failed", "SKIPPED": "skipped"}[m.group(1)]
            continue
        m = CRASH_RE.match(line)
        if m:
            status[m.group(1)] = "crashed"
    counts = {k: 0 for k in ("passed", "failed", "skipped", "crashed", "unfinished")}
    for s in status.values():
        counts[s] += 1
    head = (f"tests: {counts['passed']} passed, {counts['failed']} failed, "
            f"{counts['skipped']} skipped")
    if counts["crashed"]:
        head += f", {counts['crashed']} crashed"
    if counts["unfinished"]:
        head += f", {counts['unfinished']} unfinished (timeout?)"
    lines.append(head + f" (of {len(status)})")
    messages = test_messages(json_path)
    bad = [n for n, s in status.items() if s in ("failed", "crashed", "unfinished")]
    for name in bad[:25]:
        msg = messages.get(name, "")
        lines.append(f"  {status[name].upper():10s} {name}" + (f": {msg}" if msg else ""))
    if len(bad) > 25:
        lines.append(f"  ... and {len(bad) - 25} more (see gpu_tests.log)")
    if counts["passed"] == 0 and counts["skipped"]:
        lines.append("  every test skipped: no usable GPU (see the first skip message in the log)")
    ok = counts["passed"] > 0 and not bad
    return lines, ok


# --- benchmarks ---------------------------------------------------------------------------------

def split_name(name):
    """'sp::gpu_softmax/rows:8/cols:4/iterations:1/manual_time' -> ('gpu_softmax', 'rows:8/cols:4')."""
    parts = name.split("/")
    family = parts[0].split("::")[-1]
    args = [p for p in parts[1:] if not re.match(r"^(iterations:\d+|manual_time|real_time|"
                                                   r"repeats:\d+|threads:\d+)$", p)]
    return family, "/".join(args)


def arg_dict(args):
    d = {}
    for i, a in enumerate(args.split("/") if args else []):
        k, _, v = a.partition(":")
        d[k if v else str(i)] = v if v else k
    return d


def our_results(path):
    doc = load_json_tolerant(path)
    if doc is None:
        return None, []
    results, errors = {}, []
    for b in doc.get("benchmarks", []):
        if b.get("run_type") == "aggregate":
            continue
        family, args = split_name(b.get("name", ""))
        if b.get("error_occurred"):
            errors.append((f"{family}/{args}", b.get("error_message", "error")))
            continue
        results[(family, args)] = b
    return results, errors


def torch_results(path):
    doc = load_json_tolerant(path)
    if doc is None:
        return None, {}
    out = {}
    for r in doc.get("results", []):
        args = "/".join(f"{k}:{v}" for k, v in r.get("args", {}).items())
        out[(r["name"], args)] = r
    return doc, out


def fmt_value(r):
    """The headline figure of one result: TFLOPs, GBps, or the time."""
    if r is None:
        return ""
    if r.get("TFLOPs"):
        return f"{r['TFLOPs']:.1f} TFLOP/s"
    if r.get("GBps"):
        return f"{r['GBps']:.0f} GB/s"
    us = r.get("median_us") or r.get("real_time")
    return f"{us / 1000:.2f} ms" if us and us >= 1000 else (f"{us:.1f} us" if us else "?")


def speedup(ours, ref):
    """ours / ref as a larger-is-better ratio on a figure both have: TFLOP/s, GB/s, else time."""
    if ours is None or ref is None:
        return None
    for key in ("TFLOPs", "GBps"):
        if ours.get(key) and ref.get(key):
            return ours[key] / ref[key]
    a = ours.get("median_us") or ours.get("real_time")
    b = ref.get("median_us") or ref.get("real_time")
    return b / a if a and b else None


def torch_match(family, args, torch):
    """PyTorch's result for our (family, args): same name, and every arg PyTorch names equal."""
    if not torch:
        return None
    if (family, args) in torch:
        return torch[(family, args)]
    ours = arg_dict(args)
    for (name, targs), r in torch.items():
        if name != family:
            continue
        td = arg_dict(targs)
        if td and all(ours.get(k) == v for k, v in td.items()):
            return r
    return None


def bench_section(bench_path, torch_path):
    lines = []
    ours, errors = our_results(bench_path)
    tdoc, torch = torch_results(torch_path)
    if ours is None:
        lines.append("bench: no results (gpu_bench.json missing or unreadable)")
        ours = {}
    if tdoc is None:
        lines.append("torch: no results (torch_bench.json missing or unreadable)")
    elif tdoc.get("device"):
        lines.append(f"torch {tdoc.get('torch', '?')} on {tdoc['device']}")
    copies = [(r.get("GBps", 0), f, a) for (f, a), r in ours.items() if f == "gpu_copy" and r.get("GBps")]
    copy_ref = max(copies) if copies else None
    if copy_ref:
        lines.append(f"copy reference: gpu_copy/{copy_ref[2]} = {copy_ref[0]:.0f} GB/s")
    rows = []
    used_torch = set()
    for (family, args), r in sorted(ours.items()):
        if family.startswith("cublaslt_raw") or family == "gpu_copy":
            continue
        ref, flag = "", ""
        if family.startswith("gpu_matmul_"):
            raw = ours.get(("cublaslt_raw_" + family[len("gpu_matmul_"):], args))
            ratio = speedup(r, raw)
            if ratio is not None:
                ref = f"raw {fmt_value(raw)}  {ratio:.2f}x"
                flag = "<-" if ratio < MATMUL_TARGET else ""
        elif r.get("GBps") and copy_ref:
            pct = 100.0 * r["GBps"] / copy_ref[0]
            ref = f"{pct:.0f}% of copy"
            moved = r["GBps"] * 1e9 * (r.get("median_us") or 0) * 1e-6
            if (COPY_TARGET_FAMILIES.match(family) and not UNFUSED_REFERENCE_ARGS.search(args)
                    and moved >= COPY_TARGET_MIN_BYTES and pct < COPY_TARGET):
                flag = "<-"
        t = torch_match(family, args, torch)
        vs = ""
        if t is not None:
            used_torch.add((t["name"], "/".join(f"{k}:{v}" for k, v in t.get("args", {}).items())))
            ratio = speedup(r, t)
            if ratio is not None:
                vs = f"torch {fmt_value(t)}  {ratio:.2f}x"
        rows.append((f"{family}/{args}" if args else family, fmt_value(r), ref, vs, flag))
    for (family, args), r in sorted(ours.items()):
        if family == "gpu_copy" or (family.startswith("cublaslt_raw") and not any(
                f.startswith("gpu_matmul_") and a == args for f, a in ours)):
            rows.append((f"{family}/{args}" if args else family, fmt_value(r), "(reference)", "", ""))
    if rows:
        w0 = min(max(len(x[0]) for x in rows), 64)
        w1 = max(len(x[1]) for x in rows)
        w2 = max(len(x[2]) for x in rows)
        lines.append(f"{'benchmark':{w0}}  {'ours':>{w1}}  {'vs reference':{w2}}  vs PyTorch")
        for name, val, ref, vs, flag in rows:
            lines.append(f"{name[:w0]:{w0}}  {val:>{w1}}  {ref:{w2}}  {vs} {flag}".rstrip())
    leftover = [k for k in torch if k not in used_torch]
    if leftover:
        lines.append("PyTorch only: " + "; ".join(
            f"{n}/{a} {fmt_value(torch[(n, a)])}" for n, a in leftover[:12]))
    # Benchmarks that did not run, grouped by message (no GPU makes every one say the same).
    by_message = {}
    for name, message in errors:
        by_message.setdefault(message, []).append(name)
    for message, names in list(by_message.items())[:8]:
        what = names[0] if len(names) == 1 else f"{len(names)} benchmarks ({names[0]}, ...)"
        lines.append(f"  skipped/error: {what}: {message}"[:220])
    return lines


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tests-log")
    p.add_argument("--tests-json")
    p.add_argument("--bench")
    p.add_argument("--torch")
    a = p.parse_args()
    test_lines, ok = tests_section(a.tests_log, a.tests_json)
    lines = ["=" * 30 + " GPU check " + "=" * 30] + test_lines + bench_section(a.bench, a.torch)
    print("\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # the table must never hide the phases' own output
        print(f"gpu_table.py: {type(e).__name__}: {e}")
        sys.exit(2)
