#!/usr/bin/env python3
"""Reference values for rnnlab's step-by-step RNN/LSTM API (crates/core/src/{rnn,lstm}.rs).

Regenerate (from the repository root, needs only numpy):

    python3 scripts/reference_step_by_step.py

It writes crates/core/tests/data/step_by_step.json, read by crates/core/tests/step_by_step.rs.

What it does
------------
* Implements, in plain numpy, the same formulas as rnnlab (SPEC.md, "Shapes and formulas"):
  RNN and LSTM cells, whole-sequence forward passes (c<0> = 0), and the TRUE backward passes
  (the sequence backward feeds da[:,:,t] + da_prev and carries dc_prev).
* Rebuilds the deeplearning.ai "Building your Recurrent Neural Network - Step by Step" test
  set-ups draw for draw (np.random.seed(1); randn ...), stores their inputs and outputs in the
  JSON (arrays as {"shape": [...], "data": [C-order floats]}), and asserts that the course's
  printed "Expected Output" values come out (to the digits printed).
* Documents the course's slips, asserted here only (never implemented in rnnlab):
  - the 2018 notebook's printed lstm_backward values are what you get when NEITHER da_prev nor
    dc_prev is carried from step t+1 to step t (its dbi/dbc/dbo lines match nothing; the
    printed value of that computation is asserted instead);
  - the seed document's lstm_backward carries dc_prev but forgets da_prev (SPEC.md's "known slip");
  - the 2018 rnn_cell_backward test draws `b` but passes the stale global `ba` (from the
    rnn_forward test); the current notebook draws `ba` itself.
  The current notebook (2021+) prints the true LSTM sequence gradients, which rnnlab reproduces.
  The JSON keeps both slip variants of lstm_backward under "course_variants" for documentation.
"""
import json
import os

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "core", "tests",
                   "data", "step_by_step.json")


# ----------------------------------------------------------------------------- formulas
def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def softmax(z):
    # column-wise (over axis 0), column max subtracted
    e = np.exp(z - np.max(z, axis=0, keepdims=True))
    return e / np.sum(e, axis=0, keepdims=True)


def rnn_cell_forward(xt, a_prev, p):
    a_next = np.tanh(p["Wax"] @ xt + p["Waa"] @ a_prev + p["ba"])   # (n_a, m)
    yt_pred = softmax(p["Wya"] @ a_next + p["by"])                  # (n_y, m)
    return a_next, yt_pred, (a_next, a_prev, xt, p)


def rnn_forward(x, a0, p):
    n_x, m, T_x = x.shape
    n_y, n_a = p["Wya"].shape
    a = np.zeros((n_a, m, T_x))
    y = np.zeros((n_y, m, T_x))
    caches = []
    a_next = a0
    for t in range(T_x):
        a_next, yt, cache = rnn_cell_forward(x[:, :, t], a_next, p)
        a[:, :, t] = a_next
        y[:, :, t] = yt
        caches.append(cache)
    return a, y, (caches, x)


def rnn_cell_backward(da_next, cache):
    a_next, a_prev, xt, p = cache
    dz = (1.0 - a_next ** 2) * da_next                               # (n_a, m)
    return {"dxt": p["Wax"].T @ dz, "da_prev": p["Waa"].T @ dz,
            "dwax": dz @ xt.T, "dwaa": dz @ a_prev.T, "dba": np.sum(dz, axis=1, keepdims=True)}


def rnn_backward(da, caches):
    caches, x = caches
    n_x, m, T_x = x.shape
    n_a = da.shape[0]
    g = {"dx": np.zeros((n_x, m, T_x)), "dwax": np.zeros((n_a, n_x)),
         "dwaa": np.zeros((n_a, n_a)), "dba": np.zeros((n_a, 1))}
    da_prev = np.zeros((n_a, m))
    for t in reversed(range(T_x)):
        gt = rnn_cell_backward(da[:, :, t] + da_prev, caches[t])
        g["dx"][:, :, t] = gt["dxt"]
        for k in ("dwax", "dwaa", "dba"):
            g[k] += gt[k]
        da_prev = gt["da_prev"]
    g["da0"] = da_prev
    return g


def lstm_cell_forward(xt, a_prev, c_prev, p):
    concat = np.concatenate([a_prev, xt], axis=0)                    # (n_a + n_x, m)
    ft = sigmoid(p["Wf"] @ concat + p["bf"])
    it = sigmoid(p["Wi"] @ concat + p["bi"])
    cct = np.tanh(p["Wc"] @ concat + p["bc"])
    c_next = ft * c_prev + it * cct
    ot = sigmoid(p["Wo"] @ concat + p["bo"])
    a_next = ot * np.tanh(c_next)
    yt_pred = softmax(p["Wy"] @ a_next + p["by"])
    return a_next, c_next, yt_pred, (a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, p)


def lstm_forward(x, a0, p):
    n_x, m, T_x = x.shape
    n_y, n_a = p["Wy"].shape
    a = np.zeros((n_a, m, T_x))
    c = np.zeros((n_a, m, T_x))
    y = np.zeros((n_y, m, T_x))
    caches = []
    a_next, c_next = a0, np.zeros((n_a, m))
    for t in range(T_x):
        a_next, c_next, yt, cache = lstm_cell_forward(x[:, :, t], a_next, c_next, p)
        a[:, :, t], c[:, :, t], y[:, :, t] = a_next, c_next, yt
        caches.append(cache)
    return a, y, c, (caches, x)


def lstm_cell_backward(da_next, dc_next, cache):
    a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, p = cache
    n_a = a_next.shape[0]
    tanh_c = np.tanh(c_next)
    dc = dc_next + da_next * ot * (1.0 - tanh_c ** 2)                # total dJ/dc<t>
    dot = da_next * tanh_c * ot * (1.0 - ot)                         # pre-activation gradients
    dcct = dc * it * (1.0 - cct ** 2)
    dit = dc * cct * it * (1.0 - it)
    dft = dc * c_prev * ft * (1.0 - ft)
    concat = np.concatenate([a_prev, xt], axis=0)
    dconcat = p["Wf"].T @ dft + p["Wi"].T @ dit + p["Wc"].T @ dcct + p["Wo"].T @ dot
    return {"dxt": dconcat[n_a:], "da_prev": dconcat[:n_a], "dc_prev": dc * ft,
            "dwf": dft @ concat.T, "dwi": dit @ concat.T, "dwc": dcct @ concat.T, "dwo": dot @ concat.T,
            "dbf": np.sum(dft, axis=1, keepdims=True), "dbi": np.sum(dit, axis=1, keepdims=True),
            "dbc": np.sum(dcct, axis=1, keepdims=True), "dbo": np.sum(dot, axis=1, keepdims=True)}


LSTM_PARAM_GRADS = ("dwf", "dwi", "dwc", "dwo", "dbf", "dbi", "dbc", "dbo")


def lstm_backward(da, caches, carry_da=True, carry_dc=True):
    """True gradients with both carries on; the flags only exist to document the course's slips."""
    caches, x = caches
    n_x, m, _ = x.shape
    n_a, _, T = da.shape      # the course's test passes a shorter da than x: only steps 0..T-1
    p = caches[0][9]
    g = {"dx": np.zeros((n_x, m, T))}
    for k in LSTM_PARAM_GRADS:
        shape = p["W" + k[2]].shape if k[1] == "w" else (n_a, 1)
        g[k] = np.zeros(shape)
    da_prev = np.zeros((n_a, m))
    dc_prev = np.zeros((n_a, m))
    for t in reversed(range(T)):
        gt = lstm_cell_backward(da[:, :, t] + (da_prev if carry_da else 0.0),
                                dc_prev if carry_dc else np.zeros((n_a, m)), caches[t])
        g["dx"][:, :, t] = gt["dxt"]
        for k in LSTM_PARAM_GRADS:
            g[k] += gt[k]
        da_prev, dc_prev = gt["da_prev"], gt["dc_prev"]
    g["da0"] = da_prev
    return g


# ----------------------------------------------------------------------------- helpers
def arr(v):
    v = np.asarray(v, dtype=np.float64)
    return {"shape": list(v.shape), "data": [float(t) for t in v.ravel(order="C")]}


def rnn_params(p):
    return {"wax": arr(p["Wax"]), "waa": arr(p["Waa"]), "wya": arr(p["Wya"]),
            "ba": arr(p["ba"]), "by": arr(p["by"])}


def lstm_params(p):
    return {k.lower(): arr(p[k]) for k in ("Wf", "bf", "Wi", "bi", "Wc", "bc", "Wo", "bo", "Wy", "by")}


def printed(value, text):
    """Assert value equals a number the course printed, to the printed digits."""
    digits = len(text.split(".")[1]) if "." in text else 0
    tol = 0.5 * 10.0 ** (-digits) * (1 + 1e-9)
    assert abs(float(value) - float(text)) <= tol, (value, text)


def printed_list(values, text):
    parts = text.split()
    assert len(parts) == len(values), (values, text)
    for v, s in zip(values, parts):
        printed(v, s)


def lstm_draws(x_shape, with_c_prev=False, wy_random=True):
    """The course's LSTM set-up draws, in the course's order (Wf, bf, Wi, bi, Wo, bo, Wc, bc, Wy, by)."""
    np.random.seed(1)
    x = np.random.randn(*x_shape)
    a0 = np.random.randn(5, 10)
    c0 = np.random.randn(5, 10) if with_c_prev else None
    p = {}
    for k in ("Wf", "bf", "Wi", "bi", "Wo", "bo", "Wc", "bc"):
        p[k] = np.random.randn(5, 5 + 3) if k[0] == "W" else np.random.randn(5, 1)
    if wy_random:
        p["Wy"], p["by"] = np.random.randn(2, 5), np.random.randn(2, 1)
    else:
        p["Wy"], p["by"] = np.zeros((2, 5)), np.zeros((2, 1))   # current notebook: "unused"
    return x, a0, c0, p


# ----------------------------------------------------------------------------- course set-ups
def main():
    cases = {}

    # rnn_cell_forward ------------------------------------------------------------------
    np.random.seed(1)
    xt = np.random.randn(3, 10)
    a_prev = np.random.randn(5, 10)
    Waa = np.random.randn(5, 5)
    Wax = np.random.randn(5, 3)
    Wya = np.random.randn(2, 5)
    ba = np.random.randn(5, 1)
    by = np.random.randn(2, 1)
    p = {"Waa": Waa, "Wax": Wax, "Wya": Wya, "ba": ba, "by": by}
    a_next, yt_pred, _ = rnn_cell_forward(xt, a_prev, p)
    printed_list(a_next[4], "0.59584544 0.18141802 0.61311866 0.99808218 0.85016201 0.99980978 "
                            "-0.18887155 0.99815551 0.6531151 0.82872037")
    printed_list(yt_pred[1], "0.9888161 0.01682021 0.21140899 0.36817467 0.98988387 0.88945212 "
                             "0.36920224 0.9966312 0.9982559 0.17746526")
    cases["rnn_cell_forward"] = {
        "inputs": {"xt": arr(xt), "a_prev": arr(a_prev), "parameters": rnn_params(p)},
        "outputs": {"a_next": arr(a_next), "yt_pred": arr(yt_pred)}}

    # rnn_forward -----------------------------------------------------------------------
    np.random.seed(1)
    x = np.random.randn(3, 10, 4)
    a0 = np.random.randn(5, 10)
    Waa = np.random.randn(5, 5)
    Wax = np.random.randn(5, 3)
    Wya = np.random.randn(2, 5)
    ba = np.random.randn(5, 1)      # NB: this global `ba` is reused by the 2018 rnn_cell_backward test
    by = np.random.randn(2, 1)
    p = {"Waa": Waa, "Wax": Wax, "Wya": Wya, "ba": ba, "by": by}
    a, y_pred, caches = rnn_forward(x, a0, p)
    printed_list(a[4][1], "-0.99999375 0.77911235 -0.99861469 -0.99833267")
    printed_list(y_pred[1][3], "0.79560373 0.86224861 0.11118257 0.81515947")
    printed_list(caches[1][1][3], "-1.1425182 -0.34934272 -0.20889423 0.58662319")
    cases["rnn_forward"] = {
        "inputs": {"x": arr(x), "a0": arr(a0), "parameters": rnn_params(p)},
        "outputs": {"a": arr(a), "y_pred": arr(y_pred)}}
    stale_ba = ba

    # lstm_cell_forward -----------------------------------------------------------------
    xt, a_prev, c_prev, p = lstm_draws((3, 10), with_c_prev=True)
    a_next, c_next, yt, cache = lstm_cell_forward(xt, a_prev, c_prev, p)
    printed_list(a_next[4], "-0.66408471 0.0036921 0.02088357 0.22834167 -0.85575339 0.00138482 "
                            "0.76566531 0.34631421 -0.00215674 0.43827275")
    printed_list(c_next[2], "0.63267805 1.00570849 0.35504474 0.20690913 -1.64566718 0.11832942 "
                            "0.76449811 -0.0981561 -0.74348425 -0.26810932")
    printed_list(yt[1], "0.79913913 0.15986619 0.22412122 0.15606108 0.97057211 0.31146381 "
                        "0.00943007 0.12666353 0.39380172 0.07828381")
    printed_list(cache[1][3], "-0.16263996 1.03729328 0.72938082 -0.54101719 0.02752074 -0.30821874 "
                              "0.07651101 -1.03752894 1.41219977 -0.37647422")
    cases["lstm_cell_forward"] = {
        "inputs": {"xt": arr(xt), "a_prev": arr(a_prev), "c_prev": arr(c_prev),
                   "parameters": lstm_params(p)},
        "outputs": {"a_next": arr(a_next), "c_next": arr(c_next), "yt_pred": arr(yt)}}

    # lstm_forward ----------------------------------------------------------------------
    x, a0, _, p = lstm_draws((3, 10, 7))
    a, y, c, caches = lstm_forward(x, a0, p)
    printed(a[4][3][6], "0.172117767533")
    printed(y[1][4][3], "0.95087346185")
    printed_list(caches[1][1][1], "0.82797464 0.23009474 0.76201118 -0.22232814 -0.20075807 "
                                  "0.18656139 0.41005165")
    printed(c[1][2][1], "-0.855544916718")
    cases["lstm_forward"] = {
        "inputs": {"x": arr(x), "a0": arr(a0), "parameters": lstm_params(p)},
        "outputs": {"a": arr(a), "y": arr(y), "c": arr(c)}}

    # rnn_cell_backward: current notebook (draws its own ba) and 2018 (stale global ba) ---
    for name, use_stale in (("rnn_cell_backward", False), ("rnn_cell_backward_2018", True)):
        np.random.seed(1)
        xt = np.random.randn(3, 10)
        a_prev = np.random.randn(5, 10)
        Wax = np.random.randn(5, 3)
        Waa = np.random.randn(5, 5)
        Wya = np.random.randn(2, 5)
        b = np.random.randn(5, 1)
        by = np.random.randn(2, 1)
        p = {"Wax": Wax, "Waa": Waa, "Wya": Wya, "ba": stale_ba if use_stale else b, "by": by}
        a_next, yt, cache = rnn_cell_forward(xt, a_prev, p)
        da_next = np.random.randn(5, 10)
        g = rnn_cell_backward(da_next, cache)
        if use_stale:
            printed(g["dxt"][1][2], "-0.460564103059")
            printed(g["da_prev"][2][3], "0.0842968653807")
            printed(g["dwax"][3][1], "0.393081873922")
            printed(g["dwaa"][1][2], "-0.28483955787")
            printed(g["dba"][4][0], "0.80517166")
        else:
            printed(g["dxt"][1][2], "-1.3872130506")
            printed(g["da_prev"][2][3], "-0.152399493774")
            printed(g["dwax"][3][1], "0.410772824935")
            printed(g["dwaa"][1][2], "1.15034506685")
            printed(g["dba"][4][0], "0.20023491")
        cases[name] = {
            "inputs": {"xt": arr(xt), "a_prev": arr(a_prev), "parameters": rnn_params(p),
                       "da_next": arr(da_next)},
            "outputs": {"a_next": arr(a_next), "yt_pred": arr(yt),
                        **{k: arr(v) for k, v in g.items()}}}

    # rnn_backward ----------------------------------------------------------------------
    np.random.seed(1)
    x = np.random.randn(3, 10, 4)
    a0 = np.random.randn(5, 10)
    Wax = np.random.randn(5, 3)
    Waa = np.random.randn(5, 5)
    Wya = np.random.randn(2, 5)
    ba = np.random.randn(5, 1)
    by = np.random.randn(2, 1)
    p = {"Wax": Wax, "Waa": Waa, "Wya": Wya, "ba": ba, "by": by}
    a, y_pred, caches = rnn_forward(x, a0, p)
    da = np.random.randn(5, 10, 4)
    g = rnn_backward(da, caches)
    printed_list(g["dx"][1][2], "-2.07101689 -0.59255627 0.02466855 0.01483317")
    printed(g["da0"][2][3], "-0.314942375127")
    printed(g["dwax"][3][1], "11.2641044965")
    printed(g["dwaa"][1][2], "2.30333312658")
    printed(g["dba"][4][0], "-0.74747722")
    cases["rnn_backward"] = {
        "inputs": {"x": arr(x), "a0": arr(a0), "parameters": rnn_params(p), "da": arr(da)},
        "outputs": {"a": arr(a), "y_pred": arr(y_pred), **{k: arr(v) for k, v in g.items()}}}

    # lstm_cell_backward ----------------------------------------------------------------
    xt, a_prev, c_prev, p = lstm_draws((3, 10), with_c_prev=True)
    a_next, c_next, yt, cache = lstm_cell_forward(xt, a_prev, c_prev, p)
    da_next = np.random.randn(5, 10)
    dc_next = np.random.randn(5, 10)
    g = lstm_cell_backward(da_next, dc_next, cache)
    printed(g["dxt"][1][2], "3.23055911511")
    printed(g["da_prev"][2][3], "-0.0639621419711")
    printed(g["dc_prev"][2][3], "0.797522038797")
    printed(g["dwf"][3][1], "-0.147954838164")
    printed(g["dwi"][1][2], "1.05749805523")
    printed(g["dwc"][3][1], "2.30456216369")
    printed(g["dwo"][1][2], "0.331311595289")
    printed(g["dbf"][4][0], "0.18864637")
    printed(g["dbi"][4][0], "-0.40142491")
    printed(g["dbc"][4][0], "0.25587763")
    printed(g["dbo"][4][0], "0.13893342")
    cases["lstm_cell_backward"] = {
        "inputs": {"xt": arr(xt), "a_prev": arr(a_prev), "c_prev": arr(c_prev),
                   "parameters": lstm_params(p), "da_next": arr(da_next), "dc_next": arr(dc_next)},
        "outputs": {"a_next": arr(a_next), "c_next": arr(c_next), "yt_pred": arr(yt),
                    **{k: arr(v) for k, v in g.items()}}}

    # lstm_backward (current notebook set-up: Wy, by zeros; da has 4 steps, x has 7) ----
    x, a0, _, p = lstm_draws((3, 10, 7), wy_random=False)
    a, y, c, caches = lstm_forward(x, a0, p)
    da4 = np.random.randn(5, 10, 4)
    true4 = lstm_backward(da4, caches)
    # Current notebook (2021+) prints the true gradients.
    printed_list(true4["dx"][1][2], "0.00218254 0.28205375 -0.48292508 -0.43281115")
    printed(true4["da0"][2][3], "0.312770310257")
    printed(true4["dwf"][3][1], "-0.0809802310938")
    printed(true4["dwi"][1][2], "0.40512433093")
    printed(true4["dwc"][3][1], "-0.0793746735512")
    printed(true4["dwo"][1][2], "0.038948775763")
    printed(true4["dbf"][4][0], "-0.15745657")
    printed(true4["dbi"][4][0], "-0.50848333")
    printed(true4["dbc"][4][0], "-0.42510818")
    printed(true4["dbo"][4][0], "-0.17958196")
    # rnnlab's lstm_backward takes da with all T_x = 7 steps: zero upstream gradient on steps
    # 4..6 gives exactly the course's 4-step computation (and zero dx on steps 4..6).
    da7 = np.zeros((5, 10, 7))
    da7[:, :, :4] = da4
    true7 = lstm_backward(da7, caches)
    for k in ("da0",) + LSTM_PARAM_GRADS:
        assert np.array_equal(true7[k], true4[k]), k
    assert np.array_equal(true7["dx"][:, :, :4], true4["dx"]) and not true7["dx"][:, :, 4:].any()

    # Course slip 1 (2018 notebook's printed numbers): neither da_prev nor dc_prev carried.
    no_carry = lstm_backward(da4, caches, carry_da=False, carry_dc=False)
    printed_list(no_carry["dx"][1][2], "-0.00173313 0.08287442 -0.30545663 -0.43281115")
    printed(no_carry["da0"][2][3], "-0.095911501954")
    printed(no_carry["dwf"][3][1], "-0.0698198561274")
    printed(no_carry["dwi"][1][2], "0.102371820249")
    printed(no_carry["dwc"][3][1], "-0.0624983794927")
    printed(no_carry["dwo"][1][2], "0.0484389131444")
    printed(no_carry["dbf"][4][0], "-0.0565788")
    # The 2018 notebook printed dbi, dbc, dbo = -0.06997391, -0.27441821, 0.16532821, which no
    # consistent variant reproduces; the same no-carry computation prints these instead:
    printed(no_carry["dbi"][4][0], "-0.15399065")
    printed(no_carry["dbc"][4][0], "-0.29691142")
    printed(no_carry["dbo"][4][0], "-0.29798344")
    # Course slip 2 (the seed document's code, SPEC.md's "known slip"): dc_prev carried,
    # da_prev forgotten.  No published print; kept for documentation.
    seed_slip = lstm_backward(da4, caches, carry_da=False, carry_dc=True)
    assert abs(seed_slip["dwo"][1][2] - no_carry["dwo"][1][2]) < 1e-15   # dWo never sees dc
    assert abs(seed_slip["da0"][2][3] - true4["da0"][2][3]) > 0.1

    cases["lstm_backward"] = {
        "inputs": {"x": arr(x), "a0": arr(a0), "parameters": lstm_params(p), "da": arr(da7)},
        "outputs": {"a": arr(a), "y": arr(y), "c": arr(c),
                    **{k: arr(v) for k, v in true7.items()}},
        "course_variants": {
            "note": "4-step da as in the course; documentation only, never rnnlab's output",
            "da": arr(da4),
            "no_carry_2018": {k: arr(v) for k, v in no_carry.items()},
            "seed_slip_no_da_prev": {k: arr(v) for k, v in seed_slip.items()}}}

    doc = {"generator": "scripts/reference_step_by_step.py",
           "numpy": np.__version__,
           "note": "Course set-ups of 'Building your Recurrent Neural Network - Step by Step' "
                   "(deeplearning.ai Sequence Models, week 1); true gradients. Arrays are "
                   "{shape, data} with data in C order.",
           "cases": cases}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print("wrote", os.path.relpath(OUT), os.path.getsize(OUT), "bytes; all printed course values reproduced")


if __name__ == "__main__":
    main()
