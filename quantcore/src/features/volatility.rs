//! Rolling volatility and rolling z-score: standard deviations over a window.

use super::indicator::{Indicator, check_period};
use super::returns::ReturnKind;
use super::rolling::RollingMoments;
use crate::error::Result;

const AT_LEAST_TWO: &str = "must be at least 2 (a sample standard deviation needs two values)";

/// Rolling volatility: the sample standard deviation (ddof = 1) of the last `period`
/// one-bar returns of a price series, per bar (not annualized: multiply by
/// `sqrt(periods_per_year)` for that).
///
/// Returns are simple by default ([`ReturnKind::Simple`], as in
/// [`metrics`](crate::metrics)), log with [`RollingVolatility::with_kind`]. The first value
/// needs `period + 1` prices. The variance is maintained by sliding Welford updates with
/// a periodic exact recompute; see the stability notes in the [module docs](super).
///
/// ```
/// use quantcore::features::RollingVolatility;
/// let mut vol = RollingVolatility::new(2)?;
/// vol.update(100.0);
/// vol.update(110.0); // +10%
/// let v = vol.update(99.0).unwrap(); // -10%: std(0.1, -0.1) = sqrt(0.02)
/// assert!((v - 0.02_f64.sqrt()).abs() < 1e-12);
/// # Ok::<(), quantcore::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct RollingVolatility {
    period: usize,
    kind: ReturnKind,
    previous_price: Option<f64>,
    returns: RollingMoments,
    value: Option<f64>,
}

impl RollingVolatility {
    /// Volatility of simple returns over `period` returns.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`](crate::Error::InvalidParameter) when `period < 2`.
    pub fn new(period: usize) -> Result<Self> {
        Self::with_kind(period, ReturnKind::Simple)
    }

    /// Volatility of returns of the given kind over `period` returns.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`](crate::Error::InvalidParameter) when `period < 2`.
    pub fn with_kind(period: usize, kind: ReturnKind) -> Result<Self> {
        check_period(period, 2, AT_LEAST_TWO)?;
        Ok(RollingVolatility {
            period,
            kind,
            previous_price: None,
            returns: RollingMoments::new(period),
            value: None,
        })
    }

    /// Number of returns in the window.
    pub fn period(&self) -> usize {
        self.period
    }

    /// Feeds one price (positive, as a [`BarSeries`](crate::BarSeries) guarantees);
    /// returns the volatility, `None` for the first `period` prices.
    #[inline]
    pub fn update(&mut self, price: f64) -> Option<f64> {
        if let Some(previous) = self.previous_price.replace(price) {
            self.returns.push(self.kind.between(previous, price));
            if self.returns.is_full() {
                self.value = Some(self.returns.sample_variance().sqrt());
            }
        }
        self.value
    }

    /// The volatility after the last update.
    pub fn value(&self) -> Option<f64> {
        self.value
    }

    /// Forgets every price.
    pub fn reset(&mut self) {
        self.previous_price = None;
        self.returns.clear();
        self.value = None;
    }
}

impl Indicator for RollingVolatility {
    type Input = f64;
    fn update(&mut self, price: f64) -> Option<f64> {
        RollingVolatility::update(self, price)
    }
    fn value(&self) -> Option<f64> {
        self.value
    }
    fn reset(&mut self) {
        RollingVolatility::reset(self)
    }
    fn warm_up(&self) -> usize {
        self.period + 1
    }
}

/// Rolling z-score: `z_t = (x_t - mean) / std` where the mean and the sample standard
/// deviation (ddof = 1, as pandas' `rolling(n).std()`) are over the last `period`
/// values, `x_t` included.
///
/// `update` returns `None` during warm-up and when the window is constant (zero
/// standard deviation: z is undefined, and no number is made up). A constant window is
/// detected exactly (a run of `period` equal inputs), so a flat price gives `None`
/// rather than the ratio of two rounding residues.
///
/// ```
/// use quantcore::features::RollingZScore;
/// let mut z = RollingZScore::new(3)?;
/// z.update(1.0);
/// z.update(2.0);
/// assert_eq!(z.update(3.0), Some(1.0)); // mean 2, std 1
/// # Ok::<(), quantcore::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct RollingZScore {
    period: usize,
    moments: RollingMoments,
    value: Option<f64>,
}

impl RollingZScore {
    /// A z-score over `period` values.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`](crate::Error::InvalidParameter) when `period < 2`.
    pub fn new(period: usize) -> Result<Self> {
        check_period(period, 2, AT_LEAST_TWO)?;
        Ok(RollingZScore {
            period,
            moments: RollingMoments::new(period),
            value: None,
        })
    }

    /// The window length.
    pub fn period(&self) -> usize {
        self.period
    }

    /// Feeds one value; returns its z-score against the window, `None` during warm-up
    /// or when the window has zero variance.
    #[inline]
    pub fn update(&mut self, x: f64) -> Option<f64> {
        self.moments.push(x);
        self.value = None;
        if self.moments.is_full() {
            let std = self.moments.sample_variance().sqrt();
            if std != 0.0 {
                self.value = Some((x - self.moments.mean()) / std);
            }
        }
        self.value
    }

    /// The z-score after the last update.
    pub fn value(&self) -> Option<f64> {
        self.value
    }

    /// The window mean after the last update, once the window is full.
    pub fn mean(&self) -> Option<f64> {
        self.moments.is_full().then(|| self.moments.mean())
    }

    /// The window's sample standard deviation after the last update, once full.
    pub fn std(&self) -> Option<f64> {
        self.moments
            .is_full()
            .then(|| self.moments.sample_variance().sqrt())
    }

    /// Forgets every value.
    pub fn reset(&mut self) {
        self.moments.clear();
        self.value = None;
    }
}

impl Indicator for RollingZScore {
    type Input = f64;
    fn update(&mut self, x: f64) -> Option<f64> {
        RollingZScore::update(self, x)
    }
    fn value(&self) -> Option<f64> {
        self.value
    }
    fn reset(&mut self) {
        RollingZScore::reset(self)
    }
    fn warm_up(&self) -> usize {
        self.period
    }
}

#[cfg(test)]
mod tests {
    use super::super::naive;
    use super::*;

    #[test]
    fn volatility_by_hand() {
        // prices 100, 110, 99, 99 -> returns +0.1, -0.1, 0
        // window (0.1, -0.1): mean 0, sum of squares 0.02, / (2 - 1) -> std sqrt(0.02)
        // window (-0.1, 0): mean -0.05, squares 0.0025 * 2 = 0.005 -> std sqrt(0.005)
        let mut vol = RollingVolatility::new(2).unwrap();
        let out: Vec<_> = [100.0, 110.0, 99.0, 99.0]
            .iter()
            .map(|&p| vol.update(p))
            .collect();
        assert_eq!(&out[..2], &[None, None]);
        assert!((out[2].unwrap() - 0.02_f64.sqrt()).abs() < 1e-12);
        assert!((out[3].unwrap() - 0.005_f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn log_volatility_by_hand() {
        // log returns ln(2) and ln(1/2) = -ln(2): mean 0, std = sqrt(2 ln(2)^2 / 1)
        let mut vol = RollingVolatility::with_kind(2, ReturnKind::Log).unwrap();
        vol.update(1.0);
        vol.update(2.0);
        let v = vol.update(1.0).unwrap();
        assert!((v - 2.0_f64.sqrt() * 2.0_f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn zscore_by_hand() {
        // (1, 2, 3): mean 2, std 1, z = 1
        // (2, 3, 10): mean 5, deviations -3, -2, 5, squares 38, variance 19, z = 5 / sqrt(19)
        let mut z = RollingZScore::new(3).unwrap();
        let out: Vec<_> = [1.0, 2.0, 3.0, 10.0].iter().map(|&x| z.update(x)).collect();
        assert_eq!(&out[..2], &[None, None]);
        assert!((out[2].unwrap() - 1.0).abs() < 1e-12);
        assert!((out[3].unwrap() - 5.0 / 19.0_f64.sqrt()).abs() < 1e-12);
        assert!((z.mean().unwrap() - 5.0).abs() < 1e-12);
        assert!((z.std().unwrap() - 19.0_f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn zscore_of_a_constant_window_is_none() {
        let mut z = RollingZScore::new(3).unwrap();
        for x in [5.0, 1.0, 2.0] {
            z.update(x);
        }
        assert!(z.update(4.0).is_some());
        assert!(z.update(4.0).is_some()); // window (2, 4, 4)
        assert_eq!(z.update(4.0), None); // window (4, 4, 4)
        assert_eq!(z.std(), Some(0.0));
        assert!(z.update(4.5).is_some());
    }

    #[test]
    fn flat_prices_have_zero_volatility() {
        let mut vol = RollingVolatility::new(3).unwrap();
        for p in [10.0, 12.0, 9.0, 9.0, 9.0, 9.0] {
            vol.update(p);
        }
        assert_eq!(vol.value(), Some(0.0));
    }

    #[test]
    fn period_below_two_is_rejected() {
        for period in [0, 1] {
            assert!(RollingVolatility::new(period).is_err());
            assert!(RollingZScore::new(period).is_err());
        }
    }

    #[test]
    fn match_the_naive_versions_on_random_data() {
        let xs = naive::random_prices(4, 400);
        for n in [2, 3, 10, 30] {
            let mut vol = RollingVolatility::new(n).unwrap();
            let mut z = RollingZScore::new(n).unwrap();
            let v: Vec<f64> = xs
                .iter()
                .map(|&x| vol.update(x).unwrap_or(f64::NAN))
                .collect();
            let zs: Vec<f64> = xs
                .iter()
                .map(|&x| z.update(x).unwrap_or(f64::NAN))
                .collect();
            naive::assert_close(&v, &naive::volatility(&xs, n), 1e-10, "volatility");
            naive::assert_close(&zs, &naive::zscore(&xs, n), 1e-9, "zscore");
        }
    }

    #[test]
    fn reset_starts_over() {
        let xs = naive::random_prices(6, 60);
        let mut vol = RollingVolatility::new(5).unwrap();
        let mut z = RollingZScore::new(5).unwrap();
        for &x in &xs {
            vol.update(x);
            z.update(x);
        }
        vol.reset();
        z.reset();
        assert_eq!((vol.value(), z.value(), z.mean()), (None, None, None));
        let v: Vec<f64> = xs
            .iter()
            .map(|&x| vol.update(x).unwrap_or(f64::NAN))
            .collect();
        naive::assert_close(&v, &naive::volatility(&xs, 5), 1e-10, "volatility");
    }
}
