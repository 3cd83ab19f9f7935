"""Runs the jazz benchmark in one go: rnnlab (bench/jazz/rnnlab.js), PyTorch
(torch_djmodel.py; float32 and float64, each with 2 threads as the issue asks and with 1) and
Keras/TensorFlow (keras_djmodel.py), alternating round by round, and prints the median
training time of 100 epochs of each with the ratios to rnnlab and the load average.

    python3 bench/jazz/run.py [--rounds 5] [--keras-rounds 3] \
        [--torch-python /work/venv-torch/bin/python] [--tf-python /work/venv-tf/bin/python]

A peer whose interpreter is missing is skipped. Standard library only (the peers run in their
own venvs). NAPI_RS_NATIVE_LIBRARY_PATH is passed through to node, to time another addon build.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def load():
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_json(cmd):
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--keras-rounds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--torch-python", default="/work/venv-torch/bin/python")
    ap.add_argument("--tf-python", default="/work/venv-tf/bin/python")
    ap.add_argument("--midi", default=os.path.join(ROOT, "..", "shared", "data", "original_metheny.mid"))
    args = ap.parse_args()
    ep = ["--epochs", str(args.epochs)]

    first = run_json(["node", "bench/jazz/rnnlab.js", "--json", "--midi", args.midi] + ep)  # warm-up, gives n_values
    nv = ["--n-values", str(first["n_values"])]
    peers = {"rnnlab (NativeJazzModel.fit)": lambda: run_json(["node", "bench/jazz/rnnlab.js", "--json", "--midi", args.midi] + ep)}
    if os.path.exists(args.torch_python):
        t = [args.torch_python, "bench/jazz/torch_djmodel.py", "--json"] + nv + ep
        peers["pytorch float32, 2 threads"] = lambda: run_json(t + ["--threads", "2", "--dtype", "float32"])
        peers["pytorch float64, 2 threads"] = lambda: run_json(t + ["--threads", "2", "--dtype", "float64"])
        peers["pytorch float32, 1 thread"] = lambda: run_json(t + ["--threads", "1", "--dtype", "float32"])
        peers["pytorch float64, 1 thread"] = lambda: run_json(t + ["--threads", "1", "--dtype", "float64"])
    else:
        print(f"(no {args.torch_python}: PyTorch skipped)")
    if os.path.exists(args.tf_python):
        peers["keras float32, 2 threads"] = lambda: run_json([args.tf_python, "bench/jazz/keras_djmodel.py", "--json"] + nv + ep)
    else:
        print(f"(no {args.tf_python}: Keras skipped)")

    times = {k: [] for k in peers}
    extra = {"rnnlab (JazzImproviser.fit)": [], "keras after the first epoch": []}
    loads = [load()]
    print(f"n_values {first['n_values']}, corpus {first['corpus']}, {args.epochs} epochs, {args.rounds} rounds; load {loads[0]}", flush=True)
    for r in range(args.rounds):
        names = list(peers)
        if r % 2:
            names.reverse()
        for name in names:
            if name.startswith("keras") and r >= args.keras_rounds:
                continue
            res = peers[name]()
            times[name].append(res["seconds"])
            if name.startswith("rnnlab"):
                extra["rnnlab (JazzImproviser.fit)"].append(res["seconds_api"])
            if name.startswith("keras"):
                extra["keras after the first epoch"].append(res["seconds_after_first_epoch"])
            print(f"  round {r + 1} {name:30s} {res['seconds']:8.3f} s  loss {res['loss_first']:.2f} -> {res['loss_last']:.2f}  load {load()}", flush=True)
        loads.append(load())
    times.update({k: v for k, v in extra.items() if v})
    base = statistics.median(times["rnnlab (NativeJazzModel.fit)"])
    print(f"\nmedian seconds for {args.epochs} epochs (ratio = time / rnnlab's; > 1 means rnnlab is faster)")
    for name, ts in times.items():
        if not ts:
            continue
        med = statistics.median(ts)
        print(f"  {name:30s} {med:8.3f} s  x{med / base:7.2f}   (n={len(ts)}, min {min(ts):.3f}, max {max(ts):.3f})")
    print(f"load averages (1/5/15 min) before and after each round: {' | '.join(loads)}")


if __name__ == "__main__":
    sys.exit(main())
