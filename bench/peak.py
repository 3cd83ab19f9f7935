"""The machine's GEMM peak, as `npm run bench` divides by it: numpy's matmul (OpenBLAS) of two
1024×1024 matrices with 2 BLAS threads, float32 and float64, best of several timed rounds.

    python bench/peak.py [--size 1024] [--threads 2] [--rounds 7] [--json]

A matmul of n×n by n×n is 2·n³ floating-point operations. The best round is the figure (the
machine is shared: slower rounds are other jobs, not the CPU); the median is printed beside it.
"""
import argparse
import json
import os
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--size", type=int, default=1024)
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--rounds", type=int, default=7)
parser.add_argument("--json", action="store_true")
args = parser.parse_args()

# the thread count must be fixed before numpy loads OpenBLAS
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(args.threads)
import numpy as np  # noqa: E402


def peak(dtype):
    n = args.size
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    c = a @ b  # warm-up: threads started, pages touched
    flop = 2.0 * n**3
    # each round repeats the product for about 0.2 s, so the clock's resolution does not matter
    t0 = time.perf_counter()
    c = a @ b
    once = time.perf_counter() - t0
    reps = max(1, int(0.2 / max(once, 1e-6)))
    rates = []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        for _ in range(reps):
            np.matmul(a, b, out=c)
        rates.append(flop * reps / (time.perf_counter() - t0) / 1e9)
    rates.sort()
    return {"best": rates[-1], "median": rates[len(rates) // 2], "rounds": len(rates), "reps": reps}


blas = "unknown BLAS"
try:
    cfg = np.show_config(mode="dicts")
    info = cfg["Build Dependencies"]["blas"]
    blas = f"{info.get('name')} {info.get('version')}"
except Exception:  # older numpy: no dict mode
    pass
report = {
    "size": args.size,
    "threads": args.threads,
    "numpy": np.__version__,
    "blas": blas,
    "float32": peak(np.float32),
    "float64": peak(np.float64),
}
if args.json:
    print(json.dumps(report))
else:
    for k in ("float32", "float64"):
        r = report[k]
        print(f"{k}: {r['best']:.1f} GFLOP/s best of {r['rounds']} (median {r['median']:.1f}), numpy {report['numpy']}, {blas}, {args.threads} threads, {args.size}²")
sys.stdout.flush()
