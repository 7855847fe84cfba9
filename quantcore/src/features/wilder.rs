//! Indicators smoothed the Wilder way: RSI and ATR.
//!
//! Wilder's smoothing of a series `v` over `n`: the first average is the simple mean of
//! the first `n` values, then `avg_t = (avg_{t-1} * (n - 1) + v_t) / n` (an EMA with
//! `alpha = 1 / n`). Both indicators start from differences with the previous bar, so
//! the first value needs `n + 1` bars, as in TA-Lib.

use super::indicator::{Indicator, check_period};
use crate::data::Bar;
use crate::error::Result;

/// Wilder's running average, seeded by a simple mean of the first `n` values.
#[derive(Debug, Clone)]
struct WilderAverage {
    n: f64,
    period: usize,
    seen: usize,
    sum: f64,
    average: Option<f64>,
}

impl WilderAverage {
    fn new(period: usize) -> Self {
        WilderAverage {
            n: period as f64,
            period,
            seen: 0,
            sum: 0.0,
            average: None,
        }
    }

    #[inline]
    fn update(&mut self, v: f64) -> Option<f64> {
        match &mut self.average {
            Some(average) => *average += (v - *average) / self.n,
            None => {
                self.seen += 1;
                self.sum += v;
                if self.seen == self.period {
                    self.average = Some(self.sum / self.n);
                }
            }
        }
        self.average
    }

    fn reset(&mut self) {
        self.seen = 0;
        self.sum = 0.0;
        self.average = None;
    }
}

/// Relative Strength Index with Wilder's smoothing, in `[0, 100]`.
///
/// With `gain_t = max(x_t - x_{t-1}, 0)` and `loss_t = max(x_{t-1} - x_t, 0)` Wilder-smoothed
/// into `avg_gain` and `avg_loss`: `RSI = 100 - 100 / (1 + avg_gain / avg_loss)
/// = 100 * avg_gain / (avg_gain + avg_loss)`. It is 100 when there are only gains and
/// 0 when there are only losses. When both averages are zero (a flat window) RSI is
/// undefined and `update` returns `None`. The first value needs `period + 1` prices.
///
/// ```
/// use quantcore::features::Rsi;
/// let mut rsi = Rsi::new(3)?;
/// // changes +1, -0.5, +1: avg gain 2/3, avg loss 1/6, RSI = 100 * (2/3) / (5/6) = 80
/// let values: Vec<_> = [10.0, 11.0, 10.5, 11.5].iter().map(|&p| rsi.update(p)).collect();
/// assert!((values[3].unwrap() - 80.0).abs() < 1e-12);
/// # Ok::<(), quantcore::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Rsi {
    period: usize,
    previous: Option<f64>,
    gains: WilderAverage,
    losses: WilderAverage,
    value: Option<f64>,
}

impl Rsi {
    /// An RSI over `period` price changes (14 is Wilder's choice).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`](crate::Error::InvalidParameter) when `period` is 0.
    pub fn new(period: usize) -> Result<Self> {
        check_period(period, 1, "must be at least 1")?;
        Ok(Rsi {
            period,
            previous: None,
            gains: WilderAverage::new(period),
            losses: WilderAverage::new(period),
            value: None,
        })
    }

    /// The smoothing period.
    pub fn period(&self) -> usize {
        self.period
    }

    /// Feeds one price; returns the RSI, `None` during warm-up or over a flat window.
    #[inline]
    pub fn update(&mut self, price: f64) -> Option<f64> {
        let previous = self.previous.replace(price)?;
        let change = price - previous;
        let gain = self.gains.update(change.max(0.0));
        let loss = self.losses.update((-change).max(0.0));
        self.value = match (gain, loss) {
            (Some(gain), Some(loss)) if gain + loss > 0.0 => Some(100.0 * gain / (gain + loss)),
            _ => None,
        };
        self.value
    }

    /// The RSI after the last update.
    pub fn value(&self) -> Option<f64> {
        self.value
    }

    /// Forgets every price.
    pub fn reset(&mut self) {
        self.previous = None;
        self.gains.reset();
        self.losses.reset();
        self.value = None;
    }
}

impl Indicator for Rsi {
    type Input = f64;
    fn update(&mut self, price: f64) -> Option<f64> {
        Rsi::update(self, price)
    }
    fn value(&self) -> Option<f64> {
        self.value
    }
    fn reset(&mut self) {
        Rsi::reset(self)
    }
    fn warm_up(&self) -> usize {
        self.period + 1
    }
}

/// Average True Range with Wilder's smoothing, in price units.
///
/// True range uses the previous close:
/// `TR_t = max(high_t - low_t, |high_t - close_{t-1}|, |low_t - close_{t-1}|)`, so a gap
/// counts. The first bar has no previous close and yields no true range (TA-Lib's
/// convention); the first ATR is the mean of the true ranges of bars `1..=period`, so
/// it needs `period + 1` bars.
///
/// ```
/// use quantcore::features::Atr;
/// let mut atr = Atr::new(2)?;
/// atr.update(10.0, 9.0, 9.5);
/// atr.update(11.0, 9.8, 10.5); // TR = max(1.2, |11 - 9.5|, |9.8 - 9.5|) = 1.5
/// let first = atr.update(10.8, 10.0, 10.2).unwrap(); // TR = 0.8; ATR = (1.5 + 0.8) / 2
/// assert!((first - 1.15).abs() < 1e-12);
/// # Ok::<(), quantcore::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Atr {
    period: usize,
    previous_close: Option<f64>,
    true_range: WilderAverage,
    value: Option<f64>,
}

impl Atr {
    /// An ATR over `period` true ranges (14 is Wilder's choice).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`](crate::Error::InvalidParameter) when `period` is 0.
    pub fn new(period: usize) -> Result<Self> {
        check_period(period, 1, "must be at least 1")?;
        Ok(Atr {
            period,
            previous_close: None,
            true_range: WilderAverage::new(period),
            value: None,
        })
    }

    /// The smoothing period.
    pub fn period(&self) -> usize {
        self.period
    }

    /// Feeds one bar's high, low and close; returns the ATR, `None` for the first
    /// `period` bars.
    #[inline]
    pub fn update(&mut self, high: f64, low: f64, close: f64) -> Option<f64> {
        let previous_close = self.previous_close.replace(close)?;
        let true_range = (high - low)
            .max((high - previous_close).abs())
            .max((low - previous_close).abs());
        self.value = self.true_range.update(true_range);
        self.value
    }

    /// Feeds one [`Bar`].
    #[inline]
    pub fn update_bar(&mut self, bar: &Bar) -> Option<f64> {
        self.update(bar.high, bar.low, bar.close)
    }

    /// The ATR after the last update.
    pub fn value(&self) -> Option<f64> {
        self.value
    }

    /// Forgets every bar.
    pub fn reset(&mut self) {
        self.previous_close = None;
        self.true_range.reset();
        self.value = None;
    }
}

impl Indicator for Atr {
    /// `(high, low, close)`.
    type Input = (f64, f64, f64);
    fn update(&mut self, (high, low, close): (f64, f64, f64)) -> Option<f64> {
        Atr::update(self, high, low, close)
    }
    fn value(&self) -> Option<f64> {
        self.value
    }
    fn reset(&mut self) {
        Atr::reset(self)
    }
    fn warm_up(&self) -> usize {
        self.period + 1
    }
}

#[cfg(test)]
mod tests {
    use super::super::naive;
    use super::*;

    #[test]
    fn rsi_by_hand() {
        // changes +1, -0.5, +1, -0.5, +1 with period 3:
        // seed gains (1 + 0 + 1)/3 = 2/3, losses 0.5/3 = 1/6 -> 100 (2/3)/(5/6) = 80
        // then -0.5: gains (2/3 * 2 + 0)/3 = 4/9, losses (1/6 * 2 + 0.5)/3 = 5/18
        //   -> 100 (4/9)/(4/9 + 5/18) = 800/13
        // then +1: gains (4/9 * 2 + 1)/3 = 17/27, losses (5/18 * 2)/3 = 5/27 -> 100 * 17/22
        let mut rsi = Rsi::new(3).unwrap();
        let out: Vec<_> = [10.0, 11.0, 10.5, 11.5, 11.0, 12.0]
            .iter()
            .map(|&p| rsi.update(p))
            .collect();
        assert_eq!(&out[..3], &[None, None, None]);
        let expected = [80.0, 800.0 / 13.0, 1700.0 / 22.0];
        for (got, want) in out[3..].iter().zip(expected) {
            assert!((got.unwrap() - want).abs() < 1e-12, "{got:?} vs {want}");
        }
    }

    #[test]
    fn rsi_extremes_and_flat_window() {
        let mut up = Rsi::new(2).unwrap();
        let mut down = Rsi::new(2).unwrap();
        let mut flat = Rsi::new(2).unwrap();
        for i in 0..5 {
            up.update(10.0 + i as f64);
            down.update(10.0 - i as f64);
            flat.update(10.0);
        }
        assert_eq!(up.value(), Some(100.0));
        assert_eq!(down.value(), Some(0.0));
        assert_eq!(flat.value(), None);
    }

    #[test]
    fn atr_by_hand() {
        // (high, low, close); TR uses the previous close:
        // bar 1: max(11 - 9.8, |11 - 9.5|, |9.8 - 9.5|) = 1.5
        // bar 2: max(0.8, |10.8 - 10.5|, |10 - 10.5|) = 0.8 -> ATR (1.5 + 0.8)/2 = 1.15
        // bar 3: max(1.5, 0.3, |9 - 10.2|) = 1.5 -> (1.15 + 1.5)/2 = 1.325
        // bar 4 gaps up: max(0.5, |12 - 9.2|, |11.5 - 9.2|) = 2.8 -> (1.325 + 2.8)/2 = 2.0625
        let bars = [
            (10.0, 9.0, 9.5),
            (11.0, 9.8, 10.5),
            (10.8, 10.0, 10.2),
            (10.5, 9.0, 9.2),
            (12.0, 11.5, 11.8),
        ];
        let mut atr = Atr::new(2).unwrap();
        let out: Vec<_> = bars.iter().map(|&(h, l, c)| atr.update(h, l, c)).collect();
        assert_eq!(&out[..2], &[None, None]);
        for (got, want) in out[2..].iter().zip([1.15, 1.325, 2.0625]) {
            assert!((got.unwrap() - want).abs() < 1e-12, "{got:?} vs {want}");
        }
    }

    #[test]
    fn atr_takes_bars() {
        let bar = Bar {
            timestamp: 0,
            open: 10.0,
            high: 11.0,
            low: 9.0,
            close: 10.0,
            volume: 1.0,
        };
        let mut atr = Atr::new(1).unwrap();
        assert_eq!(atr.update_bar(&bar), None);
        assert_eq!(atr.update_bar(&bar), Some(2.0));
    }

    #[test]
    fn period_zero_is_rejected() {
        assert!(Rsi::new(0).is_err());
        assert!(Atr::new(0).is_err());
    }

    #[test]
    fn match_the_naive_versions_on_random_data() {
        let xs = naive::random_prices(7, 300);
        let (high, low, close) = naive::random_bars(8, 300);
        for n in [1, 2, 5, 14] {
            let mut rsi = Rsi::new(n).unwrap();
            let mut atr = Atr::new(n).unwrap();
            let r: Vec<f64> = xs
                .iter()
                .map(|&x| rsi.update(x).unwrap_or(f64::NAN))
                .collect();
            let a: Vec<f64> = (0..close.len())
                .map(|i| atr.update(high[i], low[i], close[i]).unwrap_or(f64::NAN))
                .collect();
            naive::assert_close(&r, &naive::rsi(&xs, n), 1e-9, "rsi");
            naive::assert_close(&a, &naive::atr(&high, &low, &close, n), 1e-9, "atr");
            rsi.reset();
            atr.reset();
            assert_eq!((rsi.value(), atr.value()), (None, None));
            assert_eq!(rsi.update(xs[0]), None);
        }
    }
}
