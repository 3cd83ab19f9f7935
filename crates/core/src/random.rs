//! A bit-exact port of numpy's legacy `np.random.RandomState` (what `np.random.seed(int)`,
//! `np.random.rand`, `np.random.randn`, `np.random.choice` and `np.random.shuffle` use), so
//! the course's published numbers come out exactly.
//!
//! The generator is MT19937 (Matsumoto & Nishimura), seeded with `init_genrand` like
//! `np.random.seed(int)`. On top of its 32-bit outputs sit numpy's legacy transforms:
//! 53-bit uniform doubles, the polar Box–Muller normal with its one-value cache, the
//! cumulative-distribution `choice(p=...)`, masked-rejection bounded integers and the
//! Fisher–Yates `shuffle`. Each mirrors numpy's C code operation by operation; the
//! reference vectors in `tests/data/numpy_random.json` (from `scripts/numpy_random_vectors.py`)
//! check them bit for bit.

use std::fmt;

use ndarray::{Array2, ArrayD, IxDyn};
use serde::{Deserialize, Serialize};

use crate::error::{CoreError, Result};

/// Number of 32-bit words in the MT19937 state.
pub const MT_N: usize = 624;
/// MT19937 middle word offset.
const MT_M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// numpy's `RandomState`: MT19937 plus the cached second value of the polar normal method.
#[derive(Clone)]
pub struct RandomState {
    /// MT19937 state words (624).
    key: [u32; MT_N],
    /// Next word of `key` to temper; `MT_N` means "regenerate first".
    pos: usize,
    /// Whether `gauss` holds the unused half of the last Box–Muller pair.
    has_gauss: bool,
    /// The cached normal value (0.0 when none, as numpy keeps it).
    gauss: f64,
}

/// The full generator state, field for field what numpy's `get_state()` returns
/// (`('MT19937', key, pos, has_gauss, cached_gaussian)`), for checkpoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RandomStateSnapshot {
    /// The 624 MT19937 state words.
    pub key: Vec<u32>,
    /// Position in `key` (0..=624).
    pub pos: usize,
    /// Whether a normal value is cached.
    pub has_gauss: bool,
    /// The cached normal value (0.0 when none).
    pub gauss: f64,
}

impl fmt::Debug for RandomState {
    // The 624 key words would drown everything else; show where the stream is.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RandomState")
            .field("key[..4]", &&self.key[..4])
            .field("pos", &self.pos)
            .field("has_gauss", &self.has_gauss)
            .field("gauss", &self.gauss)
            .finish()
    }
}

impl RandomState {
    /// A generator seeded like `np.random.RandomState(seed)` / `np.random.seed(seed)`.
    pub fn new(seed: u32) -> Self {
        let mut rs = RandomState {
            key: [0; MT_N],
            pos: MT_N,
            has_gauss: false,
            gauss: 0.0,
        };
        rs.seed(seed);
        rs
    }

    /// Reseed exactly like `np.random.seed(seed)` (numpy's `mt19937_seed`, i.e. `init_genrand`),
    /// dropping any cached normal value.
    pub fn seed(&mut self, seed: u32) {
        let mut s = seed;
        for i in 0..MT_N {
            self.key[i] = s;
            // key[i+1] = 1812433253 * (key[i] ^ (key[i] >> 30)) + (i+1)  (mod 2^32)
            s = 1_812_433_253u32
                .wrapping_mul(s ^ (s >> 30))
                .wrapping_add(i as u32 + 1);
        }
        self.pos = MT_N;
        self.has_gauss = false;
        self.gauss = 0.0;
    }

    /// Regenerate all 624 words (the MT19937 "twist").
    fn twist(&mut self) {
        let key = &mut self.key;
        let mix = |upper: u32, lower: u32| {
            let y = (upper & UPPER_MASK) | (lower & LOWER_MASK);
            (y >> 1) ^ ((y & 1).wrapping_neg() & MATRIX_A)
        };
        for i in 0..MT_N - MT_M {
            key[i] = key[i + MT_M] ^ mix(key[i], key[i + 1]);
        }
        for i in MT_N - MT_M..MT_N - 1 {
            key[i] = key[i + MT_M - MT_N] ^ mix(key[i], key[i + 1]);
        }
        key[MT_N - 1] = key[MT_M - 1] ^ mix(key[MT_N - 1], key[0]);
        self.pos = 0;
    }

    /// The next raw 32-bit output (tempered MT19937 word).
    pub fn next_u32(&mut self) -> u32 {
        if self.pos >= MT_N {
            self.twist();
        }
        let mut y = self.key[self.pos];
        self.pos += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^= y >> 18;
        y
    }

    /// The next 64-bit output as numpy builds it from MT19937: first draw high, second low.
    pub fn next_u64(&mut self) -> u64 {
        let hi = self.next_u32() as u64;
        let lo = self.next_u32() as u64;
        (hi << 32) | lo
    }

    /// A uniform double in [0, 1) with 53 random bits, as `np.random.random_sample()`.
    pub fn random_sample(&mut self) -> f64 {
        let a = (self.next_u32() >> 5) as f64; // 27 bits
        let b = (self.next_u32() >> 6) as f64; // 26 bits
        (a * 67_108_864.0 + b) / 9_007_199_254_740_992.0
    }

    /// `n` uniform doubles in [0, 1), as `np.random.rand(n)`.
    pub fn rand(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| self.random_sample()).collect()
    }

    /// One standard normal value, numpy's legacy `legacy_gauss` (polar Box–Muller).
    /// Each accepted pair yields two values; the second is cached for the next call.
    pub fn standard_normal(&mut self) -> f64 {
        if self.has_gauss {
            self.has_gauss = false;
            return std::mem::replace(&mut self.gauss, 0.0);
        }
        loop {
            let x1 = 2.0 * self.random_sample() - 1.0;
            let x2 = 2.0 * self.random_sample() - 1.0;
            let r2 = x1 * x1 + x2 * x2;
            if r2 >= 1.0 || r2 == 0.0 {
                continue; // outside the unit disc (or its centre): draw again
            }
            let f = (-2.0 * r2.ln() / r2).sqrt();
            self.gauss = f * x1;
            self.has_gauss = true;
            return f * x2;
        }
    }

    /// Standard normal array of the given shape, filled in C order, as `np.random.randn(*shape)`.
    /// An empty `shape` gives a 0-d array holding one value (numpy returns a scalar).
    ///
    /// # Panics
    /// Only if the element count overflows memory, like any allocation.
    pub fn randn(&mut self, shape: &[usize]) -> ArrayD<f64> {
        let count: usize = shape.iter().product();
        let values: Vec<f64> = (0..count).map(|_| self.standard_normal()).collect();
        ArrayD::from_shape_vec(IxDyn(shape), values)
            .expect("the length is the product of the shape")
    }

    /// `np.random.randn(rows, cols)` as a 2-D array `(rows, cols)`, C order.
    pub fn randn2(&mut self, rows: usize, cols: usize) -> Array2<f64> {
        Array2::from_shape_simple_fn((rows, cols), || self.standard_normal())
    }

    /// numpy's `random_interval(max)`: uniform in `0..=max` by masked rejection, drawing
    /// 32-bit outputs when `max` fits in 32 bits and 64-bit ones otherwise.
    pub fn random_interval(&mut self, max: u64) -> u64 {
        if max == 0 {
            return 0;
        }
        let mask = bit_mask(max);
        if max <= u32::MAX as u64 {
            loop {
                let value = self.next_u32() as u64 & mask;
                if value <= max {
                    return value;
                }
            }
        } else {
            loop {
                let value = self.next_u64() & mask;
                if value <= max {
                    return value;
                }
            }
        }
    }

    /// A uniform integer in `low..high`, as legacy `np.random.randint(low, high)` (int64).
    /// Draws nothing when `high == low + 1`.
    pub fn randint(&mut self, low: i64, high: i64) -> Result<i64> {
        if high <= low {
            return Err(CoreError::invalid(format!(
                "randint: expected low < high, got low = {low}, high = {high}"
            )));
        }
        // numpy: rng = (high - 1) - low as an unsigned 64-bit span, off = low.
        let rng = (high - 1).wrapping_sub(low) as u64;
        // The masked rejection in random_interval is numpy's bounded_masked path; for the
        // all-ones spans (2^32 - 1, 2^64 - 1) it reduces to the raw draw, as numpy special-cases.
        let value = self.random_interval(rng);
        Ok((low as u64).wrapping_add(value) as i64)
    }

    /// A uniform index in `0..n`, as `np.random.choice(n)` (= `randint(0, n)`).
    pub fn choice(&mut self, n: usize) -> Result<usize> {
        if n == 0 {
            return Err(CoreError::invalid(
                "choice: n must be greater than 0, got 0",
            ));
        }
        let high = i64::try_from(n)
            .map_err(|_| CoreError::invalid(format!("choice: n = {n} does not fit in int64")))?;
        Ok(self.randint(0, high)? as usize)
    }

    /// An index drawn with probabilities `p`, as `np.random.choice(len(p), p=p)`:
    /// validate `p`, take one `random_sample()` u and return the first `i` with `cdf[i] > u`,
    /// where `cdf` is the running sum of `p` divided by its last value.
    pub fn choice_p(&mut self, p: &[f64]) -> Result<usize> {
        validate_probabilities(p)?;
        // cdf = p.cumsum(); cdf /= cdf[-1]   (sequential sum, as numpy's add.accumulate)
        let mut cdf = Vec::with_capacity(p.len()); // (n,)
        let mut acc = 0.0;
        for &pi in p {
            acc += pi;
            cdf.push(acc);
        }
        let total = acc;
        for c in &mut cdf {
            *c /= total;
        }
        let u = self.random_sample();
        // searchsorted(side='right'): the number of cdf entries <= u (cdf is non-decreasing).
        let idx = cdf.partition_point(|&c| c <= u);
        Ok(idx.min(p.len() - 1)) // u < 1 = cdf[last], so idx < n already; never index out
    }

    /// Shuffle in place, as legacy `np.random.shuffle` on a list or 1-D array:
    /// for i from n-1 down to 1, swap x[i] with x[random_interval(i)].
    pub fn shuffle<T>(&mut self, x: &mut [T]) {
        for i in (1..x.len()).rev() {
            let j = self.random_interval(i as u64) as usize;
            x.swap(i, j);
        }
    }

    /// The full state, for checkpoints (same fields as numpy's `get_state()`).
    pub fn snapshot(&self) -> RandomStateSnapshot {
        RandomStateSnapshot {
            key: self.key.to_vec(),
            pos: self.pos,
            has_gauss: self.has_gauss,
            gauss: self.gauss,
        }
    }

    /// Rebuild a generator from a snapshot; the stream continues exactly where it was taken.
    pub fn from_snapshot(snapshot: &RandomStateSnapshot) -> Result<Self> {
        let key: [u32; MT_N] = snapshot.key.as_slice().try_into().map_err(|_| {
            CoreError::invalid(format!(
                "RandomStateSnapshot.key: expected {MT_N} words, got {}",
                snapshot.key.len()
            ))
        })?;
        if snapshot.pos > MT_N {
            return Err(CoreError::invalid(format!(
                "RandomStateSnapshot.pos: expected 0..={MT_N}, got {}",
                snapshot.pos
            )));
        }
        // MT19937 uses only the top bit of key[0]: with it and every other word zero the
        // generator is stuck at zero forever (and `choice` could never pass a zero-p entry).
        if key[0] & 0x8000_0000 == 0 && key[1..].iter().all(|&w| w == 0) {
            return Err(CoreError::invalid(
                "RandomStateSnapshot.key: an all-zero MT19937 state generates only zeros; not a state numpy can produce",
            ));
        }
        if !snapshot.gauss.is_finite() {
            return Err(CoreError::NonFinite {
                name: "RandomStateSnapshot.gauss".into(),
                index: 0,
                value: snapshot.gauss,
            });
        }
        Ok(RandomState {
            key,
            pos: snapshot.pos,
            has_gauss: snapshot.has_gauss,
            gauss: snapshot.gauss,
        })
    }
}

/// The smallest all-ones bit mask covering `max` (numpy's `gen_mask`).
fn bit_mask(max: u64) -> u64 {
    let mut mask = max;
    mask |= mask >> 1;
    mask |= mask >> 2;
    mask |= mask >> 4;
    mask |= mask >> 8;
    mask |= mask >> 16;
    mask |= mask >> 32;
    mask
}

/// numpy's checks on `choice(..., p=p)`: non-empty, finite, non-negative, and a Kahan sum
/// within `sqrt(f64::EPSILON)` of 1.
fn validate_probabilities(p: &[f64]) -> Result<()> {
    if p.is_empty() {
        return Err(CoreError::invalid("choice_p: p must not be empty"));
    }
    if let Some((index, &value)) = p.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(CoreError::NonFinite {
            name: "choice_p: p".into(),
            index,
            value,
        });
    }
    if let Some((index, &value)) = p.iter().enumerate().find(|(_, &v)| v < 0.0) {
        return Err(CoreError::invalid(format!(
            "choice_p: p must be non-negative, got p[{index}] = {value}"
        )));
    }
    let sum = kahan_sum(p);
    let atol = f64::EPSILON.sqrt();
    if (sum - 1.0).abs() > atol {
        return Err(CoreError::invalid(format!(
            "choice_p: p must sum to 1 (within {atol:e}), got sum {sum}"
        )));
    }
    Ok(())
}

/// Compensated sum, exactly numpy's `kahan_sum` (starts from the first element).
fn kahan_sum(values: &[f64]) -> f64 {
    let Some((&first, rest)) = values.split_first() else {
        return 0.0;
    };
    let mut sum = first;
    let mut c = 0.0;
    for &v in rest {
        let y = v - c;
        let t = sum + y;
        c = (t - sum) - y;
        sum = t;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_mt19937_output() {
        // The first output of the reference MT19937 for its default seed 5489.
        assert_eq!(RandomState::new(5489).next_u32(), 3_499_211_612);
    }

    #[test]
    fn bit_mask_covers_max() {
        assert_eq!(bit_mask(1), 1);
        assert_eq!(bit_mask(5), 7);
        assert_eq!(bit_mask(8), 15);
        assert_eq!(bit_mask(u64::MAX), u64::MAX);
    }

    #[test]
    fn kahan_sum_of_tenths() {
        assert_eq!(kahan_sum(&[0.1; 10]), 1.0);
        assert_eq!(kahan_sum(&[]), 0.0);
    }
}
