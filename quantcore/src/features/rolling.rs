//! Rolling mean and variance over a fixed window: the engine of the volatility and
//! z-score indicators.
//!
//! # Numerical stability
//! Sliding Welford updates: while the window fills, the classic Welford step; once it
//! is full, adding `x` and evicting `old` in one step,
//! `mean' = mean + (x - old) / n`, `M2' = M2 + (x - old) * ((x - mean') + (old - mean))`.
//! Unlike running sums of `x` and `x^2`, this does not cancel catastrophically when the
//! mean is large against the spread (prices near 1e6 moving by 1). Two more guards:
//! - every time the ring buffer wraps (every `n` updates) the mean and `M2` are
//!   recomputed from the window by the two-pass formula, so rounding error is bounded
//!   by what `n` updates can add and never builds up over a long series (1M+ values),
//!   and a non-finite input stops affecting the state once it has left the window;
//! - a run of `n` identical inputs (a flat price) sets `M2` to exactly zero, so a
//!   constant window has a variance of exactly 0, not a rounding residue.
//!
//! The cost of the recompute is two passes over the window every `n` updates, O(1)
//! amortized per update.

use super::ring::Ring;

/// Mean and sum of squared deviations (`M2`) of the last `n` values.
#[derive(Debug, Clone)]
pub(crate) struct RollingMoments {
    window: Ring,
    inverse_n: f64,
    mean: f64,
    m2: f64,
    last: f64,
    /// Length of the current run of identical inputs.
    run: usize,
}

impl RollingMoments {
    /// Moments over a window of `n >= 2` values.
    pub(crate) fn new(n: usize) -> Self {
        RollingMoments {
            window: Ring::new(n),
            inverse_n: 1.0 / n as f64,
            mean: 0.0,
            m2: 0.0,
            last: f64::NAN,
            run: 0,
        }
    }

    /// Adds `x` (evicting the oldest value once full).
    #[inline]
    pub(crate) fn push(&mut self, x: f64) {
        // `x == last` is false for NaN, so a NaN run never counts as constant.
        self.run = if x == self.last { self.run + 1 } else { 1 };
        self.last = x;
        match self.window.push(x) {
            None => {
                let k = self.window.len() as f64;
                let delta = x - self.mean;
                self.mean += delta / k;
                self.m2 += delta * (x - self.mean);
            }
            Some(old) => {
                let delta = x - old;
                let new_mean = self.mean + delta * self.inverse_n;
                self.m2 += delta * ((x - new_mean) + (old - self.mean));
                self.mean = new_mean;
            }
        }
        if self.run >= self.window.len() {
            self.mean = x;
            self.m2 = 0.0;
        } else if self.window.just_wrapped() {
            self.recompute();
        }
    }

    /// Two-pass mean and `M2` of the window.
    fn recompute(&mut self) {
        let values = self.window.values();
        let mean = values.iter().sum::<f64>() * self.inverse_n;
        self.m2 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
        self.mean = mean;
    }

    /// True once the window holds `n` values.
    #[inline]
    pub(crate) fn is_full(&self) -> bool {
        self.window.is_full()
    }

    /// Mean of the window.
    #[inline]
    pub(crate) fn mean(&self) -> f64 {
        self.mean
    }

    /// Sample variance (ddof = 1) of the window, clamped at 0 against rounding; NaN
    /// while a NaN is in the window.
    #[inline]
    pub(crate) fn sample_variance(&self) -> f64 {
        let variance = self.m2 / (self.window.len() as f64 - 1.0);
        // Not `max(0.0)`: that would turn a NaN into 0.
        if variance < 0.0 { 0.0 } else { variance }
    }

    /// Forgets every value.
    pub(crate) fn clear(&mut self) {
        self.window.clear();
        self.mean = 0.0;
        self.m2 = 0.0;
        self.last = f64::NAN;
        self.run = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    fn two_pass(window: &[f64]) -> (f64, f64) {
        let n = window.len() as f64;
        let mean = window.iter().sum::<f64>() / n;
        let var = window.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (mean, var)
    }

    #[test]
    fn matches_two_pass_on_every_window() {
        let mut rng = StdRng::seed_from_u64(11);
        let xs: Vec<f64> = (0..500).map(|_| rng.gen_range(-5.0..5.0)).collect();
        for n in [2, 3, 7, 50] {
            let mut moments = RollingMoments::new(n);
            for (t, &x) in xs.iter().enumerate() {
                moments.push(x);
                if t + 1 >= n {
                    let (mean, var) = two_pass(&xs[t + 1 - n..=t]);
                    assert!((moments.mean() - mean).abs() < 1e-12, "n={n} t={t}");
                    assert!(
                        (moments.sample_variance() - var).abs() < 1e-12,
                        "n={n} t={t}"
                    );
                }
            }
        }
    }

    #[test]
    fn stays_accurate_over_a_million_values_with_a_large_mean() {
        // Prices near 1e6 with unit noise: a sum-of-squares formula would lose every
        // digit here (x^2 ~ 1e12, variance ~ 1).
        let mut rng = StdRng::seed_from_u64(5);
        let n = 97;
        let mut moments = RollingMoments::new(n);
        let mut xs = Vec::with_capacity(1_000_000);
        let mut worst: f64 = 0.0;
        for t in 0..1_000_000 {
            let x = 1e6 + rng.gen_range(-1.0..1.0) + (t as f64) * 1e-3;
            xs.push(x);
            moments.push(x);
            if t % 9_973 == 0 && t >= n {
                let (_, var) = two_pass(&xs[t + 1 - n..=t]);
                worst = worst.max((moments.sample_variance() - var).abs() / var);
            }
        }
        assert!(worst < 1e-8, "worst relative error {worst}");
    }

    #[test]
    fn constant_window_has_exactly_zero_variance() {
        let mut moments = RollingMoments::new(4);
        for x in [1.3, 7.9, -2.2, 0.1, 5.5] {
            moments.push(x);
        }
        for _ in 0..4 {
            moments.push(3.7);
        }
        assert_eq!(moments.sample_variance(), 0.0);
        assert_eq!(moments.mean(), 3.7);
    }

    #[test]
    fn heals_after_a_nan_leaves_the_window() {
        let mut moments = RollingMoments::new(3);
        for x in [1.0, f64::NAN, 2.0] {
            moments.push(x);
        }
        assert!(moments.sample_variance().is_nan());
        for x in [4.0, 5.0, 6.0, 7.0, 8.0, 9.0] {
            moments.push(x);
        }
        assert_eq!(moments.mean(), 8.0);
        assert!((moments.sample_variance() - 1.0).abs() < 1e-12);
    }
}
