//! The course's building blocks ("Building a Recurrent Neural Network — Step
//! by Step") for JS: records keyed by the course's names, caches as opaque handles.

use napi_derive::napi;
use rnnlab_core::{lstm, rnn};

use crate::errors::core_err;
use crate::tensor::{from_array, to_array2, to_array3, Tensor};

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

fn rnn_params(p: &RnnParameters) -> napi::Result<rnn::RnnParams, String> {
    Ok(rnn::RnnParams {
        wax: to_array2("parameters.Wax", &p.wax)?,
        waa: to_array2("parameters.Waa", &p.waa)?,
        wya: to_array2("parameters.Wya", &p.wya)?,
        ba: to_array2("parameters.ba", &p.ba)?,
        by: to_array2("parameters.by", &p.by)?,
    })
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

fn lstm_params(p: &LstmParameters) -> napi::Result<lstm::LstmParams, String> {
    Ok(lstm::LstmParams {
        wf: to_array2("parameters.Wf", &p.wf)?,
        bf: to_array2("parameters.bf", &p.bf)?,
        wi: to_array2("parameters.Wi", &p.wi)?,
        bi: to_array2("parameters.bi", &p.bi)?,
        wc: to_array2("parameters.Wc", &p.wc)?,
        bc: to_array2("parameters.bc", &p.bc)?,
        wo: to_array2("parameters.Wo", &p.wo)?,
        bo: to_array2("parameters.bo", &p.bo)?,
        wy: to_array2("parameters.Wy", &p.wy)?,
        by: to_array2("parameters.by", &p.by)?,
    })
}

// ---- opaque caches -----------------------------------------------------

/// What `rnnCellBackward` needs from `rnnCellForward` (opaque).
#[napi]
pub struct RnnCellCache {
    inner: rnn::RnnCellCache,
}

/// What `rnnBackward` needs from `rnnForward` (opaque).
#[napi]
pub struct RnnCache {
    inner: rnn::RnnCache,
}

/// What `lstmCellBackward` needs from `lstmCellForward` (opaque).
#[napi]
pub struct LstmCellCache {
    inner: lstm::LstmCellCache,
}

/// What `lstmBackward` needs from `lstmForward` (opaque).
#[napi]
pub struct LstmCache {
    inner: lstm::LstmCache,
}

// ---- RNN ---------------------------------------------------------------

#[napi(object, object_from_js = false)]
pub struct RnnCellForwardResult {
    #[napi(js_name = "a_next")]
    pub a_next: Tensor,
    #[napi(js_name = "yt_pred")]
    pub yt_pred: Tensor,
    pub cache: RnnCellCache,
}

/// `a_next = tanh(Wax·xt + Waa·a_prev + ba)`, `yt_pred = softmax(Wya·a_next + by)`.
/// Shapes: `xt` (n_x, m), `a_prev` (n_a, m).
#[napi(catch_unwind)]
pub fn rnn_cell_forward(xt: Tensor, a_prev: Tensor, parameters: RnnParameters) -> napi::Result<RnnCellForwardResult, String> {
    let p = rnn_params(&parameters)?;
    let (a_next, yt_pred, cache) =
        rnn::rnn_cell_forward(to_array2("xt", &xt)?.view(), to_array2("a_prev", &a_prev)?.view(), &p).map_err(core_err)?;
    Ok(RnnCellForwardResult { a_next: from_array(&a_next), yt_pred: from_array(&yt_pred), cache: RnnCellCache { inner: cache } })
}

#[napi(object, object_from_js = false)]
pub struct RnnForwardResult {
    pub a: Tensor,
    #[napi(js_name = "y_pred")]
    pub y_pred: Tensor,
    pub caches: RnnCache,
}

/// Runs the RNN over `x` (n_x, m, T_x) from `a0` (n_a, m): `a` (n_a, m, T_x), `y_pred` (n_y, m, T_x).
#[napi(catch_unwind)]
pub fn rnn_forward(x: Tensor, a0: Tensor, parameters: RnnParameters) -> napi::Result<RnnForwardResult, String> {
    let p = rnn_params(&parameters)?;
    let (a, y_pred, cache) = rnn::rnn_forward(to_array3("x", &x)?.view(), to_array2("a0", &a0)?.view(), &p).map_err(core_err)?;
    Ok(RnnForwardResult { a: from_array(&a), y_pred: from_array(&y_pred), caches: RnnCache { inner: cache } })
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
pub fn rnn_cell_backward(da_next: Tensor, cache: &RnnCellCache) -> napi::Result<RnnCellGradients, String> {
    let g = rnn::rnn_cell_backward(to_array2("da_next", &da_next)?.view(), &cache.inner).map_err(core_err)?;
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
pub fn rnn_backward(da: Tensor, caches: &RnnCache) -> napi::Result<RnnGradients, String> {
    let g = rnn::rnn_backward(to_array3("da", &da)?.view(), &caches.inner).map_err(core_err)?;
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
    pub cache: LstmCellCache,
}

/// One LSTM step with `concat = [a_prev; xt]`: forget/update/output gates, candidate, new cell and hidden state.
#[napi(catch_unwind)]
pub fn lstm_cell_forward(xt: Tensor, a_prev: Tensor, c_prev: Tensor, parameters: LstmParameters) -> napi::Result<LstmCellForwardResult, String> {
    let p = lstm_params(&parameters)?;
    let (a_next, c_next, yt_pred, cache) = lstm::lstm_cell_forward(
        to_array2("xt", &xt)?.view(),
        to_array2("a_prev", &a_prev)?.view(),
        to_array2("c_prev", &c_prev)?.view(),
        &p,
    )
    .map_err(core_err)?;
    Ok(LstmCellForwardResult {
        a_next: from_array(&a_next),
        c_next: from_array(&c_next),
        yt_pred: from_array(&yt_pred),
        cache: LstmCellCache { inner: cache },
    })
}

#[napi(object, object_from_js = false)]
pub struct LstmForwardResult {
    pub a: Tensor,
    pub y: Tensor,
    pub c: Tensor,
    pub caches: LstmCache,
}

/// Runs the LSTM over `x` (n_x, m, T_x) from `a0` (n_a, m) and `c⟨0⟩ = 0`.
#[napi(catch_unwind)]
pub fn lstm_forward(x: Tensor, a0: Tensor, parameters: LstmParameters) -> napi::Result<LstmForwardResult, String> {
    let p = lstm_params(&parameters)?;
    let (a, y, c, cache) = lstm::lstm_forward(to_array3("x", &x)?.view(), to_array2("a0", &a0)?.view(), &p).map_err(core_err)?;
    Ok(LstmForwardResult { a: from_array(&a), y: from_array(&y), c: from_array(&c), caches: LstmCache { inner: cache } })
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
pub fn lstm_cell_backward(da_next: Tensor, dc_next: Tensor, cache: &LstmCellCache) -> napi::Result<LstmCellGradients, String> {
    let g = lstm::lstm_cell_backward(to_array2("da_next", &da_next)?.view(), to_array2("dc_next", &dc_next)?.view(), &cache.inner)
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
pub fn lstm_backward(da: Tensor, caches: &LstmCache) -> napi::Result<LstmGradients, String> {
    let g = lstm::lstm_backward(to_array3("da", &da)?.view(), &caches.inner).map_err(core_err)?;
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
