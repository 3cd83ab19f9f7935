//! The course's building blocks ("Building a Recurrent Neural Network — Step
//! by Step") for JS: records keyed by the course's names, caches as opaque handles.

use napi_derive::napi;
use rnnlab_core::course::{lstm, rnn};

use crate::errors::{core_err, invalid_arg, JsResult};
use crate::tensor::{from_array, shape_str, to_array2, to_array3, Tensor};

// ---- size limits -------------------------------------------------------

/// Most elements one result (or cached array) of a call may have: 2^28 f64 = 2 GiB.
const MAX_VALUES: u128 = 1 << 28;
/// Most elements all results and caches of one call may have together (4 GiB).
const MAX_TOTAL: u128 = 1 << 29;

/// Most time steps one sequence call may run (about a million): each step costs a few
/// allocations even when every array is empty, so x (0, 0, 2^27) would take minutes.
const MAX_STEPS: usize = 1 << 20;

fn check_steps(what: &str, t_x: usize) -> JsResult<()> {
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
fn check_size(what: &str, origin: &str, parts: &[(&str, &[usize])]) -> JsResult<()> {
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

/// RNN parameters with the course's names.
#[napi(object)]
pub struct RnnParameters {
    #[napi(js_name = "Wax")]
    pub wax: Tensor,
    #[napi(js_name = "Waa")]
    pub waa: Tensor,
    #[napi(js_name = "Wya")]
    pub wya: Tensor,
    pub ba: Tensor,
    pub by: Tensor,
}

/// The core's parameters; errors name `{name}.Wax` etc.
fn rnn_params(name: &str, p: &RnnParameters) -> napi::Result<rnn::RnnParams, String> {
    Ok(rnn::RnnParams {
        wax: to_array2(&format!("{name}.Wax"), &p.wax)?,
        waa: to_array2(&format!("{name}.Waa"), &p.waa)?,
        wya: to_array2(&format!("{name}.Wya"), &p.wya)?,
        ba: to_array2(&format!("{name}.ba"), &p.ba)?,
        by: to_array2(&format!("{name}.by"), &p.by)?,
    })
}

fn rnn_params_js(p: &rnn::RnnParams) -> RnnParameters {
    RnnParameters {
        wax: from_array(&p.wax),
        waa: from_array(&p.waa),
        wya: from_array(&p.wya),
        ba: from_array(&p.ba),
        by: from_array(&p.by),
    }
}

/// LSTM parameters with the course's names (weights `(n_a, n_a + n_x)`).
#[napi(object)]
pub struct LstmParameters {
    #[napi(js_name = "Wf")]
    pub wf: Tensor,
    pub bf: Tensor,
    #[napi(js_name = "Wi")]
    pub wi: Tensor,
    pub bi: Tensor,
    #[napi(js_name = "Wc")]
    pub wc: Tensor,
    pub bc: Tensor,
    #[napi(js_name = "Wo")]
    pub wo: Tensor,
    pub bo: Tensor,
    #[napi(js_name = "Wy")]
    pub wy: Tensor,
    pub by: Tensor,
}

/// The core's parameters; errors name `{name}.Wf` etc.
fn lstm_params(name: &str, p: &LstmParameters) -> napi::Result<lstm::LstmParams, String> {
    let w = |key: &str, t: &Tensor| to_array2(&format!("{name}.{key}"), t);
    Ok(lstm::LstmParams {
        wf: w("Wf", &p.wf)?,
        bf: w("bf", &p.bf)?,
        wi: w("Wi", &p.wi)?,
        bi: w("bi", &p.bi)?,
        wc: w("Wc", &p.wc)?,
        bc: w("bc", &p.bc)?,
        wo: w("Wo", &p.wo)?,
        bo: w("bo", &p.bo)?,
        wy: w("Wy", &p.wy)?,
        by: w("by", &p.by)?,
    })
}

fn lstm_params_js(p: &lstm::LstmParams) -> LstmParameters {
    LstmParameters {
        wf: from_array(&p.wf),
        bf: from_array(&p.bf),
        wi: from_array(&p.wi),
        bi: from_array(&p.bi),
        wc: from_array(&p.wc),
        bc: from_array(&p.bc),
        wo: from_array(&p.wo),
        bo: from_array(&p.bo),
        wy: from_array(&p.wy),
        by: from_array(&p.by),
    }
}

// ---- caches --------------------------------------------------------------

// A cache is plain data (tensors in engine-owned memory), not a native object: Node runs the
// finalizers of native objects only when the event loop turns, so in a synchronous loop every
// native cache stayed alive until the loop ended (60 rnnForward calls with n_a = 256, m = 64,
// T_x = 50 held 0.5 GB; lstmForward 3.4 GB). V8 frees its own buffers during GC. The TS layer
// keeps these records opaque; backward re-checks every array (shapes, finiteness), so a cache
// that was tampered with gives an error naming the field, never undefined behaviour.

/// What `rnnCellBackward` needs from `rnnCellForward`.
#[napi(object)]
pub struct RnnCellCacheData {
    #[napi(js_name = "a_next")]
    pub a_next: Tensor,
    #[napi(js_name = "a_prev")]
    pub a_prev: Tensor,
    pub xt: Tensor,
    pub parameters: RnnParameters,
}

impl RnnCellCacheData {
    fn from_core(c: &rnn::RnnCellCache) -> Self {
        RnnCellCacheData {
            a_next: from_array(&c.a_next),
            a_prev: from_array(&c.a_prev),
            xt: from_array(&c.xt),
            parameters: rnn_params_js(&c.params),
        }
    }

    fn to_core(&self, name: &str) -> napi::Result<rnn::RnnCellCache, String> {
        Ok(rnn::RnnCellCache {
            a_next: to_array2(&format!("{name}.a_next"), &self.a_next)?,
            a_prev: to_array2(&format!("{name}.a_prev"), &self.a_prev)?,
            xt: to_array2(&format!("{name}.xt"), &self.xt)?,
            params: rnn_params(&format!("{name}.parameters"), &self.parameters)?,
        })
    }
}

/// What `rnnBackward` needs from `rnnForward`: the inputs, every hidden state, the parameters.
#[napi(object)]
pub struct RnnCacheData {
    pub x: Tensor,
    pub a0: Tensor,
    pub a: Tensor,
    pub parameters: RnnParameters,
}

impl RnnCacheData {
    fn from_core(c: &rnn::RnnCache) -> Self {
        RnnCacheData {
            x: from_array(&c.x),
            a0: from_array(&c.a0),
            a: from_array(&c.a),
            parameters: rnn_params_js(&c.params),
        }
    }

    fn to_core(&self, name: &str) -> napi::Result<rnn::RnnCache, String> {
        Ok(rnn::RnnCache {
            x: to_array3(&format!("{name}.x"), &self.x)?,
            a0: to_array2(&format!("{name}.a0"), &self.a0)?,
            a: to_array3(&format!("{name}.a"), &self.a)?,
            params: rnn_params(&format!("{name}.parameters"), &self.parameters)?,
        })
    }
}

/// What `lstmCellBackward` needs from `lstmCellForward`: states, gates, input, parameters.
#[napi(object)]
pub struct LstmCellCacheData {
    #[napi(js_name = "a_next")]
    pub a_next: Tensor,
    #[napi(js_name = "c_next")]
    pub c_next: Tensor,
    #[napi(js_name = "a_prev")]
    pub a_prev: Tensor,
    #[napi(js_name = "c_prev")]
    pub c_prev: Tensor,
    pub ft: Tensor,
    pub it: Tensor,
    pub cct: Tensor,
    pub ot: Tensor,
    pub xt: Tensor,
    pub parameters: LstmParameters,
}

impl LstmCellCacheData {
    fn from_core(c: &lstm::LstmCellCache) -> Self {
        LstmCellCacheData {
            a_next: from_array(&c.a_next),
            c_next: from_array(&c.c_next),
            a_prev: from_array(&c.a_prev),
            c_prev: from_array(&c.c_prev),
            ft: from_array(&c.ft),
            it: from_array(&c.it),
            cct: from_array(&c.cct),
            ot: from_array(&c.ot),
            xt: from_array(&c.xt),
            parameters: lstm_params_js(&c.params),
        }
    }

    fn to_core(&self, name: &str) -> napi::Result<lstm::LstmCellCache, String> {
        let m = |key: &str, t: &Tensor| to_array2(&format!("{name}.{key}"), t);
        Ok(lstm::LstmCellCache {
            a_next: m("a_next", &self.a_next)?,
            c_next: m("c_next", &self.c_next)?,
            a_prev: m("a_prev", &self.a_prev)?,
            c_prev: m("c_prev", &self.c_prev)?,
            ft: m("ft", &self.ft)?,
            it: m("it", &self.it)?,
            cct: m("cct", &self.cct)?,
            ot: m("ot", &self.ot)?,
            xt: m("xt", &self.xt)?,
            params: lstm_params(&format!("{name}.parameters"), &self.parameters)?,
        })
    }
}

/// What `lstmBackward` needs from `lstmForward`: inputs, states and gates of every step, parameters.
#[napi(object)]
pub struct LstmCacheData {
    pub x: Tensor,
    pub a0: Tensor,
    pub a: Tensor,
    pub c: Tensor,
    pub ft: Tensor,
    pub it: Tensor,
    pub cct: Tensor,
    pub ot: Tensor,
    pub parameters: LstmParameters,
}

impl LstmCacheData {
    fn from_core(c: &lstm::LstmCache) -> Self {
        LstmCacheData {
            x: from_array(&c.x),
            a0: from_array(&c.a0),
            a: from_array(&c.a),
            c: from_array(&c.c),
            ft: from_array(&c.ft),
            it: from_array(&c.it),
            cct: from_array(&c.cct),
            ot: from_array(&c.ot),
            parameters: lstm_params_js(&c.params),
        }
    }

    fn to_core(&self, name: &str) -> napi::Result<lstm::LstmCache, String> {
        let m = |key: &str, t: &Tensor| to_array3(&format!("{name}.{key}"), t);
        Ok(lstm::LstmCache {
            x: m("x", &self.x)?,
            a0: to_array2(&format!("{name}.a0"), &self.a0)?,
            a: m("a", &self.a)?,
            c: m("c", &self.c)?,
            ft: m("ft", &self.ft)?,
            it: m("it", &self.it)?,
            cct: m("cct", &self.cct)?,
            ot: m("ot", &self.ot)?,
            params: lstm_params(&format!("{name}.parameters"), &self.parameters)?,
        })
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
) -> napi::Result<RnnCellForwardResult, String> {
    let p = rnn_params("parameters", &parameters)?;
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
pub fn rnn_forward(
    x: Tensor,
    a0: Tensor,
    parameters: RnnParameters,
) -> napi::Result<RnnForwardResult, String> {
    let p = rnn_params("parameters", &parameters)?;
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

/// Gradients of one RNN step, keyed as in the course.
#[napi(object)]
pub struct RnnCellGradients {
    pub dxt: Tensor,
    #[napi(js_name = "da_prev")]
    pub da_prev: Tensor,
    #[napi(js_name = "dWax")]
    pub dwax: Tensor,
    #[napi(js_name = "dWaa")]
    pub dwaa: Tensor,
    pub dba: Tensor,
}

/// Backward through one RNN step, from `da_next` (n_a, m) = dJ/da⟨t⟩.
#[napi(catch_unwind)]
pub fn rnn_cell_backward(
    da_next: Tensor,
    cache: RnnCellCacheData,
) -> napi::Result<RnnCellGradients, String> {
    let cache = cache.to_core("cache")?;
    let g =
        rnn::rnn_cell_backward(to_array2("da_next", &da_next)?.view(), &cache).map_err(core_err)?;
    Ok(RnnCellGradients {
        dxt: from_array(&g.dxt),
        da_prev: from_array(&g.da_prev),
        dwax: from_array(&g.dwax),
        dwaa: from_array(&g.dwaa),
        dba: from_array(&g.dba),
    })
}

/// Gradients of the RNN over the sequence, keyed as in the course.
#[napi(object)]
pub struct RnnGradients {
    pub dx: Tensor,
    pub da0: Tensor,
    #[napi(js_name = "dWax")]
    pub dwax: Tensor,
    #[napi(js_name = "dWaa")]
    pub dwaa: Tensor,
    pub dba: Tensor,
}

/// Backpropagation through time from `da` (n_a, m, T_x), the upstream gradient of every hidden state.
#[napi(catch_unwind)]
pub fn rnn_backward(da: Tensor, caches: RnnCacheData) -> napi::Result<RnnGradients, String> {
    let caches = caches.to_core("caches")?;
    let g = rnn::rnn_backward(to_array3("da", &da)?.view(), &caches).map_err(core_err)?;
    Ok(RnnGradients {
        dx: from_array(&g.dx),
        da0: from_array(&g.da0),
        dwax: from_array(&g.dwax),
        dwaa: from_array(&g.dwaa),
        dba: from_array(&g.dba),
    })
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
) -> napi::Result<LstmCellForwardResult, String> {
    let p = lstm_params("parameters", &parameters)?;
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
) -> napi::Result<LstmForwardResult, String> {
    let p = lstm_params("parameters", &parameters)?;
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

/// Gradients of one LSTM step, keyed as in the course.
#[napi(object)]
pub struct LstmCellGradients {
    pub dxt: Tensor,
    #[napi(js_name = "da_prev")]
    pub da_prev: Tensor,
    #[napi(js_name = "dc_prev")]
    pub dc_prev: Tensor,
    #[napi(js_name = "dWf")]
    pub dwf: Tensor,
    #[napi(js_name = "dWi")]
    pub dwi: Tensor,
    #[napi(js_name = "dWc")]
    pub dwc: Tensor,
    #[napi(js_name = "dWo")]
    pub dwo: Tensor,
    pub dbf: Tensor,
    pub dbi: Tensor,
    pub dbc: Tensor,
    pub dbo: Tensor,
}

/// Backward through one LSTM step from `da_next` and `dc_next` (both (n_a, m)).
#[napi(catch_unwind)]
pub fn lstm_cell_backward(
    da_next: Tensor,
    dc_next: Tensor,
    cache: LstmCellCacheData,
) -> napi::Result<LstmCellGradients, String> {
    let cache = cache.to_core("cache")?;
    let g = lstm::lstm_cell_backward(
        to_array2("da_next", &da_next)?.view(),
        to_array2("dc_next", &dc_next)?.view(),
        &cache,
    )
    .map_err(core_err)?;
    Ok(LstmCellGradients {
        dxt: from_array(&g.dxt),
        da_prev: from_array(&g.da_prev),
        dc_prev: from_array(&g.dc_prev),
        dwf: from_array(&g.dwf),
        dwi: from_array(&g.dwi),
        dwc: from_array(&g.dwc),
        dwo: from_array(&g.dwo),
        dbf: from_array(&g.dbf),
        dbi: from_array(&g.dbi),
        dbc: from_array(&g.dbc),
        dbo: from_array(&g.dbo),
    })
}

/// Gradients of the LSTM over the sequence (summed over time), keyed as in the course.
#[napi(object)]
pub struct LstmGradients {
    pub dx: Tensor,
    pub da0: Tensor,
    #[napi(js_name = "dWf")]
    pub dwf: Tensor,
    #[napi(js_name = "dWi")]
    pub dwi: Tensor,
    #[napi(js_name = "dWc")]
    pub dwc: Tensor,
    #[napi(js_name = "dWo")]
    pub dwo: Tensor,
    pub dbf: Tensor,
    pub dbi: Tensor,
    pub dbc: Tensor,
    pub dbo: Tensor,
}

/// True backpropagation through time for the LSTM from `da` (n_a, m, T_x): unlike the
/// course's own code, the gradient flowing back from step t+1 is added at every step.
#[napi(catch_unwind)]
pub fn lstm_backward(da: Tensor, caches: LstmCacheData) -> napi::Result<LstmGradients, String> {
    let caches = caches.to_core("caches")?;
    let g = lstm::lstm_backward(to_array3("da", &da)?.view(), &caches).map_err(core_err)?;
    Ok(LstmGradients {
        dx: from_array(&g.dx),
        da0: from_array(&g.da0),
        dwf: from_array(&g.dwf),
        dwi: from_array(&g.dwi),
        dwc: from_array(&g.dwc),
        dwo: from_array(&g.dwo),
        dbf: from_array(&g.dbf),
        dbi: from_array(&g.dbi),
        dbc: from_array(&g.dbc),
        dbo: from_array(&g.dbo),
    })
}
