//! Helpers that let plain loops run at the vector width of the machine, without changing a bit of
//! their results.
//!
//! - [`multiversion!`](crate::multiversion) compiles a function body three times (AVX-512, AVX2 and
//!   the baseline x86-64 SSE2) and picks the best the CPU has at run time ([`level`]). Rust never contracts
//!   `a * b + c` into an FMA nor reorders float operations, so every version performs the same IEEE
//!   operations in the same order and returns the same bits: only the speed depends on the CPU.
//! - [`exp`] is `e^x` from arithmetic alone (no libm call), so that loops containing it vectorise.
//! - [`LANES`]: loops with a reduction (a row sum) keep `LANES` independent partial sums, added
//!   together at the end, so the compiler may vectorise them (it never reorders a single sum).

use std::sync::atomic::{AtomicU8, Ordering};

/// Partial sums kept by vectorised reductions: one AVX-512 register of `f32`.
pub const LANES: usize = 16;

/// Defines `fn name(args) -> ret { body }` compiled for AVX-512, AVX2 and the baseline, dispatched
/// at run time on [`level`]. Functions the body calls must be `#[inline(always)]` to be compiled
/// with the same instructions.
#[doc(hidden)]
#[macro_export]
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn imp($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,avx")]
                #[allow(clippy::too_many_arguments)]
                fn v4($($arg: $ty),*) $(-> $ret)? { imp($($arg),*) }
                #[target_feature(enable = "avx2,avx")]
                #[allow(clippy::too_many_arguments)]
                fn v3($($arg: $ty),*) $(-> $ret)? { imp($($arg),*) }
                match $crate::simd::level() {
                    // SAFETY: `level` only reports instruction sets the CPU has.
                    $crate::simd::Level::Avx512 => return unsafe { v4($($arg),*) },
                    // SAFETY: as above.
                    $crate::simd::Level::Avx2 => return unsafe { v3($($arg),*) },
                    $crate::simd::Level::Baseline => {}
                }
            }
            imp($($arg),*)
        }
    };
}

/// The instruction sets [`multiversion!`](crate::multiversion) functions may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// The target's baseline (SSE2 on x86-64).
    Baseline = 1,
    Avx2 = 2,
    Avx512 = 3,
}

static LEVEL: AtomicU8 = AtomicU8::new(0);

fn detected() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512vl")
            && std::is_x86_feature_detected!("avx512dq")
            && std::is_x86_feature_detected!("avx512bw")
        {
            return Level::Avx512;
        }
        if std::is_x86_feature_detected!("avx2") {
            return Level::Avx2;
        }
    }
    Level::Baseline
}

/// The level in use: the best the CPU has, unless lowered by [`set_max_level`].
#[inline]
pub fn level() -> Level {
    match LEVEL.load(Ordering::Relaxed) {
        3 => Level::Avx512,
        2 => Level::Avx2,
        1 => Level::Baseline,
        _ => {
            let l = detected();
            LEVEL.store(l as u8, Ordering::Relaxed);
            l
        }
    }
}

/// Uses at most `max` from now on (for tests and measurements: every level gives the same bits).
pub fn set_max_level(max: Level) {
    LEVEL.store(detected().min(max) as u8, Ordering::Relaxed);
}

/// `e^x` in `f32`, within 2 ulp of the exact value over the whole range where it is a normal
/// number (`-87.3 < x < 88.3`; outside, the input is clamped: results are about `2e-38` below and
/// `2e38` above, which the sigmoid and the density cost map to the same values as exact ones to
/// `f32` precision). NaN gives NaN.
///
/// Cody-Waite reduction `x = k·ln2 + r`, `|r| ≤ ln2/2`, with `k` rounded to nearest by adding and
/// subtracting `1.5·2^23`, then Cephes' degree-6 polynomial for `e^r` and `2^k` built in the
/// exponent bits. Only `+ − ×`, comparisons and bit casts: the compiler vectorises loops using it.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23
                                     // `max`/`min` would drop a NaN; comparisons keep it.
    let x = if x < -87.3 { -87.3 } else { x };
    let x = if x > 88.3 { 88.3 } else { x };
    let t = x * LOG2E + ROUND;
    let k = t - ROUND;
    let r = x - k * LN2_HI - k * LN2_LO;
    let p = 1.987_569_1e-4;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5; // Cephes: 5.0000001201e-1, which is 0.5 in f32
    let e_r = p * (r * r) + r + 1.0;
    // k is in -126..=127 after the clamps; its integer value sits in the low bits of t.
    let ki = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let two_k = f32::from_bits(((ki + 127) as u32) << 23);
    e_r * two_k
}

/// The sum of the partial sums of a vectorised reduction, in a fixed order.
#[inline(always)]
pub fn sum_lanes(acc: &[f32; LANES]) -> f32 {
    acc.iter().sum()
}

/// Asks the CPU to start loading `bytes` into its caches (a hint: no effect on results). Used for
/// data read at random places, such as the images of the next examples of a batch.
#[inline]
pub fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for line in bytes.chunks(64) {
        // SAFETY: prefetching has no architectural effect; the address is inside `bytes`.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(line.as_ptr().cast())
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_two_ulp() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let got = exp(x) as f64;
            let want = (x as f64).exp();
            let ulp = (want as f32).abs() * f32::EPSILON;
            worst = worst.max((got - want).abs() / ulp as f64);
            x += 0.000_37;
        }
        eprintln!("exp: worst error {worst:.3} ulp");
        assert!(worst <= 2.0, "worst error {worst} ulp");
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(f32::NAN).is_nan());
        assert!(exp(-1000.0) < 1e-37 && exp(-1000.0) >= 0.0);
        assert!(exp(1000.0).is_finite() && exp(1000.0) > 1e38);
    }

    crate::multiversion! {
        fn sum_of_exp(v: &[f32]) -> f32 {
            let mut acc = [0.0f32; LANES];
            for chunk in v.chunks_exact(LANES) {
                for (a, &x) in acc.iter_mut().zip(chunk) {
                    *a += exp(x);
                }
            }
            sum_lanes(&acc)
        }
    }

    #[test]
    fn every_version_gives_the_same_bits() {
        let v: Vec<f32> = (0..4096).map(|i| (i as f32 * 0.37).sin() * 20.0).collect();
        let at = |l: Level| {
            set_max_level(l);
            sum_of_exp(&v).to_bits()
        };
        let (a, b, c) = (at(Level::Avx512), at(Level::Avx2), at(Level::Baseline));
        set_max_level(Level::Avx512);
        assert_eq!((a, b), (c, c));
    }
}
