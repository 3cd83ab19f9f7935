"""PyTorch side of the jazz benchmark (issue 5, item 8): the course's djmodel — one LSTM cell
(n_a = 64) shared across Tx = 30 steps, a shared Dense softmax over n_values, categorical
cross-entropy summed over the 30 outputs (each the batch mean), Adam(lr 0.01, beta 0.9/0.999,
eps 1e-7) with Keras-style time decay lr / (1 + 0.01 k), 100 full-batch epochs (m = 60).

Only speed matters here, so the data are random: a random corpus of value indices, m windows
of Tx values built as the course does (first input a zero vector, Y = X shifted by one, the
last target all zeros). CPU only, torch.set_num_threads(--threads), default 2.

Setup (a venv outside the repo, for the benchmark only):
    python3 -m venv /work/venv-torch && /work/venv-torch/bin/pip install torch numpy
    /work/venv-torch/bin/python bench/jazz/torch_djmodel.py [--n-values 90] [--json]
"""
import argparse
import json
import time

import torch
import torch.nn as nn

from windows import make_windows


class DJModel(nn.Module):
    def __init__(self, n_values, n_a):
        super().__init__()
        self.n_a = n_a
        self.cell = nn.LSTMCell(n_values, n_a)
        self.dense = nn.Linear(n_a, n_values)
        # Keras' defaults: Glorot-uniform kernels, zero biases, forget-gate bias 1
        # (PyTorch gate order i, f, g, o).
        with torch.no_grad():
            for w in (self.cell.weight_ih, self.cell.weight_hh, self.dense.weight):
                nn.init.xavier_uniform_(w)
            self.cell.bias_ih.zero_()
            self.cell.bias_hh.zero_()
            self.cell.bias_ih[n_a:2 * n_a] = 1.0
            self.dense.bias.zero_()

    def forward(self, X):  # X: (m, Tx, n_values) -> logits (Tx, m, n_values)
        m, tx, _ = X.shape
        a = X.new_zeros(m, self.n_a)
        c = X.new_zeros(m, self.n_a)
        out = []
        for t in range(tx):
            a, c = self.cell(X[:, t], (a, c))
            out.append(self.dense(a))
        return torch.stack(out)


def run(args):
    dtype = torch.float64 if args.dtype == "float64" else torch.float32
    torch.manual_seed(args.seed)
    Xn, Yn = make_windows(args.n_values, args.m, args.tx, args.seed)
    X = torch.tensor(Xn, dtype=dtype)
    Y = torch.tensor(Yn, dtype=dtype).transpose(0, 1)  # (Tx, m, n_values)
    model = DJModel(args.n_values, args.n_a).to(dtype)
    opt = torch.optim.Adam(model.parameters(), lr=0.01, betas=(0.9, 0.999), eps=1e-7)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 1.0 / (1.0 + 0.01 * k))
    losses, accs = [], []
    t0 = time.perf_counter()
    for _ in range(args.epochs):
        logits = model(X)
        # categorical cross-entropy per output (batch mean), summed over the Tx outputs
        loss = -(Y * torch.log_softmax(logits, -1)).sum(-1).mean(1).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        with torch.no_grad():
            hit = (logits.argmax(-1) == Y.argmax(-1)).to(dtype).mean()
        losses.append(loss.item())
        accs.append(hit.item())
    secs = time.perf_counter() - t0
    return {"seconds": secs, "loss_first": losses[0], "loss_last": losses[-1], "acc_last": accs[-1]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-values", type=int, default=90)
    ap.add_argument("--n-a", type=int, default=64)
    ap.add_argument("--tx", type=int, default=30)
    ap.add_argument("--m", type=int, default=60)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    r = run(args)
    r.update(peer="pytorch", version=torch.__version__, threads=args.threads, dtype=args.dtype, epochs=args.epochs, n_values=args.n_values)
    if args.json:
        print(json.dumps(r))
    else:
        print(f"pytorch {torch.__version__} {args.dtype}, {args.threads} threads: {args.epochs} epochs in {r['seconds']:.3f} s, "
              f"loss {r['loss_first']:.3f} -> {r['loss_last']:.3f}, accuracy {r['acc_last']:.3f}")


if __name__ == "__main__":
    main()
