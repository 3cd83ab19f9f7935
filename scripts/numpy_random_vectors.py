#!/usr/bin/env python3
"""Reference vectors for the numpy-compatible RandomState (crates/core/src/random.rs).

Regenerate (from the repository root):
    pip install numpy
    python3 scripts/numpy_random_vectors.py
which writes crates/core/tests/data/numpy_random.json, checked bit-exactly by
crates/core/tests/random_numpy.rs.

Encoding, chosen so that the Rust side needs no float parsing at all:
- every float64 is stored as its IEEE-754 bit pattern, an unsigned integer (`*_bits`);
- raw 32-bit MT19937 outputs come from `rs.randint(0, 2**32, dtype=np.uint64)`: with that
  range (rng == 0xFFFFFFFF) numpy's bounded-integer code returns `next_uint32` unmasked, so
  these are exactly the tempered generator outputs;
- the generator state is `rs.get_state()` = ('MT19937', key[624], pos, has_gauss, gauss),
  the same fields as `RandomStateSnapshot`.

A stream is a seed followed by operations replayed in order on one generator, so the gauss
cache and the stream position carry over between operations exactly as in numpy.
"""

import json
import os

import numpy as np

OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "core", "tests", "data", "numpy_random.json")


def bits(x):
    """float64 values -> list of their IEEE-754 bit patterns (C order)."""
    return np.ascontiguousarray(np.asarray(x, dtype=np.float64)).reshape(-1).view(np.uint64).tolist()


class Stream:
    """Records operations on one legacy RandomState."""

    def __init__(self, name, seed):
        self.rs = np.random.RandomState(seed)
        self.doc = {"name": name, "seed": seed, "ops": []}

    def raw32(self, n):
        out = self.rs.randint(0, 2**32, size=n, dtype=np.uint64)
        self.doc["ops"].append({"op": "raw32", "out": [int(v) for v in out]})

    def rand(self, n):
        self.doc["ops"].append({"op": "rand", "out_bits": bits(self.rs.rand(n))})

    def randn(self, *shape):
        self.doc["ops"].append({"op": "randn", "shape": list(shape), "out_bits": bits(self.rs.randn(*shape))})

    def choice_p(self, p, draws):
        p = np.asarray(p, dtype=np.float64)
        # One scalar draw per call, the way the course samples characters.
        out = [int(self.rs.choice(len(p), p=p)) for _ in range(draws)]
        self.doc["ops"].append({"op": "choice_p", "p_bits": bits(p), "out": out})

    def choice(self, n, draws):
        out = [int(self.rs.choice(n)) for _ in range(draws)]
        self.doc["ops"].append({"op": "choice", "n": n, "out": out})

    def shuffle(self, n):
        x = list(range(n))
        self.rs.shuffle(x)
        self.doc["ops"].append({"op": "shuffle", "n": n, "out": x})

    def randint(self, low, high, draws):
        out = [int(self.rs.randint(low, high, dtype=np.int64)) for _ in range(draws)]
        self.doc["ops"].append({"op": "randint", "low": low, "high": high, "out": out})

    def state(self):
        """Append the numpy state at this point (compared with RandomState::snapshot)."""
        name, key, pos, has_gauss, gauss = self.rs.get_state()
        assert name == "MT19937"
        self.doc["ops"].append({
            "op": "state", "key": [int(k) for k in key], "pos": int(pos),
            "has_gauss": bool(has_gauss), "gauss_bits": bits(gauss)[0],
        })


def softmax(z):
    e = np.exp(z - np.max(z))
    return e / e.sum()


def main():
    # Canonical MT19937 check (reference implementation, seed 5489).
    assert np.random.RandomState(5489).randint(0, 2**32, dtype=np.uint64) == 3499211612

    streams = []
    for seed in [0, 1, 2, 3, 42, 2**32 - 1]:
        s = Stream(f"basic seed {seed}", seed)
        s.raw32(10)
        s.rand(20)
        s.randn(3, 4)
        s.randn(3, 4)
        s.randn(5)       # odd count: leaves a cached gaussian
        s.randn(2, 3)    # starts from the cached one
        s.rand(3)        # uniform draws do not touch the cache
        s.randn(1)       # ... which is returned here
        streams.append(s.doc)

    # Interleaved uniform / normal / choice draws with the gauss cache live across them.
    s = Stream("interleaved", 3)
    s.rand(1); s.randn(1); s.rand(2); s.randn(3); s.rand(1); s.randn(1); s.randn(1)
    s.choice_p([0.2, 0.3, 0.5], 5)
    s.randn(1); s.rand(4); s.randn(7); s.raw32(3); s.randn(2)
    streams.append(s.doc)

    # choice with p: several probability vectors, 50 draws each.
    s = Stream("choice_p", 7)
    s.choice_p([0.1, 0.2, 0.3, 0.4], 50)
    s.choice_p([0.0, 0.5, 0.0, 0.5, 0.0], 50)              # zeros inside and at the ends
    s.choice_p([0.1] * 10, 50)                              # sums to 0.9999999999999999
    s.choice_p([1.0], 50)
    s.choice_p([0.0, 0.0, 1.0], 50)
    s.choice_p([0.25, 0.25, 0.25, 0.25 + 1e-9], 50)        # within atol: cdf renormalised
    s.choice_p(softmax(np.random.RandomState(11).randn(27)), 50)   # the course's character sampling
    s.choice_p(softmax(np.random.RandomState(12).randn(27) * 5.0), 50)
    s.choice(27, 50)
    s.choice(1, 5)
    s.randn(1)
    s.choice_p([0.5, 0.5], 10)
    s.randn(1)
    streams.append(s.doc)

    # The course's per-character sampling: reseed, then one choice.
    s = Stream("course sample", 0)
    p = softmax(np.random.RandomState(5).randn(27))
    s.choice_p(p, 1)
    streams.append(s.doc)

    # shuffle of list(range(n)).
    s = Stream("shuffle", 0)
    for n in [0, 1, 2, 10, 100, 1000]:
        s.shuffle(n)
    s.randn(1)
    s.shuffle(10)
    s.randn(1)
    streams.append(s.doc)

    # randint: 32-bit masked ranges, rng == 0 (no draw), the raw 32-bit range, 64-bit ranges.
    s = Stream("randint", 5)
    s.randint(0, 10, 20)
    s.randint(-5, 5, 20)
    s.randint(0, 1, 5)
    s.randint(3, 4, 5)
    s.randint(0, 7, 20)
    s.randint(0, 1000, 20)
    s.randint(0, 2**32, 10)
    s.randint(-(2**31), 2**31, 10)
    s.randint(0, 2**32 + 1, 10)
    s.randint(-(2**40), 2**40, 10)
    s.randint(0, 2**62 + 12345, 10)
    s.randint(-(2**63), 2**63 - 1, 10)
    s.randint(-(2**63), -(2**63) + 3, 10)
    s.raw32(2)
    streams.append(s.doc)

    # State compatible with get_state(), mid-stream, with and without a cached gaussian.
    s = Stream("state", 42)
    s.state()
    s.randn(3)
    s.state()
    s.rand(700)      # crosses a regeneration of the 624-word key
    s.state()
    s.randn(1)
    s.state()
    s.randn(2)
    streams.append(s.doc)

    # The course: Dinosaurus initialize_parameters(n_a=50, n_x=27, n_y=27), then the shuffle
    # of the 1536 dinosaur names.
    np.random.seed(1)
    wax = np.random.randn(50, 27) * 0.01
    waa = np.random.randn(50, 50) * 0.01
    wya = np.random.randn(27, 50) * 0.01
    course_init = {
        "seed": 1,
        "wax_shape": [50, 27], "wax_bits": bits(wax),
        "waa_shape": [50, 50], "waa_bits": bits(waa),
        "wya_shape": [27, 50], "wya_bits": bits(wya),
        # numpy's pairwise sums, for a human-readable cross-check (Rust compares within 1e-12).
        "sums_bits": bits([wax.sum(), waa.sum(), wya.sum()]),
    }
    np.random.seed(0)
    examples = list(range(1536))
    np.random.shuffle(examples)
    course_shuffle = {"seed": 0, "n": 1536, "out": examples}

    # Probability vectors: does numpy accept them?  (Rust must agree.)
    p_cases = [
        [0.5, 0.5], [0.5, 0.5 + 1e-8], [0.5, 0.5 + 2e-8], [0.5, 0.5 - 1e-8], [0.5, 0.5 - 2e-8],
        [1.0], [0.1] * 10, [0.6, 0.6], [0.3, 0.3], [1.5, -0.5], [0.0, 1.0, -0.0],
    ]
    p_valid = []
    for p in p_cases:
        try:
            np.random.RandomState(0).choice(len(p), p=np.asarray(p, dtype=np.float64))
            ok = True
        except ValueError:
            ok = False
        p_valid.append({"p_bits": bits(p), "valid": ok})

    doc = {
        "numpy_version": np.__version__,
        "streams": streams,
        "course_init": course_init,
        "course_shuffle": course_shuffle,
        "p_valid": p_valid,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {os.path.normpath(OUT)} ({os.path.getsize(OUT)} bytes, numpy {np.__version__})")


if __name__ == "__main__":
    main()
