//! Slow, from-scratch reference implementations for the indicator tests.
//!
//! Each output index is recomputed from the raw inputs with no state carried between
//! indices, and the recursive indicators (EMA, Wilder) use their closed forms
//! (explicit geometric weights) instead of the recursion, so a shared mistake with the
//! streaming code is unlikely. NaN marks "no value", as in the batch functions.

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Two-pass sample standard deviation (ddof = 1).
fn sample_std(xs: &[f64]) -> f64 {
    let m = mean(xs);
    (xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (xs.len() as f64 - 1.0)).sqrt()
}

pub(crate) fn sma(xs: &[f64], n: usize) -> Vec<f64> {
    (0..xs.len())
        .map(|t| {
            if t + 1 >= n {
                mean(&xs[t + 1 - n..=t])
            } else {
                f64::NAN
            }
        })
        .collect()
}

/// `(1 - a)^k * seed + sum_j a (1 - a)^(t - j) x_j` with the seed at index `n - 1`.
fn closed_form_smoothing(vs: &[f64], n: usize, a: f64, t: usize) -> f64 {
    let seed = mean(&vs[..n]);
    let k = t - (n - 1);
    let mut value = (1.0 - a).powi(k as i32) * seed;
    for (j, v) in vs.iter().enumerate().take(t + 1).skip(n) {
        value += a * (1.0 - a).powi((t - j) as i32) * v;
    }
    value
}

pub(crate) fn ema(xs: &[f64], n: usize) -> Vec<f64> {
    let a = 2.0 / (n as f64 + 1.0);
    (0..xs.len())
        .map(|t| {
            if t + 1 >= n {
                closed_form_smoothing(xs, n, a, t)
            } else {
                f64::NAN
            }
        })
        .collect()
}

pub(crate) fn returns(xs: &[f64], lag: usize, log: bool) -> Vec<f64> {
    (0..xs.len())
        .map(|t| {
            if t < lag {
                f64::NAN
            } else if log {
                xs[t].ln() - xs[t - lag].ln()
            } else {
                (xs[t] - xs[t - lag]) / xs[t - lag]
            }
        })
        .collect()
}

pub(crate) fn volatility(prices: &[f64], n: usize) -> Vec<f64> {
    (0..prices.len())
        .map(|t| {
            if t < n {
                return f64::NAN;
            }
            let window: Vec<f64> = (t + 1 - n..=t)
                .map(|i| (prices[i] - prices[i - 1]) / prices[i - 1])
                .collect();
            sample_std(&window)
        })
        .collect()
}

pub(crate) fn zscore(xs: &[f64], n: usize) -> Vec<f64> {
    (0..xs.len())
        .map(|t| {
            if t + 1 < n {
                return f64::NAN;
            }
            let window = &xs[t + 1 - n..=t];
            let std = sample_std(window);
            if std == 0.0 {
                f64::NAN
            } else {
                (xs[t] - mean(window)) / std
            }
        })
        .collect()
}

/// Wilder average of `vs` (indexed from 0) at `t`, via the closed form.
fn wilder(vs: &[f64], n: usize, t: usize) -> f64 {
    closed_form_smoothing(vs, n, 1.0 / n as f64, t)
}

pub(crate) fn rsi(xs: &[f64], n: usize) -> Vec<f64> {
    let gains: Vec<f64> = xs.windows(2).map(|w| (w[1] - w[0]).max(0.0)).collect();
    let losses: Vec<f64> = xs.windows(2).map(|w| (w[0] - w[1]).max(0.0)).collect();
    (0..xs.len())
        .map(|t| {
            if t < n {
                return f64::NAN;
            }
            let (g, l) = (wilder(&gains, n, t - 1), wilder(&losses, n, t - 1));
            if g == 0.0 && l == 0.0 {
                f64::NAN
            } else if l == 0.0 {
                100.0
            } else {
                100.0 - 100.0 / (1.0 + g / l)
            }
        })
        .collect()
}

pub(crate) fn atr(high: &[f64], low: &[f64], close: &[f64], n: usize) -> Vec<f64> {
    let true_ranges: Vec<f64> = (1..close.len())
        .map(|i| {
            let candidates = [
                high[i] - low[i],
                (high[i] - close[i - 1]).abs(),
                (low[i] - close[i - 1]).abs(),
            ];
            candidates.into_iter().fold(f64::MIN, f64::max)
        })
        .collect();
    (0..close.len())
        .map(|t| {
            if t < n {
                f64::NAN
            } else {
                wilder(&true_ranges, n, t - 1)
            }
        })
        .collect()
}

/// Asserts two series agree: NaN at the same places, values within `tolerance`
/// (absolute below 1, relative above).
pub(crate) fn assert_close(actual: &[f64], expected: &[f64], tolerance: f64, what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: lengths");
    for (t, (a, e)) in actual.iter().zip(expected).enumerate() {
        if e.is_nan() {
            assert!(a.is_nan(), "{what}[{t}]: expected NaN, was {a}");
        } else {
            let scale = e.abs().max(1.0);
            assert!(
                (a - e).abs() <= tolerance * scale,
                "{what}[{t}]: {a} vs {e}"
            );
        }
    }
}

/// A random-walk price path (positive) of `len` points from a seeded generator.
pub(crate) fn random_prices(seed: u64, len: usize) -> Vec<f64> {
    use rand::{Rng, SeedableRng, rngs::StdRng};
    let mut rng = StdRng::seed_from_u64(seed);
    let mut price = 100.0;
    (0..len)
        .map(|_| {
            price *= 1.0 + rng.gen_range(-0.03..0.03);
            price
        })
        .collect()
}

/// Random high/low/close bars around a random walk, with occasional gaps.
pub(crate) fn random_bars(seed: u64, len: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    use rand::{Rng, SeedableRng, rngs::StdRng};
    let mut rng = StdRng::seed_from_u64(seed);
    let closes = random_prices(seed ^ 0x5eed, len);
    let mut high = Vec::with_capacity(len);
    let mut low = Vec::with_capacity(len);
    for &c in &closes {
        high.push(c * (1.0 + rng.gen_range(0.0..0.02)));
        low.push(c * (1.0 - rng.gen_range(0.0..0.02)));
    }
    (high, low, closes)
}
