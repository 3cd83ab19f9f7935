//! The LSTM of the course, step by step: one cell forward/backward and the whole sequence
//! forward/backward, with the course's names and shapes (float64).
//!
//! With `concat = [a⟨t−1⟩; x⟨t⟩]` (n_a + n_x, m) — hidden state first, then input:
//!
//! ```text
//! Γf = σ(Wf concat + bf)        forget gate        (n_a, m)
//! Γu = σ(Wi concat + bi)        update gate        (the course calls it `it`, weights `Wi`)
//! c̃  = tanh(Wc concat + bc)     candidate          (`cct`)
//! c⟨t⟩ = Γf ∘ c⟨t−1⟩ + Γu ∘ c̃
//! Γo = σ(Wo concat + bo)        output gate
//! a⟨t⟩ = Γo ∘ tanh(c⟨t⟩)
//! ŷ⟨t⟩ = softmax(Wy a⟨t⟩ + by)
//! ```
//!
//! Backward of one cell, given `da_next` = dJ/da⟨t⟩ and `dc_next` = dJ/dc⟨t⟩ from later steps:
//!
//! ```text
//! dc    = dc_next + da_next ∘ Γo ∘ (1 − tanh²(c⟨t⟩))    total gradient of c⟨t⟩
//! dΓo   = da_next ∘ tanh(c⟨t⟩) ∘ Γo ∘ (1 − Γo)          (gradients before the activations)
//! dc̃    = dc ∘ Γu ∘ (1 − c̃²)
//! dΓu   = dc ∘ c̃ ∘ Γu ∘ (1 − Γu)
//! dΓf   = dc ∘ c⟨t−1⟩ ∘ Γf ∘ (1 − Γf)
//! dW*   = dΓ* concatᵀ,  db* = Σ_m dΓ*
//! [da_prev; dxt] = Wfᵀ dΓf + Wiᵀ dΓu + Wcᵀ dc̃ + Woᵀ dΓo,   dc_prev = dc ∘ Γf
//! ```
//!
//! [`lstm_backward`] computes the TRUE sequence gradient: step t receives
//! `da[:, :, t] + da_prev` and `dc_prev` from step t+1. (The course's own `lstm_backward`
//! drops `da_prev`, so its printed sequence gradients differ: see `docs/course-differences.md`.)

use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array2, Array3, ArrayView2, ArrayView3, Axis, Zip};

use crate::course::activations::{sigmoid_inplace, softmax_inplace};
use crate::course::rnn::{expect_array, expect_shape, shape_text};
use crate::error::{CoreError, Result};

// ------------------------------------------------------------------------------------------
// Parameters
// ------------------------------------------------------------------------------------------

/// Sizes of an LSTM: input `n_x`, hidden `n_a`, output `n_y`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LstmDims {
    pub n_x: usize,
    pub n_a: usize,
    pub n_y: usize,
}

/// The course's `parameters` dictionary for the LSTM. Gate weights are `(n_a, n_a + n_x)`
/// acting on `[a_prev; xt]` (hidden columns first), biases `(n_a, 1)`.
#[derive(Debug, Clone, PartialEq)]
pub struct LstmParams {
    /// `Wf` (n_a, n_a + n_x): forget gate.
    pub wf: Array2<f64>,
    /// `bf` (n_a, 1)
    pub bf: Array2<f64>,
    /// `Wi` (n_a, n_a + n_x): update gate.
    pub wi: Array2<f64>,
    /// `bi` (n_a, 1)
    pub bi: Array2<f64>,
    /// `Wc` (n_a, n_a + n_x): candidate.
    pub wc: Array2<f64>,
    /// `bc` (n_a, 1)
    pub bc: Array2<f64>,
    /// `Wo` (n_a, n_a + n_x): output gate.
    pub wo: Array2<f64>,
    /// `bo` (n_a, 1)
    pub bo: Array2<f64>,
    /// `Wy` (n_y, n_a): hidden → output.
    pub wy: Array2<f64>,
    /// `by` (n_y, 1)
    pub by: Array2<f64>,
}

impl LstmParams {
    /// All-zero parameters of the given sizes.
    pub fn zeros(dims: LstmDims) -> Self {
        let LstmDims { n_x, n_a, n_y } = dims;
        let w = || Array2::zeros((n_a, n_a + n_x));
        let b = || Array2::zeros((n_a, 1));
        LstmParams {
            wf: w(),
            bf: b(),
            wi: w(),
            bi: b(),
            wc: w(),
            bc: b(),
            wo: w(),
            bo: b(),
            wy: Array2::zeros((n_y, n_a)),
            by: Array2::zeros((n_y, 1)),
        }
    }

    /// Sizes read from `Wf` (n_a, n_a + n_x) and `Wy` (n_y, ·). Use
    /// [`validate`](Self::validate) to check that everything agrees.
    pub fn dims(&self) -> LstmDims {
        let n_a = self.wf.nrows();
        LstmDims {
            n_x: self.wf.ncols().saturating_sub(n_a),
            n_a,
            n_y: self.wy.nrows(),
        }
    }

    /// Checks every shape against [`dims`](Self::dims) and that all values are finite; errors
    /// name the matrix as `parameters.Wf` etc.
    pub fn validate(&self) -> Result<LstmDims> {
        let d = self.dims();
        if self.wf.ncols() < d.n_a {
            return Err(CoreError::ShapeMismatch {
                name: "parameters.Wf".into(),
                expected: format!("({}, {} + n_x)", d.n_a, d.n_a),
                actual: shape_text(self.wf.shape()),
            });
        }
        let gate = [d.n_a, d.n_a + d.n_x];
        let bias = [d.n_a, 1];
        expect_array("parameters.Wf", self.wf.view(), &gate)?;
        expect_array("parameters.bf", self.bf.view(), &bias)?;
        expect_array("parameters.Wi", self.wi.view(), &gate)?;
        expect_array("parameters.bi", self.bi.view(), &bias)?;
        expect_array("parameters.Wc", self.wc.view(), &gate)?;
        expect_array("parameters.bc", self.bc.view(), &bias)?;
        expect_array("parameters.Wo", self.wo.view(), &gate)?;
        expect_array("parameters.bo", self.bo.view(), &bias)?;
        expect_array("parameters.Wy", self.wy.view(), &[d.n_y, d.n_a])?;
        expect_array("parameters.by", self.by.view(), &[d.n_y, 1])?;
        Ok(d)
    }
}

// ------------------------------------------------------------------------------------------
// One cell
// ------------------------------------------------------------------------------------------

/// Everything one LSTM cell's backward pass needs (the course's 10-tuple, parameters included).
#[derive(Debug, Clone, PartialEq)]
pub struct LstmCellCache {
    /// a⟨t⟩ (n_a, m)
    pub a_next: Array2<f64>,
    /// c⟨t⟩ (n_a, m)
    pub c_next: Array2<f64>,
    /// a⟨t−1⟩ (n_a, m)
    pub a_prev: Array2<f64>,
    /// c⟨t−1⟩ (n_a, m)
    pub c_prev: Array2<f64>,
    /// Γf (n_a, m)
    pub ft: Array2<f64>,
    /// Γu (n_a, m)
    pub it: Array2<f64>,
    /// c̃ (n_a, m)
    pub cct: Array2<f64>,
    /// Γo (n_a, m)
    pub ot: Array2<f64>,
    /// x⟨t⟩ (n_x, m)
    pub xt: Array2<f64>,
    pub params: LstmParams,
}

/// Gradients of one LSTM cell (course names).
#[derive(Debug, Clone, PartialEq)]
pub struct LstmCellGradients {
    /// (n_x, m)
    pub dxt: Array2<f64>,
    /// (n_a, m)
    pub da_prev: Array2<f64>,
    /// (n_a, m)
    pub dc_prev: Array2<f64>,
    /// (n_a, n_a + n_x) each
    pub dwf: Array2<f64>,
    pub dwi: Array2<f64>,
    pub dwc: Array2<f64>,
    pub dwo: Array2<f64>,
    /// (n_a, 1) each
    pub dbf: Array2<f64>,
    pub dbi: Array2<f64>,
    pub dbc: Array2<f64>,
    pub dbo: Array2<f64>,
}

/// One step forward. Shapes: `xt` (n_x, m), `a_prev`, `c_prev` (n_a, m) →
/// `(a_next (n_a, m), c_next (n_a, m), yt_pred (n_y, m), cache)`.
#[allow(clippy::type_complexity)] // the course's 4-tuple, kept on purpose
pub fn lstm_cell_forward(
    xt: ArrayView2<f64>,
    a_prev: ArrayView2<f64>,
    c_prev: ArrayView2<f64>,
    p: &LstmParams,
) -> Result<(Array2<f64>, Array2<f64>, Array2<f64>, LstmCellCache)> {
    let d = p.validate()?;
    let m = xt.ncols();
    expect_array("xt", xt, &[d.n_x, m])?;
    expect_array("a_prev", a_prev, &[d.n_a, m])?;
    expect_array("c_prev", c_prev, &[d.n_a, m])?;

    let s = step_forward(xt, a_prev, c_prev, p);
    let yt_pred = output(s.a_next.view(), p);
    let cache = LstmCellCache {
        a_next: s.a_next.clone(),
        c_next: s.c_next.clone(),
        a_prev: a_prev.to_owned(),
        c_prev: c_prev.to_owned(),
        ft: s.ft,
        it: s.it,
        cct: s.cct,
        ot: s.ot,
        xt: xt.to_owned(),
        params: p.clone(),
    };
    Ok((s.a_next, s.c_next, yt_pred, cache))
}

/// One step backward from `da_next` = dJ/da⟨t⟩ and `dc_next` = dJ/dc⟨t⟩ (both (n_a, m)).
pub fn lstm_cell_backward(
    da_next: ArrayView2<f64>,
    dc_next: ArrayView2<f64>,
    cache: &LstmCellCache,
) -> Result<LstmCellGradients> {
    let d = cache.params.validate()?;
    let m = cache.xt.ncols();
    expect_shape("cache.xt", cache.xt.shape(), &[d.n_x, m])?;
    let state = [d.n_a, m];
    for (name, v) in [
        ("cache.a_next", &cache.a_next),
        ("cache.c_next", &cache.c_next),
        ("cache.a_prev", &cache.a_prev),
        ("cache.c_prev", &cache.c_prev),
        ("cache.ft", &cache.ft),
        ("cache.it", &cache.it),
        ("cache.cct", &cache.cct),
        ("cache.ot", &cache.ot),
    ] {
        expect_shape(name, v.shape(), &state)?;
    }
    expect_array("da_next", da_next, &state)?;
    expect_array("dc_next", dc_next, &state)?;

    let mut acc = GateGrads::zeros(d);
    let step = StepView {
        c_next: cache.c_next.view(),
        a_prev: cache.a_prev.view(),
        c_prev: cache.c_prev.view(),
        ft: cache.ft.view(),
        it: cache.it.view(),
        cct: cache.cct.view(),
        ot: cache.ot.view(),
        xt: cache.xt.view(),
    };
    let (dxt, da_prev, dc_prev) = step_backward(da_next, dc_next, &step, &cache.params, &mut acc);
    let GateGrads {
        dwf,
        dwi,
        dwc,
        dwo,
        dbf,
        dbi,
        dbc,
        dbo,
    } = acc;
    Ok(LstmCellGradients {
        dxt,
        da_prev,
        dc_prev,
        dwf,
        dwi,
        dwc,
        dwo,
        dbf,
        dbi,
        dbc,
        dbo,
    })
}

/// `concat = [a_prev; xt]` (n_a + n_x, m): hidden rows first, then input rows.
fn stack_concat(a_prev: ArrayView2<f64>, xt: ArrayView2<f64>) -> Array2<f64> {
    let n_a = a_prev.nrows();
    let mut concat = Array2::zeros((n_a + xt.nrows(), xt.ncols()));
    concat.slice_mut(s![..n_a, ..]).assign(&a_prev);
    concat.slice_mut(s![n_a.., ..]).assign(&xt);
    concat
}

/// Results of one forward step (all (n_a, m)).
struct StepOut {
    a_next: Array2<f64>,
    c_next: Array2<f64>,
    ft: Array2<f64>,
    it: Array2<f64>,
    cct: Array2<f64>,
    ot: Array2<f64>,
}

/// The forward formulas; inputs already validated.
fn step_forward(
    xt: ArrayView2<f64>,
    a_prev: ArrayView2<f64>,
    c_prev: ArrayView2<f64>,
    p: &LstmParams,
) -> StepOut {
    let concat = stack_concat(a_prev, xt); // (n_a + n_x, m)
    let affine = |w: &Array2<f64>, b: &Array2<f64>| {
        let mut z = w.dot(&concat); // (n_a, m)
        z += b; // (n_a, 1) broadcasts over the m columns
        z
    };
    let mut ft = affine(&p.wf, &p.bf);
    sigmoid_inplace(ft.view_mut());
    let mut it = affine(&p.wi, &p.bi);
    sigmoid_inplace(it.view_mut());
    let mut cct = affine(&p.wc, &p.bc);
    cct.mapv_inplace(f64::tanh);
    let mut ot = affine(&p.wo, &p.bo);
    sigmoid_inplace(ot.view_mut());

    // c_next = Γf ∘ c_prev + Γu ∘ c̃ ;  a_next = Γo ∘ tanh(c_next)
    let mut c_next = Array2::zeros(ft.raw_dim());
    Zip::from(&mut c_next)
        .and(&ft)
        .and(&c_prev)
        .and(&it)
        .and(&cct)
        .for_each(|c, &f, &cp, &i, &cc| *c = f * cp + i * cc);
    let mut a_next = Array2::zeros(ft.raw_dim());
    Zip::from(&mut a_next)
        .and(&ot)
        .and(&c_next)
        .for_each(|a, &o, &c| *a = o * c.tanh());
    StepOut {
        a_next,
        c_next,
        ft,
        it,
        cct,
        ot,
    }
}

/// `softmax(Wy a + by)` (n_y, m).
fn output(a: ArrayView2<f64>, p: &LstmParams) -> Array2<f64> {
    let mut z = p.wy.dot(&a); // (n_y, m)
    z += &p.by;
    softmax_inplace(z.view_mut());
    z
}

/// Parameter gradients, accumulated over steps.
struct GateGrads {
    dwf: Array2<f64>,
    dwi: Array2<f64>,
    dwc: Array2<f64>,
    dwo: Array2<f64>,
    dbf: Array2<f64>,
    dbi: Array2<f64>,
    dbc: Array2<f64>,
    dbo: Array2<f64>,
}

impl GateGrads {
    fn zeros(d: LstmDims) -> Self {
        let w = || Array2::zeros((d.n_a, d.n_a + d.n_x));
        let b = || Array2::zeros((d.n_a, 1));
        GateGrads {
            dwf: w(),
            dwi: w(),
            dwc: w(),
            dwo: w(),
            dbf: b(),
            dbi: b(),
            dbc: b(),
            dbo: b(),
        }
    }
}

/// Borrowed view of one step's forward values (from a cell cache or from the sequence cache).
struct StepView<'a> {
    c_next: ArrayView2<'a, f64>,
    a_prev: ArrayView2<'a, f64>,
    c_prev: ArrayView2<'a, f64>,
    ft: ArrayView2<'a, f64>,
    it: ArrayView2<'a, f64>,
    cct: ArrayView2<'a, f64>,
    ot: ArrayView2<'a, f64>,
    xt: ArrayView2<'a, f64>,
}

/// The one-step backward formulas (module docs). Parameter gradients are ADDED to `acc`;
/// returns `(dxt, da_prev, dc_prev)`.
fn step_backward(
    da_next: ArrayView2<f64>,
    dc_next: ArrayView2<f64>,
    s: &StepView,
    p: &LstmParams,
    acc: &mut GateGrads,
) -> (Array2<f64>, Array2<f64>, Array2<f64>) {
    let n_a = s.a_prev.nrows();
    let dim = s.c_next.raw_dim(); // (n_a, m)

    // dc = dc_next + da_next ∘ Γo ∘ (1 − tanh²(c_next)); dΓo = da_next ∘ tanh(c_next) ∘ Γo ∘ (1 − Γo)
    let mut dc = Array2::zeros(dim);
    let mut dot = Array2::zeros(dim);
    Zip::from(&mut dc)
        .and(&mut dot)
        .and(&dc_next)
        .and(&da_next)
        .and(&s.ot)
        .and(&s.c_next)
        .for_each(|dc, dot, &dcn, &dan, &o, &c| {
            let tanh_c = c.tanh();
            *dc = dcn + dan * o * (1.0 - tanh_c * tanh_c);
            *dot = dan * tanh_c * o * (1.0 - o);
        });
    // dc̃ = dc ∘ Γu ∘ (1 − c̃²); dΓu = dc ∘ c̃ ∘ Γu ∘ (1 − Γu)
    let mut dcct = Array2::zeros(dim);
    let mut dit = Array2::zeros(dim);
    Zip::from(&mut dcct)
        .and(&mut dit)
        .and(&dc)
        .and(&s.it)
        .and(&s.cct)
        .for_each(|dcct, dit, &dc, &i, &cc| {
            *dcct = dc * i * (1.0 - cc * cc);
            *dit = dc * cc * i * (1.0 - i);
        });
    // dΓf = dc ∘ c_prev ∘ Γf ∘ (1 − Γf); dc_prev = dc ∘ Γf
    let mut dft = Array2::zeros(dim);
    let mut dc_prev = Array2::zeros(dim);
    Zip::from(&mut dft)
        .and(&mut dc_prev)
        .and(&dc)
        .and(&s.c_prev)
        .and(&s.ft)
        .for_each(|dft, dcp, &dc, &cp, &f| {
            *dft = dc * cp * f * (1.0 - f);
            *dcp = dc * f;
        });

    // dW* += dΓ* concatᵀ ; db* += Σ_m dΓ*
    let concat = stack_concat(s.a_prev, s.xt); // (n_a + n_x, m)
    for (dz, dw, db) in [
        (&dft, &mut acc.dwf, &mut acc.dbf),
        (&dit, &mut acc.dwi, &mut acc.dbi),
        (&dcct, &mut acc.dwc, &mut acc.dbc),
        (&dot, &mut acc.dwo, &mut acc.dbo),
    ] {
        general_mat_mul(1.0, dz, &concat.t(), 1.0, dw);
        let mut db_col = db.column_mut(0);
        db_col += &dz.sum_axis(Axis(1));
    }

    // dconcat = Wfᵀ dΓf + Wiᵀ dΓu + Wcᵀ dc̃ + Woᵀ dΓo (n_a + n_x, m), split into [da_prev; dxt]
    let mut dconcat = p.wf.t().dot(&dft);
    general_mat_mul(1.0, &p.wi.t(), &dit, 1.0, &mut dconcat);
    general_mat_mul(1.0, &p.wc.t(), &dcct, 1.0, &mut dconcat);
    general_mat_mul(1.0, &p.wo.t(), &dot, 1.0, &mut dconcat);
    let da_prev = dconcat.slice(s![..n_a, ..]).to_owned();
    let dxt = dconcat.slice(s![n_a.., ..]).to_owned();
    (dxt, da_prev, dc_prev)
}

// ------------------------------------------------------------------------------------------
// Whole sequence
// ------------------------------------------------------------------------------------------

/// What [`lstm_backward`] needs from [`lstm_forward`]: the parameters once, the inputs and every
/// step's states and gates stacked on the last axis (instead of the course's list of per-step
/// caches; [`LstmCache::step`] rebuilds any step's cell cache).
#[derive(Debug, Clone, PartialEq)]
pub struct LstmCache {
    pub params: LstmParams,
    /// x (n_x, m, T_x)
    pub x: Array3<f64>,
    /// a⟨0⟩ (n_a, m); c⟨0⟩ is zero.
    pub a0: Array2<f64>,
    /// a⟨1⟩ … a⟨T_x⟩ (n_a, m, T_x)
    pub a: Array3<f64>,
    /// c⟨1⟩ … c⟨T_x⟩ (n_a, m, T_x)
    pub c: Array3<f64>,
    /// Γf, Γu, c̃, Γo of every step (n_a, m, T_x) each
    pub ft: Array3<f64>,
    pub it: Array3<f64>,
    pub cct: Array3<f64>,
    pub ot: Array3<f64>,
}

impl LstmCache {
    /// Number of time steps T_x.
    pub fn t_x(&self) -> usize {
        self.x.len_of(Axis(2))
    }

    /// The cell cache of step `t` (0-based), as `lstm_cell_forward` would have returned it.
    pub fn step(&self, t: usize) -> Result<LstmCellCache> {
        if t >= self.t_x() {
            return Err(CoreError::invalid(format!(
                "t: expected a step in 0..{}, got {t}",
                self.t_x()
            )));
        }
        let at = |v: &Array3<f64>, t: usize| v.index_axis(Axis(2), t).to_owned();
        let (a_prev, c_prev) = if t == 0 {
            (self.a0.clone(), Array2::zeros(self.a0.raw_dim()))
        } else {
            (at(&self.a, t - 1), at(&self.c, t - 1))
        };
        Ok(LstmCellCache {
            a_next: at(&self.a, t),
            c_next: at(&self.c, t),
            a_prev,
            c_prev,
            ft: at(&self.ft, t),
            it: at(&self.it, t),
            cct: at(&self.cct, t),
            ot: at(&self.ot, t),
            xt: at(&self.x, t),
            params: self.params.clone(),
        })
    }
}

/// Gradients of the whole sequence (course names), parameter gradients summed over time.
#[derive(Debug, Clone, PartialEq)]
pub struct LstmGradients {
    /// (n_x, m, T_x)
    pub dx: Array3<f64>,
    /// (n_a, m)
    pub da0: Array2<f64>,
    /// (n_a, n_a + n_x) each
    pub dwf: Array2<f64>,
    pub dwi: Array2<f64>,
    pub dwc: Array2<f64>,
    pub dwo: Array2<f64>,
    /// (n_a, 1) each
    pub dbf: Array2<f64>,
    pub dbi: Array2<f64>,
    pub dbc: Array2<f64>,
    pub dbo: Array2<f64>,
}

/// Runs the LSTM cell over the T_x steps of `x` (n_x, m, T_x) from `a0` (n_a, m) and `c⟨0⟩ = 0`.
///
/// Returns `a` (n_a, m, T_x), `y` (n_y, m, T_x), `c` (n_a, m, T_x) and the cache.
#[allow(clippy::type_complexity)] // the course's 4-tuple, kept on purpose
pub fn lstm_forward(
    x: ArrayView3<f64>,
    a0: ArrayView2<f64>,
    p: &LstmParams,
) -> Result<(Array3<f64>, Array3<f64>, Array3<f64>, LstmCache)> {
    let d = p.validate()?;
    let (_, m, t_x) = x.dim();
    expect_array("x", x, &[d.n_x, m, t_x])?;
    expect_array("a0", a0, &[d.n_a, m])?;

    let states = || Array3::<f64>::zeros((d.n_a, m, t_x));
    let (mut a, mut c, mut ft, mut it, mut cct, mut ot) =
        (states(), states(), states(), states(), states(), states());
    let mut y = Array3::zeros((d.n_y, m, t_x));
    let mut a_next = a0.to_owned(); // (n_a, m)
    let mut c_next = Array2::zeros((d.n_a, m)); // c⟨0⟩ = 0
    for t in 0..t_x {
        let s = step_forward(x.index_axis(Axis(2), t), a_next.view(), c_next.view(), p);
        y.slice_mut(s![.., .., t])
            .assign(&output(s.a_next.view(), p));
        a.slice_mut(s![.., .., t]).assign(&s.a_next);
        c.slice_mut(s![.., .., t]).assign(&s.c_next);
        ft.slice_mut(s![.., .., t]).assign(&s.ft);
        it.slice_mut(s![.., .., t]).assign(&s.it);
        cct.slice_mut(s![.., .., t]).assign(&s.cct);
        ot.slice_mut(s![.., .., t]).assign(&s.ot);
        a_next = s.a_next;
        c_next = s.c_next;
    }
    let cache = LstmCache {
        params: p.clone(),
        x: x.to_owned(),
        a0: a0.to_owned(),
        a: a.clone(),
        c: c.clone(),
        ft,
        it,
        cct,
        ot,
    };
    Ok((a, y, c, cache))
}

/// True backward through time from `da` (n_a, m, T_x), the upstream gradient of every hidden
/// state: step t receives `da[:, :, t] + da_prev` and `dc_prev` from step t+1.
pub fn lstm_backward(da: ArrayView3<f64>, cache: &LstmCache) -> Result<LstmGradients> {
    let d = cache.params.validate()?;
    let (_, m, t_x) = cache.x.dim();
    expect_shape("cache.x", cache.x.shape(), &[d.n_x, m, t_x])?;
    expect_shape("cache.a0", cache.a0.shape(), &[d.n_a, m])?;
    let states = [d.n_a, m, t_x];
    for (name, v) in [
        ("cache.a", &cache.a),
        ("cache.c", &cache.c),
        ("cache.ft", &cache.ft),
        ("cache.it", &cache.it),
        ("cache.cct", &cache.cct),
        ("cache.ot", &cache.ot),
    ] {
        expect_shape(name, v.shape(), &states)?;
    }
    expect_array("da", da, &states)?;

    let mut acc = GateGrads::zeros(d);
    let mut dx = Array3::zeros((d.n_x, m, t_x));
    let mut da_prev = Array2::zeros((d.n_a, m)); // from step t+1
    let mut dc_prev = Array2::zeros((d.n_a, m));
    let c0 = Array2::zeros((d.n_a, m));
    fn at(v: &Array3<f64>, t: usize) -> ArrayView2<'_, f64> {
        v.index_axis(Axis(2), t)
    }
    for t in (0..t_x).rev() {
        let da_next = &da.index_axis(Axis(2), t) + &da_prev; // (n_a, m)
        let step = StepView {
            c_next: at(&cache.c, t),
            a_prev: if t == 0 {
                cache.a0.view()
            } else {
                at(&cache.a, t - 1)
            },
            c_prev: if t == 0 {
                c0.view()
            } else {
                at(&cache.c, t - 1)
            },
            ft: at(&cache.ft, t),
            it: at(&cache.it, t),
            cct: at(&cache.cct, t),
            ot: at(&cache.ot, t),
            xt: at(&cache.x, t),
        };
        let (dxt, da_prev_t, dc_prev_t) = step_backward(
            da_next.view(),
            dc_prev.view(),
            &step,
            &cache.params,
            &mut acc,
        );
        dx.slice_mut(s![.., .., t]).assign(&dxt);
        da_prev = da_prev_t;
        dc_prev = dc_prev_t;
    }
    let GateGrads {
        dwf,
        dwi,
        dwc,
        dwo,
        dbf,
        dbi,
        dbc,
        dbo,
    } = acc;
    Ok(LstmGradients {
        dx,
        da0: da_prev,
        dwf,
        dwi,
        dwc,
        dwo,
        dbf,
        dbi,
        dbc,
        dbo,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::course::gradcheck::TestRng;

    fn params(rng: &mut TestRng, d: LstmDims) -> LstmParams {
        let g = (d.n_a, d.n_a + d.n_x);
        let b = (d.n_a, 1);
        LstmParams {
            wf: rng.array2(g, 0.5),
            bf: rng.array2(b, 0.5),
            wi: rng.array2(g, 0.5),
            bi: rng.array2(b, 0.5),
            wc: rng.array2(g, 0.5),
            bc: rng.array2(b, 0.5),
            wo: rng.array2(g, 0.5),
            bo: rng.array2(b, 0.5),
            wy: rng.array2((d.n_y, d.n_a), 0.5),
            by: rng.array2((d.n_y, 1), 0.5),
        }
    }

    #[test]
    fn forward_equals_repeated_cell_forward_from_zero_cell_state() {
        let d = LstmDims {
            n_x: 3,
            n_a: 4,
            n_y: 2,
        };
        let mut rng = TestRng::new(11);
        let p = params(&mut rng, d);
        let x = rng.array3((3, 2, 5), 1.0);
        let a0 = rng.array2((4, 2), 0.5);
        let (a, y, c, cache) = lstm_forward(x.view(), a0.view(), &p).unwrap();
        let mut a_prev = a0.clone();
        let mut c_prev = Array2::zeros((4, 2));
        for t in 0..5 {
            let (a_t, c_t, y_t, cell) =
                lstm_cell_forward(x.index_axis(Axis(2), t), a_prev.view(), c_prev.view(), &p)
                    .unwrap();
            assert_eq!(a.index_axis(Axis(2), t), a_t);
            assert_eq!(c.index_axis(Axis(2), t), c_t);
            assert_eq!(y.index_axis(Axis(2), t), y_t);
            assert_eq!(cache.step(t).unwrap(), cell);
            a_prev = a_t;
            c_prev = c_t;
        }
        assert_ne!(a, c, "the cell state must not alias the hidden state");
        assert!(cache.step(5).is_err());
    }

    #[test]
    fn sequence_backward_equals_chained_cell_backward() {
        let d = LstmDims {
            n_x: 2,
            n_a: 3,
            n_y: 2,
        };
        let mut rng = TestRng::new(5);
        let p = params(&mut rng, d);
        let x = rng.array3((2, 4, 3), 1.0);
        let a0 = rng.array2((3, 4), 0.5);
        let (_, _, _, cache) = lstm_forward(x.view(), a0.view(), &p).unwrap();
        let da = rng.array3((3, 4, 3), 1.0);
        let g = lstm_backward(da.view(), &cache).unwrap();
        let mut da_prev = Array2::zeros((3, 4));
        let mut dc_prev = Array2::zeros((3, 4));
        let mut dwc = Array2::zeros((3, 5));
        for t in (0..3).rev() {
            let da_next = &da.index_axis(Axis(2), t) + &da_prev;
            let gt = lstm_cell_backward(da_next.view(), dc_prev.view(), &cache.step(t).unwrap())
                .unwrap();
            assert!((&g.dx.index_axis(Axis(2), t) - &gt.dxt)
                .iter()
                .all(|v| v.abs() < 1e-15));
            dwc += &gt.dwc;
            da_prev = gt.da_prev;
            dc_prev = gt.dc_prev;
        }
        assert!((&g.da0 - &da_prev).iter().all(|v| v.abs() < 1e-15));
        assert!((&g.dwc - &dwc).iter().all(|v| v.abs() < 1e-14));
    }

    #[test]
    fn dims_and_validate() {
        let d = LstmDims {
            n_x: 3,
            n_a: 5,
            n_y: 2,
        };
        let mut p = LstmParams::zeros(d);
        assert_eq!(p.validate().unwrap(), d);
        p.wf = Array2::zeros((5, 4)); // fewer columns than n_a
        let e = p.validate().unwrap_err();
        assert_eq!(
            e.to_string(),
            "parameters.Wf: expected shape (5, 5 + n_x), got (5, 4)"
        );
    }
}
