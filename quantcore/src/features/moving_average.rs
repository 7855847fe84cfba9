//! Simple and exponential moving averages.

use super::indicator::{Indicator, check_period};
use super::ring::Ring;
use crate::error::Result;

/// Simple moving average over the last `period` values.
///
/// `SMA_t = (x_{t-period+1} + ... + x_t) / period`; the first value comes with the
/// `period`-th input. A running sum makes each update O(1); the sum is recomputed from
/// the window each time the ring buffer wraps (every `period` updates), so rounding
/// error cannot build up over long series. The recomputation adds in four interleaved
/// partial sums ([`window_sum`]).
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
        if self.window.just_wrapped() {
            self.sum = window_sum(self.window.values());
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
        self.value = None;
    }
}

/// The sum of a moving average's window, in four interleaved partial sums (then the
/// last `len % 4` values): a chain of `len / 4 + 4` dependent additions instead of
/// `len`. The running sum's chain is the cost per bar of a streaming average (a
/// momentum backtest is bound by it), and a re-add every `period` bars doubled it.
/// The order changes the rounding, as any summation order does; the streaming
/// averages ([`Sma`], the momentum strategy's) all use this one, so they agree bit for
/// bit.
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
        // Values near 1e6 with cents: a running sum alone drifts; the recompute at every
        // wrap keeps the last average within a few ulps of the direct mean.
        let xs: Vec<f64> = (0..1_000_000u64)
            .map(|i| 1e6 + ((i * 7_919) % 10_007) as f64 * 0.01)
            .collect();
        let n = 50;
        let mut sma = Sma::new(n).unwrap();
        let mut last = None;
        for &x in &xs {
            last = sma.update(x);
        }
        let direct = xs[xs.len() - n..].iter().sum::<f64>() / n as f64;
        assert!(
            (last.unwrap() - direct).abs() < 1e-9,
            "{last:?} vs {direct}"
        );
    }
}
