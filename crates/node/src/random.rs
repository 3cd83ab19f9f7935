//! `RandomState`: numpy's legacy generator (MT19937), bit-exact, for JS.

use napi::bindgen_prelude::{Float64Array, FromNapiValue, Object, Uint32Array, Unknown};
use napi::{JsValue, ValueType};
use napi_derive::napi;
use rnnlab_core::random::{RandomState, RandomStateSnapshot};

use crate::errors::{core_err, int_in, invalid_arg, Result};
use crate::tensor::{dims_from_js, kind_of, Tensor};

/// Most values one call may produce (2 GiB of f64): beyond this a typo, not a request.
const LIMIT: usize = 1 << 28;

fn element_count(name: &str, shape: &[u32]) -> Result<usize> {
    let n = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d as usize));
    match n {
        Some(n) if n <= LIMIT => Ok(n),
        _ => Err(invalid_arg(format!(
            "{name}: shape {shape:?} asks for more than {LIMIT} values"
        ))),
    }
}

// Numbers arrive as f64 and are checked here: napi's own u32/i64 conversions wrap or
// truncate silently (-1 → 4294967295, 1.5 → 1, NaN → 0).

/// `name` must be an integer in `0..=max`.
fn int_arg(name: &str, x: f64, max: f64) -> Result<f64> {
    int_in(name, x, 0.0, max)
}

/// A seed: an integer in `0..=2^32-1`, as numpy requires.
fn seed_arg(x: f64) -> Result<u32> {
    Ok(int_arg("seed", x, u32::MAX as f64)? as u32)
}

/// A count of at most [`LIMIT`].
fn count_arg(name: &str, x: f64) -> Result<usize> {
    Ok(int_arg(name, x, LIMIT as f64)? as usize)
}

/// A safe integer (|x| <= 2^53 - 1).
fn safe_int_arg(name: &str, x: f64) -> Result<i64> {
    const MAX_SAFE: f64 = 9_007_199_254_740_991.0;
    if x.fract() == 0.0 && x.abs() <= MAX_SAFE {
        Ok(x as i64)
    } else {
        Err(invalid_arg(format!(
            "{name}: expected a safe integer, got {x}"
        )))
    }
}

/// Reads a snapshot field by field, the typed array last and copied at once: reading the
/// other fields may run user code (getters) that could detach a buffer read earlier.
fn snapshot_from_js(state: &Unknown) -> Result<RandomStateSnapshot> {
    const WHAT: &str = "RandomStateSnapshot";
    if !matches!(state.get_type(), Ok(ValueType::Object)) {
        return Err(invalid_arg(format!(
            "{WHAT}: expected {{ key: Uint32Array, pos: number, hasGauss: boolean, gauss: number }}, got {}",
            kind_of(state)
        )));
    }
    let obj = Object::from_raw(state.value().env, state.raw());
    let field = |name: &str| -> Result<Unknown> {
        obj.get::<Unknown>(name)
            .map_err(|e| invalid_arg(format!("{WHAT}.{name}: {}", e.reason)))?
            .ok_or_else(|| invalid_arg(format!("{WHAT}.{name}: missing")))
    };
    let number = |name: &str| -> Result<f64> {
        let v = field(name)?;
        match v.get_type() {
            Ok(ValueType::Number) => unsafe { f64::from_napi_value(v.value().env, v.raw()) }
                .map_err(|e| invalid_arg(format!("{WHAT}.{name}: {}", e.reason))),
            _ => Err(invalid_arg(format!(
                "{WHAT}.{name}: expected a number, got {}",
                kind_of(&v)
            ))),
        }
    };
    let pos = int_arg("RandomStateSnapshot.pos", number("pos")?, 624.0)? as usize;
    let gauss = number("gauss")?;
    let has_gauss = field("hasGauss")?;
    let has_gauss = match has_gauss.get_type() {
        Ok(ValueType::Boolean) => {
            unsafe { bool::from_napi_value(has_gauss.value().env, has_gauss.raw()) }
                .map_err(|e| invalid_arg(format!("{WHAT}.hasGauss: {}", e.reason)))?
        }
        _ => {
            return Err(invalid_arg(format!(
                "{WHAT}.hasGauss: expected a boolean, got {}",
                kind_of(&has_gauss)
            )))
        }
    };
    let key = field("key")?;
    if !matches!(key.is_typedarray(), Ok(true)) {
        return Err(invalid_arg(format!(
            "{WHAT}.key: expected a Uint32Array, got {}",
            kind_of(&key)
        )));
    }
    let key = unsafe { Uint32Array::from_napi_value(key.value().env, key.raw()) }
        .map_err(|e| invalid_arg(format!("{WHAT}.key: {}", e.reason)))?
        .to_vec();
    // MT19937's state is the top bit of key[0] and all of key[1..]; when those are all zero
    // the generator outputs only zeros after its next reload, and randn's rejection loop never
    // ends. numpy's own seeding never produces that state, so it can only be corrupt data.
    if key.len() == 624 && key[0] & 0x8000_0000 == 0 && key[1..].iter().all(|&w| w == 0) {
        return Err(invalid_arg(format!(
            "{WHAT}.key: a degenerate MT19937 state (all 19937 state bits are zero), which would make the generator output only zeros"
        )));
    }
    Ok(RandomStateSnapshot {
        key,
        pos,
        has_gauss,
        gauss,
    })
}

/// The saved state of a `RandomState` (numpy's `get_state()` fields).
#[napi(object)]
pub struct RandomStateSnapshotJs {
    pub key: Uint32Array,
    /// Position in `key`, an integer in 0..=624 (read as f64 so that -1 or 1.5 are refused, not wrapped).
    pub pos: f64,
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
    pub fn new(seed: f64) -> Result<Self> {
        Ok(NativeRandomState {
            inner: RandomState::new(seed_arg(seed)?),
        })
    }

    /// Re-seeds exactly as `np.random.seed(seed)`.
    #[napi(catch_unwind)]
    pub fn seed(&mut self, seed: f64) -> Result<()> {
        self.inner.seed(seed_arg(seed)?);
        Ok(())
    }

    /// `random_sample(shape)`: uniform doubles in [0, 1), C order.
    #[napi(catch_unwind, ts_args_type = "shape: Array<number>")]
    pub fn random_sample(&mut self, shape: Unknown) -> Result<Tensor> {
        let shape = dims_from_js("shape", &shape).map_err(invalid_arg)?;
        let n = element_count("randomSample", &shape)?;
        let data = self.inner.rand(n);
        Ok(Tensor {
            shape,
            data: Float64Array::new(data),
        })
    }

    /// Legacy `randn(*shape)`: standard normals (polar Box–Muller), C order.
    #[napi(catch_unwind, ts_args_type = "shape: Array<number>")]
    pub fn randn(&mut self, shape: Unknown) -> Result<Tensor> {
        let shape = dims_from_js("shape", &shape).map_err(invalid_arg)?;
        let n = element_count("randn", &shape)?;
        // Filled in C order as the core's `randn`, without an ndarray: ndarray refuses shapes
        // whose non-empty axes overflow isize even when another axis is 0 (numpy allows them).
        let data: Vec<f64> = (0..n).map(|_| self.inner.standard_normal()).collect();
        Ok(Tensor {
            shape,
            data: Float64Array::new(data),
        })
    }

    /// `choice(n, p=p)` (numpy's legacy algorithm), `size` draws.
    #[napi(catch_unwind)]
    pub fn choice(&mut self, n: f64, p: Option<Float64Array>, size: f64) -> Result<Vec<u32>> {
        let n = int_arg("n", n, u32::MAX as f64)? as u32;
        let size = count_arg("size", size)?;
        let mut out = Vec::with_capacity(size);
        match p {
            Some(p) => {
                if p.len() != n as usize {
                    return Err(invalid_arg(format!(
                        "choice: p has {} entries but a has {n}",
                        p.len()
                    )));
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
    pub fn shuffle_swaps(&mut self, n: f64) -> Result<Uint32Array> {
        let n = count_arg("n", n)?;
        let mut js = Vec::with_capacity(n.saturating_sub(1));
        for i in (1..n as u64).rev() {
            js.push(self.inner.random_interval(i) as u32);
        }
        Ok(Uint32Array::new(js))
    }

    /// `randint(low, high)`: an integer in [low, high).
    #[napi(catch_unwind)]
    pub fn randint(&mut self, low: f64, high: f64) -> Result<i64> {
        let (low, high) = (safe_int_arg("low", low)?, safe_int_arg("high", high)?);
        self.inner.randint(low, high).map_err(core_err)
    }

    /// numpy's `get_state()` fields.
    #[napi]
    pub fn get_state(&self) -> RandomStateSnapshotJs {
        let s = self.inner.snapshot();
        RandomStateSnapshotJs {
            key: Uint32Array::new(s.key),
            pos: s.pos as f64,
            has_gauss: s.has_gauss,
            gauss: s.gauss,
        }
    }

    /// Restores a state from `getState()` (or numpy's `get_state()`).
    #[napi(catch_unwind, ts_args_type = "state: RandomStateSnapshotJs")]
    pub fn set_state(&mut self, state: Unknown) -> Result<()> {
        let snap = snapshot_from_js(&state)?;
        self.inner = RandomState::from_snapshot(&snap).map_err(core_err)?;
        Ok(())
    }
}
