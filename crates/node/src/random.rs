//! `RandomState`: numpy's legacy generator (MT19937), bit-exact, for JS.

use napi::bindgen_prelude::{Float64Array, Uint32Array};
use napi_derive::napi;
use rnnlab_core::random::{RandomState, RandomStateSnapshot};

use crate::errors::{core_err, invalid_arg, JsResult};
use crate::tensor::{from_array, Tensor};

fn element_count(name: &str, shape: &[u32]) -> napi::Result<usize, String> {
    const LIMIT: usize = 1 << 28; // 2 GiB of f64: beyond this a typo, not a request
    let n = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d as usize));
    match n {
        Some(n) if n <= LIMIT => Ok(n),
        _ => Err(invalid_arg(format!("{name}: shape {shape:?} asks for more than {LIMIT} values"))),
    }
}

/// The saved state of a `RandomState` (numpy's `get_state()` fields).
#[napi(object)]
pub struct RandomStateSnapshotJs {
    pub key: Uint32Array,
    pub pos: u32,
    pub has_gauss: bool,
    pub gauss: f64,
}

/// numpy-compatible random numbers: the same seed gives numpy's exact values.
#[napi(js_name = "NativeRandomState")]
pub struct NativeRandomState {
    inner: RandomState,
}

#[napi]
impl NativeRandomState {
    /// Seeds exactly as `np.random.seed(seed)`.
    #[napi(constructor)]
    pub fn new(seed: u32) -> Self {
        NativeRandomState { inner: RandomState::new(seed) }
    }

    /// Re-seeds exactly as `np.random.seed(seed)`.
    #[napi]
    pub fn seed(&mut self, seed: u32) {
        self.inner.seed(seed);
    }

    /// `random_sample(shape)`: uniform doubles in [0, 1), C order.
    #[napi(catch_unwind)]
    pub fn random_sample(&mut self, shape: Vec<u32>) -> napi::Result<Tensor, String> {
        let n = element_count("randomSample", &shape)?;
        let data = self.inner.rand(n);
        Ok(Tensor { shape, data: Float64Array::new(data) })
    }

    /// Legacy `randn(*shape)`: standard normals (polar Box–Muller), C order.
    #[napi(catch_unwind)]
    pub fn randn(&mut self, shape: Vec<u32>) -> napi::Result<Tensor, String> {
        element_count("randn", &shape)?;
        let dims: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
        Ok(from_array(&self.inner.randn(&dims)))
    }

    /// `choice(n, p=p)` (numpy's legacy algorithm), `size` draws.
    #[napi(catch_unwind)]
    pub fn choice(&mut self, n: u32, p: Option<Float64Array>, size: u32) -> napi::Result<Vec<u32>, String> {
        let mut out = Vec::with_capacity(size as usize);
        match p {
            Some(p) => {
                if p.len() != n as usize {
                    return Err(invalid_arg(format!("choice: p has {} entries but a has {n}", p.len())));
                }
                for _ in 0..size {
                    out.push(self.inner.choice_p(&p).map_err(core_err)? as u32);
                }
            }
            None => {
                for _ in 0..size {
                    out.push(self.inner.choice(n as usize).map_err(core_err)? as u32);
                }
            }
        }
        Ok(out)
    }

    /// The swap partners numpy's legacy `shuffle` uses for a sequence of
    /// length `n`: entry k is j for i = n-1-k (swap x[i] and x[j]).
    #[napi(catch_unwind)]
    pub fn shuffle_swaps(&mut self, n: u32) -> napi::Result<Uint32Array, String> {
        let mut js = Vec::with_capacity(n.saturating_sub(1) as usize);
        for i in (1..n as u64).rev() {
            js.push(self.inner.random_interval(i) as u32);
        }
        Ok(Uint32Array::new(js))
    }

    /// `randint(low, high)`: an integer in [low, high).
    #[napi(catch_unwind)]
    pub fn randint(&mut self, low: i64, high: i64) -> napi::Result<i64, String> {
        self.inner.randint(low, high).map_err(core_err)
    }

    /// numpy's `get_state()` fields.
    #[napi]
    pub fn get_state(&self) -> RandomStateSnapshotJs {
        let s = self.inner.snapshot();
        RandomStateSnapshotJs { key: Uint32Array::new(s.key), pos: s.pos as u32, has_gauss: s.has_gauss, gauss: s.gauss }
    }

    /// Restores a state from `getState()` (or numpy's `get_state()`).
    #[napi(catch_unwind)]
    pub fn set_state(&mut self, state: RandomStateSnapshotJs) -> napi::Result<(), String> {
        let snap = RandomStateSnapshot {
            key: state.key.to_vec(),
            pos: state.pos as usize,
            has_gauss: state.has_gauss,
            gauss: state.gauss,
        };
        self.inner = RandomState::from_snapshot(&snap).map_err(core_err)?;
        Ok(())
    }
}
