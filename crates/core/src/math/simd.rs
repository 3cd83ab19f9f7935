//! The one place that decides which SIMD code paths run.
//!
//! Every kernel family (dinos, language model, jazz, sampling) asks [`SimdLevel::current`] and
//! dispatches on the answer, so one environment variable, `RNNLAB_SIMD=portable|avx2|avx512`,
//! caps them all (for benchmarks and for testing the narrower paths on a wider CPU).

use std::sync::OnceLock;

/// A CPU capability level, ordered: a level implies every level below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SimdLevel {
    /// Plain Rust: every CPU.
    Portable,
    /// x86-64 with AVX2 and FMA (Haswell, Zen 1 and later): 4 f64 / 8 f32 lanes.
    Avx2,
    /// x86-64 with AVX-512 F and DQ on top of AVX2 and FMA: 8 f64 / 16 f32 lanes.
    Avx512,
}

impl SimdLevel {
    /// The name used by `RNNLAB_SIMD` and in benchmark output.
    pub fn as_str(self) -> &'static str {
        match self {
            SimdLevel::Portable => "portable",
            SimdLevel::Avx2 => "avx2",
            SimdLevel::Avx512 => "avx512",
        }
    }

    /// Parses `portable`, `avx2` or `avx512`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "portable" => Some(SimdLevel::Portable),
            "avx2" => Some(SimdLevel::Avx2),
            "avx512" => Some(SimdLevel::Avx512),
            _ => None,
        }
    }

    /// The widest level this CPU supports, ignoring `RNNLAB_SIMD`.
    pub fn detected() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx2") && has!("fma") {
                return if has!("avx512f") && has!("avx512dq") {
                    SimdLevel::Avx512
                } else {
                    SimdLevel::Avx2
                };
            }
        }
        SimdLevel::Portable
    }

    /// The level every kernel runs at: [`SimdLevel::detected`], capped by `RNNLAB_SIMD`
    /// (read once per process; an unknown value is ignored rather than failing a library call,
    /// and `rnnlab`'s CLI and benchmarks print the level in force).
    pub fn current() -> Self {
        static LEVEL: OnceLock<SimdLevel> = OnceLock::new();
        *LEVEL.get_or_init(|| {
            let cap = std::env::var("RNNLAB_SIMD")
                .ok()
                .and_then(|v| SimdLevel::parse(v.trim()))
                .unwrap_or(SimdLevel::Avx512);
            SimdLevel::detected().min(cap)
        })
    }

    /// Whether kernels compiled for `self` may run here (`self <= current()`).
    pub fn available(self) -> bool {
        self <= SimdLevel::current()
    }
}

#[cfg(test)]
mod tests {
    use super::SimdLevel;

    #[test]
    fn levels_are_ordered_and_named_both_ways() {
        assert!(SimdLevel::Portable < SimdLevel::Avx2 && SimdLevel::Avx2 < SimdLevel::Avx512);
        for l in [SimdLevel::Portable, SimdLevel::Avx2, SimdLevel::Avx512] {
            assert_eq!(SimdLevel::parse(l.as_str()), Some(l));
        }
        assert_eq!(SimdLevel::parse("sse"), None);
    }

    #[test]
    fn current_never_exceeds_the_cpu() {
        assert!(SimdLevel::current() <= SimdLevel::detected());
        assert!(SimdLevel::Portable.available());
    }
}
