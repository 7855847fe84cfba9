//! Simple and log returns over a lag.

use serde::{Deserialize, Serialize};

use super::indicator::{Indicator, check_period};
use super::ring::Ring;
use crate::error::Result;

/// How a return is measured between two prices `p_0` (earlier) and `p_1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReturnKind {
    /// `p_1 / p_0 - 1` (the convention of [`metrics`](crate::metrics)).
    #[default]
    Simple,
    /// `ln(p_1 / p_0)`.
    Log,
}

impl ReturnKind {
    /// The return from `previous` to `current`.
    #[inline]
    pub fn between(self, previous: f64, current: f64) -> f64 {
        match self {
            ReturnKind::Simple => current / previous - 1.0,
            ReturnKind::Log => (current / previous).ln(),
        }
    }
}

/// Return over `lag` inputs: `r_t = f(x_{t-lag}, x_t)` for a [`ReturnKind`].
#[derive(Debug, Clone)]
struct LaggedReturn {
    kind: ReturnKind,
    lag: usize,
    history: Ring,
    value: Option<f64>,
}

impl LaggedReturn {
    fn new(kind: ReturnKind, lag: usize) -> Result<Self> {
        check_period(lag, 1, "must be at least 1")?;
        Ok(LaggedReturn {
            kind,
            lag,
            history: Ring::new(lag),
            value: None,
        })
    }

    #[inline]
    fn update(&mut self, x: f64) -> Option<f64> {
        // Once full, the ring hands back the input from `lag` updates ago.
        self.value = self
            .history
            .push(x)
            .map(|previous| self.kind.between(previous, x));
        self.value
    }

    fn reset(&mut self) {
        self.history.clear();
        self.value = None;
    }
}

macro_rules! lagged_return {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name(LaggedReturn);

        impl $name {
            /// A return over `lag` inputs (1 for period-over-period returns).
            ///
            /// # Errors
            /// [`Error::InvalidParameter`](crate::Error::InvalidParameter) when `lag` is 0.
            pub fn new(lag: usize) -> Result<Self> {
                LaggedReturn::new($kind, lag).map($name)
            }

            /// The lag in inputs.
            pub fn lag(&self) -> usize {
                self.0.lag
            }

            /// Feeds one price; returns the return over the lag, `None` for the first
            /// `lag` prices. Prices must be positive (a [`BarSeries`](crate::BarSeries)
            /// guarantees it); otherwise the return is infinite or NaN.
            #[inline]
            pub fn update(&mut self, price: f64) -> Option<f64> {
                self.0.update(price)
            }

            /// The return after the last update.
            pub fn value(&self) -> Option<f64> {
                self.0.value
            }

            /// Forgets every price.
            pub fn reset(&mut self) {
                self.0.reset()
            }
        }

        impl Indicator for $name {
            type Input = f64;
            fn update(&mut self, price: f64) -> Option<f64> {
                self.0.update(price)
            }
            fn value(&self) -> Option<f64> {
                self.0.value
            }
            fn reset(&mut self) {
                self.0.reset()
            }
            fn warm_up(&self) -> usize {
                self.0.lag + 1
            }
        }
    };
}

lagged_return!(
    /// Simple return over a lag: `r_t = x_t / x_{t-lag} - 1`.
    ///
    /// ```
    /// use quantcore::features::SimpleReturn;
    /// let mut r = SimpleReturn::new(1)?;
    /// assert_eq!(r.update(80.0), None);
    /// assert_eq!(r.update(100.0), Some(0.25));
    /// assert_eq!(r.update(75.0), Some(-0.25));
    /// # Ok::<(), quantcore::Error>(())
    /// ```
    SimpleReturn,
    ReturnKind::Simple
);

lagged_return!(
    /// Log return over a lag: `r_t = ln(x_t / x_{t-lag})`.
    ///
    /// ```
    /// use quantcore::features::LogReturn;
    /// let mut r = LogReturn::new(2)?;
    /// r.update(1.0);
    /// r.update(5.0);
    /// let two_bar = r.update(std::f64::consts::E).unwrap(); // ln(e / 1)
    /// assert!((two_bar - 1.0).abs() < 1e-15);
    /// # Ok::<(), quantcore::Error>(())
    /// ```
    LogReturn,
    ReturnKind::Log
);

#[cfg(test)]
mod tests {
    use super::super::naive;
    use super::*;

    #[test]
    fn by_hand() {
        // 100 -> 110: +10%; 110 -> 99: -10%; lag 2: 99 / 100 - 1 = -1%
        let mut one = SimpleReturn::new(1).unwrap();
        let mut two = SimpleReturn::new(2).unwrap();
        let mut log = LogReturn::new(1).unwrap();
        let prices = [100.0, 110.0, 99.0];
        let one_out: Vec<_> = prices.iter().map(|&p| one.update(p)).collect();
        let two_out: Vec<_> = prices.iter().map(|&p| two.update(p)).collect();
        let log_out: Vec<_> = prices.iter().map(|&p| log.update(p)).collect();
        assert_eq!(one_out[0], None);
        assert!((one_out[1].unwrap() - 0.1).abs() < 1e-15);
        assert!((one_out[2].unwrap() + 0.1).abs() < 1e-15);
        assert_eq!(&two_out[..2], &[None, None]);
        assert!((two_out[2].unwrap() + 0.01).abs() < 1e-15);
        assert!((log_out[1].unwrap() - 1.1_f64.ln()).abs() < 1e-15);
        assert!((log_out[2].unwrap() - 0.9_f64.ln()).abs() < 1e-15);
    }

    #[test]
    fn lag_zero_is_rejected() {
        assert!(SimpleReturn::new(0).is_err());
        assert!(LogReturn::new(0).is_err());
    }

    #[test]
    fn match_the_naive_versions_on_random_data() {
        let xs = naive::random_prices(3, 300);
        for lag in [1, 2, 10] {
            let mut simple = SimpleReturn::new(lag).unwrap();
            let mut log = LogReturn::new(lag).unwrap();
            let s: Vec<f64> = xs
                .iter()
                .map(|&x| simple.update(x).unwrap_or(f64::NAN))
                .collect();
            let l: Vec<f64> = xs
                .iter()
                .map(|&x| log.update(x).unwrap_or(f64::NAN))
                .collect();
            naive::assert_close(&s, &naive::returns(&xs, lag, false), 1e-13, "simple");
            naive::assert_close(&l, &naive::returns(&xs, lag, true), 1e-13, "log");
            assert_eq!(simple.lag(), lag);
            simple.reset();
            assert_eq!(simple.value(), None);
            assert_eq!(simple.update(1.0), None);
        }
    }
}
