"""PyTorch reference for rnnlab's GRU interop test (needs torch; run with /work/venv-torch).

Writes crates/core/tests/data/gru_torch_reference.json: small random models made by PyTorch
itself — nn.Embedding (optional) + torch.nn.GRU (num_layers=2) + nn.Linear, float64, fixed
seeds — as their state_dict (names `embedding.weight`, `<module>.weight_ih_l{k}`, …,
`output.weight`, `output.bias`; gates r, z, n) and the logits torch.nn.GRU gives for a text.
One model names its GRU module `gru` (rnnlab's own name), one `rnn` (a common name for a GRU
in PyTorch code: rnnlab reads the cell from the 3·H rows of weight_hh_l0).
crates/core/tests/lm_interop.rs loads these tensors into rnnlab and compares the logits.

    /work/venv-torch/bin/python bench/lstm/torch_gru_reference.py
"""
import json
import os

import torch
import torch.nn as nn

VOCAB = "\n ,.STaehilnorst"
TEXT = "Shall I compare thee to a summers day."


class CharGru(nn.Module):
    def __init__(self, module, vocab, hidden, layers, embedding):
        super().__init__()
        self.vocab = vocab
        if embedding:
            self.embedding = nn.Embedding(vocab, embedding)
        self.module_name = module
        setattr(self, module, nn.GRU(embedding or vocab, hidden, num_layers=layers))
        self.output = nn.Linear(hidden, vocab)

    def forward(self, ids):  # ids: (T,) → logits (T, V)
        if hasattr(self, "embedding"):
            x = self.embedding(ids)
        else:
            x = torch.nn.functional.one_hot(ids, self.vocab).double()
        h, _ = getattr(self, self.module_name)(x.unsqueeze(1))
        return self.output(h[:, 0])


def main():
    text = "".join(ch for ch in TEXT if ch in VOCAB)
    ids = torch.tensor([VOCAB.index(c) for c in text])
    cases = []
    for seed, module, hidden, embedding in [(0, "gru", 7, 0), (1, "rnn", 6, 4)]:
        torch.manual_seed(seed)
        m = CharGru(module, len(VOCAB), hidden, 2, embedding).double()
        with torch.no_grad():
            # spread the weights so every gate leaves its linear regime
            for name, p in m.named_parameters():
                if name.startswith(module):
                    p.mul_(3.0)
            logits = m(ids)
        cases.append({
            "cell": "gru",
            "module": module,
            "vocab": VOCAB,
            "text": text,
            "tensors": {k: {"shape": list(v.shape), "data": v.reshape(-1).tolist()} for k, v in m.state_dict().items()},
            "logits": logits.tolist(),
        })
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "..", "crates", "core", "tests", "data", "gru_torch_reference.json")
    with open(path, "w") as f:
        json.dump({"generator": "bench/lstm/torch_gru_reference.py", "torch": torch.__version__, "cases": cases}, f)
    print(f"wrote {os.path.normpath(path)}: {len(cases)} cases, text of {len(text)} characters")


if __name__ == "__main__":
    main()
