//! Batch forms of the indicators: one call over a whole series.
//!
//! Each function returns a `Vec<f64>` as long as its input, `NaN` where the streaming
//! indicator has no value (warm-up, or undefined). They run the streaming structs, so a
//! batch value at index `t` is exactly what `update` returned for input `t`.

use super::indicator::{Indicator, run};
use super::moving_average::{Ema, Sma};
use super::returns::{LogReturn, ReturnKind, SimpleReturn};
use super::volatility::{RollingVolatility, RollingZScore};
use super::wilder::{Atr, Rsi};
use crate::error::{Error, Result};

/// Rejects a non-finite value, naming its row and the argument.
fn check_finite(field: &'static str, values: &[f64]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(row) => Err(Error::NonFinite {
            row,
            field,
            value: values[row],
        }),
        None => Ok(()),
    }
}

/// Rejects a non-finite or non-positive price.
fn check_prices(field: &'static str, values: &[f64]) -> Result<()> {
    check_finite(field, values)?;
    match values.iter().position(|&v| v <= 0.0) {
        Some(row) => Err(Error::NonPositivePrice {
            row,
            field,
            value: values[row],
        }),
        None => Ok(()),
    }
}

fn run_scalar<I: Indicator<Input = f64>>(mut indicator: I, values: &[f64]) -> Vec<f64> {
    run(&mut indicator, values.iter().copied())
}

/// [`Sma`] over a series.
///
/// ```
/// let sma = quantcore::features::sma(&[1.0, 2.0, 3.0, 4.0], 3)?;
/// assert!(sma[1].is_nan());
/// assert_eq!(&sma[2..], &[2.0, 3.0]);
/// # Ok::<(), quantcore::Error>(())
/// ```
///
/// # Errors
/// `InvalidParameter` for period 0; `NonFinite` naming the first NaN/infinite value.
pub fn sma(values: &[f64], period: usize) -> Result<Vec<f64>> {
    let indicator = Sma::new(period)?;
    check_finite("values", values)?;
    Ok(run_scalar(indicator, values))
}

/// [`Ema`] over a series (seeded with the SMA of the first `period` values).
///
/// # Errors
/// `InvalidParameter` for period 0; `NonFinite` naming the first NaN/infinite value.
pub fn ema(values: &[f64], period: usize) -> Result<Vec<f64>> {
    let indicator = Ema::new(period)?;
    check_finite("values", values)?;
    Ok(run_scalar(indicator, values))
}

/// [`SimpleReturn`] over a series of prices: `prices[t] / prices[t - lag] - 1`.
///
/// # Errors
/// `InvalidParameter` for lag 0; `NonFinite` or `NonPositivePrice` naming the first bad
/// price.
pub fn simple_returns(prices: &[f64], lag: usize) -> Result<Vec<f64>> {
    let indicator = SimpleReturn::new(lag)?;
    check_prices("prices", prices)?;
    Ok(run_scalar(indicator, prices))
}

/// [`LogReturn`] over a series of prices: `ln(prices[t] / prices[t - lag])`.
///
/// # Errors
/// `InvalidParameter` for lag 0; `NonFinite` or `NonPositivePrice` naming the first bad
/// price.
pub fn log_returns(prices: &[f64], lag: usize) -> Result<Vec<f64>> {
    let indicator = LogReturn::new(lag)?;
    check_prices("prices", prices)?;
    Ok(run_scalar(indicator, prices))
}

/// [`RollingVolatility`] of simple returns over a series of prices (per bar, ddof = 1).
///
/// # Errors
/// `InvalidParameter` for period < 2; `NonFinite` or `NonPositivePrice` naming the first
/// bad price.
pub fn rolling_volatility(prices: &[f64], period: usize) -> Result<Vec<f64>> {
    rolling_volatility_of(prices, period, ReturnKind::Simple)
}

/// [`RollingVolatility`] of returns of the given kind over a series of prices.
///
/// # Errors
/// As [`rolling_volatility`].
pub fn rolling_volatility_of(prices: &[f64], period: usize, kind: ReturnKind) -> Result<Vec<f64>> {
    let indicator = RollingVolatility::with_kind(period, kind)?;
    check_prices("prices", prices)?;
    Ok(run_scalar(indicator, prices))
}

/// [`RollingZScore`] over a series (ddof = 1; NaN where the window is constant).
///
/// # Errors
/// `InvalidParameter` for period < 2; `NonFinite` naming the first NaN/infinite value.
pub fn rolling_zscore(values: &[f64], period: usize) -> Result<Vec<f64>> {
    let indicator = RollingZScore::new(period)?;
    check_finite("values", values)?;
    Ok(run_scalar(indicator, values))
}

/// [`Rsi`] over a series of prices (NaN where the window is flat).
///
/// # Errors
/// `InvalidParameter` for period 0; `NonFinite` naming the first NaN/infinite price.
pub fn rsi(prices: &[f64], period: usize) -> Result<Vec<f64>> {
    let indicator = Rsi::new(period)?;
    check_finite("prices", prices)?;
    Ok(run_scalar(indicator, prices))
}

/// [`Atr`] over high, low and close columns of equal length.
///
/// ```
/// let atr = quantcore::features::atr(&[10.0, 11.0, 10.8], &[9.0, 9.8, 10.0], &[9.5, 10.5, 10.2], 2)?;
/// assert!((atr[2] - 1.15).abs() < 1e-12);
/// # Ok::<(), quantcore::Error>(())
/// ```
///
/// # Errors
/// `InvalidParameter` for period 0; `LengthMismatch` when `low` or `close` is not as
/// long as `high`; `NonFinite` naming the first NaN/infinite value.
pub fn atr(high: &[f64], low: &[f64], close: &[f64], period: usize) -> Result<Vec<f64>> {
    let mut indicator = Atr::new(period)?;
    for (field, column) in [("low", low), ("close", close)] {
        if column.len() != high.len() {
            return Err(Error::LengthMismatch {
                field,
                expected: high.len(),
                actual: column.len(),
            });
        }
    }
    check_finite("high", high)?;
    check_finite("low", low)?;
    check_finite("close", close)?;
    let bars = high
        .iter()
        .zip(low)
        .zip(close)
        .map(|((&h, &l), &c)| (h, l, c));
    Ok(run(&mut indicator, bars))
}

#[cfg(test)]
mod tests {
    use super::super::naive;
    use super::*;
    use proptest::prelude::*;

    fn streamed<I: Indicator<Input = f64>>(mut indicator: I, xs: &[f64]) -> Vec<f64> {
        xs.iter()
            .map(|&x| indicator.update(x).unwrap_or(f64::NAN))
            .collect()
    }

    /// Equal including NaN positions, bit for bit otherwise.
    fn same(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()))
    }

    proptest! {
        /// Invariant: the batch function at index t equals the streaming update for input t.
        #[test]
        fn streaming_equals_batch(
            steps in prop::collection::vec(-0.05f64..0.05, 0..200),
            period in 2usize..30,
        ) {
            let mut price = 50.0;
            let xs: Vec<f64> = steps.iter().map(|s| { price *= 1.0 + s; price }).collect();
            prop_assert!(same(&sma(&xs, period).unwrap(), &streamed(Sma::new(period).unwrap(), &xs)));
            prop_assert!(same(&ema(&xs, period).unwrap(), &streamed(Ema::new(period).unwrap(), &xs)));
            prop_assert!(same(&simple_returns(&xs, period).unwrap(), &streamed(SimpleReturn::new(period).unwrap(), &xs)));
            prop_assert!(same(&log_returns(&xs, period).unwrap(), &streamed(LogReturn::new(period).unwrap(), &xs)));
            prop_assert!(same(&rolling_volatility(&xs, period).unwrap(), &streamed(RollingVolatility::new(period).unwrap(), &xs)));
            prop_assert!(same(&rolling_zscore(&xs, period).unwrap(), &streamed(RollingZScore::new(period).unwrap(), &xs)));
            prop_assert!(same(&rsi(&xs, period).unwrap(), &streamed(Rsi::new(period).unwrap(), &xs)));
            let high: Vec<f64> = xs.iter().map(|x| x * 1.01).collect();
            let low: Vec<f64> = xs.iter().map(|x| x * 0.99).collect();
            let mut atr_stream = Atr::new(period).unwrap();
            let streamed_atr: Vec<f64> = (0..xs.len())
                .map(|i| atr_stream.update(high[i], low[i], xs[i]).unwrap_or(f64::NAN))
                .collect();
            prop_assert!(same(&atr(&high, &low, &xs, period).unwrap(), &streamed_atr));
            // and the batch output is as long as the input, NaN exactly during warm-up
            let v = rolling_volatility(&xs, period).unwrap();
            prop_assert_eq!(v.len(), xs.len());
            prop_assert!(v.iter().take(period).all(|x| x.is_nan()));
            prop_assert!(v.iter().skip(period).all(|x| x.is_finite()));
        }
    }

    #[test]
    fn batch_matches_naive_for_every_indicator() {
        let xs = naive::random_prices(9, 250);
        let (high, low, close) = naive::random_bars(10, 250);
        let n = 10;
        naive::assert_close(&sma(&xs, n).unwrap(), &naive::sma(&xs, n), 1e-12, "sma");
        naive::assert_close(&ema(&xs, n).unwrap(), &naive::ema(&xs, n), 1e-10, "ema");
        naive::assert_close(
            &simple_returns(&xs, 1).unwrap(),
            &naive::returns(&xs, 1, false),
            1e-13,
            "ret",
        );
        naive::assert_close(
            &log_returns(&xs, 3).unwrap(),
            &naive::returns(&xs, 3, true),
            1e-13,
            "log",
        );
        naive::assert_close(
            &rolling_volatility(&xs, n).unwrap(),
            &naive::volatility(&xs, n),
            1e-10,
            "vol",
        );
        naive::assert_close(
            &rolling_zscore(&xs, n).unwrap(),
            &naive::zscore(&xs, n),
            1e-9,
            "z",
        );
        naive::assert_close(&rsi(&xs, n).unwrap(), &naive::rsi(&xs, n), 1e-9, "rsi");
        naive::assert_close(
            &atr(&high, &low, &close, n).unwrap(),
            &naive::atr(&high, &low, &close, n),
            1e-9,
            "atr",
        );
    }

    #[test]
    fn warm_up_is_where_the_first_value_appears() {
        fn first_value<I: Indicator<Input = f64>>(indicator: I, xs: &[f64]) -> (usize, usize) {
            let warm_up = indicator.warm_up();
            let out = streamed(indicator, xs);
            (out.iter().position(|v| !v.is_nan()).unwrap() + 1, warm_up)
        }
        let xs = naive::random_prices(12, 100);
        for period in [2, 3, 14] {
            for (seen, warm_up) in [
                first_value(Sma::new(period).unwrap(), &xs),
                first_value(Ema::new(period).unwrap(), &xs),
                first_value(SimpleReturn::new(period).unwrap(), &xs),
                first_value(LogReturn::new(period).unwrap(), &xs),
                first_value(RollingVolatility::new(period).unwrap(), &xs),
                first_value(RollingZScore::new(period).unwrap(), &xs),
                first_value(Rsi::new(period).unwrap(), &xs),
            ] {
                assert_eq!(seen, warm_up, "period {period}");
            }
            let mut atr = Atr::new(period).unwrap();
            let first = xs
                .iter()
                .position(|&c| atr.update(c * 1.01, c * 0.99, c).is_some())
                .unwrap();
            assert_eq!(first + 1, Indicator::warm_up(&atr));
        }
    }

    #[test]
    fn bad_input_names_the_row() {
        let err = sma(&[1.0, f64::NAN, 3.0], 2).unwrap_err();
        assert!(
            matches!(
                err,
                Error::NonFinite {
                    row: 1,
                    field: "values",
                    ..
                }
            ),
            "{err}"
        );
        let err = simple_returns(&[1.0, 2.0, 0.0], 1).unwrap_err();
        assert!(
            matches!(
                err,
                Error::NonPositivePrice {
                    row: 2,
                    field: "prices",
                    ..
                }
            ),
            "{err}"
        );
        let err = log_returns(&[1.0, -2.0], 1).unwrap_err();
        assert_eq!(err.row(), Some(1));
        let err = atr(&[2.0, 2.0], &[1.0], &[1.5, 1.5], 1).unwrap_err();
        assert!(
            matches!(
                err,
                Error::LengthMismatch {
                    field: "low",
                    expected: 2,
                    actual: 1
                }
            ),
            "{err}"
        );
        let err = atr(&[2.0, 2.0], &[1.0, 1.0], &[1.5, f64::INFINITY], 1).unwrap_err();
        assert!(
            matches!(
                err,
                Error::NonFinite {
                    row: 1,
                    field: "close",
                    ..
                }
            ),
            "{err}"
        );
        assert!(matches!(
            rolling_zscore(&[1.0], 1),
            Err(Error::InvalidParameter { .. })
        ));
    }

    #[test]
    fn empty_and_short_inputs_give_all_nan() {
        assert!(sma(&[], 3).unwrap().is_empty());
        let short = rsi(&[1.0, 2.0], 5).unwrap();
        assert_eq!(short.len(), 2);
        assert!(short.iter().all(|x| x.is_nan()));
    }
}
