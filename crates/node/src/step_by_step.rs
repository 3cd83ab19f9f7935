//! The course's building blocks ("Building a Recurrent Neural Network — Step
//! by Step") for JS: records keyed by the course's names, caches as opaque handles.

use napi_derive::napi;
use rnnlab_core::course::{lstm, rnn};

use crate::errors::{core_err, invalid_arg, Result};
use crate::record::course_record;
use crate::tensor::{from_array, shape_str, to_array2, to_array3, Tensor};

// ---- size limits -------------------------------------------------------

/// Most elements one result (or cached array) of a call may have: 2^28 f64 = 2 GiB.
const MAX_VALUES: u128 = 1 << 28;
/// Most elements all results and caches of one call may have together (4 GiB).
const MAX_TOTAL: u128 = 1 << 29;

/// Most time steps one sequence call may run (about a million): each step costs a few
/// allocations even when every array is empty, so x (0, 0, 2^27) would take minutes.
const MAX_STEPS: usize = 1 << 20;

fn check_steps(what: &str, t_x: usize) -> Result<()> {
    if t_x > MAX_STEPS {
        return Err(invalid_arg(format!(
            "{what}: x has {t_x} time steps (its last axis), more than the limit of {MAX_STEPS}"
        )));
    }
    Ok(())
}

/// Refuses, before anything is allocated, a call whose results would be absurdly large.
/// Inputs must carry their data, but an empty axis lets a small input imply a huge output
/// (`xt` (0, 4e9) with `by` (1000, 1) asks for a (1000, 4e9) `yt_pred`; `x` (0, 0, 4e9)
/// asks for 4e9 time steps): without this the allocator aborts Node or the loop hangs.
/// Zero-size axes count as 1 here, so the number of steps and columns is bounded too.
/// `origin` says which inputs set the sizes, so the message names the arguments to fix.
fn check_size(what: &str, origin: &str, parts: &[(&str, &[usize])]) -> Result<()> {
    let mut total: u128 = 0;
    for (name, dims) in parts {
        let n: u128 = dims.iter().map(|&d| d.max(1) as u128).product();
        if n > MAX_VALUES {
            return Err(invalid_arg(format!(
                "{what}: {name} would have shape {} ({origin}), more than the limit of \
                 {MAX_VALUES} elements per array (empty axes count as 1)",
                shape_str(dims)
            )));
        }
        total += n;
    }
    if total > MAX_TOTAL {
        return Err(invalid_arg(format!(
            "{what}: the results and cache would hold {total} elements ({origin}), more than \
             the limit of {MAX_TOTAL} (empty axes count as 1)"
        )));
    }
    Ok(())
}

// ---- parameter records -------------------------------------------------

course_record! {
    #[doc = "RNN parameters with the course's names."]
    pub struct RnnParameters for rnn::RnnParams {
        wax as "Wax": Tensor,
        waa as "Waa": Tensor,
        wya as "Wya": Tensor,
        ba: Tensor,
        by: Tensor,
    }
}

course_record! {
    #[doc = "LSTM parameters with the course's names (weights `(n_a, n_a + n_x)`)."]
    pub struct LstmParameters for lstm::LstmParams {
        wf as "Wf": Tensor,
        bf: Tensor,
        wi as "Wi": Tensor,
        bi: Tensor,
        wc as "Wc": Tensor,
        bc: Tensor,
        wo as "Wo": Tensor,
        bo: Tensor,
        wy as "Wy": Tensor,
        by: Tensor,
    }
}

// ---- caches --------------------------------------------------------------

// A cache is plain data (tensors in engine-owned memory), not a native object: Node runs the
// finalizers of native objects only when the event loop turns, so in a synchronous loop every
// native cache stayed alive until the loop ended (60 rnnForward calls with n_a = 256, m = 64,
// T_x = 50 held 0.5 GB; lstmForward 3.4 GB). V8 frees its own buffers during GC. The TS layer
// keeps these records opaque; backward re-checks every array (shapes, finiteness), so a cache
// that was tampered with gives an error naming the field, never undefined behaviour.

course_record! {
    #[doc = "What `rnnCellBackward` needs from `rnnCellForward`."]
    pub struct RnnCellCacheData for rnn::RnnCellCache {
        a_next as "a_next": Tensor,
        a_prev as "a_prev": Tensor,
        xt: Tensor,
        params as "parameters": RnnParameters,
    }
}

course_record! {
    #[doc = "What `rnnBackward` needs from `rnnForward`: the inputs, every hidden state, the parameters."]
    pub struct RnnCacheData for rnn::RnnCache {
        x: Tensor,
        a0: Tensor,
        a: Tensor,
        params as "parameters": RnnParameters,
    }
}

course_record! {
    #[doc = "What `lstmCellBackward` needs from `lstmCellForward`: states, gates, input, parameters."]
    pub struct LstmCellCacheData for lstm::LstmCellCache {
        a_next as "a_next": Tensor,
        c_next as "c_next": Tensor,
        a_prev as "a_prev": Tensor,
        c_prev as "c_prev": Tensor,
        ft: Tensor,
        it: Tensor,
        cct: Tensor,
        ot: Tensor,
        xt: Tensor,
        params as "parameters": LstmParameters,
    }
}

course_record! {
    #[doc = "What `lstmBackward` needs from `lstmForward`: inputs, states and gates of every step, parameters."]
    pub struct LstmCacheData for lstm::LstmCache {
        x: Tensor,
        a0: Tensor,
        a: Tensor,
        c: Tensor,
        ft: Tensor,
        it: Tensor,
        cct: Tensor,
        ot: Tensor,
        params as "parameters": LstmParameters,
    }
}

// ---- gradients -----------------------------------------------------------

course_record! {
    #[doc = "Gradients of one RNN step, keyed as in the course."]
    pub struct RnnCellGradients for rnn::RnnCellGradients {
        dxt: Tensor,
        da_prev as "da_prev": Tensor,
        dwax as "dWax": Tensor,
        dwaa as "dWaa": Tensor,
        dba: Tensor,
    }
}

course_record! {
    #[doc = "Gradients of the RNN over the sequence, keyed as in the course."]
    pub struct RnnGradients for rnn::RnnGradients {
        dx: Tensor,
        da0: Tensor,
        dwax as "dWax": Tensor,
        dwaa as "dWaa": Tensor,
        dba: Tensor,
    }
}

course_record! {
    #[doc = "Gradients of one LSTM step, keyed as in the course."]
    pub struct LstmCellGradients for lstm::LstmCellGradients {
        dxt: Tensor,
        da_prev as "da_prev": Tensor,
        dc_prev as "dc_prev": Tensor,
        dwf as "dWf": Tensor,
        dwi as "dWi": Tensor,
        dwc as "dWc": Tensor,
        dwo as "dWo": Tensor,
        dbf: Tensor,
        dbi: Tensor,
        dbc: Tensor,
        dbo: Tensor,
    }
}

course_record! {
    #[doc = "Gradients of the LSTM over the sequence (summed over time), keyed as in the course."]
    pub struct LstmGradients for lstm::LstmGradients {
        dx: Tensor,
        da0: Tensor,
        dwf as "dWf": Tensor,
        dwi as "dWi": Tensor,
        dwc as "dWc": Tensor,
        dwo as "dWo": Tensor,
        dbf: Tensor,
        dbi: Tensor,
        dbc: Tensor,
        dbo: Tensor,
    }
}

// ---- RNN ---------------------------------------------------------------

#[napi(object, object_from_js = false)]
pub struct RnnCellForwardResult {
    #[napi(js_name = "a_next")]
    pub a_next: Tensor,
    #[napi(js_name = "yt_pred")]
    pub yt_pred: Tensor,
    pub cache: RnnCellCacheData,
}

/// `a_next = tanh(Wax·xt + Waa·a_prev + ba)`, `yt_pred = softmax(Wya·a_next + by)`.
/// Shapes: `xt` (n_x, m), `a_prev` (n_a, m).
#[napi(catch_unwind)]
pub fn rnn_cell_forward(
    xt: Tensor,
    a_prev: Tensor,
    parameters: RnnParameters,
) -> Result<RnnCellForwardResult> {
    let p = parameters.to_core("parameters")?;
    let (xt, a_prev) = (to_array2("xt", &xt)?, to_array2("a_prev", &a_prev)?);
    let (n_x, n_a, n_y, m) = (p.wax.ncols(), p.wax.nrows(), p.wya.nrows(), xt.ncols());
    check_size(
        "rnnCellForward",
        "n_x, n_a from parameters.Wax, n_y from parameters.Wya, m from xt",
        &[
            ("a_next", &[n_a, m]),
            ("yt_pred", &[n_y, m]),
            ("cache (a_next, a_prev)", &[2 * n_a, m]),
            ("cache.xt", &[n_x, m]),
        ],
    )?;
    let (a_next, yt_pred, cache) =
        rnn::rnn_cell_forward(xt.view(), a_prev.view(), &p).map_err(core_err)?;
    Ok(RnnCellForwardResult {
        a_next: from_array(&a_next),
        yt_pred: from_array(&yt_pred),
        cache: RnnCellCacheData::from_core(&cache),
    })
}

#[napi(object, object_from_js = false)]
pub struct RnnForwardResult {
    pub a: Tensor,
    #[napi(js_name = "y_pred")]
    pub y_pred: Tensor,
    pub caches: RnnCacheData,
}

/// Runs the RNN over `x` (n_x, m, T_x) from `a0` (n_a, m): `a` (n_a, m, T_x), `y_pred` (n_y, m, T_x).
#[napi(catch_unwind)]
pub fn rnn_forward(x: Tensor, a0: Tensor, parameters: RnnParameters) -> Result<RnnForwardResult> {
    let p = parameters.to_core("parameters")?;
    let (x, a0) = (to_array3("x", &x)?, to_array2("a0", &a0)?);
    let (n_x, n_a, n_y) = (p.wax.ncols(), p.wax.nrows(), p.wya.nrows());
    let (m, t_x) = (x.shape()[1], x.shape()[2]);
    check_steps("rnnForward", t_x)?;
    check_size(
        "rnnForward",
        "n_x, n_a from parameters.Wax, n_y from parameters.Wya, m and T_x from x",
        &[
            ("a", &[n_a, m, t_x]),
            ("y_pred", &[n_y, m, t_x]),
            ("cache.a", &[n_a, m, t_x]),
            ("cache.x", &[n_x, m, t_x]),
        ],
    )?;
    let (a, y_pred, cache) = rnn::rnn_forward(x.view(), a0.view(), &p).map_err(core_err)?;
    Ok(RnnForwardResult {
        a: from_array(&a),
        y_pred: from_array(&y_pred),
        caches: RnnCacheData::from_core(&cache),
    })
}

/// Backward through one RNN step, from `da_next` (n_a, m) = dJ/da⟨t⟩.
#[napi(catch_unwind)]
pub fn rnn_cell_backward(da_next: Tensor, cache: RnnCellCacheData) -> Result<RnnCellGradients> {
    let cache = cache.to_core("cache")?;
    let g =
        rnn::rnn_cell_backward(to_array2("da_next", &da_next)?.view(), &cache).map_err(core_err)?;
    Ok(RnnCellGradients::from_core(&g))
}

/// Backpropagation through time from `da` (n_a, m, T_x), the upstream gradient of every hidden state.
#[napi(catch_unwind)]
pub fn rnn_backward(da: Tensor, caches: RnnCacheData) -> Result<RnnGradients> {
    let caches = caches.to_core("caches")?;
    let g = rnn::rnn_backward(to_array3("da", &da)?.view(), &caches).map_err(core_err)?;
    Ok(RnnGradients::from_core(&g))
}

// ---- LSTM --------------------------------------------------------------

#[napi(object, object_from_js = false)]
pub struct LstmCellForwardResult {
    #[napi(js_name = "a_next")]
    pub a_next: Tensor,
    #[napi(js_name = "c_next")]
    pub c_next: Tensor,
    #[napi(js_name = "yt_pred")]
    pub yt_pred: Tensor,
    pub cache: LstmCellCacheData,
}

/// One LSTM step with `concat = [a_prev; xt]`: forget/update/output gates, candidate, new cell and hidden state.
#[napi(catch_unwind)]
pub fn lstm_cell_forward(
    xt: Tensor,
    a_prev: Tensor,
    c_prev: Tensor,
    parameters: LstmParameters,
) -> Result<LstmCellForwardResult> {
    let p = parameters.to_core("parameters")?;
    let (xt, a_prev, c_prev) = (
        to_array2("xt", &xt)?,
        to_array2("a_prev", &a_prev)?,
        to_array2("c_prev", &c_prev)?,
    );
    let (n_a, n_y, m) = (p.wf.nrows(), p.wy.nrows(), xt.ncols());
    let n_x = p.wf.ncols().saturating_sub(n_a);
    check_size(
        "lstmCellForward",
        "n_a, n_x from parameters.Wf, n_y from parameters.Wy, m from xt",
        &[
            ("a_next", &[n_a, m]),
            ("c_next", &[n_a, m]),
            ("yt_pred", &[n_y, m]),
            // a_next, c_next, a_prev, c_prev and the four gates
            ("cache (states and gates)", &[8 * n_a, m]),
            ("cache.xt", &[n_x, m]),
        ],
    )?;
    let (a_next, c_next, yt_pred, cache) =
        lstm::lstm_cell_forward(xt.view(), a_prev.view(), c_prev.view(), &p).map_err(core_err)?;
    Ok(LstmCellForwardResult {
        a_next: from_array(&a_next),
        c_next: from_array(&c_next),
        yt_pred: from_array(&yt_pred),
        cache: LstmCellCacheData::from_core(&cache),
    })
}

#[napi(object, object_from_js = false)]
pub struct LstmForwardResult {
    pub a: Tensor,
    pub y: Tensor,
    pub c: Tensor,
    pub caches: LstmCacheData,
}

/// Runs the LSTM over `x` (n_x, m, T_x) from `a0` (n_a, m) and `c⟨0⟩ = 0`.
#[napi(catch_unwind)]
pub fn lstm_forward(
    x: Tensor,
    a0: Tensor,
    parameters: LstmParameters,
) -> Result<LstmForwardResult> {
    let p = parameters.to_core("parameters")?;
    let (x, a0) = (to_array3("x", &x)?, to_array2("a0", &a0)?);
    let (n_a, n_y) = (p.wf.nrows(), p.wy.nrows());
    let n_x = p.wf.ncols().saturating_sub(n_a);
    let (m, t_x) = (x.shape()[1], x.shape()[2]);
    check_steps("lstmForward", t_x)?;
    check_size(
        "lstmForward",
        "n_a, n_x from parameters.Wf, n_y from parameters.Wy, m and T_x from x",
        &[
            ("a", &[n_a, m, t_x]),
            ("c", &[n_a, m, t_x]),
            ("y", &[n_y, m, t_x]),
            // a, c and the four gates of every step
            ("cache (states and gates)", &[6 * n_a, m, t_x]),
            ("cache.x", &[n_x, m, t_x]),
        ],
    )?;
    let (a, y, c, cache) = lstm::lstm_forward(x.view(), a0.view(), &p).map_err(core_err)?;
    Ok(LstmForwardResult {
        a: from_array(&a),
        y: from_array(&y),
        c: from_array(&c),
        caches: LstmCacheData::from_core(&cache),
    })
}

/// Backward through one LSTM step from `da_next` and `dc_next` (both (n_a, m)).
#[napi(catch_unwind)]
pub fn lstm_cell_backward(
    da_next: Tensor,
    dc_next: Tensor,
    cache: LstmCellCacheData,
) -> Result<LstmCellGradients> {
    let cache = cache.to_core("cache")?;
    let g = lstm::lstm_cell_backward(
        to_array2("da_next", &da_next)?.view(),
        to_array2("dc_next", &dc_next)?.view(),
        &cache,
    )
    .map_err(core_err)?;
    Ok(LstmCellGradients::from_core(&g))
}

/// True backpropagation through time for the LSTM from `da` (n_a, m, T_x): unlike the
/// course's own code, the gradient flowing back from step t+1 is added at every step.
#[napi(catch_unwind)]
pub fn lstm_backward(da: Tensor, caches: LstmCacheData) -> Result<LstmGradients> {
    let caches = caches.to_core("caches")?;
    let g = lstm::lstm_backward(to_array3("da", &da)?.view(), &caches).map_err(core_err)?;
    Ok(LstmGradients::from_core(&g))
}
