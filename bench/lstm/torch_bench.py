"""PyTorch side of the Shakespeare benchmark (same model and data as bench/lstm/bench.js):
nn.LSTM(V, 128, num_layers=2, dropout) on one-hot input + Dropout + nn.Linear, float32,
sequences of 40, batches of 128, Adam(lr 0.002), clip by value 5, 2 threads (--threads N).

Modes: 'windows' (many-to-one: the course's Keras model, predict the char after each window
of 40 taken every 3) and 'tbptt' (many-to-many: 128 streams, chunks of 40, state carried).
Reports training chars/s (input characters processed) per second of wall clock and per second
of this process's CPU time, the validation loss (nats/char, the last 10 % of the text) reached
in the wall-clock budget, and sampling chars/s (batch 1). `--cell gru` runs nn.GRU layers
instead (rnnlab's `--cell gru`, bench/lstm/bench.js --cell gru).

Setup (CPU wheels; PyPI's default Linux wheel pulls several GB of CUDA libraries):
    python3 -m venv bench/.venv && bench/.venv/bin/pip install numpy torch
    bench/.venv/bin/python bench/lstm/torch_bench.py --seconds 20
The state_dict names match rnnlab's export (embedding/lstm/output), so
`model.load_state_dict(safetensors.torch.load_file('model.safetensors'), strict=False)` loads
a model trained by `rnnlab train`.
"""
import argparse
import math
import os
import time

import numpy as np
import torch
import torch.nn as nn


class CharLSTM(nn.Module):
    def __init__(self, vocab, hidden=128, layers=2, dropout=0.2, cell="lstm"):
        super().__init__()
        self.vocab = vocab
        self.cell = cell
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        setattr(self, cell, rnn(vocab, hidden, num_layers=layers, dropout=dropout))
        self.drop = nn.Dropout(dropout)
        self.output = nn.Linear(hidden, vocab)

    def forward(self, x, state=None):  # x: (T, B) int64
        onehot = torch.nn.functional.one_hot(x, self.vocab).float()
        h, state = getattr(self, self.cell)(onehot, state)
        return self.output(self.drop(h)), state


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--cell", choices=["lstm", "gru"], default="lstm")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    ap.add_argument("--text", default=os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "shakespeare.txt"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    text = open(args.text, encoding="utf8").read()
    chars = sorted(set(text))
    data = torch.tensor([chars.index(c) for c in text], dtype=torch.long)
    n_val = round(len(data) * 0.1)
    train, val = data[:-n_val], data[-n_val:]
    V, T, B = len(chars), 40, 128
    for mode in ["windows", "tbptt"]:
        model = CharLSTM(V, cell=args.cell)
        opt = torch.optim.Adam(model.parameters(), lr=0.002)
        loss_fn = nn.CrossEntropyLoss()
        t0, cpu0, steps, seen = time.time(), time.process_time(), 0, 0
        starts = np.arange(0, len(train) - T, 3)
        L = len(train) // B
        state, j = None, 0
        rng = np.random.RandomState(0)
        order = rng.permutation(starts)
        while time.time() - t0 < args.seconds:
            model.train()
            if mode == "windows":
                k = (steps * B) % (len(order) - B)
                s = order[k:k + B]
                x = torch.stack([train[i:i + T] for i in s], 1)
                y = torch.stack([train[i + T] for i in s])
                logits, _ = model(x)
                loss = loss_fn(logits[-1], y)
            else:
                if j + T + 1 > L:
                    j, state = 0, None
                x = torch.stack([train[b * L + j:b * L + j + T] for b in range(B)], 1)
                y = torch.stack([train[b * L + j + 1:b * L + j + T + 1] for b in range(B)], 1)
                logits, state = model(x, state)
                state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
                loss = loss_fn(logits.reshape(-1, V), y.reshape(-1))
                j += T
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_value_(model.parameters(), 5.0)
            opt.step()
            steps += 1
            seen += T * B
        secs, cpu = time.time() - t0, time.process_time() - cpu0
        model.eval()
        with torch.no_grad():
            if mode == "windows":
                s = np.arange(0, len(val) - T, 3)
                x = torch.stack([val[i:i + T] for i in s], 1)
                y = torch.stack([val[i + T] for i in s])
                vl = loss_fn(model(x)[0][-1], y).item()
            else:
                x, y = val[:-1].unsqueeze(1), val[1:].unsqueeze(1)
                vl = loss_fn(model(x)[0].reshape(-1, V), y.reshape(-1)).item()
        print(f"train {mode:7s}: {seen / secs:.0f} chars/s, {seen / cpu:.0f} chars/cpu-s, {steps} steps in {secs:.1f} s ({cpu:.1f} cpu-s), validation {vl:.4f} nats/char")
    # sampling, batch 1, temperature 0.8
    n = 2000
    with torch.no_grad():
        x = torch.tensor([[chars.index("S")]])
        state, t0 = None, time.time()
        for _ in range(n):
            logits, state = model(x, state)
            p = torch.softmax(logits[0, 0] / 0.8, 0)
            x = torch.multinomial(p, 1).view(1, 1)
        print(f"sample         : {n / (time.time() - t0):.0f} chars/s (batch 1, temperature 0.8)")


if __name__ == "__main__":
    main()
