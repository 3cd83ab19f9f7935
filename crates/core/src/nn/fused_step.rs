//! One step of the forward time loop for a block of sequences, with the recurrent product and
//! the gate activations fused: `z⟨t⟩ += h⟨t−1⟩·W_hhᵀ` is computed one register tile at a time
//! (a few sequences × every gate of a few hidden units), and each finished tile goes straight
//! through the cell's activations while it is still in L1, instead of a second pass over `z`.
//! `W_hh` is packed once per forward pass (not once per step, as a general GEMM call does).
//!
//! **Same bits as the `gemm` crate.** On the shapes where this runs ([`fits`]) the `gemm`
//! crate sums each output with its micro-kernel: one fused multiply-add chain over k in order,
//! starting from zero, then adds the chain to `z` (one rounding). The tile below does exactly
//! that for every output (a tile only groups independent sums), so `z`, and everything after
//! it, is bit-identical. It runs only at the AVX2 and AVX-512 levels, where `mul_add` is one
//! instruction and the `gemm` crate uses FMA too; elsewhere the engine keeps the general path.

use crate::math::gemm::{backend, Backend};
use crate::math::{Float, SimdKernel, SimdLevel};
use crate::nn::cells::{gru_row, lstm_row, Cell};

/// The register tile: `rows` sequences × all gates × `lanes` hidden units (one vector register
/// of `lanes` values per gate and sequence).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tile {
    pub rows: usize,
    pub lanes: usize,
}

/// The tile for `cell` at the SIMD level in force, or `None` where the fused step does not
/// run (the portable level, the ndarray backend, the tanh-RNN). AVX-512 has 32 registers: 6
/// LSTM rows (24 accumulators) or 8 GRU rows (24); AVX2 has 16: 3 LSTM rows (12) or 4 GRU
/// rows (12). The rest hold the weights of one k and a broadcast of h.
pub(crate) fn tile<T: Float>(cell: Cell) -> Option<Tile> {
    if backend() != Backend::Gemm {
        return None;
    }
    let (level, bytes) = match SimdLevel::current() {
        SimdLevel::Avx512 => (2, 64),
        SimdLevel::Avx2 => (1, 32),
        SimdLevel::Portable => return None,
    };
    let rows = match cell {
        Cell::Lstm => 3 * level,
        Cell::Gru => 4 * level,
        Cell::Rnn => return None,
    };
    Some(Tile {
        rows,
        lanes: bytes / std::mem::size_of::<T>(),
    })
}

/// Whether a block of `nb` sequences with `hs` hidden units is a shape where the `gemm` crate
/// sums with its micro-kernel in one pass over k (see the module docs): k = `hs` in 3..=512
/// (one depth block; k ≤ 2 has its own path), at least 2 rows (one row is a matrix-vector
/// product) and more than 16×16 outputs per product (smaller ones use horizontal sums; the
/// GRU's narrowest product is its n gate, `hs` wide).
pub(crate) fn fits(cell: Cell, nb: usize, hs: usize) -> bool {
    let narrowest = match cell {
        Cell::Gru => hs,
        other => other.gates() * hs,
    };
    nb >= 2 && (3..=512).contains(&hs) && nb * narrowest > 256
}

/// `W_hh` (G·H rows of H) packed per tile of `lanes` hidden units: for every k, the G gates'
/// `lanes` weights side by side (zeros past H). `weight(j, k)` is `W_hh[j][k]`.
pub(crate) fn pack_whh<T: Float>(
    gates: usize,
    hs: usize,
    lanes: usize,
    weight: impl Fn(usize, usize) -> T,
) -> Vec<T> {
    let tiles = hs.div_ceil(lanes);
    let mut packed = vec![T::ZERO; tiles * hs * gates * lanes];
    for (tile, panel) in packed.chunks_exact_mut(hs * gates * lanes).enumerate() {
        for (k, at_k) in panel.chunks_exact_mut(gates * lanes).enumerate() {
            for (g, lane) in at_k.chunks_exact_mut(lanes).enumerate() {
                for (l, w) in lane.iter_mut().enumerate() {
                    let unit = tile * lanes + l;
                    if unit < hs {
                        *w = weight(g * hs + unit, k);
                    }
                }
            }
        }
    }
    packed
}

/// The buffers of one step of one block (`nb` rows each; see `recurrent` for the layouts).
pub(crate) struct StepRows<'a, T> {
    pub h_prev: &'a [T],
    /// (nb, G·H): the input part on entry, the gate activations on exit.
    pub z: &'a mut [T],
    /// LSTM: tanh(c) (out). GRU: `W_hn h + b_hn` (holds `b_hn` on entry).
    pub tc: &'a mut [T],
    /// LSTM only (empty for the GRU).
    pub c_prev: &'a [T],
    pub c_new: &'a mut [T],
    pub h_new: &'a mut [T],
}

/// One fused step of `nb` rows (see the module docs); `packed` is [`pack_whh`] at `tile.lanes`.
pub(crate) fn step<T: Float>(
    cell: Cell,
    tile: Tile,
    hs: usize,
    nb: usize,
    packed: &[T],
    rows: StepRows<'_, T>,
) {
    let g = cell.gates();
    assert!(
        rows.h_prev.len() >= nb * hs
            && rows.z.len() >= nb * g * hs
            && rows.tc.len() >= nb * hs
            && rows.h_new.len() >= nb * hs
            && packed.len() >= hs.div_ceil(tile.lanes) * hs * g * tile.lanes
            && tile.lanes * std::mem::size_of::<T>() == simd_bytes(SimdLevel::current())
    );
    if cell == Cell::Lstm {
        assert!(rows.c_prev.len() >= nb * hs && rows.c_new.len() >= nb * hs);
    }
    #[cfg(target_arch = "x86_64")]
    {
        use std::any::TypeId;
        macro_rules! run {
            ($e:ty, $reg:ty) => {{
                // SAFETY: T is $e (checked by the caller's TypeId match), so the casts only
                // rename the element type; the register type matches the level in force.
                let (packed, rows) = unsafe { (cast::<T, $e>(packed), cast_rows::<T, $e>(rows)) };
                match (cell, tile.rows) {
                    (Cell::Lstm, 6) => <$e>::vectorized(FusedStep::<$reg, 6, 4> { cell, hs, nb, packed, rows }),
                    (Cell::Lstm, 3) => <$e>::vectorized(FusedStep::<$reg, 3, 4> { cell, hs, nb, packed, rows }),
                    (Cell::Gru, 8) => <$e>::vectorized(FusedStep::<$reg, 8, 3> { cell, hs, nb, packed, rows }),
                    (Cell::Gru, 4) => <$e>::vectorized(FusedStep::<$reg, 4, 3> { cell, hs, nb, packed, rows }),
                    other => unreachable!("fused step: no tile {other:?}"),
                }
            }};
        }
        let f32_ = TypeId::of::<T>() == TypeId::of::<f32>();
        match (SimdLevel::current(), f32_) {
            (SimdLevel::Avx512, true) => return run!(f32, x86::F32x16),
            (SimdLevel::Avx512, false) => return run!(f64, x86::F64x8),
            (SimdLevel::Avx2, true) => return run!(f32, x86::F32x8),
            (SimdLevel::Avx2, false) => return run!(f64, x86::F64x4),
            (SimdLevel::Portable, _) => {}
        }
    }
    unreachable!("fused step at the portable level")
}

/// Bytes of one vector register at `level`.
fn simd_bytes(level: SimdLevel) -> usize {
    match level {
        SimdLevel::Avx512 => 64,
        SimdLevel::Avx2 => 32,
        SimdLevel::Portable => 0,
    }
}

/// # Safety
/// `T` and `E` must be the same type.
unsafe fn cast<T, E>(x: &[T]) -> &[E] {
    std::slice::from_raw_parts(x.as_ptr() as *const E, x.len())
}

/// # Safety
/// As [`cast`].
unsafe fn cast_mut<T, E>(x: &mut [T]) -> &mut [E] {
    std::slice::from_raw_parts_mut(x.as_mut_ptr() as *mut E, x.len())
}

/// # Safety
/// As [`cast`].
unsafe fn cast_rows<T, E>(r: StepRows<'_, T>) -> StepRows<'_, E> {
    StepRows {
        h_prev: cast(r.h_prev),
        z: cast_mut(r.z),
        tc: cast_mut(r.tc),
        c_prev: cast(r.c_prev),
        c_new: cast_mut(r.c_new),
        h_new: cast_mut(r.h_new),
    }
}

/// A vector register of floats: the few operations the tile needs.
trait Reg: Copy {
    type E: Float;
    const LANES: usize;
    /// # Safety (all)
    /// Only inside code compiled for the register's level; pointers valid for `LANES` values.
    unsafe fn zero() -> Self;
    unsafe fn splat(x: Self::E) -> Self;
    unsafe fn load(p: *const Self::E) -> Self;
    /// `a·b + c`, rounded once.
    unsafe fn fma(a: Self, b: Self, c: Self) -> Self;
    unsafe fn store(self, p: *mut Self::E);
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Reg;
    use std::arch::x86_64::*;

    macro_rules! reg {
        ($name:ident, $e:ty, $lanes:literal, $v:ty, $zero:ident, $splat:ident, $load:ident, $fma:ident, $store:ident) => {
            #[derive(Clone, Copy)]
            pub(super) struct $name($v);
            impl Reg for $name {
                type E = $e;
                const LANES: usize = $lanes;
                #[inline(always)]
                unsafe fn zero() -> Self {
                    $name($zero())
                }
                #[inline(always)]
                unsafe fn splat(x: $e) -> Self {
                    $name($splat(x))
                }
                #[inline(always)]
                unsafe fn load(p: *const $e) -> Self {
                    $name($load(p))
                }
                #[inline(always)]
                unsafe fn fma(a: Self, b: Self, c: Self) -> Self {
                    $name($fma(a.0, b.0, c.0))
                }
                #[inline(always)]
                unsafe fn store(self, p: *mut $e) {
                    $store(p, self.0)
                }
            }
        };
    }
    reg!(
        F32x16,
        f32,
        16,
        __m512,
        _mm512_setzero_ps,
        _mm512_set1_ps,
        _mm512_loadu_ps,
        _mm512_fmadd_ps,
        _mm512_storeu_ps
    );
    reg!(
        F64x8,
        f64,
        8,
        __m512d,
        _mm512_setzero_pd,
        _mm512_set1_pd,
        _mm512_loadu_pd,
        _mm512_fmadd_pd,
        _mm512_storeu_pd
    );
    reg!(
        F32x8,
        f32,
        8,
        __m256,
        _mm256_setzero_ps,
        _mm256_set1_ps,
        _mm256_loadu_ps,
        _mm256_fmadd_ps,
        _mm256_storeu_ps
    );
    reg!(
        F64x4,
        f64,
        4,
        __m256d,
        _mm256_setzero_pd,
        _mm256_set1_pd,
        _mm256_loadu_pd,
        _mm256_fmadd_pd,
        _mm256_storeu_pd
    );
}

/// Asks for the cache lines of `x` ahead of use (a hint; nothing on other CPUs).
#[inline(always)]
fn prefetch<E>(x: &[E]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let bytes = std::mem::size_of_val(x);
        let p = x.as_ptr() as *const i8;
        for off in (0..bytes).step_by(64) {
            // SAFETY: a prefetch never faults; the address is inside `x`.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.add(off)) };
        }
    }
}

/// Lanes of the widest register (AVX-512 f32): the size of a row's sums as stored.
const MAX_LANES: usize = 16;

/// R rows × G gates × one register of hidden units per tile.
struct FusedStep<'a, Rg: Reg, const R: usize, const G: usize> {
    cell: Cell,
    hs: usize,
    nb: usize,
    packed: &'a [Rg::E],
    rows: StepRows<'a, Rg::E>,
}

impl<Rg: Reg, const R: usize, const G: usize> SimdKernel for FusedStep<'_, Rg, R, G> {
    type Output = ();
    #[inline(always)]
    fn run(mut self) {
        let (hs, nb, lanes) = (self.hs, self.nb, Rg::LANES);
        let h_prev = self.rows.h_prev.as_ptr();
        // rows outer, units inner: each row of z is read and written once, front to back, while
        // the packed weights stream from L2
        let mut i0 = 0;
        while i0 < nb {
            let valid = R.min(nb - i0);
            // rows past the block repeat its last row (computed, never stored)
            // SAFETY: every row index is < nb, checked against h_prev in `step`.
            let a: [*const Rg::E; R] =
                std::array::from_fn(|r| unsafe { h_prev.add((i0 + r.min(valid - 1)) * hs) });
            let tiles = hs.div_ceil(lanes);
            let next = (i0 + R).min(nb)..(i0 + 2 * R).min(nb);
            for (tile, panel) in self.packed.chunks_exact(hs * G * lanes).enumerate() {
                let u0 = tile * lanes;
                if u0 >= hs {
                    break;
                }
                // fetch the next row tile's rows of every buffer, a share per unit tile, while
                // this one computes (they are read or written once per step, far apart)
                let share = |width: usize| {
                    let (start, end) = (next.start * width, next.end * width);
                    let len = end - start;
                    start + len * tile / tiles..start + len * (tile + 1) / tiles
                };
                prefetch(&self.rows.z[share(G * hs)]);
                prefetch(&self.rows.c_new[share(if self.rows.c_new.is_empty() { 0 } else { hs })]);
                prefetch(&self.rows.tc[share(hs)]);
                prefetch(&self.rows.h_new[share(hs)]);
                let mut sums = [[[Rg::E::ZERO; MAX_LANES]; G]; R];
                // SAFETY: the rows hold hs values, the panel hs·G·lanes; the registers match
                // the level in force (see `step`).
                unsafe {
                    let mut acc = [[Rg::zero(); G]; R];
                    let mut bp = panel.as_ptr();
                    for k in 0..hs {
                        let b: [Rg; G] = std::array::from_fn(|g| Rg::load(bp.add(g * lanes)));
                        for r in 0..R {
                            let x = Rg::splat(*a[r].add(k));
                            for g in 0..G {
                                acc[r][g] = Rg::fma(x, b[g], acc[r][g]);
                            }
                        }
                        bp = bp.add(G * lanes);
                    }
                    for r in 0..valid {
                        for g in 0..G {
                            acc[r][g].store(sums[r][g].as_mut_ptr());
                        }
                    }
                }
                for (r, sums) in sums.iter().enumerate().take(valid) {
                    // a whole register of units: a constant length, so the cell's loop
                    // compiles without a remainder
                    if hs - u0 >= lanes {
                        self.finish(i0 + r, u0, Rg::LANES, sums);
                    } else {
                        self.finish(i0 + r, u0, hs - u0, sums);
                    }
                }
            }
            i0 += R;
        }
    }
}

impl<Rg: Reg, const R: usize, const G: usize> FusedStep<'_, Rg, R, G> {
    /// Adds one row's sums for units `u0..u0 + vu` to `z` (as the `gemm` crate's `dst + Σ`) and runs
    /// the cell on those units.
    #[inline(always)]
    fn finish(&mut self, row: usize, u0: usize, vu: usize, acc: &[[Rg::E; MAX_LANES]; G]) {
        let hs = self.hs;
        let units = u0..u0 + vu;
        let at = |buf_row: usize| buf_row * hs + u0..buf_row * hs + u0 + vu;
        let rows = &mut self.rows;
        let zr = &mut rows.z[row * G * hs..(row + 1) * G * hs];
        match self.cell {
            Cell::Lstm => {
                for (g, sums) in acc.iter().enumerate() {
                    for (zv, &s) in zr[g * hs + u0..g * hs + u0 + vu].iter_mut().zip(sums) {
                        *zv += s;
                    }
                }
                let (zi, rest) = zr.split_at_mut(hs);
                let (zf, rest) = rest.split_at_mut(hs);
                let (zg, zo) = rest.split_at_mut(hs);
                lstm_row(
                    &mut zi[units.clone()],
                    &mut zf[units.clone()],
                    &mut zg[units.clone()],
                    &mut zo[units],
                    &rows.c_prev[at(row)],
                    &mut rows.c_new[at(row)],
                    &mut rows.tc[at(row)],
                    &mut rows.h_new[at(row)],
                );
            }
            _ => {
                // GRU: r and z gates into z, the n gate's hidden part into tc (= W_hn h + b_hn)
                for (g, sums) in acc.iter().enumerate().take(2) {
                    for (zv, &s) in zr[g * hs + u0..g * hs + u0 + vu].iter_mut().zip(sums) {
                        *zv += s;
                    }
                }
                let hn = &mut rows.tc[at(row)];
                for (hv, &s) in hn.iter_mut().zip(&acc[2]) {
                    *hv += s;
                }
                let (zrr, rest) = zr.split_at_mut(hs);
                let (zz, zn) = rest.split_at_mut(hs);
                gru_row(
                    &mut zrr[units.clone()],
                    &mut zz[units.clone()],
                    &mut zn[units],
                    &rows.tc[at(row)],
                    &rows.h_prev[at(row)],
                    &mut rows.h_new[at(row)],
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::gemm::{gemm_raw, Operand};
    use crate::nn::cells::{gru_activations, lstm_activations};
    use crate::random::RandomState;

    /// The general path of the engine: the `gemm` crate's product(s), then the activations.
    fn general_step<T: Float>(cell: Cell, hs: usize, nb: usize, w_hh: &[T], r: StepRows<'_, T>) {
        let g = cell.gates();
        let h_op = Operand {
            ptr: r.h_prev.as_ptr(),
            rs: hs as isize,
            cs: 1,
        };
        let w_op = |row0: usize| Operand {
            ptr: w_hh[row0 * hs..].as_ptr(),
            rs: 1,
            cs: hs as isize,
        };
        // SAFETY: the operands address nb×hs, hs×(G·H) and nb×(G·H) (or nb×H) values.
        unsafe {
            match cell {
                Cell::Lstm => gemm_raw(
                    nb,
                    g * hs,
                    hs,
                    r.z.as_mut_ptr(),
                    g * hs,
                    true,
                    h_op,
                    w_op(0),
                ),
                _ => {
                    gemm_raw(
                        nb,
                        2 * hs,
                        hs,
                        r.z.as_mut_ptr(),
                        3 * hs,
                        true,
                        h_op,
                        w_op(0),
                    );
                    gemm_raw(nb, hs, hs, r.tc.as_mut_ptr(), hs, true, h_op, w_op(2 * hs));
                }
            }
        }
        match cell {
            Cell::Lstm => lstm_activations(r.z, r.c_prev, r.c_new, r.tc, r.h_new, hs),
            _ => gru_activations(r.z, r.tc, r.h_prev, r.h_new, hs),
        }
    }

    struct Case<T> {
        w_hh: Vec<T>,
        h_prev: Vec<T>,
        z: Vec<T>,
        tc: Vec<T>,
        c_prev: Vec<T>,
        c_new: Vec<T>,
        h_new: Vec<T>,
    }

    fn case<T: Float>(cell: Cell, hs: usize, nb: usize, seed: u32) -> Case<T> {
        let mut rng = RandomState::new(seed);
        let mut v = |n: usize, scale: f64| -> Vec<T> {
            (0..n)
                .map(|_| T::from_f64(rng.standard_normal() * scale))
                .collect()
        };
        let g = cell.gates();
        Case {
            w_hh: v(g * hs * hs, 0.3),
            h_prev: v(nb * hs, 0.8),
            z: v(nb * g * hs, 1.0),
            tc: v(nb * hs, 0.5),
            c_prev: v(nb * hs, 1.0),
            c_new: vec![T::ZERO; nb * hs],
            h_new: vec![T::ZERO; nb * hs],
        }
    }

    fn rows_of<T>(c: &mut Case<T>) -> StepRows<'_, T> {
        StepRows {
            h_prev: &c.h_prev,
            z: &mut c.z,
            tc: &mut c.tc,
            c_prev: &c.c_prev,
            c_new: &mut c.c_new,
            h_new: &mut c.h_new,
        }
    }

    fn bits<T: Float>(c: &Case<T>) -> Vec<u64> {
        [&c.z, &c.tc, &c.c_new, &c.h_new]
            .iter()
            .flat_map(|b| b.iter().map(|x| x.to_f64().to_bits()))
            .collect()
    }

    fn same_bits_as_the_general_path<T: Float>() {
        for cell in [Cell::Lstm, Cell::Gru] {
            let Some(tile) = tile::<T>(cell) else {
                return; // portable level: the fused step never runs
            };
            let mut tried = 0;
            for &hs in &[3, 5, 16, 17, 40, 64, 128, 130] {
                for &nb in &[2, 3, 5, 7, 8, 9, 30, 64] {
                    if !fits(cell, nb, hs) {
                        continue;
                    }
                    tried += 1;
                    let seed = (hs * 100 + nb) as u32;
                    let mut want = case::<T>(cell, hs, nb, seed);
                    let w = want.w_hh.clone();
                    general_step(cell, hs, nb, &w, rows_of(&mut want));
                    let mut got = case::<T>(cell, hs, nb, seed);
                    let packed = pack_whh(cell.gates(), hs, tile.lanes, |j, k| w[j * hs + k]);
                    step(cell, tile, hs, nb, &packed, rows_of(&mut got));
                    assert!(
                        bits(&want) == bits(&got),
                        "{cell:?} {} hs {hs} nb {nb}: the fused step differs",
                        T::DTYPE
                    );
                }
            }
            assert!(tried > 20);
        }
    }

    #[test]
    fn fused_step_gives_the_general_paths_bits_f32() {
        same_bits_as_the_general_path::<f32>();
    }

    #[test]
    fn fused_step_gives_the_general_paths_bits_f64() {
        same_bits_as_the_general_path::<f64>();
    }

    #[test]
    fn fits_only_where_gemm_runs_its_micro_kernel() {
        assert!(fits(Cell::Lstm, 64, 128) && fits(Cell::Gru, 64, 128));
        assert!(
            !fits(Cell::Lstm, 1, 128),
            "one row: a matrix-vector product"
        );
        assert!(!fits(Cell::Lstm, 64, 2), "k ≤ 2: its own path");
        assert!(!fits(Cell::Lstm, 64, 513), "k > 512: two depth blocks");
        assert!(
            !fits(Cell::Lstm, 4, 16) && fits(Cell::Lstm, 5, 16),
            "16×16 outputs or fewer"
        );
        assert!(!fits(Cell::Gru, 16, 16) && fits(Cell::Gru, 17, 16));
    }

    /// Thread CPU time of one step of 64 rows × 128 units, general path against fused, in
    /// alternating rounds: `cargo test --release -p rnnlab-core fused_step_speed -- --ignored
    /// --nocapture`.
    #[test]
    #[ignore]
    fn fused_step_speed() {
        fn cpu() -> f64 {
            std::fs::read_to_string("/proc/thread-self/schedstat")
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
                .unwrap_or(0.0)
                * 1e-9
        }
        fn run<T: Float>(cell: Cell) {
            let (hs, nb, n) = (128, 64, 400);
            let Some(tile) = tile::<T>(cell) else { return };
            let mut c = case::<T>(cell, hs, nb, 1);
            let w = c.w_hh.clone();
            let packed = pack_whh(cell.gates(), hs, tile.lanes, |j, k| w[j * hs + k]);
            let z0 = c.z.clone();
            let tc0 = c.tc.clone();
            for round in 0..3 {
                let t = cpu();
                for _ in 0..n {
                    c.z.copy_from_slice(&z0);
                    c.tc.copy_from_slice(&tc0);
                    general_step(cell, hs, nb, &w, rows_of(&mut c));
                }
                let general = (cpu() - t) / n as f64;
                let t = cpu();
                for _ in 0..n {
                    c.z.copy_from_slice(&z0);
                    c.tc.copy_from_slice(&tc0);
                    step(cell, tile, hs, nb, &packed, rows_of(&mut c));
                }
                let fused = (cpu() - t) / n as f64;
                println!(
                    "{cell:?} {} round {round}: general {:.1} µs, fused {:.1} µs per step",
                    T::DTYPE,
                    general * 1e6,
                    fused * 1e6
                );
            }
        }
        for cell in [Cell::Lstm, Cell::Gru] {
            run::<f32>(cell);
            run::<f64>(cell);
        }
    }
}
