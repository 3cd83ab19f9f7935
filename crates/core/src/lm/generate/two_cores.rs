//! One sequence's steps on two cores. Batch-1 sampling streams every weight once per step
//! (≈ 800 KB for a 2×128 LSTM in f32): one core's cache bandwidth bounds it. Here each core
//! keeps its own share of every layer's units (all gate rows of those units, ≈ half the
//! weights, resident in its own L2) and the two meet after each layer, whose new h both need.
//!
//! The helper thread spins between hand-offs: a step is a few µs, far shorter than putting a
//! thread to sleep and waking it. On a busy machine the second core may cost more than it
//! gives, so the main thread times both ways now and then and goes on alone (the helper parked)
//! when that is faster ([`Schedule`]). Each unit is computed by exactly the code of the
//! one-core step, so the bits depend neither on the split nor on who computed what.

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
    /// The main thread goes on alone: the helper parks.
    alone: AtomicBool,
    /// Set when the helper leaves (also by a panic), so that the main thread never waits
    /// for it in vain.
    helper_gone: AtomicBool,
}

/// Busy-wait this many rounds before yielding the core (a loaded machine, or a partner
/// descheduled).
const SPINS: u32 = 1 << 12;
/// Which way the steps run: on two threads, or on the main thread alone (the helper parked).
/// Steps go in windows of [`WINDOW`] steps, each timed; a way's speed is the best of its
/// last [`KEPT`] windows, so one window hit by a preempted virtual CPU does not condemn it,
/// while a machine that stays loaded makes every window slow. Each cycle of [`CYCLE`] windows
/// runs one window each way, then the faster way. A hand-off slower than [`SLOW_WAIT`] ends
/// its window at once (timed with it). The first window is untimed: the helper's start and
/// its cold cache would count against two threads.
struct Schedule {
    warmed_up: bool,
    window: u64,
    steps: u64,
    started: Instant,
    /// Seconds per step of the last windows of each way: [two threads, alone].
    recent: [[f64; KEPT]; 2],
    next: [usize; 2],
}

const WINDOW: u64 = 256;
const CYCLE: u64 = 16;
const KEPT: usize = 3;
const SLOW_WAIT: Duration = Duration::from_micros(200);

impl Schedule {
    fn new() -> Self {
        Schedule {
            warmed_up: false,
            window: 0,
            steps: 0,
            started: Instant::now(),
            recent: [[f64::INFINITY; KEPT]; 2],
            next: [0; 2],
        }
    }

    /// Seconds per step of a way (0: two threads, 1: alone): the best recent window.
    fn per_step(&self, way: usize) -> f64 {
        self.recent[way]
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min)
    }

    /// Whether the current window runs on two threads.
    fn two_threads(&self) -> bool {
        match self.window % CYCLE {
            0 => true,
            1 => false,
            _ => self.per_step(0) <= self.per_step(1),
        }
    }

    /// Counts a step (`slow`: it had a slow hand-off); true when the way changes.
    fn step_done(&mut self, slow: bool) -> bool {
        let before = self.two_threads();
        self.steps += 1;
        if self.steps < WINDOW && !slow {
            return false;
        }
        if self.warmed_up {
            let way = usize::from(!before);
            self.recent[way][self.next[way]] =
                self.started.elapsed().as_secs_f64() / self.steps as f64;
            self.next[way] = (self.next[way] + 1) % KEPT;
            self.window += 1;
        }
        self.warmed_up = true;
        self.steps = 0;
        self.started = Instant::now();
        self.two_threads() != before
    }
}

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
struct StopHelper<'a>(&'a Signals, std::thread::Thread);
impl Drop for StopHelper<'_> {
    fn drop(&mut self) {
        self.0.stop.store(true, Ordering::Release);
        self.1.unpark();
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
        alone: AtomicBool::new(false),
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
        let helper = scope.spawn(move || {
            let _gone = HelperGone(signals);
            let mut scratch = Scratch::new(model);
            let mut spins = 0;
            while !signals.stop.load(Ordering::Acquire) {
                if signals.alone.load(Ordering::Acquire) {
                    std::thread::park_timeout(Duration::from_millis(5));
                    continue;
                }
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
        let _stop = StopHelper(signals, helper.thread().clone());
        let mut x = first;
        let mut phase = 0;
        let mut schedule = Schedule::new();
        loop {
            let two_threads = schedule.two_threads();
            let mut slow = false;
            signals
                .input
                .store(((x as u64) << 1) | *cur as u64, Ordering::Relaxed);
            for _ in 0..n_layers {
                phase += 1;
                let parts = parts_of(phase);
                if !two_threads {
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
                // the clock is read only when there is a wait
                let (mut spins, mut waited_since) = (0, None);
                while signals.finished.load(Ordering::Acquire) != (phase << 8 | parts) {
                    if signals.helper_gone.load(Ordering::Acquire) {
                        panic!("the sampling helper thread stopped in a step");
                    }
                    waited_since.get_or_insert_with(Instant::now);
                    pause(&mut spins);
                }
                slow |= waited_since.is_some_and(|t: Instant| t.elapsed() > SLOW_WAIT);
            }
            if schedule.step_done(slow) {
                let alone = !schedule.two_threads();
                signals.alone.store(alone, Ordering::Release);
                if !alone {
                    helper.thread().unpark();
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_window(s: &mut Schedule) {
        for _ in 0..WINDOW {
            s.step_done(false);
        }
    }

    #[test]
    fn the_schedule_times_both_ways_and_runs_the_faster() {
        let mut s = Schedule::new();
        run_window(&mut s); // warm-up, untimed, on two threads
        assert!(s.two_threads() && s.per_step(0).is_infinite());
        run_window(&mut s); // the two-thread probe
        assert!(s.per_step(0).is_finite());
        assert!(!s.two_threads(), "then the probe alone");
        run_window(&mut s);
        assert!(s.per_step(1).is_finite());
        // the rest of the cycle follows the faster way: the best of each way's recent windows
        s.recent = [[9e-6, 1e-6, 9e-6], [2e-6, 5e-6, 5e-6]];
        assert!(
            s.two_threads(),
            "one slow window does not condemn two threads"
        );
        s.recent = [[3e-6, 4e-6, 3e-6], [2e-6, f64::INFINITY, 5e-6]];
        assert!(!s.two_threads());
        // a slow hand-off ends the window at once and is timed with it
        s.recent = [[1e-6; KEPT], [2e-6; KEPT]];
        let window = s.window;
        s.step_done(true);
        assert_eq!(s.window, window + 1);
        while !s.window.is_multiple_of(CYCLE) {
            run_window(&mut s);
        }
        assert!(s.two_threads(), "a new cycle probes two threads");
        run_window(&mut s);
        assert!(!s.two_threads(), "and then one");
    }
}
