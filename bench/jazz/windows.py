"""The random training windows both Python peers of the jazz benchmark use (numpy only, so
each peer's script needs only its own framework)."""
import numpy as np


def make_windows(n_values, m, tx, seed, corpus_len=200):
    """m windows of tx values from a random corpus, one-hot float64, in the course's layout:
    X (m, tx, n_values) with a zero first input, Y = X shifted by one step."""
    rng = np.random.RandomState(seed)
    corpus = rng.randint(0, n_values, size=corpus_len)
    X = np.zeros((m, tx, n_values))
    Y = np.zeros((m, tx, n_values))
    for i in range(m):
        start = rng.randint(0, corpus_len - tx)
        for j in range(tx):
            v = corpus[start + j]
            if j != 0:
                X[i, j, v] = 1.0
                Y[i, j - 1, v] = 1.0
    return X, Y
