"""Keras/TensorFlow side of the jazz benchmark (issue 5, item 8): the course's djmodel as the
notebook builds it — one LSTM(n_a, return_state=True) layer and one Dense softmax shared across
Tx steps, each step's input cut out of X with a Lambda and reshaped to (1, n_values), initial
states a0, c0 as inputs — trained with model.fit(epochs=100, batch_size=60) on categorical
cross-entropy (one loss per output, summed) with Adam(lr 0.01, beta 0.9/0.999) and the
course's Keras-2 `decay=0.01`, written for Keras 3 (which dropped `decay`) as
InverseTimeDecay(0.01, decay_steps=1, decay_rate=0.01) = lr / (1 + 0.01 k).

Random data of the course's shape (see torch_djmodel.py), float32, CPU, 2 threads.

Setup (a venv outside the repo, for the benchmark only):
    python3 -m venv /work/venv-tf && /work/venv-tf/bin/pip install tensorflow-cpu numpy
    /work/venv-tf/bin/python bench/jazz/keras_djmodel.py [--n-values 90] [--json]
"""
import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402

from windows import make_windows  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-values", type=int, default=90)
    ap.add_argument("--n-a", type=int, default=64)
    ap.add_argument("--tx", type=int, default=30)
    ap.add_argument("--m", type=int, default=60)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    import tensorflow as tf
    import keras
    from keras import layers

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    keras.utils.set_random_seed(args.seed)

    n_values, n_a, tx, m = args.n_values, args.n_a, args.tx, args.m
    X, Y = (w.astype(np.float32) for w in make_windows(n_values, m, tx, args.seed))

    # shared layers, as the notebook's globals
    reshaper = layers.Reshape((1, n_values))
    lstm_cell = layers.LSTM(n_a, return_state=True)
    densor = layers.Dense(n_values, activation="softmax")

    X_in = keras.Input(shape=(tx, n_values))
    a0 = keras.Input(shape=(n_a,), name="a0")
    c0 = keras.Input(shape=(n_a,), name="c0")
    a, c = a0, c0
    outputs = []
    for t in range(tx):
        x = layers.Lambda(lambda z, t=t: z[:, t, :], output_shape=(n_values,))(X_in)
        x = reshaper(x)
        a, _, c = lstm_cell(x, initial_state=[a, c])
        outputs.append(densor(a))
    model = keras.Model(inputs=[X_in, a0, c0], outputs=outputs)

    lr = keras.optimizers.schedules.InverseTimeDecay(0.01, decay_steps=1, decay_rate=0.01)
    opt = keras.optimizers.Adam(learning_rate=lr, beta_1=0.9, beta_2=0.999)
    model.compile(optimizer=opt, loss=["categorical_crossentropy"] * tx, metrics=[["accuracy"]] * tx)

    zeros = np.zeros((m, n_a), dtype=np.float32)
    targets = list(np.swapaxes(Y, 0, 1))  # Tx arrays of (m, n_values)

    epoch_ends = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            epoch_ends.append(time.perf_counter())

    t0 = time.perf_counter()
    hist = model.fit([X, zeros, zeros], targets, epochs=args.epochs, batch_size=m, verbose=0, callbacks=[Clock()])
    secs = time.perf_counter() - t0
    loss = hist.history["loss"]
    r = {
        "peer": "keras",
        "version": f"keras {keras.__version__}, tensorflow {tf.__version__}",
        "threads": args.threads,
        "dtype": "float32",
        "epochs": args.epochs,
        "n_values": n_values,
        "seconds": secs,
        # the first epoch includes building and tracing the graph
        "seconds_after_first_epoch": epoch_ends[-1] - epoch_ends[0],
        "loss_first": float(loss[0]),
        "loss_last": float(loss[-1]),
    }
    if args.json:
        print(json.dumps(r))
    else:
        print(f"keras {keras.__version__} / tf {tf.__version__}, {args.threads} threads: {args.epochs} epochs in {secs:.2f} s "
              f"({r['seconds_after_first_epoch']:.2f} s after the first epoch), loss {loss[0]:.3f} -> {loss[-1]:.3f}")


if __name__ == "__main__":
    main()
