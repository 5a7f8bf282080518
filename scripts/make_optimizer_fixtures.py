#!/usr/bin/env python3
"""Reference trajectories for softprompt's optimizers (tests/unit/optim_test.cpp).

    pip install numpy jax optax safetensors
    python3 scripts/make_optimizer_fixtures.py [--out tests/fixtures/optim_reference.safetensors]

The references are optax's adafactor, adamw and sgd, run in float64 (jax x64) from float32
inputs. Every Adafactor trajectory is also recomputed with a NumPy transcription of T5X's
`Adafactor.apply_param_gradient` (t5x/adafactor.py, heuristic factoring rule) and the two
must agree before anything is written: optax and T5X compute the same update, including
momentum over the lr-scaled update and weight decay as (1 - rate) * param.

Inputs are not stored: parameters and gradients come from a 64-bit LCG that the C++ test
reproduces (lcg_values below), scaled and rounded to float32:
    init  = f32(lcg(seed) * init_scale)
    grad  = f32(lcg(seed * 1000 + step + 1) * grad_scales[step])    step = 0, 1, ...
with every `zero_every`-th gradient element set to 0 when zero_every > 0.
Stored (float32): "<case>/<param>/final" after all steps, "<case>/<param>/step<k>" after
update k (k = 1..steps) when the case sets store_steps, and "<case>/<param>/<slot>/step<k>"
for state slots (Adafactor v_row, v_col, v, m; AdamW m, v; SGD momentum) of at most 512
elements after every update, and of at most 4096 after the last. The case list (options, learning rates per step, shapes, seeds) is the JSON in
the header metadata under "cases".
"""
import argparse
import json
from pathlib import Path

import numpy as np

import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

MASK64 = (1 << 64) - 1
LCG_A = 6364136223846793005
LCG_C = 1442695040888963407
STATE_LIMIT = 4096
STEP_STATE_LIMIT = 512


def lcg_values(n, seed):
    """n values in [-1, 1): the sequence of tests/test_util.h's lcg_values."""
    s = (seed * LCG_A + LCG_C) & MASK64
    out = np.empty(n, np.float64)
    for i in range(n):
        s = (s * LCG_A + LCG_C) & MASK64
        out[i] = (s >> 11) / 9007199254740992.0 * 2.0 - 1.0
    return out


def make_param(p):
    n = int(np.prod(p["shape"], dtype=np.int64))
    return (lcg_values(n, p["seed"]) * p["init_scale"]).astype(np.float32).reshape(p["shape"])


def make_grad(p, step, scale):
    n = int(np.prod(p["shape"], dtype=np.int64))
    g = (lcg_values(n, p["seed"] * 1000 + step + 1) * scale).astype(np.float32)
    if p.get("zero_every", 0) > 0:
        g[:: p["zero_every"]] = 0.0
    return g.reshape(p["shape"])


# --- NumPy transcription of T5X's Adafactor (heuristic rule: whole-parameter RMS) -------
def t5x_factored_dims(shape, o):
    if not o["factored"] or len(shape) < 2:
        return None
    sorted_dims = np.argsort(shape, kind="stable")
    if shape[sorted_dims[-2]] < o["min_dim_size_to_factor"]:
        return None
    return int(sorted_dims[-2]), int(sorted_dims[-1])


def t5x_step(step, lr, o, param, state, grad):
    # T5X (and optax) evaluate the decay in float32 whatever the parameter's dtype.
    t = np.float32(step - o["step_offset"]) + np.float32(1.0)
    decay = float(np.float32(1.0) - t ** np.float32(-o["decay_rate"]))
    update_scale = lr
    if o["multiply_by_parameter_scale"]:
        update_scale *= max(np.sqrt(np.mean(param * param)), o["epsilon2"])
    mixing = 1.0 - decay
    grad_sqr = grad * grad + o["epsilon1"]
    dims = t5x_factored_dims(param.shape, o)
    new = {}
    if dims is not None:
        d1, d0 = dims
        new["v_row"] = decay * state["v_row"] + mixing * np.mean(grad_sqr, axis=d0)
        new["v_col"] = decay * state["v_col"] + mixing * np.mean(grad_sqr, axis=d1)
        reduced_d1 = d1 - 1 if d1 > d0 else d1
        row_col_mean = np.mean(new["v_row"], axis=reduced_d1, keepdims=True)
        row_factor = (new["v_row"] / row_col_mean) ** -0.5
        col_factor = new["v_col"] ** -0.5
        y = grad * np.expand_dims(row_factor, d0) * np.expand_dims(col_factor, d1)
    else:
        new["v"] = decay * state["v"] + mixing * grad_sqr
        y = grad * new["v"] ** -0.5
    if o["clipping_threshold"] is not None:
        y = y / max(1.0, np.sqrt(np.mean(y * y)) / o["clipping_threshold"])
    subtrahend = update_scale * y
    if o["beta1"] is not None:
        new["m"] = o["beta1"] * state["m"] + (1.0 - o["beta1"]) * subtrahend
        subtrahend = new["m"]
    if o["weight_decay_rate"] is not None:
        return (1.0 - o["weight_decay_rate"]) * param - subtrahend, new
    return param - subtrahend, new


def t5x_init(shape, o):
    state = {}
    dims = t5x_factored_dims(shape, o)
    if dims is not None:
        d1, d0 = dims
        state["v_row"] = np.zeros(np.delete(shape, d0))
        state["v_col"] = np.zeros(np.delete(shape, d1))
    else:
        state["v"] = np.zeros(shape)
    if o["beta1"] is not None:
        state["m"] = np.zeros(shape)
    return state


# --- optax ---------------------------------------------------------------------------
def optax_transform(case):
    lrs = jnp.asarray(case["lrs"], jnp.float64)
    schedule = lambda count: lrs[count]  # noqa: E731
    o = case["options"]
    if case["optimizer"] == "adafactor":
        return optax.adafactor(
            learning_rate=schedule, min_dim_size_to_factor=o["min_dim_size_to_factor"],
            decay_rate=o["decay_rate"], decay_offset=o["step_offset"],
            multiply_by_parameter_scale=o["multiply_by_parameter_scale"],
            clipping_threshold=o["clipping_threshold"], momentum=o["beta1"],
            dtype_momentum=jnp.float64, weight_decay_rate=o["weight_decay_rate"],
            eps=o["epsilon1"], factored=o["factored"])
    if case["optimizer"] == "adamw":
        return optax.adamw(learning_rate=schedule, b1=o["beta1"], b2=o["beta2"], eps=o["eps"],
                           weight_decay=o["weight_decay"])
    if case["optimizer"] == "sgd":
        return optax.chain(
            optax.add_decayed_weights(o["weight_decay"]),
            optax.sgd(learning_rate=schedule, momentum=o["momentum"] or None,
                      nesterov=o["nesterov"]))
    raise ValueError(case["optimizer"])


def optax_states(opt_state, names):
    """Per-parameter state slots under softprompt's names."""
    out = {n: {} for n in names}
    for s in jax.tree_util.tree_leaves(opt_state, is_leaf=lambda x: hasattr(x, "_fields")):
        if not hasattr(s, "_fields"):
            continue
        kind = type(s).__name__
        fields = {
            "FactoredState": {"v_row": "v_row", "v_col": "v_col", "v": "v"},
            "EmaState": {"ema": "m"},
            "ScaleByAdamState": {"mu": "m", "nu": "v"},
            "TraceState": {"trace": "momentum"},
        }.get(kind, {})
        for field, slot in fields.items():
            tree = getattr(s, field)
            for n in names:
                out[n][slot] = np.asarray(tree[n])
    return out


def run_case(case, tensors):
    names = [p["name"] for p in case["params"]]
    params = {p["name"]: jnp.asarray(make_param(p), jnp.float64) for p in case["params"]}
    tx = optax_transform(case)
    opt_state = tx.init(params)
    is_adafactor = case["optimizer"] == "adafactor"
    if is_adafactor:
        o = case["options"]
        t5x_params = {n: np.asarray(params[n]) for n in names}
        t5x_states = {p["name"]: t5x_init(tuple(p["shape"]), o) for p in case["params"]}
    for step in range(case["steps"]):
        grads = {p["name"]: jnp.asarray(make_grad(p, step, case["grad_scales"][step]), jnp.float64)
                 for p in case["params"]}
        updates, opt_state = tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        states = optax_states(opt_state, names)
        if is_adafactor:
            for n in names:
                t5x_params[n], t5x_states[n] = t5x_step(step, case["lrs"][step], o, t5x_params[n],
                                                        t5x_states[n], np.asarray(grads[n]))
                np.testing.assert_allclose(np.asarray(params[n]), t5x_params[n], rtol=1e-8, atol=1e-12,
                                           err_msg=f"{case['name']}/{n} optax vs T5X step {step + 1}")
                # optax keeps (1,)-shaped placeholders for slots a parameter does not use.
                for slot, v in t5x_states[n].items():
                    np.testing.assert_allclose(states[n][slot], v, rtol=1e-8, atol=1e-30,
                                               err_msg=f"{case['name']}/{n}/{slot}")
                states[n] = {k: v for k, v in states[n].items() if k in t5x_states[n]}
        for n in names:
            if case["store_steps"]:
                tensors[f"{case['name']}/{n}/step{step + 1}"] = np.asarray(params[n], np.float32)
            last = step + 1 == case["steps"]
            for slot, v in states[n].items():
                if v.size <= (STATE_LIMIT if last else STEP_STATE_LIMIT):
                    tensors[f"{case['name']}/{n}/{slot}/step{step + 1}"] = np.asarray(v, np.float32)
    for n in names:
        tensors[f"{case['name']}/{n}/final"] = np.asarray(params[n], np.float32)


def adafactor_options(**kw):
    o = dict(factored=True, multiply_by_parameter_scale=True, beta1=None, decay_rate=0.8,
             step_offset=0, clipping_threshold=1.0, weight_decay_rate=None,
             min_dim_size_to_factor=128, epsilon1=1e-30, epsilon2=1e-3)
    o.update(kw)
    return o


def param(name, shape, seed, init_scale=0.5, zero_every=0):
    return dict(name=name, shape=list(shape), seed=seed, init_scale=init_scale, zero_every=zero_every)


def cases():
    out = []
    # T5X defaults: a factored [160, 130] matrix (a0 = 0), a [100, 64] prompt (100 < 128:
    # not factored), a vector with zero gradients, a scalar.
    out.append(dict(
        name="adafactor_default", optimizer="adafactor", options=adafactor_options(), steps=5,
        lrs=[1e-2] * 5, grad_scales=[1.0] * 5, store_steps=False,
        params=[param("w", [160, 130], 1), param("prompt", [100, 64], 2),
                param("bias", [50], 3, zero_every=7), param("scalar", [], 4)]))
    # The paper's prompt tuning: lr 0.3, no parameter scaling, weight decay 1e-5.
    out.append(dict(
        name="adafactor_prompt_tuning", optimizer="adafactor",
        options=adafactor_options(multiply_by_parameter_scale=False, weight_decay_rate=1e-5),
        steps=5, lrs=[0.3] * 5, grad_scales=[1.0] * 5, store_steps=False,
        params=[param("prompt", [100, 64], 5)]))
    # Factoring geometry with min_dim_size_to_factor 16: a0 first or second, a tie (a0 is the
    # later axis), rank 3 with the batch axis before, between and after the factored ones.
    geometry = [param("tall", [40, 24], 11), param("wide", [24, 40], 12), param("tie", [32, 32], 13),
                param("r3_lead", [3, 20, 18], 14), param("r3_mid", [20, 3, 18], 15),
                param("r3_rev", [18, 4, 20], 16), param("r3_tail", [20, 18, 3], 17),
                param("small", [20, 8], 18), param("vec", [30], 19)]
    out.append(dict(
        name="adafactor_geometry", optimizer="adafactor",
        options=adafactor_options(min_dim_size_to_factor=16), steps=5,
        lrs=[1e-2, 2e-2, 3e-2, 2e-2, 1e-2], grad_scales=[1.0, 0.5, 2.0, 1.0, 0.25], store_steps=False,
        params=geometry))
    few = [param("tall", [40, 24], 21), param("r3_mid", [20, 3, 18], 22), param("vec", [30], 23, zero_every=5)]
    # Momentum over the lr-scaled update (a changing lr shows it), weight decay, no scaling.
    out.append(dict(
        name="adafactor_beta1_wd", optimizer="adafactor",
        options=adafactor_options(min_dim_size_to_factor=16, beta1=0.9, weight_decay_rate=1e-3,
                                  multiply_by_parameter_scale=False), steps=5,
        lrs=[0.1, 0.05, 0.2, 0.1, 0.3], grad_scales=[1.0] * 5, store_steps=True, params=few))
    # Gradients 100x larger than the history: update clipping is active at steps 3-4.
    out.append(dict(
        name="adafactor_clipping", optimizer="adafactor",
        options=adafactor_options(min_dim_size_to_factor=16, decay_rate=0.5), steps=5,
        lrs=[1e-2] * 5, grad_scales=[1.0, 1.0, 100.0, 100.0, 0.01], store_steps=True, params=few))
    # No clipping, no factoring, beta1 0 (momentum state that only holds the last update).
    out.append(dict(
        name="adafactor_unfactored_noclip", optimizer="adafactor",
        options=adafactor_options(factored=False, clipping_threshold=None, beta1=0.0), steps=5,
        lrs=[1e-2] * 5, grad_scales=[1.0, 1.0, 100.0, 100.0, 0.01], store_steps=True, params=few))
    small = [param("w", [40, 24], 31), param("vec", [30], 32)]
    out.append(dict(
        name="adamw", optimizer="adamw",
        options=dict(beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01), steps=5,
        lrs=[1e-3, 2e-3, 3e-3, 2e-3, 1e-3], grad_scales=[1.0, 0.5, 2.0, 1.0, 0.1], store_steps=True,
        params=small))
    out.append(dict(
        name="sgd_momentum", optimizer="sgd", options=dict(momentum=0.9, nesterov=False, weight_decay=0.0),
        steps=5, lrs=[0.1, 0.1, 0.05, 0.05, 0.01], grad_scales=[1.0] * 5, store_steps=True, params=small))
    out.append(dict(
        name="sgd_nesterov_wd", optimizer="sgd", options=dict(momentum=0.8, nesterov=True, weight_decay=1e-2),
        steps=5, lrs=[0.1, 0.1, 0.05, 0.05, 0.01], grad_scales=[1.0] * 5, store_steps=True, params=small))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "tests/fixtures/optim_reference.safetensors"))
    args = ap.parse_args()
    all_cases = cases()
    tensors = {}
    for case in all_cases:
        run_case(case, tensors)
    meta = {"cases": json.dumps(all_cases), "generator": "scripts/make_optimizer_fixtures.py",
            "optax": optax.__version__, "jax": jax.__version__}
    save_file(tensors, args.out, metadata=meta)
    size = Path(args.out).stat().st_size
    print(f"wrote {args.out}: {len(tensors)} tensors, {size} bytes")


if __name__ == "__main__":
    main()
