#!/usr/bin/env python3
"""Dinosaurus Island, the deeplearning.ai Sequence Models week-1 character-level language model,
in plain numpy exactly as the course writes it (utils.py + the graded functions `clip`, `sample`,
`optimize`, `model`). It is the reference for the Rust `DinoTrainer` (crates/core/src/dinos/trainer.rs):
traces, unit-test values and the speed baseline. Never a runtime dependency of rnnlab.

Output format (plain, the one the Rust side prints too; the course's extra blank lines dropped):

    Iteration: 0, Loss: 23.087336
    Nkzxwtdmfqoeyhsqwasjkjvu
    ... (one line per sampled name, --names lines)

A name is printed as the course's `print_sample` prints it: the sampled characters joined,
first character upper-cased, including the terminating '\\n' that `sample` always ends with
(so in the rare case a 50-character sample itself ends in '\\n', an empty line follows).

Usage:
    python bench/dinos/reference.py --data ../shared/data/dinos_course.txt \\
        --iterations 35000 --hidden 50 --seed 0 --every 2000 --names 7
    python bench/dinos/reference.py --unit-tests        # course unit-test values as JSON

Regenerate the test data (from the repository root):
    python bench/dinos/reference.py --data ../shared/data/dinos_course.txt --iterations 35000 \\
        > crates/core/tests/data/dinos_course_trace.txt
    python bench/dinos/reference.py --data ../shared/data/dinos.txt --iterations 6001 \\
        --hidden 30 --seed 3 --every 1000 > crates/core/tests/data/dinos_h30_s3_trace.txt
    python bench/dinos/reference.py --unit-tests > crates/core/tests/data/dinos_unit.json

The committed data come from numpy 2.4 (OpenBLAS 0.3.31, SkylakeX kernels) on an AVX-512
x86-64 machine. numpy's float64 exp, its BLAS summation order and (without FMA) its tanh
depend on the CPU, so regenerating elsewhere can change the last bits and, after ~14 000
iterations, the trace; the Rust side reproduces this machine's numpy (see crates/core/src/dinos/mod.rs).
`--libm` swaps in the C library's exp/tanh to show how far a trace survives such changes.

`--seed` is the shuffle seed of the examples (the course's `np.random.seed(0)`); the
parameters are always initialised after `np.random.seed(1)` as in the course.
"""
import argparse
import json
import sys
import time

import numpy as np


# The two transcendental functions that feed back into training. numpy's own (SIMD; Intel
# SVML for exp on AVX-512 machines) differ from the C library's in the last bit for a few
# percent of arguments; `--libm` swaps in the C library's, to measure how far a trace
# survives such last-bit differences (see the Rust side's notes in crates/core/src/dinos/mod.rs).
exp, tanh = np.exp, np.tanh


def use_libm():
    import math
    global exp, tanh
    vexp, vtanh = np.vectorize(math.exp, otypes=[float]), np.vectorize(math.tanh, otypes=[float])
    exp, tanh = (lambda x: vexp(x)), (lambda x: vtanh(x))


# ---------------------------------------------------------------- utils.py (course)
def softmax(x):
    e_x = exp(x - np.max(x))
    return e_x / e_x.sum(axis=0)


def smooth(loss, cur_loss):
    return loss * 0.999 + cur_loss * 0.001


def sample_text(sample_ix, ix_to_char):
    txt = ''.join(ix_to_char[ix] for ix in sample_ix)
    return txt[0].upper() + txt[1:]  # capitalize first character


def get_initial_loss(vocab_size, seq_length):
    return -np.log(1.0 / vocab_size) * seq_length


def initialize_parameters(n_a, n_x, n_y):
    np.random.seed(1)
    Wax = np.random.randn(n_a, n_x) * 0.01  # input to hidden
    Waa = np.random.randn(n_a, n_a) * 0.01  # hidden to hidden
    Wya = np.random.randn(n_y, n_a) * 0.01  # hidden to output
    b = np.zeros((n_a, 1))  # hidden bias
    by = np.zeros((n_y, 1))  # output bias
    return {"Wax": Wax, "Waa": Waa, "Wya": Wya, "b": b, "by": by}


def rnn_step_forward(parameters, a_prev, x):
    Waa, Wax, Wya, by, b = parameters['Waa'], parameters['Wax'], parameters['Wya'], parameters['by'], parameters['b']
    a_next = tanh(np.dot(Wax, x) + np.dot(Waa, a_prev) + b)  # hidden state
    p_t = softmax(np.dot(Wya, a_next) + by)  # probabilities for next chars
    return a_next, p_t


def rnn_step_backward(dy, gradients, parameters, x, a, a_prev):
    gradients['dWya'] += np.dot(dy, a.T)
    gradients['dby'] += dy
    da = np.dot(parameters['Wya'].T, dy) + gradients['da_next']  # backprop into h
    daraw = (1 - a * a) * da  # backprop through tanh nonlinearity
    gradients['db'] += daraw
    gradients['dWax'] += np.dot(daraw, x.T)
    gradients['dWaa'] += np.dot(daraw, a_prev.T)
    gradients['da_next'] = np.dot(parameters['Waa'].T, daraw)
    return gradients


def update_parameters(parameters, gradients, lr):
    parameters['Wax'] += -lr * gradients['dWax']
    parameters['Waa'] += -lr * gradients['dWaa']
    parameters['Wya'] += -lr * gradients['dWya']
    parameters['b'] += -lr * gradients['db']
    parameters['by'] += -lr * gradients['dby']
    return parameters


def rnn_forward(X, Y, a0, parameters, vocab_size=27):
    x, a, y_hat = {}, {}, {}
    a[-1] = np.copy(a0)
    loss = 0
    for t in range(len(X)):
        # X[t] None means the zero vector (the first input of every name)
        x[t] = np.zeros((vocab_size, 1))
        if X[t] is not None:
            x[t][X[t]] = 1
        a[t], y_hat[t] = rnn_step_forward(parameters, a[t - 1], x[t])
        loss -= np.log(y_hat[t][Y[t], 0])
    cache = (y_hat, a, x)
    return loss, cache


def rnn_backward(X, Y, parameters, cache):
    gradients = {}
    (y_hat, a, x) = cache
    Waa, Wax, Wya, by, b = parameters['Waa'], parameters['Wax'], parameters['Wya'], parameters['by'], parameters['b']
    gradients['dWax'], gradients['dWaa'], gradients['dWya'] = np.zeros_like(Wax), np.zeros_like(Waa), np.zeros_like(Wya)
    gradients['db'], gradients['dby'] = np.zeros_like(b), np.zeros_like(by)
    gradients['da_next'] = np.zeros_like(a[0])
    for t in reversed(range(len(X))):
        dy = np.copy(y_hat[t])
        dy[Y[t]] -= 1
        gradients = rnn_step_backward(dy, gradients, parameters, x[t], a[t], a[t - 1])
    return gradients, a


# ---------------------------------------------------------------- graded functions (course)
def clip(gradients, maxValue):
    for name in ['dWax', 'dWaa', 'dWya', 'db', 'dby']:
        np.clip(gradients[name], -maxValue, maxValue, out=gradients[name])
    return gradients


def sample(parameters, char_to_ix, seed):
    Waa, Wax, Wya, by, b = parameters['Waa'], parameters['Wax'], parameters['Wya'], parameters['by'], parameters['b']
    vocab_size = by.shape[0]
    n_a = Waa.shape[1]
    x = np.zeros((vocab_size, 1))
    a_prev = np.zeros((n_a, 1))
    indices = []
    idx = -1
    counter = 0
    newline_character = char_to_ix['\n']
    while idx != newline_character and counter != 50:
        a = tanh(np.dot(Wax, x) + np.dot(Waa, a_prev) + b)
        z = np.dot(Wya, a) + by
        y = softmax(z)
        np.random.seed(counter + seed)  # for grading purposes
        idx = np.random.choice(list(range(vocab_size)), p=y.ravel())
        indices.append(idx)
        x = np.zeros((vocab_size, 1))
        x[idx] = 1
        a_prev = a
        seed += 1
        counter += 1
    if counter == 50:
        indices.append(char_to_ix['\n'])
    return indices


def optimize(X, Y, a_prev, parameters, learning_rate=0.01):
    loss, cache = rnn_forward(X, Y, a_prev, parameters, vocab_size=parameters['by'].shape[0])
    gradients, a = rnn_backward(X, Y, parameters, cache)
    gradients = clip(gradients, 5)
    parameters = update_parameters(parameters, gradients, learning_rate)
    return loss, gradients, a[len(X) - 1]


def model(examples, ix_to_char, char_to_ix, num_iterations, n_a, dino_names, vocab_size,
          shuffle_seed, every, out):
    n_x, n_y = vocab_size, vocab_size
    parameters = initialize_parameters(n_a, n_x, n_y)
    loss = get_initial_loss(vocab_size, dino_names)
    examples = list(examples)
    np.random.seed(shuffle_seed)
    np.random.shuffle(examples)
    a_prev = np.zeros((n_a, 1))
    for j in range(num_iterations):
        index = j % len(examples)
        X = [None] + [char_to_ix[ch] for ch in examples[index]]
        Y = X[1:] + [char_to_ix["\n"]]
        curr_loss, gradients, a_prev = optimize(X, Y, a_prev, parameters)
        loss = smooth(loss, curr_loss)
        if j % every == 0:
            out.write('Iteration: %d, Loss: %f\n' % (j, loss))
            seed = 0
            for _ in range(dino_names):
                out.write(sample_text(sample(parameters, char_to_ix, seed), ix_to_char))
                seed += 1
            out.flush()
    return parameters


# ---------------------------------------------------------------- course unit tests
def unit_tests():
    """The course's three unit-test set-ups. Floats are written as their Python repr in
    strings: the shortest decimal that round-trips, parsed exactly by Rust's `str::parse`
    (serde_json's default number parser may be off by one ulp)."""
    res = {}
    # clip: seed(3)
    np.random.seed(3)
    dWax = np.random.randn(5, 3) * 10
    dWaa = np.random.randn(5, 5) * 10
    dWya = np.random.randn(2, 5) * 10
    db = np.random.randn(5, 1) * 10
    dby = np.random.randn(2, 1) * 10
    g = clip({"dWax": dWax, "dWaa": dWaa, "dWya": dWya, "db": db, "dby": dby}, 10)
    res['clip'] = {k: [repr(float(t)) for t in v.ravel()] for k, v in g.items()}
    # sample: seed(2), vocab 27, n_a 100
    vocab_size = 27
    chars = sorted(set('\nabcdefghijklmnopqrstuvwxyz'))
    char_to_ix = {ch: i for i, ch in enumerate(chars)}
    np.random.seed(2)
    n_a = 100
    Wax, Waa, Wya = np.random.randn(n_a, vocab_size), np.random.randn(n_a, n_a), np.random.randn(vocab_size, n_a)
    b, by = np.random.randn(n_a, 1), np.random.randn(vocab_size, 1)
    parameters = {"Wax": Wax, "Waa": Waa, "Wya": Wya, "b": b, "by": by}
    res['sample_seed2'] = [int(i) for i in sample(parameters, char_to_ix, 0)]
    # optimize: seed(1)
    np.random.seed(1)
    vocab_size, n_a = 27, 100
    a_prev = np.random.randn(n_a, 1)
    Wax, Waa, Wya = np.random.randn(n_a, vocab_size), np.random.randn(n_a, n_a), np.random.randn(vocab_size, n_a)
    b, by = np.random.randn(n_a, 1), np.random.randn(vocab_size, 1)
    parameters = {"Wax": Wax, "Waa": Waa, "Wya": Wya, "b": b, "by": by}
    X = [12, 3, 5, 11, 22, 3]
    Y = [4, 14, 11, 22, 25, 26]
    loss, gradients, a_last = optimize(X, Y, a_prev, parameters, learning_rate=0.01)
    # numpy's own exp and tanh on assorted arguments (the Rust port reproduces them)
    rng = np.random.default_rng(7)
    xs = np.concatenate([rng.uniform(-40.0, 1.0, 300), rng.standard_normal(300) * 3.0,
                         rng.uniform(-700.0, 700.0, 100),
                         [0.0, -0.0, 5e-324, -1e-300, 1e-20, 0.125, -0.1875, 0.5, 1.0, 19.9, 20.0,
                          22.0, 40.0, 707.0, -707.0]])
    res['ufuncs'] = {'x': [repr(float(v)) for v in xs],
                     'exp': [repr(float(v)) for v in np.exp(xs)],
                     'tanh': [repr(float(v)) for v in np.tanh(xs)]}
    res['optimize'] = {
        'loss': repr(float(loss)),
        'dWaa_1_2': repr(float(gradients['dWaa'][1][2])),
        'argmax_dWax': int(np.argmax(gradients['dWax'])),
        'dWya_1_2': repr(float(gradients['dWya'][1][2])),
        'db_4': repr(float(gradients['db'][4][0])),
        'dby_1': repr(float(gradients['dby'][1][0])),
        'a_last_4': repr(float(a_last[4][0])),
    }
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--data', default='../shared/data/dinos_course.txt')
    ap.add_argument('--iterations', type=int, default=35000)
    ap.add_argument('--hidden', type=int, default=50)
    ap.add_argument('--seed', type=int, default=0, help='shuffle seed of the examples')
    ap.add_argument('--every', type=int, default=2000)
    ap.add_argument('--names', type=int, default=7)
    ap.add_argument('--time', action='store_true', help='print the wall time to stderr')
    ap.add_argument('--unit-tests', action='store_true')
    ap.add_argument('--libm', action='store_true',
                    help="use the C library's exp and tanh instead of numpy's (see `use_libm`)")
    args = ap.parse_args()
    if args.libm:
        use_libm()
    if args.unit_tests:
        json.dump(unit_tests(), sys.stdout, indent=1)
        sys.stdout.write('\n')
        return
    data = open(args.data, 'r').read().lower()
    chars = sorted(set(data))
    char_to_ix = {ch: i for i, ch in enumerate(chars)}
    ix_to_char = {i: ch for i, ch in enumerate(chars)}
    with open(args.data) as f:
        examples = [x.lower().strip() for x in f.readlines()]
    t0 = time.perf_counter()
    model(examples, ix_to_char, char_to_ix, args.iterations, args.hidden, args.names, len(chars),
          args.seed, args.every, sys.stdout)
    if args.time:
        sys.stderr.write('reference.py: %d iterations in %.3f s\n' % (args.iterations, time.perf_counter() - t0))


if __name__ == '__main__':
    main()
