//! The course's step-by-step building blocks (rnn.rs, lstm.rs) against
//! (a) numpy reference values (`scripts/reference_step_by_step.py` → `data/step_by_step.json`,
//!     on the course's own test set-ups), to 1e-12 relative;
//! (b) the numbers the course printed ("Expected Output" of deeplearning.ai Sequence Models
//!     week 1, "Building your Recurrent Neural Network - Step by Step"), to the printed digits;
//! (c) finite differences, for every gradient every backward pass returns;
//! (d) error cases: wrong shapes name the argument and both shapes, non-finite inputs are refused.

use ndarray::{s, Array, Array2, Array3, ArrayView, Axis, Dimension, IntoDimension, Ix2, Ix3};
use rnnlab_core::course::gradcheck::{numerical_gradient, project, relative_error, TestRng};
use rnnlab_core::course::lstm::*;
use rnnlab_core::course::rnn::*;
use rnnlab_core::CoreError;
use serde_json::Value;

// ------------------------------------------------------------------------------------------
// Loading the numpy reference
// ------------------------------------------------------------------------------------------

fn reference() -> Value {
    serde_json::from_str(include_str!("data/step_by_step.json")).expect("valid JSON")
}

fn array<D: Dimension>(v: &Value) -> Array<f64, D> {
    let shape: Vec<usize> = v["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    let data: Vec<f64> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    Array::from_shape_vec(shape, data)
        .unwrap()
        .into_dimensionality::<D>()
        .unwrap()
}

fn a2(v: &Value) -> Array2<f64> {
    array::<Ix2>(v)
}

fn a3(v: &Value) -> Array3<f64> {
    array::<Ix3>(v)
}

fn rnn_params(v: &Value) -> RnnParams {
    RnnParams {
        wax: a2(&v["wax"]),
        waa: a2(&v["waa"]),
        wya: a2(&v["wya"]),
        ba: a2(&v["ba"]),
        by: a2(&v["by"]),
    }
}

fn lstm_params(v: &Value) -> LstmParams {
    LstmParams {
        wf: a2(&v["wf"]),
        bf: a2(&v["bf"]),
        wi: a2(&v["wi"]),
        bi: a2(&v["bi"]),
        wc: a2(&v["wc"]),
        bc: a2(&v["bc"]),
        wo: a2(&v["wo"]),
        bo: a2(&v["bo"]),
        wy: a2(&v["wy"]),
        by: a2(&v["by"]),
    }
}

/// Every element within 1e-12 relative of numpy's; elements that are tiny compared with the
/// array (cancellation) may differ by 1e-15 of the array's largest magnitude.
fn assert_close<D: Dimension>(what: &str, actual: ArrayView<f64, D>, expected: &Value) {
    let expected = array::<D>(expected);
    assert_eq!(actual.shape(), expected.shape(), "{what}: shape");
    let scale = expected.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let mut worst = 0.0f64; // largest |rnnlab − numpy| / |numpy|
    for ((idx, &a), &e) in actual.indexed_iter().zip(expected.iter()) {
        let tol = 1e-12 * e.abs() + 1e-15 * scale;
        assert!(
            (a - e).abs() <= tol,
            "{what}{:?}: rnnlab {a:e} vs numpy {e:e}",
            idx.into_dimension().slice()
        );
        if e != 0.0 {
            worst = worst.max((a - e).abs() / e.abs());
        }
    }
    eprintln!("numpy {what:<16} max relative difference {worst:.1e}");
}

/// A number the course printed, to the digits printed.
fn printed(what: &str, actual: f64, text: &str) {
    let digits = text.split('.').nth(1).map_or(0, str::len) as i32;
    let tol = 0.5 * 10f64.powi(-digits) * (1.0 + 1e-9);
    let expected: f64 = text.parse().unwrap();
    assert!(
        (actual - expected).abs() <= tol,
        "{what}: rnnlab {actual} vs course {text}"
    );
}

/// A row the course printed, e.g. `a_next[4]`.
fn printed_row<'a>(what: &str, actual: impl IntoIterator<Item = &'a f64>, text: &str) {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let values: Vec<f64> = actual.into_iter().copied().collect();
    assert_eq!(values.len(), parts.len(), "{what}: length");
    for (i, (v, t)) in values.iter().zip(parts).enumerate() {
        printed(&format!("{what}[{i}]"), *v, t);
    }
}

// ------------------------------------------------------------------------------------------
// (a) numpy reference and (b) the course's printed values, per building block
// ------------------------------------------------------------------------------------------

#[test]
fn rnn_cell_forward_matches_numpy_and_course() {
    let case = &reference()["cases"]["rnn_cell_forward"];
    let (i, o) = (&case["inputs"], &case["outputs"]);
    let (a_next, yt_pred, cache) = rnn_cell_forward(
        a2(&i["xt"]).view(),
        a2(&i["a_prev"]).view(),
        &rnn_params(&i["parameters"]),
    )
    .unwrap();
    assert_close("a_next", a_next.view(), &o["a_next"]);
    assert_close("yt_pred", yt_pred.view(), &o["yt_pred"]);
    assert_eq!(cache.a_next, a_next);

    printed_row("a_next[4]", a_next.row(4), "0.59584544 0.18141802 0.61311866 0.99808218 0.85016201 0.99980978 -0.18887155 0.99815551 0.6531151 0.82872037");
    printed_row("yt_pred[1]", yt_pred.row(1), "0.9888161 0.01682021 0.21140899 0.36817467 0.98988387 0.88945212 0.36920224 0.9966312 0.9982559 0.17746526");
    assert_eq!(a_next.dim(), (5, 10));
    assert_eq!(yt_pred.dim(), (2, 10));
}

#[test]
fn rnn_forward_matches_numpy_and_course() {
    let case = &reference()["cases"]["rnn_forward"];
    let (i, o) = (&case["inputs"], &case["outputs"]);
    let x = a3(&i["x"]);
    let (a, y_pred, cache) =
        rnn_forward(x.view(), a2(&i["a0"]).view(), &rnn_params(&i["parameters"])).unwrap();
    assert_close("a", a.view(), &o["a"]);
    assert_close("y_pred", y_pred.view(), &o["y_pred"]);

    printed_row(
        "a[4][1]",
        a.slice(s![4, 1, ..]),
        "-0.99999375 0.77911235 -0.99861469 -0.99833267",
    );
    printed_row(
        "y_pred[1][3]",
        y_pred.slice(s![1, 3, ..]),
        "0.79560373 0.86224861 0.11118257 0.81515947",
    );
    // caches[1][1][3] is x[1][3] (the course's cache keeps x)
    printed_row(
        "caches[1][1][3]",
        cache.x.slice(s![1, 3, ..]),
        "-1.1425182 -0.34934272 -0.20889423 0.58662319",
    );
    assert_eq!(a.dim(), (5, 10, 4));
    assert_eq!(y_pred.dim(), (2, 10, 4));
}

#[test]
fn lstm_cell_forward_matches_numpy_and_course() {
    let case = &reference()["cases"]["lstm_cell_forward"];
    let (i, o) = (&case["inputs"], &case["outputs"]);
    let (a_next, c_next, yt_pred, cache) = lstm_cell_forward(
        a2(&i["xt"]).view(),
        a2(&i["a_prev"]).view(),
        a2(&i["c_prev"]).view(),
        &lstm_params(&i["parameters"]),
    )
    .unwrap();
    assert_close("a_next", a_next.view(), &o["a_next"]);
    assert_close("c_next", c_next.view(), &o["c_next"]);
    assert_close("yt_pred", yt_pred.view(), &o["yt_pred"]);

    printed_row("a_next[4]", a_next.row(4), "-0.66408471 0.0036921 0.02088357 0.22834167 -0.85575339 0.00138482 0.76566531 0.34631421 -0.00215674 0.43827275");
    printed_row("c_next[2]", c_next.row(2), "0.63267805 1.00570849 0.35504474 0.20690913 -1.64566718 0.11832942 0.76449811 -0.0981561 -0.74348425 -0.26810932");
    printed_row("yt[1]", yt_pred.row(1), "0.79913913 0.15986619 0.22412122 0.15606108 0.97057211 0.31146381 0.00943007 0.12666353 0.39380172 0.07828381");
    // cache[1][3] is c_next[3]
    printed_row("cache[1][3]", cache.c_next.row(3), "-0.16263996 1.03729328 0.72938082 -0.54101719 0.02752074 -0.30821874 0.07651101 -1.03752894 1.41219977 -0.37647422");
}

#[test]
fn lstm_forward_matches_numpy_and_course() {
    let case = &reference()["cases"]["lstm_forward"];
    let (i, o) = (&case["inputs"], &case["outputs"]);
    let (a, y, c, cache) = lstm_forward(
        a3(&i["x"]).view(),
        a2(&i["a0"]).view(),
        &lstm_params(&i["parameters"]),
    )
    .unwrap();
    assert_close("a", a.view(), &o["a"]);
    assert_close("y", y.view(), &o["y"]);
    assert_close("c", c.view(), &o["c"]);

    printed("a[4][3][6]", a[[4, 3, 6]], "0.172117767533");
    printed("y[1][4][3]", y[[1, 4, 3]], "0.95087346185");
    printed_row(
        "caches[1][1][1]",
        cache.x.slice(s![1, 1, ..]),
        "0.82797464 0.23009474 0.76201118 -0.22232814 -0.20075807 0.18656139 0.41005165",
    );
    printed("c[1][2][1]", c[[1, 2, 1]], "-0.855544916718");
    assert_eq!((a.dim(), y.dim()), ((5, 10, 7), (2, 10, 7)));
}

fn check_rnn_cell_backward(case: &Value) -> RnnCellGradients {
    let (i, o) = (&case["inputs"], &case["outputs"]);
    let (a_next, yt, cache) = rnn_cell_forward(
        a2(&i["xt"]).view(),
        a2(&i["a_prev"]).view(),
        &rnn_params(&i["parameters"]),
    )
    .unwrap();
    assert_close("a_next", a_next.view(), &o["a_next"]);
    assert_close("yt_pred", yt.view(), &o["yt_pred"]);
    let g = rnn_cell_backward(a2(&i["da_next"]).view(), &cache).unwrap();
    assert_close("dxt", g.dxt.view(), &o["dxt"]);
    assert_close("da_prev", g.da_prev.view(), &o["da_prev"]);
    assert_close("dWax", g.dwax.view(), &o["dwax"]);
    assert_close("dWaa", g.dwaa.view(), &o["dwaa"]);
    assert_close("dba", g.dba.view(), &o["dba"]);
    g
}

#[test]
fn rnn_cell_backward_matches_numpy_and_course() {
    let cases = &reference()["cases"];
    // Current notebook: the test draws its own `ba`.
    let g = check_rnn_cell_backward(&cases["rnn_cell_backward"]);
    printed("dxt[1][2]", g.dxt[[1, 2]], "-1.3872130506");
    printed("da_prev[2][3]", g.da_prev[[2, 3]], "-0.152399493774");
    printed("dWax[3][1]", g.dwax[[3, 1]], "0.410772824935");
    printed("dWaa[1][2]", g.dwaa[[1, 2]], "1.15034506685");
    printed("dba[4]", g.dba[[4, 0]], "0.20023491");
    assert_eq!(
        (
            g.dxt.dim(),
            g.da_prev.dim(),
            g.dwax.dim(),
            g.dwaa.dim(),
            g.dba.dim()
        ),
        ((3, 10), (5, 10), (5, 3), (5, 5), (5, 1))
    );

    // 2018 notebook: its test draws `b` but passes the stale global `ba` of the rnn_forward test.
    let g = check_rnn_cell_backward(&cases["rnn_cell_backward_2018"]);
    printed("dxt[1][2]", g.dxt[[1, 2]], "-0.460564103059");
    printed("da_prev[2][3]", g.da_prev[[2, 3]], "0.0842968653807");
    printed("dWax[3][1]", g.dwax[[3, 1]], "0.393081873922");
    printed("dWaa[1][2]", g.dwaa[[1, 2]], "-0.28483955787");
    printed("dba[4]", g.dba[[4, 0]], "0.80517166");
}

#[test]
fn rnn_backward_matches_numpy_and_course() {
    let case = &reference()["cases"]["rnn_backward"];
    let (i, o) = (&case["inputs"], &case["outputs"]);
    let (a, y, cache) = rnn_forward(
        a3(&i["x"]).view(),
        a2(&i["a0"]).view(),
        &rnn_params(&i["parameters"]),
    )
    .unwrap();
    assert_close("a", a.view(), &o["a"]);
    assert_close("y_pred", y.view(), &o["y_pred"]);
    let g = rnn_backward(a3(&i["da"]).view(), &cache).unwrap();
    assert_close("dx", g.dx.view(), &o["dx"]);
    assert_close("da0", g.da0.view(), &o["da0"]);
    assert_close("dWax", g.dwax.view(), &o["dwax"]);
    assert_close("dWaa", g.dwaa.view(), &o["dwaa"]);
    assert_close("dba", g.dba.view(), &o["dba"]);

    printed_row(
        "dx[1][2]",
        g.dx.slice(s![1, 2, ..]),
        "-2.07101689 -0.59255627 0.02466855 0.01483317",
    );
    printed("da0[2][3]", g.da0[[2, 3]], "-0.314942375127");
    printed("dWax[3][1]", g.dwax[[3, 1]], "11.2641044965");
    printed("dWaa[1][2]", g.dwaa[[1, 2]], "2.30333312658");
    printed("dba[4]", g.dba[[4, 0]], "-0.74747722");
}

#[test]
fn lstm_cell_backward_matches_numpy_and_course() {
    let case = &reference()["cases"]["lstm_cell_backward"];
    let (i, o) = (&case["inputs"], &case["outputs"]);
    let (_, _, _, cache) = lstm_cell_forward(
        a2(&i["xt"]).view(),
        a2(&i["a_prev"]).view(),
        a2(&i["c_prev"]).view(),
        &lstm_params(&i["parameters"]),
    )
    .unwrap();
    let g = lstm_cell_backward(a2(&i["da_next"]).view(), a2(&i["dc_next"]).view(), &cache).unwrap();
    for (name, v) in [
        ("dxt", &g.dxt),
        ("da_prev", &g.da_prev),
        ("dc_prev", &g.dc_prev),
        ("dwf", &g.dwf),
        ("dwi", &g.dwi),
        ("dwc", &g.dwc),
        ("dwo", &g.dwo),
        ("dbf", &g.dbf),
        ("dbi", &g.dbi),
        ("dbc", &g.dbc),
        ("dbo", &g.dbo),
    ] {
        assert_close(name, v.view(), &o[name]);
    }

    printed("dxt[1][2]", g.dxt[[1, 2]], "3.23055911511");
    printed("da_prev[2][3]", g.da_prev[[2, 3]], "-0.0639621419711");
    printed("dc_prev[2][3]", g.dc_prev[[2, 3]], "0.797522038797");
    printed("dWf[3][1]", g.dwf[[3, 1]], "-0.147954838164");
    printed("dWi[1][2]", g.dwi[[1, 2]], "1.05749805523");
    printed("dWc[3][1]", g.dwc[[3, 1]], "2.30456216369");
    printed("dWo[1][2]", g.dwo[[1, 2]], "0.331311595289");
    printed("dbf[4]", g.dbf[[4, 0]], "0.18864637");
    printed("dbi[4]", g.dbi[[4, 0]], "-0.40142491");
    printed("dbc[4]", g.dbc[[4, 0]], "0.25587763");
    printed("dbo[4]", g.dbo[[4, 0]], "0.13893342");
    assert_eq!((g.dwf.dim(), g.dbo.dim()), ((5, 8), (5, 1)));
}

fn lstm_grads_close(what: &str, g: &LstmGradients, o: &Value) {
    for (name, v) in [
        ("dwf", &g.dwf),
        ("dwi", &g.dwi),
        ("dwc", &g.dwc),
        ("dwo", &g.dwo),
        ("dbf", &g.dbf),
        ("dbi", &g.dbi),
        ("dbc", &g.dbc),
        ("dbo", &g.dbo),
    ] {
        assert_close(&format!("{what}.{name}"), v.view(), &o[name]);
    }
    assert_close(&format!("{what}.da0"), g.da0.view(), &o["da0"]);
}

#[test]
fn lstm_backward_matches_numpy_and_current_course() {
    let case = &reference()["cases"]["lstm_backward"];
    let (i, o) = (&case["inputs"], &case["outputs"]);
    let (a, _, c, cache) = lstm_forward(
        a3(&i["x"]).view(),
        a2(&i["a0"]).view(),
        &lstm_params(&i["parameters"]),
    )
    .unwrap();
    assert_close("a", a.view(), &o["a"]);
    assert_close("c", c.view(), &o["c"]);
    // The course's da has 4 steps for a 7-step x; the JSON pads it with zero gradients.
    let da = a3(&i["da"]);
    assert!(da.slice(s![.., .., 4..]).iter().all(|&v| v == 0.0));
    let g = lstm_backward(da.view(), &cache).unwrap();
    assert_close("dx", g.dx.view(), &o["dx"]);
    lstm_grads_close("true", &g, o);

    // The current notebook prints the true gradients.
    printed_row(
        "dx[1][2]",
        g.dx.slice(s![1, 2, ..4]),
        "0.00218254 0.28205375 -0.48292508 -0.43281115",
    );
    printed("da0[2][3]", g.da0[[2, 3]], "0.312770310257");
    printed("dWf[3][1]", g.dwf[[3, 1]], "-0.0809802310938");
    printed("dWi[1][2]", g.dwi[[1, 2]], "0.40512433093");
    printed("dWc[3][1]", g.dwc[[3, 1]], "-0.0793746735512");
    printed("dWo[1][2]", g.dwo[[1, 2]], "0.038948775763");
    printed("dbf[4]", g.dbf[[4, 0]], "-0.15745657");
    printed("dbi[4]", g.dbi[[4, 0]], "-0.50848333");
    printed("dbc[4]", g.dbc[[4, 0]], "-0.42510818");
    printed("dbo[4]", g.dbo[[4, 0]], "-0.17958196");
    assert!(g.dx.slice(s![.., .., 4..]).iter().all(|&v| v == 0.0));
}

/// The course's slipped sequence backward, rebuilt from rnnlab's cell backward, only to show
/// where the course's printed numbers come from (docs/course-differences.md). rnnlab's own
/// `lstm_backward` never does this.
fn slipped_lstm_backward(da: &Array3<f64>, cache: &LstmCache, carry_dc: bool) -> LstmGradients {
    let (n_a, m, t_x) = da.dim();
    let n_x = cache.x.len_of(Axis(0));
    let w = || Array2::zeros((n_a, n_a + n_x));
    let b = || Array2::zeros((n_a, 1));
    let mut g = LstmGradients {
        dx: Array3::zeros((n_x, m, t_x)),
        da0: Array2::zeros((n_a, m)),
        dwf: w(),
        dwi: w(),
        dwc: w(),
        dwo: w(),
        dbf: b(),
        dbi: b(),
        dbc: b(),
        dbo: b(),
    };
    let mut dc_prev = Array2::zeros((n_a, m));
    for t in (0..t_x).rev() {
        let dc_next = if carry_dc {
            dc_prev.clone()
        } else {
            Array2::zeros((n_a, m))
        };
        // the slip: da[:, :, t] alone, without the da_prev coming back from step t+1
        let gt = lstm_cell_backward(
            da.index_axis(Axis(2), t),
            dc_next.view(),
            &cache.step(t).unwrap(),
        )
        .unwrap();
        g.dx.slice_mut(s![.., .., t]).assign(&gt.dxt);
        g.dwf += &gt.dwf;
        g.dwi += &gt.dwi;
        g.dwc += &gt.dwc;
        g.dwo += &gt.dwo;
        g.dbf += &gt.dbf;
        g.dbi += &gt.dbi;
        g.dbc += &gt.dbc;
        g.dbo += &gt.dbo;
        g.da0 = gt.da_prev;
        dc_prev = gt.dc_prev;
    }
    g
}

#[test]
fn course_lstm_backward_slips_are_explained_and_not_copied() {
    let case = &reference()["cases"]["lstm_backward"];
    let (i, variants) = (&case["inputs"], &case["course_variants"]);
    let (_, _, _, cache) = lstm_forward(
        a3(&i["x"]).view(),
        a2(&i["a0"]).view(),
        &lstm_params(&i["parameters"]),
    )
    .unwrap();
    let da4 = a3(&variants["da"]); // (5, 10, 4): the course's da

    // 2018 notebook: its printed values = neither da_prev nor dc_prev carried between steps.
    let old = slipped_lstm_backward(&da4, &cache, false);
    assert_close(
        "no_carry.dx",
        old.dx.view(),
        &variants["no_carry_2018"]["dx"],
    );
    lstm_grads_close("no_carry", &old, &variants["no_carry_2018"]);
    printed_row(
        "dx[1][2]",
        old.dx.slice(s![1, 2, ..]),
        "-0.00173313 0.08287442 -0.30545663 -0.43281115",
    );
    printed("da0[2][3]", old.da0[[2, 3]], "-0.095911501954");
    printed("dWf[3][1]", old.dwf[[3, 1]], "-0.0698198561274");
    printed("dWi[1][2]", old.dwi[[1, 2]], "0.102371820249");
    printed("dWc[3][1]", old.dwc[[3, 1]], "-0.0624983794927");
    printed("dWo[1][2]", old.dwo[[1, 2]], "0.0484389131444");
    printed("dbf[4]", old.dbf[[4, 0]], "-0.0565788");

    // The seed document's code (SPEC's "known slip"): dc_prev carried, da_prev forgotten.
    let seed = slipped_lstm_backward(&da4, &cache, true);
    assert_close(
        "seed_slip.dx",
        seed.dx.view(),
        &variants["seed_slip_no_da_prev"]["dx"],
    );
    lstm_grads_close("seed_slip", &seed, &variants["seed_slip_no_da_prev"]);

    // rnnlab's true gradients differ from both.
    let mut da7 = Array3::zeros((5, 10, 7));
    da7.slice_mut(s![.., .., ..4]).assign(&da4);
    let truth = lstm_backward(da7.view(), &cache).unwrap();
    assert!((truth.da0[[2, 3]] - old.da0[[2, 3]]).abs() > 0.1);
    assert!((truth.da0[[2, 3]] - seed.da0[[2, 3]]).abs() > 0.1);
}

// ------------------------------------------------------------------------------------------
// (c) finite-difference gradient checks
// ------------------------------------------------------------------------------------------

const EPS: f64 = 1e-6;
const MAX_REL_ERROR: f64 = 1e-6;

fn check_gradient<D: Dimension>(
    what: &str,
    analytic: ArrayView<f64, D>,
    numeric: ArrayView<f64, D>,
) {
    let err = relative_error(analytic, numeric.view());
    let norm = numeric.iter().map(|v| v * v).sum::<f64>().sqrt();
    assert!(
        norm > 1e-3,
        "{what}: gradient unexpectedly ~0 (‖·‖ = {norm})"
    );
    assert!(err < MAX_REL_ERROR, "{what}: relative error {err:e}");
    eprintln!("gradcheck {what:<22} relative error {err:.2e}");
}

fn random_rnn(rng: &mut TestRng, n_x: usize, n_a: usize, n_y: usize) -> RnnParams {
    RnnParams {
        wax: rng.array2((n_a, n_x), 0.6),
        waa: rng.array2((n_a, n_a), 0.6),
        wya: rng.array2((n_y, n_a), 0.6),
        ba: rng.array2((n_a, 1), 0.3),
        by: rng.array2((n_y, 1), 0.3),
    }
}

fn random_lstm(rng: &mut TestRng, n_x: usize, n_a: usize, n_y: usize) -> LstmParams {
    let g = (n_a, n_a + n_x);
    LstmParams {
        wf: rng.array2(g, 0.6),
        bf: rng.array2((n_a, 1), 0.3),
        wi: rng.array2(g, 0.6),
        bi: rng.array2((n_a, 1), 0.3),
        wc: rng.array2(g, 0.6),
        bc: rng.array2((n_a, 1), 0.3),
        wo: rng.array2(g, 0.6),
        bo: rng.array2((n_a, 1), 0.3),
        wy: rng.array2((n_y, n_a), 0.6),
        by: rng.array2((n_y, 1), 0.3),
    }
}

struct RnnCellState {
    xt: Array2<f64>,
    a_prev: Array2<f64>,
    p: RnnParams,
}

#[test]
fn gradcheck_rnn_cell_backward() {
    let mut rng = TestRng::new(1);
    let (n_x, n_a, m) = (3, 4, 2);
    let mut st = RnnCellState {
        xt: rng.array2((n_x, m), 1.0),
        a_prev: rng.array2((n_a, m), 0.8),
        p: random_rnn(&mut rng, n_x, n_a, 2),
    };
    let w = rng.array2((n_a, m), 1.0); // loss = Σ w ∘ a_next, so dJ/da_next = w
    let loss = |s: &RnnCellState| {
        project(
            rnn_cell_forward(s.xt.view(), s.a_prev.view(), &s.p)
                .unwrap()
                .0
                .view(),
            w.view(),
        )
    };
    let (_, _, cache) = rnn_cell_forward(st.xt.view(), st.a_prev.view(), &st.p).unwrap();
    let g = rnn_cell_backward(w.view(), &cache).unwrap();
    check_gradient(
        "rnn_cell dxt",
        g.dxt.view(),
        numerical_gradient(&mut st, |s| &mut s.xt, loss, EPS).view(),
    );
    check_gradient(
        "rnn_cell da_prev",
        g.da_prev.view(),
        numerical_gradient(&mut st, |s| &mut s.a_prev, loss, EPS).view(),
    );
    check_gradient(
        "rnn_cell dWax",
        g.dwax.view(),
        numerical_gradient(&mut st, |s| &mut s.p.wax, loss, EPS).view(),
    );
    check_gradient(
        "rnn_cell dWaa",
        g.dwaa.view(),
        numerical_gradient(&mut st, |s| &mut s.p.waa, loss, EPS).view(),
    );
    check_gradient(
        "rnn_cell dba",
        g.dba.view(),
        numerical_gradient(&mut st, |s| &mut s.p.ba, loss, EPS).view(),
    );
}

struct RnnSeqState {
    x: Array3<f64>,
    a0: Array2<f64>,
    p: RnnParams,
}

#[test]
fn gradcheck_rnn_backward() {
    let mut rng = TestRng::new(2);
    let (n_x, n_a, m, t_x) = (3, 4, 2, 5);
    let mut st = RnnSeqState {
        x: rng.array3((n_x, m, t_x), 1.0),
        a0: rng.array2((n_a, m), 0.8),
        p: random_rnn(&mut rng, n_x, n_a, 2),
    };
    let w = rng.array3((n_a, m, t_x), 1.0); // loss = Σ w ∘ a over all steps, so da = w
    let loss = |s: &RnnSeqState| {
        project(
            rnn_forward(s.x.view(), s.a0.view(), &s.p).unwrap().0.view(),
            w.view(),
        )
    };
    let (_, _, cache) = rnn_forward(st.x.view(), st.a0.view(), &st.p).unwrap();
    let g = rnn_backward(w.view(), &cache).unwrap();
    check_gradient(
        "rnn dx",
        g.dx.view(),
        numerical_gradient(&mut st, |s| &mut s.x, loss, EPS).view(),
    );
    check_gradient(
        "rnn da0",
        g.da0.view(),
        numerical_gradient(&mut st, |s| &mut s.a0, loss, EPS).view(),
    );
    check_gradient(
        "rnn dWax",
        g.dwax.view(),
        numerical_gradient(&mut st, |s| &mut s.p.wax, loss, EPS).view(),
    );
    check_gradient(
        "rnn dWaa",
        g.dwaa.view(),
        numerical_gradient(&mut st, |s| &mut s.p.waa, loss, EPS).view(),
    );
    check_gradient(
        "rnn dba",
        g.dba.view(),
        numerical_gradient(&mut st, |s| &mut s.p.ba, loss, EPS).view(),
    );
}

struct LstmCellState {
    xt: Array2<f64>,
    a_prev: Array2<f64>,
    c_prev: Array2<f64>,
    p: LstmParams,
}

#[test]
fn gradcheck_lstm_cell_backward() {
    let mut rng = TestRng::new(3);
    let (n_x, n_a, m) = (3, 4, 2);
    let mut st = LstmCellState {
        xt: rng.array2((n_x, m), 1.0),
        a_prev: rng.array2((n_a, m), 0.8),
        c_prev: rng.array2((n_a, m), 1.0),
        p: random_lstm(&mut rng, n_x, n_a, 2),
    };
    // loss = Σ wa ∘ a_next + Σ wc ∘ c_next, so da_next = wa and dc_next = wc
    let wa = rng.array2((n_a, m), 1.0);
    let wc = rng.array2((n_a, m), 1.0);
    let loss = |s: &LstmCellState| {
        let (a, c, _, _) =
            lstm_cell_forward(s.xt.view(), s.a_prev.view(), s.c_prev.view(), &s.p).unwrap();
        project(a.view(), wa.view()) + project(c.view(), wc.view())
    };
    let (_, _, _, cache) =
        lstm_cell_forward(st.xt.view(), st.a_prev.view(), st.c_prev.view(), &st.p).unwrap();
    let g = lstm_cell_backward(wa.view(), wc.view(), &cache).unwrap();
    check_gradient(
        "lstm_cell dxt",
        g.dxt.view(),
        numerical_gradient(&mut st, |s| &mut s.xt, loss, EPS).view(),
    );
    check_gradient(
        "lstm_cell da_prev",
        g.da_prev.view(),
        numerical_gradient(&mut st, |s| &mut s.a_prev, loss, EPS).view(),
    );
    check_gradient(
        "lstm_cell dc_prev",
        g.dc_prev.view(),
        numerical_gradient(&mut st, |s| &mut s.c_prev, loss, EPS).view(),
    );
    check_gradient(
        "lstm_cell dWf",
        g.dwf.view(),
        numerical_gradient(&mut st, |s| &mut s.p.wf, loss, EPS).view(),
    );
    check_gradient(
        "lstm_cell dWi",
        g.dwi.view(),
        numerical_gradient(&mut st, |s| &mut s.p.wi, loss, EPS).view(),
    );
    check_gradient(
        "lstm_cell dWc",
        g.dwc.view(),
        numerical_gradient(&mut st, |s| &mut s.p.wc, loss, EPS).view(),
    );
    check_gradient(
        "lstm_cell dWo",
        g.dwo.view(),
        numerical_gradient(&mut st, |s| &mut s.p.wo, loss, EPS).view(),
    );
    check_gradient(
        "lstm_cell dbf",
        g.dbf.view(),
        numerical_gradient(&mut st, |s| &mut s.p.bf, loss, EPS).view(),
    );
    check_gradient(
        "lstm_cell dbi",
        g.dbi.view(),
        numerical_gradient(&mut st, |s| &mut s.p.bi, loss, EPS).view(),
    );
    check_gradient(
        "lstm_cell dbc",
        g.dbc.view(),
        numerical_gradient(&mut st, |s| &mut s.p.bc, loss, EPS).view(),
    );
    check_gradient(
        "lstm_cell dbo",
        g.dbo.view(),
        numerical_gradient(&mut st, |s| &mut s.p.bo, loss, EPS).view(),
    );
}

struct LstmSeqState {
    x: Array3<f64>,
    a0: Array2<f64>,
    p: LstmParams,
}

#[test]
fn gradcheck_lstm_backward() {
    let mut rng = TestRng::new(4);
    let (n_x, n_a, m, t_x) = (3, 4, 2, 5);
    let mut st = LstmSeqState {
        x: rng.array3((n_x, m, t_x), 1.0),
        a0: rng.array2((n_a, m), 0.8),
        p: random_lstm(&mut rng, n_x, n_a, 2),
    };
    let w = rng.array3((n_a, m, t_x), 1.0); // loss = Σ w ∘ a over all steps, so da = w
    let loss = |s: &LstmSeqState| {
        project(
            lstm_forward(s.x.view(), s.a0.view(), &s.p)
                .unwrap()
                .0
                .view(),
            w.view(),
        )
    };
    let (_, _, _, cache) = lstm_forward(st.x.view(), st.a0.view(), &st.p).unwrap();
    let g = lstm_backward(w.view(), &cache).unwrap();
    check_gradient(
        "lstm dx",
        g.dx.view(),
        numerical_gradient(&mut st, |s| &mut s.x, loss, EPS).view(),
    );
    check_gradient(
        "lstm da0",
        g.da0.view(),
        numerical_gradient(&mut st, |s| &mut s.a0, loss, EPS).view(),
    );
    check_gradient(
        "lstm dWf",
        g.dwf.view(),
        numerical_gradient(&mut st, |s| &mut s.p.wf, loss, EPS).view(),
    );
    check_gradient(
        "lstm dWi",
        g.dwi.view(),
        numerical_gradient(&mut st, |s| &mut s.p.wi, loss, EPS).view(),
    );
    check_gradient(
        "lstm dWc",
        g.dwc.view(),
        numerical_gradient(&mut st, |s| &mut s.p.wc, loss, EPS).view(),
    );
    check_gradient(
        "lstm dWo",
        g.dwo.view(),
        numerical_gradient(&mut st, |s| &mut s.p.wo, loss, EPS).view(),
    );
    check_gradient(
        "lstm dbf",
        g.dbf.view(),
        numerical_gradient(&mut st, |s| &mut s.p.bf, loss, EPS).view(),
    );
    check_gradient(
        "lstm dbi",
        g.dbi.view(),
        numerical_gradient(&mut st, |s| &mut s.p.bi, loss, EPS).view(),
    );
    check_gradient(
        "lstm dbc",
        g.dbc.view(),
        numerical_gradient(&mut st, |s| &mut s.p.bc, loss, EPS).view(),
    );
    check_gradient(
        "lstm dbo",
        g.dbo.view(),
        numerical_gradient(&mut st, |s| &mut s.p.bo, loss, EPS).view(),
    );
}

// ------------------------------------------------------------------------------------------
// (d) error cases
// ------------------------------------------------------------------------------------------

fn shape_error<T: std::fmt::Debug>(
    r: Result<T, CoreError>,
    name: &str,
    expected: &str,
    actual: &str,
) {
    let e = r.unwrap_err();
    assert_eq!(
        e,
        CoreError::ShapeMismatch {
            name: name.into(),
            expected: expected.into(),
            actual: actual.into()
        }
    );
    assert_eq!(
        e.to_string(),
        format!("{name}: expected shape {expected}, got {actual}")
    );
    assert_eq!(e.code(), "ERR_SHAPE_MISMATCH");
}

fn non_finite<T: std::fmt::Debug>(r: Result<T, CoreError>, name: &str, index: usize) {
    let e = r.unwrap_err();
    match &e {
        CoreError::NonFinite {
            name: n,
            index: i,
            value,
        } => {
            assert_eq!((n.as_str(), *i), (name, index), "{e}");
            assert!(!value.is_finite());
            assert_eq!(e.code(), "ERR_NON_FINITE");
        }
        _ => panic!("expected NonFinite for {name}, got {e:?}"),
    }
}

#[test]
fn rnn_errors_name_the_argument_and_both_shapes() {
    let mut rng = TestRng::new(9);
    let p = random_rnn(&mut rng, 3, 5, 2);
    let xt = rng.array2((3, 10), 1.0);
    let a_prev = rng.array2((5, 10), 1.0);
    shape_error(
        rnn_cell_forward(rng.array2((4, 10), 1.0).view(), a_prev.view(), &p),
        "xt",
        "(3, 10)",
        "(4, 10)",
    );
    shape_error(
        rnn_cell_forward(xt.view(), rng.array2((5, 9), 1.0).view(), &p),
        "a_prev",
        "(5, 10)",
        "(5, 9)",
    );
    let mut bad = p.clone();
    bad.waa = Array2::zeros((5, 4));
    shape_error(
        rnn_cell_forward(xt.view(), a_prev.view(), &bad),
        "parameters.Waa",
        "(5, 5)",
        "(5, 4)",
    );
    let mut bad = p.clone();
    bad.by = Array2::zeros((3, 1));
    shape_error(bad.validate(), "parameters.by", "(2, 1)", "(3, 1)");

    let x = rng.array3((3, 10, 4), 1.0);
    shape_error(
        rnn_forward(rng.array3((2, 10, 4), 1.0).view(), a_prev.view(), &p),
        "x",
        "(3, 10, 4)",
        "(2, 10, 4)",
    );
    shape_error(
        rnn_forward(x.view(), rng.array2((5, 3), 1.0).view(), &p),
        "a0",
        "(5, 10)",
        "(5, 3)",
    );
    let (_, _, cache) = rnn_forward(x.view(), a_prev.view(), &p).unwrap();
    shape_error(
        rnn_backward(Array3::zeros((5, 10, 3)).view(), &cache),
        "da",
        "(5, 10, 4)",
        "(5, 10, 3)",
    );
    let (_, _, mut cell) = rnn_cell_forward(xt.view(), a_prev.view(), &p).unwrap();
    shape_error(
        rnn_cell_backward(Array2::zeros((4, 10)).view(), &cell),
        "da_next",
        "(5, 10)",
        "(4, 10)",
    );
    cell.a_prev = Array2::zeros((5, 7)); // a tampered cache is refused, not a panic
    shape_error(
        rnn_cell_backward(Array2::zeros((5, 10)).view(), &cell),
        "cache.a_prev",
        "(5, 10)",
        "(5, 7)",
    );
    assert_eq!(cache.step(4).unwrap_err().code(), "ERR_INVALID_ARG");
}

#[test]
fn rnn_refuses_non_finite_inputs() {
    let mut rng = TestRng::new(10);
    let p = random_rnn(&mut rng, 3, 5, 2);
    let mut xt = rng.array2((3, 10), 1.0);
    let a_prev = rng.array2((5, 10), 1.0);
    let (_, _, cell) = rnn_cell_forward(xt.view(), a_prev.view(), &p).unwrap();
    xt[[1, 2]] = f64::NAN;
    non_finite(rnn_cell_forward(xt.view(), a_prev.view(), &p), "xt", 12);
    let mut bad = p.clone();
    bad.ba[[3, 0]] = f64::INFINITY;
    non_finite(
        rnn_cell_forward(a_prev.slice(s![..3, ..]), a_prev.view(), &bad),
        "parameters.ba",
        3,
    );
    let mut da_next = Array2::zeros((5, 10));
    da_next[[0, 1]] = f64::NEG_INFINITY;
    non_finite(rnn_cell_backward(da_next.view(), &cell), "da_next", 1);

    let mut x = rng.array3((3, 10, 4), 1.0);
    let (_, _, cache) = rnn_forward(x.view(), a_prev.view(), &p).unwrap();
    x[[0, 0, 3]] = f64::NAN;
    non_finite(rnn_forward(x.view(), a_prev.view(), &p), "x", 3);
    let mut da = Array3::zeros((5, 10, 4));
    da[[4, 9, 3]] = f64::NAN;
    non_finite(rnn_backward(da.view(), &cache), "da", 199);
}

#[test]
fn lstm_errors_name_the_argument_and_both_shapes() {
    let mut rng = TestRng::new(11);
    let p = random_lstm(&mut rng, 3, 5, 2);
    let xt = rng.array2((3, 10), 1.0);
    let a_prev = rng.array2((5, 10), 1.0);
    let c_prev = rng.array2((5, 10), 1.0);
    shape_error(
        lstm_cell_forward(
            rng.array2((2, 10), 1.0).view(),
            a_prev.view(),
            c_prev.view(),
            &p,
        ),
        "xt",
        "(3, 10)",
        "(2, 10)",
    );
    shape_error(
        lstm_cell_forward(
            xt.view(),
            a_prev.view(),
            rng.array2((5, 11), 1.0).view(),
            &p,
        ),
        "c_prev",
        "(5, 10)",
        "(5, 11)",
    );
    let mut bad = p.clone();
    bad.wi = Array2::zeros((5, 7));
    shape_error(
        lstm_cell_forward(xt.view(), a_prev.view(), c_prev.view(), &bad),
        "parameters.Wi",
        "(5, 8)",
        "(5, 7)",
    );
    let mut bad = p.clone();
    bad.bo = Array2::zeros((5, 2));
    shape_error(bad.validate(), "parameters.bo", "(5, 1)", "(5, 2)");
    let mut bad = p.clone();
    bad.wy = Array2::zeros((2, 4));
    shape_error(bad.validate(), "parameters.Wy", "(2, 5)", "(2, 4)");

    let x = rng.array3((3, 10, 7), 1.0);
    shape_error(
        lstm_forward(rng.array3((4, 10, 7), 1.0).view(), a_prev.view(), &p),
        "x",
        "(3, 10, 7)",
        "(4, 10, 7)",
    );
    let (_, _, _, cache) = lstm_forward(x.view(), a_prev.view(), &p).unwrap();
    shape_error(
        lstm_backward(Array3::zeros((5, 10, 4)).view(), &cache),
        "da",
        "(5, 10, 7)",
        "(5, 10, 4)",
    );
    let (_, _, _, cell) = lstm_cell_forward(xt.view(), a_prev.view(), c_prev.view(), &p).unwrap();
    shape_error(
        lstm_cell_backward(
            Array2::zeros((5, 10)).view(),
            Array2::zeros((10, 5)).view(),
            &cell,
        ),
        "dc_next",
        "(5, 10)",
        "(10, 5)",
    );
    let mut tampered = cache.clone();
    tampered.ot = Array3::zeros((5, 10, 6));
    shape_error(
        lstm_backward(Array3::zeros((5, 10, 7)).view(), &tampered),
        "cache.ot",
        "(5, 10, 7)",
        "(5, 10, 6)",
    );
}

#[test]
fn lstm_refuses_non_finite_inputs() {
    let mut rng = TestRng::new(12);
    let p = random_lstm(&mut rng, 3, 5, 2);
    let xt = rng.array2((3, 10), 1.0);
    let a_prev = rng.array2((5, 10), 1.0);
    let mut c_prev = rng.array2((5, 10), 1.0);
    let (_, _, _, cell) = lstm_cell_forward(xt.view(), a_prev.view(), c_prev.view(), &p).unwrap();
    c_prev[[2, 3]] = f64::NAN;
    non_finite(
        lstm_cell_forward(xt.view(), a_prev.view(), c_prev.view(), &p),
        "c_prev",
        23,
    );
    let mut bad = p.clone();
    bad.wc[[0, 7]] = f64::NAN;
    non_finite(
        lstm_forward(rng.array3((3, 10, 2), 1.0).view(), a_prev.view(), &bad),
        "parameters.Wc",
        7,
    );
    let mut dc_next = Array2::zeros((5, 10));
    dc_next[[4, 9]] = f64::INFINITY;
    non_finite(
        lstm_cell_backward(Array2::zeros((5, 10)).view(), dc_next.view(), &cell),
        "dc_next",
        49,
    );
    let (_, _, _, cache) =
        lstm_forward(rng.array3((3, 10, 2), 1.0).view(), a_prev.view(), &p).unwrap();
    let mut da = Array3::zeros((5, 10, 2));
    da[[0, 0, 1]] = f64::NAN;
    non_finite(lstm_backward(da.view(), &cache), "da", 1);
}
