"""numpy reference of rnnlab's GRU character model: forward, loss and every gradient.

Writes crates/core/tests/data/gru_reference.json, read by crates/core/tests/lm_gru_reference.rs.
Each case is a small stacked GRU character model (one-hot or embedding input, dense softmax
head, mean cross-entropy over the predicted characters) in PyTorch's `nn.GRU` layout and
equations (gates r, z, n in that row order):

    r = σ(W_ir x + b_ir + W_hr h + b_hr)        z = σ(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
    h' = (1 − z) ⊙ n + z ⊙ h                     logits = W_out h_top + b_out

on fixed seeds, with a non-zero initial state, many-to-many or many-to-one targets. The
gradients are derived by hand below (backpropagation through time, float64); the logits of a
text from a zero state check batch-1 generation.

    /work/venv-np/bin/python scripts/gru_reference.py      (needs numpy only)
"""
import json
import os

import numpy as np

VOCAB = "abcdefg\n"


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def make_model(rng, hidden, embedding):
    """PyTorch-named tensors, in rnnlab's tensor order."""
    V = len(VOCAB)
    sd = {}
    inp = V
    if embedding:
        sd["embedding.weight"] = rng.standard_normal((V, embedding))
        inp = embedding
    for k, H in enumerate(hidden):
        b = 2.0 / np.sqrt(H)  # twice PyTorch's bound: gates away from their linear regime
        sd[f"gru.weight_ih_l{k}"] = rng.uniform(-b, b, (3 * H, inp))
        sd[f"gru.weight_hh_l{k}"] = rng.uniform(-b, b, (3 * H, H))
        sd[f"gru.bias_ih_l{k}"] = rng.uniform(-b, b, 3 * H)
        sd[f"gru.bias_hh_l{k}"] = rng.uniform(-b, b, 3 * H)
        inp = H
    sd["output.weight"] = rng.uniform(-1, 1, (V, inp))
    sd["output.bias"] = rng.uniform(-1, 1, V)
    return sd


def layer_input(sd, ids):
    V = len(VOCAB)
    if "embedding.weight" in sd:
        return sd["embedding.weight"][ids]
    return np.eye(V)[ids]


def forward_backward(sd, hidden, ids, targets, h0, last_only):
    """ids: (T, B); targets: (T, B) or (B,); h0: per layer (B, H). Returns loss and grads."""
    T, B = ids.shape
    L = len(hidden)
    xs = layer_input(sd, ids)  # (T, B, I)
    cache = []  # per layer: inputs, h_prev, r, z, n, hn
    inp = xs
    for k in range(L):
        W_ih, W_hh = sd[f"gru.weight_ih_l{k}"], sd[f"gru.weight_hh_l{k}"]
        b_ih, b_hh = sd[f"gru.bias_ih_l{k}"], sd[f"gru.bias_hh_l{k}"]
        H = hidden[k]
        h = h0[k]
        outs, steps = [], []
        for t in range(T):
            gi = inp[t] @ W_ih.T + b_ih
            gh = h @ W_hh.T + b_hh
            r = sigmoid(gi[:, :H] + gh[:, :H])
            z = sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
            hn = gh[:, 2 * H:]
            n = np.tanh(gi[:, 2 * H:] + r * hn)
            steps.append((h, r, z, n, hn))
            h = (1 - z) * n + z * h
            outs.append(h)
        cache.append((inp, steps))
        inp = np.stack(outs)  # (T, B, H)
    top = inp[-1:] if last_only else inp  # (R_t, B, H)
    y = top.reshape(-1, top.shape[-1])
    tg = np.asarray(targets).reshape(-1)
    logits = y @ sd["output.weight"].T + sd["output.bias"]
    m = logits.max(axis=1, keepdims=True)
    p = np.exp(logits - m)
    p /= p.sum(axis=1, keepdims=True)
    R = y.shape[0]
    loss = -np.log(p[np.arange(R), tg]).mean()

    g = {name: np.zeros_like(v) for name, v in sd.items()}
    dlog = p.copy()
    dlog[np.arange(R), tg] -= 1
    dlog /= R
    g["output.weight"] = dlog.T @ y
    g["output.bias"] = dlog.sum(axis=0)
    dy = (dlog @ sd["output.weight"]).reshape(top.shape)
    dout = np.zeros_like(inp)
    if last_only:
        dout[-1] = dy[0]
    else:
        dout[:] = dy
    for k in reversed(range(L)):
        W_ih, W_hh = sd[f"gru.weight_ih_l{k}"], sd[f"gru.weight_hh_l{k}"]
        H = hidden[k]
        x, steps = cache[k]
        dx = np.zeros_like(x)
        dh_next = np.zeros((B, H))
        for t in reversed(range(T)):
            h_prev, r, z, n, hn = steps[t]
            dh = dout[t] + dh_next
            dn = dh * (1 - z) * (1 - n * n)           # through tanh
            dz = dh * (h_prev - n) * z * (1 - z)       # through σ
            dr = dn * hn * r * (1 - r)
            d_in = np.concatenate([dr, dz, dn], axis=1)       # input side: W_ih, b_ih, x
            d_hid = np.concatenate([dr, dz, dn * r], axis=1)  # hidden side: W_hh, b_hh, h
            g[f"gru.weight_ih_l{k}"] += d_in.T @ x[t]
            g[f"gru.bias_ih_l{k}"] += d_in.sum(axis=0)
            g[f"gru.weight_hh_l{k}"] += d_hid.T @ h_prev
            g[f"gru.bias_hh_l{k}"] += d_hid.sum(axis=0)
            dx[t] = d_in @ W_ih
            dh_next = dh * z + d_hid @ W_hh
        if k > 0:
            dout = dx
        elif "embedding.weight" in sd:
            np.add.at(g["embedding.weight"], ids.reshape(-1), dx.reshape(-1, dx.shape[-1]))
    return loss, g


def text_logits(sd, hidden, text):
    """Logits after each character of `text`, batch 1, zero initial state."""
    ids = np.array([[VOCAB.index(c)] for c in text])
    xs = layer_input(sd, ids)
    h = [np.zeros((1, H)) for H in hidden]
    out = []
    for t in range(len(text)):
        inp = xs[t]
        for k, H in enumerate(hidden):
            gi = inp @ sd[f"gru.weight_ih_l{k}"].T + sd[f"gru.bias_ih_l{k}"]
            gh = h[k] @ sd[f"gru.weight_hh_l{k}"].T + sd[f"gru.bias_hh_l{k}"]
            r = sigmoid(gi[:, :H] + gh[:, :H])
            z = sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
            n = np.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
            h[k] = (1 - z) * n + z * h[k]
            inp = h[k]
        out.append((inp @ sd["output.weight"].T + sd["output.bias"])[0])
    return np.array(out)


def case(seed, hidden, embedding, T, B, last_only):
    rng = np.random.RandomState(seed)
    sd = make_model(rng, hidden, embedding)
    V = len(VOCAB)
    ids = rng.randint(0, V, (T, B))
    targets = rng.randint(0, V, B if last_only else (T, B))
    h0 = [rng.uniform(-0.9, 0.9, (B, H)) for H in hidden]
    loss, grads = forward_backward(sd, hidden, ids, targets, h0, last_only)
    text = "abba\ncafe\ngade"
    return {
        "seed": seed,
        "hidden": hidden,
        "embedding": embedding or None,
        "t_len": T,
        "batch": B,
        "last_only": last_only,
        "tensors": {k: {"shape": list(v.shape), "data": v.ravel().tolist()} for k, v in sd.items()},
        "inputs": ids.ravel().tolist(),  # row t·B + b, as rnnlab's Workspace
        "targets": np.asarray(targets).ravel().tolist(),
        "h0": [h.ravel().tolist() for h in h0],
        "loss": float(loss),
        "grads": {k: v.ravel().tolist() for k, v in grads.items()},
        "text": text,
        "logits": text_logits(sd, hidden, text).tolist(),
    }


def main():
    cases = [
        case(1, [5, 4], 0, 4, 3, False),
        case(2, [6, 5], 3, 5, 2, True),
        case(3, [4, 4, 3], 3, 3, 4, False),
    ]
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "crates", "core", "tests", "data", "gru_reference.json")
    with open(path, "w") as f:
        json.dump({"generator": "scripts/gru_reference.py", "vocab": VOCAB, "cases": cases}, f)
    print(f"wrote {os.path.normpath(path)}: {len(cases)} cases")


if __name__ == "__main__":
    main()
