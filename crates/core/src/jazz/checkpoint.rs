//! Saving and resuming a [`JazzTrainer`] in the shared [`Checkpoint`] container (kind `"jazz"`).
//!
//! Tensors (all C order): the weights `wx`, `wa`, `b`, `wy`, `by` (F64, the shapes of
//! [`JazzModel`]); the Adam moments `optim.m.<name>` / `optim.v.<name>` (F64, one per weight,
//! absent before the first update); the training windows `windows.x` (I64 `[m, t_x]`, -1 for
//! the zero vector of the first step) and `windows.y` (U32 `[m, t_x]`). Metadata: the sizes
//! (`n_values`, `n_a`, `t_x`, `m`), `seed`, `epochs_done`, the optimizer's settings
//! (`optimizer`, JSON) and its update count (`step`). Storing the windows themselves, rather
//! than the corpus they were drawn from, makes a resumed run bit-identical by construction.

use ndarray::{Array1, Array2};

use super::batch::JazzBatch;
use super::model::JazzModel;
use super::trainer::JazzTrainer;
use crate::checkpoint::Checkpoint;
use crate::error::{CoreError, Result};
use crate::nn::optim::{Adam, OptimizerConfig};

/// `metadata["kind"]` of a jazz checkpoint.
pub const KIND: &str = "jazz";

/// The weight names in the order of [`JazzModel::params_mut`] (and of the Adam moments).
const WEIGHTS: [&str; 5] = ["wx", "wa", "b", "wy", "by"];

fn bad(msg: String) -> CoreError {
    CoreError::BadFile(msg)
}

impl JazzTrainer {
    /// The whole training state as a checkpoint; [`JazzTrainer::from_checkpoint`] restores it
    /// so that training and sampling continue bit for bit.
    pub fn to_checkpoint(&self) -> Result<Checkpoint> {
        let model = self.model();
        let (n_values, n_a) = (model.n_values(), model.n_a());
        let shapes = weight_shapes(n_values, n_a);
        let mut ck = Checkpoint::new(KIND);
        let weights = weight_slices(model)?;
        for ((name, shape), data) in WEIGHTS.iter().zip(&shapes).zip(weights) {
            ck.put_f64(name, shape, data)?;
        }
        let opt = self.optimizer();
        if !opt.m.is_empty() {
            let mut at = 0;
            for (name, shape) in WEIGHTS.iter().zip(&shapes) {
                let len: usize = shape.iter().product();
                ck.put_f64(&format!("optim.m.{name}"), shape, &opt.m[at..at + len])?;
                ck.put_f64(&format!("optim.v.{name}"), shape, &opt.v[at..at + len])?;
                at += len;
            }
        }
        let batch = self.batch();
        let x: Vec<i64> = batch.x.iter().map(|v| v.map_or(-1, |i| i as i64)).collect();
        let y: Vec<u32> = batch.y.iter().map(|&i| i as u32).collect();
        ck.put_i64("windows.x", &[batch.m, batch.t_x], &x)?;
        ck.put_u32("windows.y", &[batch.m, batch.t_x], &y)?;
        ck.set_meta("n_values", &n_values.to_string());
        ck.set_meta("n_a", &n_a.to_string());
        ck.set_meta("t_x", &batch.t_x.to_string());
        ck.set_meta("m", &batch.m.to_string());
        ck.set_meta("seed", &self.seed().to_string());
        ck.set_meta("epochs_done", &self.epochs_done().to_string());
        let config = serde_json::to_string(&opt.config)
            .map_err(|e| CoreError::invalid(format!("optimizer settings: {e}")))?;
        ck.set_meta("optimizer", &config);
        ck.set_meta("step", &opt.iterations.to_string());
        ck.set_meta(
            "created_by",
            concat!("rnnlab-core ", env!("CARGO_PKG_VERSION")),
        );
        Ok(ck)
    }

    /// A trainer from [`JazzTrainer::to_checkpoint`]'s output. Checks the kind, every size,
    /// every tensor's dtype and shape (errors name the tensor) and the window indices.
    pub fn from_checkpoint(ck: &Checkpoint) -> Result<Self> {
        ck.expect_kind(KIND)?;
        let size = |key: &str| -> Result<usize> {
            let v: usize = ck.meta_parse(key)?;
            if v == 0 {
                return Err(bad(format!("checkpoint metadata \"{key}\": must be >= 1")));
            }
            Ok(v)
        };
        let (n_values, n_a, t_x, m) = (size("n_values")?, size("n_a")?, size("t_x")?, size("m")?);
        let seed: u32 = ck.meta_parse("seed")?;
        let epochs_done: u64 = ck.meta_parse("epochs_done")?;
        let shapes = weight_shapes(n_values, n_a);

        let mut weights = Vec::with_capacity(WEIGHTS.len());
        for (name, shape) in WEIGHTS.iter().zip(&shapes) {
            let values = ck.get_f64_shaped(name, shape)?;
            if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(CoreError::NonFinite {
                    name: format!("checkpoint tensor \"{name}\""),
                    index,
                    value,
                });
            }
            weights.push(values);
        }
        let matrix = |k: usize| -> Result<Array2<f64>> {
            let shape = (shapes[k][0], shapes[k][1]);
            Array2::from_shape_vec(shape, weights[k].clone())
                .map_err(|e| bad(format!("checkpoint tensor \"{}\": {e}", WEIGHTS[k])))
        };
        let model = JazzModel {
            wx: matrix(0)?,
            wa: matrix(1)?,
            b: Array1::from(weights[2].clone()),
            wy: matrix(3)?,
            by: Array1::from(weights[4].clone()),
        };

        let config: OptimizerConfig = serde_json::from_str(ck.meta("optimizer")?)
            .map_err(|e| bad(format!("checkpoint metadata \"optimizer\": {e}")))?;
        config
            .validate()
            .map_err(|e| bad(format!("checkpoint metadata \"optimizer\": {e}")))?;
        let mut optimizer = Adam::lazy(config)?;
        optimizer.iterations = ck.meta_parse("step")?;
        let has_moments = ck.tensors.contains_key("optim.m.wx");
        if has_moments {
            for (name, shape) in WEIGHTS.iter().zip(&shapes) {
                optimizer
                    .m
                    .extend(ck.get_f64_shaped(&format!("optim.m.{name}"), shape)?);
                optimizer
                    .v
                    .extend(ck.get_f64_shaped(&format!("optim.v.{name}"), shape)?);
            }
        } else if optimizer.iterations > 0 {
            return Err(bad(format!(
                "checkpoint: missing tensor \"optim.m.wx\" (the optimizer has made {} updates)",
                optimizer.iterations
            )));
        }

        let (x_shape, x) = ck.get_i64("windows.x")?;
        let (y_shape, y) = ck.get_u32("windows.y")?;
        for (name, shape) in [("windows.x", &x_shape), ("windows.y", &y_shape)] {
            if shape[..] != [m, t_x] {
                return Err(bad(format!(
                    "checkpoint tensor \"{name}\": expected shape [{m}, {t_x}], got {shape:?}"
                )));
            }
        }
        let x = x
            .iter()
            .enumerate()
            .map(|(k, &v)| match v {
                -1 => Ok(None),
                v if v >= 0 && (v as u64) < n_values as u64 => Ok(Some(v as usize)),
                v => Err(bad(format!(
                    "checkpoint tensor \"windows.x\"[{k}] = {v}: expected -1 or a value index < {n_values}"
                ))),
            })
            .collect::<Result<Vec<_>>>()?;
        if let Some((k, &v)) = y.iter().enumerate().find(|(_, &v)| v as usize >= n_values) {
            return Err(bad(format!(
                "checkpoint tensor \"windows.y\"[{k}] = {v}: expected a value index < {n_values}"
            )));
        }
        let batch = JazzBatch {
            m,
            t_x,
            x,
            y: y.into_iter().map(|v| v as usize).collect(),
        };
        JazzTrainer::from_parts(model, batch, optimizer, epochs_done, seed)
            .map_err(|e| bad(format!("checkpoint: {e}")))
    }
}

fn weight_shapes(n_values: usize, n_a: usize) -> [Vec<usize>; 5] {
    [
        vec![n_values, 4 * n_a],
        vec![n_a, 4 * n_a],
        vec![4 * n_a],
        vec![n_a, n_values],
        vec![n_values],
    ]
}

fn weight_slices(model: &JazzModel) -> Result<[&[f64]; 5]> {
    fn contiguous<'a>(name: &str, s: Option<&'a [f64]>) -> Result<&'a [f64]> {
        s.ok_or_else(|| CoreError::invalid(format!("jazz model: {name} is not contiguous")))
    }
    Ok([
        contiguous("wx", model.wx.as_slice())?,
        contiguous("wa", model.wa.as_slice())?,
        contiguous("b", model.b.as_slice())?,
        contiguous("wy", model.wy.as_slice())?,
        contiguous("by", model.by.as_slice())?,
    ])
}
