//! Simple and exponential moving averages.

use super::indicator::{Indicator, check_period};
use super::ring::Ring;
use crate::error::Result;

/// Simple moving average over the last `period` values.
///
/// `SMA_t = (x_{t-period+1} + ... + x_t) / period`; the first value comes with the
/// `period`-th input. A running sum makes each update O(1); the sum is recomputed from
/// the window with the `period`-th input and then every [`resum_every`]`(period)`
/// updates (a whole number of windows, at least [`RESUM_SPAN`] updates), so rounding
/// error cannot build up over long series: between two re-adds it is at most a few
/// hundred ulps of the sum, about `1e-13` of it. The recomputation adds in four
/// interleaved partial sums ([`window_sum`]). A non-finite input (NaN, infinity)
/// makes the sum non-finite; while it is, the sum is also recomputed each time the
/// window has been rewritten, so the average is finite again within a window of the
/// last non-finite input leaving it.
///
/// ```
/// use quantcore::features::Sma;
/// let mut sma = Sma::new(3)?;
/// assert_eq!(sma.update(1.0), None);
/// assert_eq!(sma.update(2.0), None);
/// assert_eq!(sma.update(6.0), Some(3.0));
/// assert_eq!(sma.update(7.0), Some(5.0));
/// assert_eq!(sma.value(), Some(5.0));
/// # Ok::<(), quantcore::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Sma {
    period: usize,
    inverse_period: f64,
    window: Ring,
    sum: f64,
    /// Updates after warm-up left until the sum is re-added from the window.
    until_resum: usize,
    value: Option<f64>,
}

impl Sma {
    /// A moving average over `period` values.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`](crate::Error::InvalidParameter) when `period` is 0.
    pub fn new(period: usize) -> Result<Self> {
        check_period(period, 1, "must be at least 1")?;
        Ok(Sma {
            period,
            inverse_period: 1.0 / period as f64,
            window: Ring::new(period),
            sum: 0.0,
            until_resum: 1,
            value: None,
        })
    }

    /// The window length.
    pub fn period(&self) -> usize {
        self.period
    }

    /// Feeds one value; returns the average, `None` until `period` values were seen.
    #[inline]
    pub fn update(&mut self, x: f64) -> Option<f64> {
        match self.window.push(x) {
            Some(oldest) => self.sum += x - oldest,
            None => self.sum += x,
        }
        if !self.window.is_full() {
            return None;
        }
        self.until_resum -= 1;
        if self.until_resum == 0 || (!self.sum.is_finite() && self.window.just_wrapped()) {
            self.sum = window_sum(self.window.values());
            self.until_resum = resum_every(self.period);
        }
        self.value = Some(self.sum * self.inverse_period);
        self.value
    }

    /// The average after the last update.
    pub fn value(&self) -> Option<f64> {
        self.value
    }

    /// Forgets every value.
    pub fn reset(&mut self) {
        self.window.clear();
        self.sum = 0.0;
        self.until_resum = 1;
        self.value = None;
    }
}

/// Fewest updates between two re-adds of a running window sum from its window.
///
/// Each update adds `x - oldest` to the sum, a rounding of at most one ulp of the sum
/// each (two with the subtraction), so after `RESUM_SPAN` updates the running sum is
/// within about 512 ulps (`1e-13` relative) of the window's: ample for an average that
/// is compared with another or fed to a model. A re-add costs `period` additions;
/// re-adding every window (as pandas' rolling sums never do, and TA-Lib's neither)
/// doubled the cost of a short average's update, the cost a momentum backtest pays per
/// bar.
pub(crate) const RESUM_SPAN: usize = 256;

/// Updates between two re-adds of a running sum over `period` values: the smallest
/// whole number of windows that is at least [`RESUM_SPAN`] (`period` itself from 256 on).
#[inline]
pub(crate) fn resum_every(period: usize) -> usize {
    period * RESUM_SPAN.div_ceil(period)
}

/// The sum of a moving average's window, in four interleaved partial sums (then the
/// last `len % 4` values): a chain of `len / 4 + 4` dependent additions instead of
/// `len`. The order changes the rounding, as any summation order does; the streaming
/// averages ([`Sma`], the momentum strategy's) all use this one at the same updates,
/// so they agree bit for bit.
#[inline]
pub(crate) fn window_sum(values: &[f64]) -> f64 {
    let chunks = values.chunks_exact(4);
    let rest = chunks.remainder();
    let mut lanes = [0.0; 4];
    for chunk in chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane += x;
        }
    }
    let mut sum = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    for &x in rest {
        sum += x;
    }
    sum
}

impl Indicator for Sma {
    type Input = f64;
    fn update(&mut self, x: f64) -> Option<f64> {
        Sma::update(self, x)
    }
    fn value(&self) -> Option<f64> {
        self.value
    }
    fn reset(&mut self) {
        Sma::reset(self)
    }
    fn warm_up(&self) -> usize {
        self.period
    }
}

/// Exponential moving average with `alpha = 2 / (period + 1)`.
///
/// Seeding: the first value, at the `period`-th input, is the simple average of the
/// first `period` inputs (as TA-Lib and most charting packages do); after that
/// `EMA_t = EMA_{t-1} + alpha * (x_t - EMA_{t-1})`. Seeding with the SMA avoids the
/// bias of seeding with the first input alone, at the cost of `period - 1` bars of
/// warm-up. O(1) per update, no buffer.
///
/// ```
/// use quantcore::features::Ema;
/// let mut ema = Ema::new(3)?; // alpha = 0.5
/// ema.update(2.0);
/// ema.update(4.0);
/// assert_eq!(ema.update(6.0), Some(4.0)); // seed: (2 + 4 + 6) / 3
/// assert_eq!(ema.update(8.0), Some(6.0)); // 4 + 0.5 * (8 - 4)
/// # Ok::<(), quantcore::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Ema {
    period: usize,
    alpha: f64,
    seen: usize,
    seed_sum: f64,
    value: Option<f64>,
}

impl Ema {
    /// An EMA with `alpha = 2 / (period + 1)`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`](crate::Error::InvalidParameter) when `period` is 0.
    pub fn new(period: usize) -> Result<Self> {
        check_period(period, 1, "must be at least 1")?;
        Ok(Ema {
            period,
            alpha: 2.0 / (period as f64 + 1.0),
            seen: 0,
            seed_sum: 0.0,
            value: None,
        })
    }

    /// The period the smoothing factor derives from.
    pub fn period(&self) -> usize {
        self.period
    }

    /// The smoothing factor `2 / (period + 1)`.
    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    /// Feeds one value; returns the EMA, `None` until `period` values were seen.
    #[inline]
    pub fn update(&mut self, x: f64) -> Option<f64> {
        match &mut self.value {
            Some(ema) => *ema += self.alpha * (x - *ema),
            None => {
                self.seen += 1;
                self.seed_sum += x;
                if self.seen == self.period {
                    self.value = Some(self.seed_sum / self.period as f64);
                }
            }
        }
        self.value
    }

    /// The EMA after the last update.
    pub fn value(&self) -> Option<f64> {
        self.value
    }

    /// Forgets every value.
    pub fn reset(&mut self) {
        self.seen = 0;
        self.seed_sum = 0.0;
        self.value = None;
    }
}

impl Indicator for Ema {
    type Input = f64;
    fn update(&mut self, x: f64) -> Option<f64> {
        Ema::update(self, x)
    }
    fn value(&self) -> Option<f64> {
        self.value
    }
    fn reset(&mut self) {
        Ema::reset(self)
    }
    fn warm_up(&self) -> usize {
        self.period
    }
}

#[cfg(test)]
mod tests {
    use super::super::naive;
    use super::*;
    use crate::error::Error;

    #[test]
    fn window_sums_add_in_four_lanes() {
        // Up to three values: the plain left-to-right sum.
        assert_eq!(window_sum(&[]), 0.0);
        assert_eq!(window_sum(&[0.1, 0.2, 0.3]), 0.1 + 0.2 + 0.3);
        // 1..=10: lanes 1+5, 2+6, 3+7, 4+8, then 9 and 10 one by one (exact integers).
        let xs: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(window_sum(&xs), 55.0);
        // The order shows in the rounding: (1e16 + 1) + (-1e16 + 1) rounds both 1s
        // away (the spacing of doubles at 1e16 is 2), where left to right keeps one.
        assert_eq!(window_sum(&[1e16, -1e16, 1.0, 1.0]), 2.0);
        assert_eq!(window_sum(&[1e16, 1.0, -1e16, 1.0]), 0.0);
        assert_eq!(((1e16 + 1.0) - 1e16) + 1.0, 1.0);
    }

    fn stream(mut f: impl FnMut(f64) -> Option<f64>, xs: &[f64]) -> Vec<f64> {
        xs.iter().map(|&x| f(x).unwrap_or(f64::NAN)).collect()
    }

    #[test]
    fn sma_by_hand() {
        // windows of 3: (1+2+3)/3 = 2, (2+3+7)/3 = 4, (3+7+-4)/3 = 2
        let mut sma = Sma::new(3).unwrap();
        let out = stream(|x| sma.update(x), &[1.0, 2.0, 3.0, 7.0, -4.0]);
        naive::assert_close(&out, &[f64::NAN, f64::NAN, 2.0, 4.0, 2.0], 1e-15, "sma");
        assert_eq!(sma.value(), Some(2.0));
    }

    #[test]
    fn ema_by_hand() {
        // alpha = 2 / (3 + 1) = 0.5; seed (2 + 4 + 6) / 3 = 4;
        // then 4 + 0.5 (8 - 4) = 6 and 6 + 0.5 (3 - 6) = 4.5
        let mut ema = Ema::new(3).unwrap();
        assert_eq!(ema.alpha(), 0.5);
        let out = stream(|x| ema.update(x), &[2.0, 4.0, 6.0, 8.0, 3.0]);
        naive::assert_close(&out, &[f64::NAN, f64::NAN, 4.0, 6.0, 4.5], 1e-15, "ema");
    }

    #[test]
    fn period_one_is_the_input() {
        let mut sma = Sma::new(1).unwrap();
        let mut ema = Ema::new(1).unwrap();
        for x in [3.0, -1.5, 8.25] {
            assert_eq!(sma.update(x), Some(x));
            assert_eq!(ema.update(x), Some(x));
        }
    }

    #[test]
    fn period_zero_is_rejected() {
        for err in [Sma::new(0).unwrap_err(), Ema::new(0).unwrap_err()] {
            assert!(
                matches!(err, Error::InvalidParameter { name: "period", ref value, .. } if value == "0"),
                "{err}"
            );
        }
    }

    #[test]
    fn match_the_naive_versions_on_random_data() {
        let xs = naive::random_prices(1, 400);
        for n in [1, 2, 5, 20, 63] {
            let mut sma = Sma::new(n).unwrap();
            let mut ema = Ema::new(n).unwrap();
            naive::assert_close(
                &stream(|x| sma.update(x), &xs),
                &naive::sma(&xs, n),
                1e-12,
                "sma",
            );
            naive::assert_close(
                &stream(|x| ema.update(x), &xs),
                &naive::ema(&xs, n),
                1e-10,
                "ema",
            );
        }
    }

    #[test]
    fn reset_starts_over() {
        let xs = naive::random_prices(2, 50);
        let mut sma = Sma::new(7).unwrap();
        let mut ema = Ema::new(7).unwrap();
        stream(|x| sma.update(x), &xs[..31]);
        stream(|x| ema.update(x), &xs[..31]);
        sma.reset();
        ema.reset();
        assert_eq!(sma.value(), None);
        assert_eq!(ema.value(), None);
        naive::assert_close(
            &stream(|x| sma.update(x), &xs),
            &naive::sma(&xs, 7),
            1e-12,
            "sma",
        );
        naive::assert_close(
            &stream(|x| ema.update(x), &xs),
            &naive::ema(&xs, 7),
            1e-10,
            "ema",
        );
    }

    #[test]
    fn sma_stays_exact_over_a_million_values() {
        // Values near 1e6 with cents: every average within the drift bound of the
        // running sum between two re-adds (half an ulp of the sum an update, plus the
        // direct sum's own rounding) of the window's mean, and exactly the re-added
        // window's mean at each re-add.
        let xs: Vec<f64> = (0..1_000_000u64)
            .map(|i| 1e6 + ((i * 7_919) % 10_007) as f64 * 0.01)
            .collect();
        let n = 50;
        let every = resum_every(n);
        assert_eq!(every, 300);
        let mut sma = Sma::new(n).unwrap();
        let mut worst = 0.0_f64;
        for (i, &x) in xs.iter().enumerate() {
            let Some(average) = sma.update(x) else {
                assert!(i + 1 < n);
                continue;
            };
            let window = &xs[i + 1 - n..=i];
            let direct = window.iter().sum::<f64>() / n as f64;
            worst = worst.max((average - direct).abs() / direct);
            if (i + 1 - n) % every == 0 {
                assert_eq!(
                    average,
                    window_sum(window) * (1.0 / n as f64),
                    "re-add at {i}"
                );
            }
        }
        let bound = (every + n) as f64 * f64::EPSILON;
        assert!(worst <= bound, "{worst:e} > {bound:e}");
        assert!(worst > 0.0, "the running sum rounds between re-adds");
    }

    #[test]
    fn a_nan_leaves_the_average_within_a_window_of_leaving_the_input() {
        let mut xs = naive::random_prices(3, 60);
        xs[12] = f64::NAN;
        let n = 5;
        let mut sma = Sma::new(n).unwrap();
        let out = stream(|x| sma.update(x), &xs);
        let expected = naive::sma(&xs, n);
        // NaN while the NaN is in the window (12..=16) and until the next re-add
        assert!(out[12..=16].iter().all(|v| v.is_nan()));
        let first = (17..).find(|&i| out[i].is_finite()).unwrap();
        assert!(first < 17 + n, "finite again at {first}");
        naive::assert_close(&out[first..], &expected[first..], 1e-12, "sma after a NaN");
    }
}
