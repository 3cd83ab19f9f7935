//! One sequence's steps on two cores. Batch-1 sampling streams every weight once per step
//! (≈ 800 KB for a 2×128 LSTM in f32): one core's cache bandwidth bounds it. Here each core
//! keeps its own share of every layer's units (all gate rows of those units, ≈ half the
//! weights, resident in its own L2) and the two meet after each layer, whose new h both need.
//!
//! The helper thread spins between hand-offs: a step is a few µs, far shorter than putting a
//! thread to sleep and waking it. Each unit is computed by exactly the code of the one-core
//! step, so the bits do not depend on the split.

use super::{layer_input, output_logits, Scratch, Stepper};
use crate::error::Result;
use crate::lm::model::CharLm;
use crate::math::Float;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Below this many weight bytes a step is too short to share: the hand-offs (a few hundred ns
/// each on a VM) cost what the halved product saves (measured: a 1×64 LSTM, 129 KB in f32,
/// breaks even; a 1×96, 243 KB, samples 1.35× faster on two cores).
const MIN_WEIGHT_BYTES: usize = 192 * 1024;
/// Below this many steps starting the helper thread is not worth it.
const MIN_STEPS: usize = 64;

/// Whether [`drive`] on two cores pays off for `steps` steps of `model`: two threads allowed
/// (`RAYON_NUM_THREADS`, the thread count the rest of the library uses) and a model large
/// enough.
pub(super) fn pay_off<T: Float>(model: &CharLm<T>, steps: usize) -> bool {
    let g = model.config.cell.gates();
    let weights: usize = model
        .layers
        .iter()
        .map(|l| g * l.hidden * (l.input + l.hidden))
        .sum();
    rayon::current_num_threads() >= 2
        && steps >= MIN_STEPS
        && weights * std::mem::size_of::<T>() >= MIN_WEIGHT_BYTES
}

/// The stepper's h (both buffers of every layer) and c, as raw pointers, for two threads that
/// write disjoint units: in a step each thread reads the whole old h of a layer (written by
/// both in the step before, published by the hand-offs) and writes only its own units of the
/// new h and of c. A layer's new h is read whole only after both threads have signalled that
/// layer done.
struct SharedState<T> {
    h: Vec<[*mut T; 2]>,
    c: Vec<*mut T>,
    hidden: Vec<usize>,
}

// SAFETY: the pointers address the stepper's buffers, which outlive the scope of the two
// threads; which thread may touch which units when is the protocol above.
unsafe impl<T: Send> Send for SharedState<T> {}
unsafe impl<T: Sync> Sync for SharedState<T> {}

/// The hand-offs, one *phase* per layer step (step n's layer k is phase n·L + k + 1).
/// `claimed` is `phase << 8 | parts taken`: the main thread opens a phase by storing it with
/// no part taken, then both threads take parts until none is left, so that a helper thread
/// that has no core at the moment costs nothing: the main thread takes every part itself.
/// `finished` is `phase << 8 | parts done`; `input` the step's character and current h
/// buffer (`x << 1 | cur`).
struct Signals {
    claimed: AtomicU64,
    finished: AtomicU64,
    input: AtomicU64,
    stop: AtomicBool,
    /// Set when the helper leaves (also by a panic), so that the main thread never waits
    /// for it in vain.
    helper_gone: AtomicBool,
}

/// Busy-wait this many rounds before yielding the core (a loaded machine, or a partner
/// descheduled).
const SPINS: u32 = 1 << 12;
/// A wait for the helper longer than this (it lost its core in the middle of a part) sends
/// the main thread on alone for a while: from [`ALONE_MIN`] steps (a few ms), doubling up to
/// [`ALONE_MAX`] while slow waits keep coming soon after each return (a loaded machine, where
/// the second core costs more than it gives), back to the minimum after a calm stretch (a
/// single preemption of a virtual CPU costs little).
const SLOW_WAIT: Duration = Duration::from_micros(200);
const ALONE_MIN: u64 = 256;
const ALONE_MAX: u64 = 16384;

fn pause(spins: &mut u32) {
    if *spins < SPINS {
        *spins += 1;
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

/// Stops the helper when the main thread leaves the loop, however it leaves (end, error,
/// panic).
struct StopHelper<'a>(&'a Signals);
impl Drop for StopHelper<'_> {
    fn drop(&mut self) {
        self.0.stop.store(true, Ordering::Release);
    }
}

/// Marks the helper gone when it leaves, however it leaves.
struct HelperGone<'a>(&'a Signals);
impl Drop for HelperGone<'_> {
    fn drop(&mut self) {
        self.0.helper_gone.store(true, Ordering::Release);
    }
}

/// Thread `who`'s share (part `who`) of layer `k` in a step from buffer `cur`.
///
/// # Safety
/// The protocol of [`SharedState`]: the layer below's new h is complete, and no other thread
/// touches this part's units of layer `k`'s new h and c.
#[allow(clippy::too_many_arguments)]
unsafe fn layer_share<T: Float>(
    st: &SharedState<T>,
    stepper_layers: &[Vec<super::LayerPart<T>>],
    model: &CharLm<T>,
    k: usize,
    who: usize,
    x: usize,
    cur: usize,
    scratch: &mut Scratch<T>,
) {
    let Some(part) = stepper_layers[k].get(who) else {
        return;
    };
    let new = 1 - cur;
    let h_old = std::slice::from_raw_parts(st.h[k][cur], st.hidden[k]);
    let below = (k > 0).then(|| std::slice::from_raw_parts(st.h[k - 1][new], st.hidden[k - 1]));
    let input = layer_input(model, k, x, below);
    let u = part.units.clone();
    let c = std::slice::from_raw_parts_mut(st.c[k].add(u.start), u.len());
    let h_new = std::slice::from_raw_parts_mut(st.h[k][new].add(u.start), u.len());
    part.step(model.config.cell, x, input, h_old, c, h_new, scratch);
}

/// [`Stepper::drive`] on two threads (the stepper packed in two parts per layer).
pub(super) fn drive<T: Float, F>(
    stepper: &mut Stepper<'_, T>,
    first: u32,
    mut next: F,
) -> Result<()>
where
    F: FnMut(&[T]) -> Result<Option<u32>>,
{
    let Stepper {
        model,
        layers,
        w_y,
        h,
        cur,
        c,
        logits,
        scratch,
    } = stepper;
    let model: &CharLm<T> = model;
    let layers: &[Vec<super::LayerPart<T>>] = layers;
    let n_layers = layers.len() as u64;
    let parts_of = |phase: u64| layers[((phase - 1) % n_layers) as usize].len() as u64;
    let shared = SharedState {
        hidden: h.iter().map(|b| b[0].len()).collect(),
        h: h.iter_mut()
            .map(|b| {
                let [b0, b1] = b;
                [b0.as_mut_ptr(), b1.as_mut_ptr()]
            })
            .collect(),
        c: c.iter_mut().map(|v| v.as_mut_ptr()).collect(),
    };
    let signals = Signals {
        // phase 0: nothing to take
        claimed: AtomicU64::new(0xff),
        finished: AtomicU64::new(0),
        input: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        helper_gone: AtomicBool::new(false),
    };
    let (shared, signals) = (&shared, &signals);
    // SAFETY (both threads): a phase is opened only once the one before is finished, so the
    // layer below's new h is complete; a part is taken by exactly one thread.
    let run_part = |phase: u64, part: usize, scratch: &mut Scratch<T>| {
        let input = signals.input.load(Ordering::Relaxed);
        let (x, cur) = ((input >> 1) as usize, (input & 1) as usize);
        let k = ((phase - 1) % n_layers) as usize;
        unsafe { layer_share(shared, layers, model, k, part, x, cur, scratch) };
        signals.finished.fetch_add(1, Ordering::AcqRel);
    };
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let _gone = HelperGone(signals);
            let mut scratch = Scratch::new(model);
            let mut spins = 0;
            while !signals.stop.load(Ordering::Acquire) {
                let v = signals.claimed.load(Ordering::Acquire);
                let (phase, taken) = (v >> 8, v & 0xff);
                if phase == 0 || taken >= parts_of(phase) {
                    pause(&mut spins);
                    continue;
                }
                if signals
                    .claimed
                    .compare_exchange(v, v + 1, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    spins = 0;
                    run_part(phase, taken as usize, &mut scratch);
                }
            }
        });
        let _stop = StopHelper(signals);
        let mut x = first;
        let (mut phase, mut alone_until, mut alone_for) = (0, 0, 0);
        for step in 1u64.. {
            let alone = step < alone_until;
            signals
                .input
                .store(((x as u64) << 1) | *cur as u64, Ordering::Relaxed);
            for _ in 0..n_layers {
                phase += 1;
                let parts = parts_of(phase);
                if alone {
                    for part in 0..parts {
                        run_part(phase, part as usize, scratch);
                    }
                    continue;
                }
                signals.finished.store(phase << 8, Ordering::Relaxed);
                signals.claimed.store(phase << 8, Ordering::Release);
                loop {
                    let taken = signals.claimed.fetch_add(1, Ordering::AcqRel) & 0xff;
                    if taken >= parts {
                        break;
                    }
                    run_part(phase, taken as usize, scratch);
                }
                let (mut spins, started) = (0, Instant::now());
                while signals.finished.load(Ordering::Acquire) != (phase << 8 | parts) {
                    if signals.helper_gone.load(Ordering::Acquire) {
                        panic!("the sampling helper thread stopped in a step");
                    }
                    pause(&mut spins);
                }
                if spins > 0 && started.elapsed() > SLOW_WAIT {
                    alone_for = if step < alone_until + alone_for {
                        (alone_for * 2).min(ALONE_MAX)
                    } else {
                        ALONE_MIN
                    };
                    alone_until = step + alone_for;
                }
            }
            *cur = 1 - *cur;
            // SAFETY: the top layer's phase is finished; nothing writes its h until the next.
            let top = unsafe {
                std::slice::from_raw_parts(
                    shared.h[layers.len() - 1][*cur],
                    *shared.hidden.last().unwrap(),
                )
            };
            output_logits(model, w_y, top, logits);
            match next(logits)? {
                Some(nx) => x = nx,
                None => return Ok(()),
            }
        }
        Ok(())
    })
}
