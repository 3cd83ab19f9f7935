//! The course's functions for the name model: `initialize_parameters`, `rnn_forward`,
//! `rnn_backward`, `clip`, `update_parameters`, `optimize`, `smooth`, `get_initial_loss`
//! (the kernels behind them are in `numpy_order.rs`).

use ndarray::Array2;

use super::numpy_order::{
    backward_dispatch, forward_backward, forward_recurrence, forward_step_only, fused_update,
    CharRnnWorkspace, ParamsMut,
};
use super::{
    check_clip, check_clip_value, check_learning_rate, check_sequence, clip_value, flat_mut,
    CharRnnGradients, CharRnnParams, Clip, COURSE_CLIP,
};
use crate::error::{CoreError, Result};
use crate::random::RandomState;

/// The course's `initialize_parameters`: `np.random.seed(1)`, then
/// `Wax, Waa, Wya = randn(n_a,n_x)·0.01, randn(n_a,n_a)·0.01, randn(n_y,n_a)·0.01` (in that
/// order) and zero biases.
pub fn initialize_parameters(n_a: usize, n_x: usize, n_y: usize) -> CharRnnParams {
    initialize_parameters_seeded(n_a, n_x, n_y, 1)
}

/// [`initialize_parameters`] with another seed than the course's 1.
pub fn initialize_parameters_seeded(
    n_a: usize,
    n_x: usize,
    n_y: usize,
    seed: u32,
) -> CharRnnParams {
    let mut rs = RandomState::new(seed);
    let wax = rs.randn2(n_a, n_x) * 0.01; // (n_a, n_x)
    let waa = rs.randn2(n_a, n_a) * 0.01; // (n_a, n_a)
    let wya = rs.randn2(n_y, n_a) * 0.01; // (n_y, n_a)
    CharRnnParams {
        wax,
        waa,
        wya,
        b: Array2::zeros((n_a, 1)),
        by: Array2::zeros((n_y, 1)),
    }
}

/// What [`rnn_forward`] keeps for [`rnn_backward`]: the inputs and every hidden state and
/// softmax output (the course's `cache = (y_hat, a, x)`).
#[derive(Debug, Clone)]
pub struct CharRnnCache {
    /// The input indices (`None` = zero vector).
    pub x: Vec<Option<usize>>,
    /// The buffers holding `a⟨t⟩` and `ŷ⟨t⟩`; see [`CharRnnWorkspace::a`] and
    /// [`CharRnnWorkspace::y_hat`].
    pub workspace: CharRnnWorkspace,
}

impl CharRnnCache {
    /// The last hidden state `a⟨T−1⟩`, `(n_a,)`.
    pub fn a_last(&self) -> &[f64] {
        self.workspace.a_last()
    }
}

/// The course's `rnn_forward(X, Y, a0, parameters)`: the cross-entropy loss
/// `Σ_t −log ŷ⟨t⟩[Y[t]]` and the cache. `x[t] = None` is the zero input vector; `a0` is
/// `(n_a,)`. Index errors name the position and the value.
pub fn rnn_forward(
    x: &[Option<usize>],
    y: &[usize],
    a0: &[f64],
    params: &CharRnnParams,
) -> Result<(f64, CharRnnCache)> {
    let p = params.view()?;
    check_sequence(x, y, a0, p.n_a, p.n_x, p.n_y)?;
    let mut ws = CharRnnWorkspace::new(p.n_a, p.n_x, p.n_y, x.len());
    let loss = forward_step_only(&mut ws, &p, x, y, a0);
    Ok((
        loss,
        CharRnnCache {
            x: x.to_vec(),
            workspace: ws,
        },
    ))
}

/// The course's `rnn_backward(X, Y, parameters, cache)`: the gradients of the loss of the
/// forward pass held in `cache` (backpropagation through time).
pub fn rnn_backward(
    x: &[Option<usize>],
    y: &[usize],
    params: &CharRnnParams,
    cache: &CharRnnCache,
) -> Result<CharRnnGradients> {
    let p = params.view()?;
    check_sequence(x, y, cache.workspace.a0(), p.n_a, p.n_x, p.n_y)?;
    let ws = &cache.workspace;
    if (ws.n_a, ws.n_x, ws.n_y) != (p.n_a, p.n_x, p.n_y) || ws.steps != x.len() || cache.x != x {
        return Err(CoreError::invalid(
            "rnn_backward: the cache does not come from rnn_forward on these x and parameters",
        ));
    }
    let mut ws = ws.clone();
    backward_dispatch(&mut ws, &p, x, y)?;
    Ok(ws.grads)
}

/// The course's `clip(gradients, maxValue)`: every element into `[−max_value, max_value]`
/// (`np.clip`, NaN stays NaN).
pub fn clip(grads: &mut CharRnnGradients, max_value: f64) -> Result<()> {
    check_clip_value(max_value)?;
    grads.validate()?;
    for g in grads.all_mut() {
        for v in flat_mut("gradients", g)? {
            *v = clip_value(*v, max_value);
        }
    }
    Ok(())
}

/// Global-norm clipping: if `‖(dWax, dWaa, dWya, db, dby)‖₂ > max_norm`, scale every
/// gradient by `max_norm / norm`. Returns the norm before clipping.
pub fn clip_global_norm(grads: &mut CharRnnGradients, max_norm: f64) -> Result<f64> {
    check_clip_value(max_norm)?;
    grads.validate()?;
    let mut sq = 0.0f64;
    for g in grads.all_mut() {
        for v in g.iter() {
            sq += v * v;
        }
    }
    let norm = sq.sqrt();
    if norm > max_norm {
        let scale = max_norm / norm;
        for g in grads.all_mut() {
            g.mapv_inplace(|v| v * scale);
        }
    }
    Ok(norm)
}

/// The course's `update_parameters`: `W += −lr · dW` for all five parameters.
pub fn update_parameters(
    params: &mut CharRnnParams,
    grads: &CharRnnGradients,
    learning_rate: f64,
) -> Result<()> {
    params.validate()?;
    grads.validate()?;
    if grads.dims() != (params.n_a(), params.n_x(), params.n_y()) {
        return Err(CoreError::ShapeMismatch {
            name: "gradients".into(),
            expected: format!(
                "n_a={}, n_x={}, n_y={}",
                params.n_a(),
                params.n_x(),
                params.n_y()
            ),
            actual: format!("{:?}", grads.dims()),
        });
    }
    check_learning_rate(learning_rate)?;
    let neg_lr = -learning_rate;
    let pairs: [(&mut Array2<f64>, &Array2<f64>); 5] = [
        (&mut params.wax, &grads.dwax),
        (&mut params.waa, &grads.dwaa),
        (&mut params.wya, &grads.dwya),
        (&mut params.b, &grads.db),
        (&mut params.by, &grads.dby),
    ];
    for (w, dw) in pairs {
        let w = w
            .as_slice_mut()
            .ok_or_else(|| CoreError::invalid("parameters: expected C-order arrays"))?;
        let dw = dw
            .as_slice()
            .ok_or_else(|| CoreError::invalid("gradients: expected C-order arrays"))?;
        for (wi, &di) in w.iter_mut().zip(dw) {
            *wi += neg_lr * di;
        }
    }
    Ok(())
}

/// Clip in place according to `mode` (checked by `check_clip`: at most one bound).
fn apply_clip(grads: &mut CharRnnGradients, mode: Clip) -> Result<()> {
    if let Some(norm) = mode.norm {
        clip_global_norm(grads, norm)?;
    }
    match mode.value {
        Some(value) => clip(grads, value),
        None => Ok(()),
    }
}

/// The course's `optimize(X, Y, a_prev, parameters, learning_rate)`: forward, backward,
/// clip to ±5, SGD update. Returns `(loss, gradients, a_last)` with `a_last = a⟨T−1⟩`.
pub fn optimize(
    x: &[Option<usize>],
    y: &[usize],
    a_prev: &[f64],
    params: &mut CharRnnParams,
    learning_rate: f64,
) -> Result<(f64, CharRnnGradients, Vec<f64>)> {
    let mut ws = CharRnnWorkspace::new(params.n_a(), params.n_x(), params.n_y(), x.len());
    let loss = optimize_in(
        &mut ws,
        x,
        y,
        a_prev,
        params,
        learning_rate,
        Clip {
            value: Some(COURSE_CLIP),
            norm: None,
        },
    )?;
    let a_last = ws.a_last().to_vec();
    Ok((loss, ws.grads, a_last))
}

/// [`optimize`] with buffers from `ws` (no allocation once `ws` is large enough) and a
/// choice of clipping. Leaves the clipped gradients in `ws.grads` and the last hidden state
/// in `ws.a_last()`; returns the loss.
pub fn optimize_in(
    ws: &mut CharRnnWorkspace,
    x: &[Option<usize>],
    y: &[usize],
    a_prev: &[f64],
    params: &mut CharRnnParams,
    learning_rate: f64,
    clip_mode: Clip,
) -> Result<f64> {
    optimize_step(
        ws,
        (x, y, a_prev),
        params,
        learning_rate,
        clip_mode,
        OnNonFinite::Update,
    )
}

/// What a training step does when its loss is not finite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnNonFinite {
    /// Update anyway, as the course's numpy code does.
    Update,
    /// Leave the parameters as they were (a trainer keeps its last good state).
    Keep,
}

/// [`optimize_in`] with a choice for a diverged step; returns the loss either way.
pub(crate) fn optimize_step(
    ws: &mut CharRnnWorkspace,
    (x, y, a_prev): (&[Option<usize>], &[usize], &[f64]),
    params: &mut CharRnnParams,
    learning_rate: f64,
    clip_mode: Clip,
    on_non_finite: OnNonFinite,
) -> Result<f64> {
    check_clip(&clip_mode)?;
    check_learning_rate(learning_rate)?;
    {
        let p = params.view()?;
        check_sequence(x, y, a_prev, p.n_a, p.n_x, p.n_y)?;
        ws.ensure(p.n_a, p.n_x, p.n_y, x.len());
    }
    // the course's element-wise clip: each gradient block is clipped and applied as soon as
    // it is summed (the same operations per element as clip, then update_parameters)
    let fused = clip_mode.value.filter(|_| clip_mode.norm.is_none());
    let loss = if fused.is_some() {
        forward_recurrence(ws, &params.view()?, x, y, a_prev)
    } else {
        forward_backward(ws, &params.view()?, x, y, a_prev)?
    };
    if !loss.is_finite() && on_non_finite == OnNonFinite::Keep {
        return Ok(loss);
    }
    if let Some(max_value) = fused {
        let mut pm = ParamsMut {
            wax: flat_mut("wax", &mut params.wax)?,
            waa: flat_mut("waa", &mut params.waa)?,
            wya: flat_mut("wya", &mut params.wya)?,
            b: flat_mut("b", &mut params.b)?,
            by: flat_mut("by", &mut params.by)?,
        };
        fused_update(ws, x, &mut pm, max_value, -learning_rate)?;
    } else {
        apply_clip(&mut ws.grads, clip_mode)?;
        update_parameters(params, &ws.grads, learning_rate)?;
    }
    Ok(loss)
}

/// The course's `smooth`: `loss · 0.999 + cur_loss · 0.001`.
pub fn smooth(loss: f64, cur_loss: f64) -> f64 {
    loss * 0.999 + cur_loss * 0.001
}

/// The course's `get_initial_loss`: `−log(1/vocab_size) · seq_length`.
pub fn initial_loss(vocab_size: usize, seq_length: usize) -> f64 {
    -(1.0 / vocab_size as f64).ln() * seq_length as f64
}

// ------------------------------------------------------------------ sampling
