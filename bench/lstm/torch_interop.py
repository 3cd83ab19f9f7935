"""rnnlab ↔ PyTorch interop check on real torch modules (needs torch + safetensors).

    python bench/lstm/torch_interop.py check MODEL.safetensors   # a model from `rnnlab train`
    python bench/lstm/torch_interop.py reverse [lstm|gru]        # a PyTorch model sampled by rnnlab

`check` loads rnnlab's file with safetensors.torch into nn.Embedding/nn.LSTM (or nn.GRU,
nn.RNN)/nn.Linear built from the tensor names and shapes (names: embedding.weight,
lstm.weight_ih_l{k} or gru.… or rnn.…, ..., output.weight, output.bias; gate orders i, f, g, o
and r, z, n are PyTorch's own), runs a text through it in float64 and compares with the logits
rnnlab prints (bench/lstm/logits.js). `reverse` saves a random 2-layer PyTorch LSTM's (or GRU's)
state_dict (vocabulary in the metadata) and checks rnnlab's logits on it.
Not run on the build machine (torch is not installable there quickly); the same layout is
checked there by crates/core/tests/lm_interop.rs against numpy.
"""
import json
import subprocess
import sys
import tempfile

import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file

TEXT = "Shall I compare thee to a summer's day?"


class CharModel(nn.Module):
    def __init__(self, cell, vocab, hidden, layers, embedding):
        super().__init__()
        self.vocab = vocab
        if embedding:
            self.embedding = nn.Embedding(vocab, embedding)
        rnn = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[cell]
        setattr(self, cell, rnn(embedding or vocab, hidden, num_layers=layers))
        self.cell = cell
        self.output = nn.Linear(hidden, vocab)

    def forward(self, ids):  # ids: (T,) → logits (T, V)
        if hasattr(self, "embedding"):
            x = self.embedding(ids)
        else:
            x = torch.nn.functional.one_hot(ids, self.vocab).double()
        h, _ = getattr(self, self.cell)(x.unsqueeze(1))
        return self.output(h[:, 0])


def rnnlab_logits(path, text, vocab=None):
    args = ["node", "bench/lstm/logits.js", path, text] + ([vocab] if vocab else [])
    return json.loads(subprocess.check_output(args))


def from_state_dict(sd, vocab_size):
    cell = next(c for c in ("lstm", "gru", "rnn") if f"{c}.weight_hh_l0" in sd)
    layers = sum(1 for k in sd if k.startswith(f"{cell}.weight_hh_l"))
    hidden = sd[f"{cell}.weight_hh_l0"].shape[1]
    embedding = sd["embedding.weight"].shape[1] if "embedding.weight" in sd else 0
    m = CharModel(cell, vocab_size, hidden, layers, embedding).double()
    m.load_state_dict({k: v.double() for k, v in sd.items() if not k.startswith(("optim.", "rng.", "state.", "train."))})
    return m


def check(path):
    out = rnnlab_logits(path, TEXT)
    vocab = out["vocab"]
    text = "".join(c for c in TEXT if c in vocab)
    out = rnnlab_logits(path, text)
    m = from_state_dict(load_file(path), len(vocab))
    with torch.no_grad():
        ours = m(torch.tensor([vocab.index(c) for c in text]))
    diff = (ours - torch.tensor(out["logits"], dtype=torch.float64)).abs().max().item()
    print(f"rnnlab → PyTorch: max |Δlogit| = {diff:.2e}")
    assert diff < 1e-9, diff


def reverse(cell="lstm"):
    vocab = "".join(sorted(set(TEXT)))
    torch.manual_seed(0)
    m = CharModel(cell, len(vocab), 32, 2, 0).double()
    with tempfile.NamedTemporaryFile(suffix=".safetensors") as f:
        save_file({k: v.float().contiguous() for k, v in m.state_dict().items()}, f.name, metadata={"vocab": json.dumps(vocab)})
        out = rnnlab_logits(f.name, TEXT)
        m32 = from_state_dict(load_file(f.name), len(vocab))
    with torch.no_grad():
        ours = m32(torch.tensor([vocab.index(c) for c in TEXT]))
    diff = (ours - torch.tensor(out["logits"], dtype=torch.float64)).abs().max().item()
    print(f"PyTorch → rnnlab: max |Δlogit| = {diff:.2e}")
    assert diff < 1e-9, diff


if __name__ == "__main__":
    {"check": lambda: check(sys.argv[2]), "reverse": lambda: reverse(*sys.argv[2:3])}[sys.argv[1]]()
