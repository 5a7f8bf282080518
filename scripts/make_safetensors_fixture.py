#!/usr/bin/env python3
"""Cross-checks softprompt's safetensors reader and writer against Hugging Face's.

    pip install safetensors numpy

Generate (writes the committed fixture that tests/unit/safetensors_test.cpp reads):
    python3 scripts/make_safetensors_fixture.py [--out tests/fixtures/safetensors_reference.safetensors]

Verify a file written by our writer (the unit test Safetensors.export_for_python writes it
when SP_SAFETENSORS_EXPORT names a path):
    SP_SAFETENSORS_EXPORT=/tmp/ours.safetensors build/bin/sp_unit_tests \
        --gtest_filter=Safetensors.export_for_python
    python3 scripts/make_safetensors_fixture.py --verify /tmp/ours.safetensors

The values are chosen for their bit patterns (extremes, subnormals, signed zero,
infinity); the C++ test holds the same table.
"""
import argparse
import json
import struct
import sys
from pathlib import Path

import numpy as np
from safetensors import TensorSpec, deserialize, safe_open, serialize

# name -> (safetensors dtype, TensorSpec dtype, shape, numpy array holding the raw bytes)
FIXTURE = {
    "f32": ("F32", "float32", [2, 3],
            np.array([0.0, 1.5, -2.25, 3.4028234663852886e38, 1.401298464324817e-45, -0.0],
                     np.float32)),
    "bf16": ("BF16", "bfloat16", [4], np.array([0x3F80, 0xC020, 0x7F80, 0x0001], np.uint16)),
    "f16": ("F16", "float16", [3], np.array([1.0, 65504.0, 5.960464477539063e-08], np.float16)),
    "f64": ("F64", "float64", [2], np.array([3.141592653589793, -1e300], np.float64)),
    "i32": ("I32", "int32", [2, 2], np.array([-2147483648, -1, 0, 2147483647], np.int32)),
    "i64": ("I64", "int64", [3],
            np.array([-9223372036854775808, 42, 9223372036854775807], np.int64)),
    "bool": ("BOOL", "bool", [4], np.array([True, False, True, True], np.bool_)),
    "u8": ("U8", "uint8", [3], np.array([0, 127, 255], np.uint8)),
    "i8": ("I8", "int8", [3], np.array([-128, -1, 127], np.int8)),
    "i16": ("I16", "int16", [2], np.array([-32768, 32767], np.int16)),
    "u16": ("U16", "uint16", [2], np.array([0, 65535], np.uint16)),
    "u32": ("U32", "uint32", [2], np.array([0, 4294967295], np.uint32)),
    "u64": ("U64", "uint64", [2], np.array([0, 9223372036854775807], np.uint64)),
    # 1.0, -2.0, 448 (the largest finite E4M3FN), 2^-9 (the smallest subnormal)
    "f8_e4m3": ("F8_E4M3", "float8_e4m3fn", [4], np.array([0x38, 0xC0, 0x7E, 0x01], np.uint8)),
    # 1.0, 57344 (the largest finite E5M2), 2^-16 (the smallest subnormal)
    "f8_e5m2": ("F8_E5M2", "float8_e5m2", [3], np.array([0x3C, 0x7B, 0x01], np.uint8)),
    "scalar": ("F32", "float32", [], np.array([7.0], np.float32)),
    "empty": ("F32", "float32", [0, 3], np.zeros([0], np.float32)),
    "encoder.block.0.layer.0.SelfAttention.q.weight":
        ("F32", "float32", [2, 2], np.array([1.0, 2.0, 3.0, 4.0], np.float32)),
}
METADATA = {"format": "pt", "generator": "scripts/make_safetensors_fixture.py"}

# What our writer stores (the dtypes softprompt has); see Safetensors.export_for_python.
EXPORTED = ["bool", "bf16", "f32", "f16", "f64", "i32", "i64", "scalar", "empty",
            "encoder.block.0.layer.0.SelfAttention.q.weight"]


def generate(out: Path) -> None:
    arrays = {k: np.ascontiguousarray(v[3]) for k, v in FIXTURE.items()}
    specs = {
        k: TensorSpec(dtype=v[1], shape=v[2], data_ptr=arrays[k].ctypes.data,
                      data_len=arrays[k].nbytes)
        for k, v in FIXTURE.items()
    }
    blob = bytes(serialize(specs, metadata=METADATA))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(blob)
    print(f"wrote {out} ({len(blob)} bytes, {len(FIXTURE)} tensors)")


def verify(path: Path) -> int:
    blob = path.read_bytes()
    (n,) = struct.unpack("<Q", blob[:8])
    errors = []
    if n % 8:
        errors.append(f"header length {n} is not a multiple of 8")
    header = json.loads(blob[8:8 + n])
    if header.get("__metadata__", {}).get("format") != "pt":
        errors.append(f"__metadata__ is {header.get('__metadata__')}, expected format pt")
    names = [k for k in header if k != "__metadata__"]
    if names != EXPORTED:
        errors.append(f"header keys {names}, expected the writer's order {EXPORTED}")
    # The Rust parser validates offsets, sizes and the tiling of the buffer.
    tensors = dict(deserialize(blob))
    for name in EXPORTED:
        dtype, _, shape, values = FIXTURE[name]
        got = tensors.get(name)
        if got is None:
            errors.append(f"{name}: missing")
            continue
        if got["dtype"] != dtype or list(got["shape"]) != shape:
            errors.append(f"{name}: {got['dtype']} {got['shape']}, expected {dtype} {shape}")
        if bytes(got["data"]) != values.tobytes():
            errors.append(f"{name}: bytes {bytes(got['data']).hex()} != {values.tobytes().hex()}")
        start = header[name]["data_offsets"][0]
        width = values.itemsize if dtype != "BF16" else 2
        if (8 + n + start) % width:
            errors.append(f"{name}: data at file offset {8 + n + start} is not aligned to {width}")
    # And through the framework loader (numpy has no bfloat16).
    with safe_open(str(path), framework="numpy") as f:
        for name in EXPORTED:
            if FIXTURE[name][0] == "BF16":
                continue
            arr = f.get_tensor(name)
            want = FIXTURE[name][3].reshape(FIXTURE[name][2])
            if arr.shape != want.shape or arr.tobytes() != want.tobytes():
                errors.append(f"{name}: safe_open gave {arr!r}")
    for e in errors:
        print("MISMATCH", e)
    if not errors:
        print(f"OK: {path} read by safetensors: {len(EXPORTED)} tensors bit-exact, "
              f"header {n} bytes, aligned data")
    return 1 if errors else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path,
                    default=Path(__file__).resolve().parent.parent / "tests/fixtures/safetensors_reference.safetensors")
    ap.add_argument("--verify", type=Path, help="check a file written by softprompt instead")
    args = ap.parse_args()
    if args.verify:
        return verify(args.verify)
    generate(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
