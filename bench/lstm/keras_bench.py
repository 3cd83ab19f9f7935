"""Keras/TensorFlow side of the Shakespeare benchmark (same model and data as bench/lstm/bench.js
and bench/lstm/torch_bench.py): one-hot input -> LSTM(128, return_sequences) -> Dropout ->
LSTM(128) -> Dropout -> Dense(V, softmax), float32, sequences of 40, batches of 128,
Adam(lr 0.002, Keras' defaults otherwise), clip by value 5 (`clipvalue=5`), CPU, 2 threads
(TF intra-/inter-op parallelism 2). Dropout 0.2 sits where torch_bench.py has it (between the
LSTM layers and before the output layer).

Modes: 'windows' (many-to-one: the course's Keras model, predict the char after each window
of 40 taken every 3; the second LSTM returns only its last step) and 'tbptt' (many-to-many:
128 streams, chunks of 40, state carried with `stateful=True` layers and reset when the
streams wrap). Same batches, in the same order, as torch_bench.py.
Training is a per-step `model.train_on_batch` loop on a wall-clock budget (as the PyTorch
loop); the first step includes tracing the `tf.function` train step, so its time is reported
apart and "after the first step" gives the steady-state chars/s. Chars/s count input
characters processed (T * B per batch). Validation loss (nats/char) on the last 10 % of the
text, as torch_bench.py: all windows of the validation part (windows) or the whole
validation part as one sequence from a zero state (tbptt).

Sampling at batch 1, temperature 0.8, from the tbptt model, three ways:
  sample         : eager per-character loop (one model call + softmax sample per character,
                   as torch_bench.py does) - what Python-side batch-1 sampling costs;
  sample (tf.function step): the same loop with the step compiled by `tf.function`;
  sample (graph loop)      : the whole loop in one `tf.function` (`tf.while_loop`), nearest
                   to rnnlab's generate(), which runs its loop in native code.

Setup (a venv outside the repo, for the benchmark only):
    python3 -m venv /work/venv-tf && /work/venv-tf/bin/pip install tensorflow-cpu numpy
    /work/venv-tf/bin/python bench/lstm/keras_bench.py --seconds 20 [--json] [--threads 2] [--jit]
(--jit compiles the train step with XLA; Keras' default, jit_compile="auto", is off on CPU.)
"""
import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--text", default=os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "shakespeare.txt"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--jit", action="store_true", help="XLA-compile the train step (off by default on CPU, as Keras' 'auto')")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    import tensorflow as tf
    import keras
    from keras import layers, ops

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    keras.utils.set_random_seed(0)

    text = open(args.text, encoding="utf8").read()
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    data = np.array([index[c] for c in text], dtype=np.int32)
    n_val = round(len(data) * 0.1)
    train, val = data[:-n_val], data[-n_val:]
    V, T, B, H, DROP = len(chars), 40, 128, 128, 0.2
    ar = np.arange(T)

    def one_hot(z):
        return ops.one_hot(z, V, dtype="float32")

    def build_train(mode):
        stateful = mode == "tbptt"
        inp = keras.Input(batch_shape=(B, T), dtype="int32") if stateful else keras.Input(shape=(T,), dtype="int32")
        x = layers.Lambda(one_hot, output_shape=(T, V))(inp)
        x = layers.LSTM(H, return_sequences=True, stateful=stateful)(x)
        x = layers.Dropout(DROP)(x)
        x = layers.LSTM(H, return_sequences=stateful, stateful=stateful)(x)
        x = layers.Dropout(DROP)(x)
        out = layers.Dense(V, activation="softmax")(x)
        model = keras.Model(inp, out)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.002, clipvalue=5.0),
                      loss="sparse_categorical_crossentropy", jit_compile=args.jit)
        return model

    def build_infer():
        """Batch 1, any length, explicit states in and out; takes the trained weights."""
        inp = keras.Input(batch_shape=(1, None), dtype="int32")
        states = [keras.Input(batch_shape=(1, H)) for _ in range(4)]
        x = layers.Lambda(one_hot, output_shape=(None, V))(inp)
        x, h1, c1 = layers.LSTM(H, return_sequences=True, return_state=True)(x, initial_state=states[0:2])
        x = layers.Dropout(DROP)(x)
        x, h2, c2 = layers.LSTM(H, return_sequences=True, return_state=True)(x, initial_state=states[2:4])
        x = layers.Dropout(DROP)(x)
        out = layers.Dense(V, activation="softmax")(x)
        return keras.Model([inp, *states], [out, h1, c1, h2, c2])

    def nll(probs, y):
        p = probs.reshape(-1, V)[np.arange(y.size), y.reshape(-1)]
        return float(-np.mean(np.log(np.maximum(p, 1e-12))))

    results = {"peer": "keras", "version": f"keras {keras.__version__}, tensorflow {tf.__version__}",
               "threads": args.threads, "jit": args.jit, "seconds": args.seconds, "text": os.path.basename(args.text),
               "chars": len(text), "train": [], "sample": {}}
    model = None
    for mode in ["windows", "tbptt"]:
        model = build_train(mode)
        lstms = [l for l in model.layers if isinstance(l, layers.LSTM)]
        t0, steps, seen = time.time(), 0, 0
        first = None
        starts = np.arange(0, len(train) - T, 3)
        L = len(train) // B
        j = 0
        rng = np.random.RandomState(0)
        order = rng.permutation(starts)
        while time.time() - t0 < args.seconds:
            if mode == "windows":
                k = (steps * B) % (len(order) - B)
                s = order[k:k + B]
                x = train[s[:, None] + ar]
                y = train[s + T]
            else:
                if j + T + 1 > L:
                    j = 0
                    for l in lstms:
                        l.reset_state()
                rows = (np.arange(B) * L + j)[:, None] + ar
                x, y = train[rows], train[rows + 1]
                j += T
            model.train_on_batch(x, y)
            steps += 1
            seen += T * B
            if first is None:
                first = time.time() - t0
        secs = time.time() - t0
        if mode == "windows":
            s = np.arange(0, len(val) - T, 3)
            probs = model.predict(val[s[:, None] + ar], batch_size=1024, verbose=0)
            vl = nll(probs, val[s + T])
        else:
            infer = build_infer()
            infer.set_weights(model.get_weights())
            zero = np.zeros((1, H), np.float32)
            probs = infer.predict([val[None, :-1], zero, zero, zero, zero], batch_size=1, verbose=0)[0]
            vl = nll(probs, val[None, 1:])
        steady = (seen - T * B) / (secs - first) if steps > 1 else float("nan")
        results["train"].append({"mode": mode, "charsPerSecond": round(seen / secs), "steps": steps, "seconds": secs,
                                 "firstStepSeconds": first, "charsPerSecondAfterFirstStep": round(steady) if steps > 1 else None,
                                 "valLoss": vl})
        if not args.json:
            print(f"train {mode:7s}: {seen / secs:.0f} chars/s, {steps} steps in {secs:.1f} s, validation {vl:.4f} nats/char"
                  f" (first step incl. trace {first:.2f} s; after it {steady:.0f} chars/s)")

    # sampling, batch 1, temperature 0.8, from the last (tbptt) model
    infer = build_infer()
    infer.set_weights(model.get_weights())
    tf.random.set_seed(1)
    zeros = [tf.zeros((1, H)) for _ in range(4)]
    start = tf.constant([[index["S"]]], dtype=tf.int32)

    def pick(probs):
        return tf.random.categorical(tf.math.log(probs[:, -1, :]) / 0.8, 1, dtype=tf.int32)  # (1, 1)

    def step(x, states):
        probs, *states = infer([x, *states], training=False)
        return pick(probs), states

    def eager(n, budget=5.0):
        """At most n characters or `budget` seconds (eager Keras calls cost ~20 ms each)."""
        x, states = start, zeros
        t0, done = time.time(), 0
        while done < n and (done < 20 or time.time() - t0 < budget):
            x, states = step(x, states)
            done += 1
        return done / (time.time() - t0), done

    step_fn = tf.function(step)

    def compiled_step(n):
        x, states = start, zeros
        step_fn(x, states)  # trace outside the clock
        t0 = time.time()
        for _ in range(n):
            x, states = step_fn(x, states)
        return n / (time.time() - t0)

    @tf.function
    def loop(n):
        def body(i, x, h1, c1, h2, c2, out):
            x, (h1, c1, h2, c2) = step(x, [h1, c1, h2, c2])
            return i + 1, x, h1, c1, h2, c2, out.write(i, x[0, 0])
        res = tf.while_loop(lambda i, *_: i < n, body, (tf.constant(0), start, *zeros, tf.TensorArray(tf.int32, size=n)))
        return res[-1].stack()

    def graph_loop(n):
        loop(tf.constant(10))  # trace outside the clock
        t0 = time.time()
        ids = loop(tf.constant(n)).numpy()
        return n / (time.time() - t0), "".join(chars[i] for i in ids[:200])

    r_eager, n_eager = eager(2000)
    r_step = compiled_step(2000)
    r_loop, sample = graph_loop(20000)
    results["sample"] = {"charsPerSecond": round(r_eager), "eagerChars": n_eager, "tfFunctionStep": round(r_step), "graphLoop": round(r_loop), "sample": sample}
    if args.json:
        print(json.dumps(results))
    else:
        print(f"sample         : {r_eager:.0f} chars/s (batch 1, temperature 0.8; eager, {n_eager} chars)")
        print(f"sample (tf.function step): {r_step:.0f} chars/s")
        print(f"sample (graph loop)      : {r_loop:.0f} chars/s")
        print(f"\nS{sample}")


if __name__ == "__main__":
    main()
