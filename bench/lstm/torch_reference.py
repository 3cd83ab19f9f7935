"""PyTorch-layout reference for rnnlab's character model interop test.

Writes crates/core/tests/data/lm_torch_reference.json: small random models stored exactly as a
PyTorch `state_dict` of `nn.Embedding` + `nn.LSTM`/`nn.RNN` (num_layers=2) + `nn.Linear`
(names `embedding.weight`, `lstm.weight_ih_l{k}`, `lstm.weight_hh_l{k}`, `lstm.bias_ih_l{k}`,
`lstm.bias_hh_l{k}`, `output.weight`, `output.bias`; gate order i, f, g, o), and the logits
that PyTorch's documented equations give for a text, computed here in numpy float64:

    i = σ(W_ii x + b_ii + W_hi h + b_hi)    f = σ(W_if x + b_if + W_hf h + b_hf)
    g = tanh(W_ig x + b_ig + W_hg h + b_hg)  o = σ(W_io x + b_io + W_ho h + b_ho)
    c' = f ⊙ c + i ⊙ g                       h' = o ⊙ tanh(c')
    RNN: h' = tanh(W_ih x + b_ih + W_hh h + b_hh);   logits = W_out h_top + b_out

(torch.nn.LSTM / torch.nn.RNN documentation). rnnlab must load these tensors and reproduce the
logits. Regenerate with:  python3 bench/lstm/torch_reference.py   (needs numpy only)
"""
import json
import os

import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def logits(sd, cell, layers, text, vocab):
    idx = [vocab.index(ch) for ch in text]
    V = len(vocab)
    h = [np.zeros(sd[f"{cell}.weight_hh_l{k}"].shape[1]) for k in range(layers)]
    c = [np.zeros_like(x) for x in h]
    out = []
    for ix in idx:
        if "embedding.weight" in sd:
            x = sd["embedding.weight"][ix]
        else:
            x = np.zeros(V)
            x[ix] = 1.0
        for k in range(layers):
            z = sd[f"{cell}.weight_ih_l{k}"] @ x + sd[f"{cell}.bias_ih_l{k}"] + sd[f"{cell}.weight_hh_l{k}"] @ h[k] + sd[f"{cell}.bias_hh_l{k}"]
            if cell == "lstm":
                H = h[k].shape[0]
                i, f, g, o = sigmoid(z[:H]), sigmoid(z[H:2 * H]), np.tanh(z[2 * H:3 * H]), sigmoid(z[3 * H:])
                c[k] = f * c[k] + i * g
                h[k] = o * np.tanh(c[k])
            else:
                h[k] = np.tanh(z)
            x = h[k]
        out.append(sd["output.weight"] @ h[-1] + sd["output.bias"])
    return np.array(out)


def model(rng, cell, vocab, hidden, embedding):
    G = 4 if cell == "lstm" else 1
    sd = {}
    inp = len(vocab)
    if embedding:
        sd["embedding.weight"] = rng.standard_normal((len(vocab), embedding))
        inp = embedding
    for k, H in enumerate(hidden):
        b = 1.0 / np.sqrt(H)
        sd[f"{cell}.weight_ih_l{k}"] = rng.uniform(-b, b, (G * H, inp)) * 3
        sd[f"{cell}.weight_hh_l{k}"] = rng.uniform(-b, b, (G * H, H)) * 3
        sd[f"{cell}.bias_ih_l{k}"] = rng.uniform(-b, b, G * H)
        sd[f"{cell}.bias_hh_l{k}"] = rng.uniform(-b, b, G * H)
        inp = H
    sd["output.weight"] = rng.uniform(-1, 1, (len(vocab), inp))
    sd["output.bias"] = rng.uniform(-1, 1, len(vocab))
    return sd


def main():
    rng = np.random.RandomState(2024)
    vocab = "\n ,.STaehilnorst"
    text = "Shall I compare thee to a summer's day?".replace("'", "").replace("?", ".")
    text = "".join(ch for ch in text if ch in vocab)
    cases = []
    for cell, hidden, embedding in [("lstm", [7, 5], 0), ("lstm", [6, 6], 4), ("rnn", [7, 5], 0)]:
        sd = model(rng, cell, vocab, hidden, embedding)
        cases.append({
            "cell": cell,
            "vocab": vocab,
            "text": text,
            "tensors": {k: {"shape": list(v.shape), "data": v.ravel().tolist()} for k, v in sd.items()},
            "logits": logits(sd, cell, len(hidden), text, vocab).tolist(),
        })
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "..", "crates", "core", "tests", "data", "lm_torch_reference.json")
    with open(path, "w") as f:
        json.dump({"generator": "bench/lstm/torch_reference.py", "cases": cases}, f)
    print(f"wrote {os.path.normpath(path)}: {len(cases)} cases, text of {len(text)} characters")


if __name__ == "__main__":
    main()
