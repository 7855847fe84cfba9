//! The column builder every parser fills row by row.
//!
//! Each row is validated as it arrives, with its *input* row number, so errors and
//! [`DroppedRows`] name input rows even when earlier rows were skipped (Yahoo nulls)
//! or dropped, and strict mode reports exactly the first bad row, whether the problem
//! is an unreadable field or a broken rule. The rules are the [`data`](crate::data)
//! ones: [`Bar::validate`], then the timestamp against the last *kept* bar (as
//! [`BarSeries::new_lenient`] does), then the adjusted close (as
//! [`BarSeries::with_adj_close`] checks it). [`Columns::finish`] hands the columns to
//! [`BarSeries::new`], which checks them once more and cannot fail by then.

use super::Validation;
use crate::data::{Bar, BarSeries, DroppedRows};
use crate::error::{Error, Result};

/// Columns under construction, with the rows dropped so far.
#[derive(Debug)]
pub(crate) struct Columns {
    validation: Validation,
    timestamps: Vec<i64>,
    open: Vec<f64>,
    high: Vec<f64>,
    low: Vec<f64>,
    close: Vec<f64>,
    volume: Vec<f64>,
    adj_close: Option<Vec<f64>>,
    dropped: DroppedRows,
}

/// The ordering rule of [`BarSeries`]: strictly after the last kept timestamp.
fn check_order(row: usize, timestamp: i64, previous: Option<i64>) -> Result<()> {
    match previous {
        Some(previous) if timestamp == previous => Err(Error::DuplicateBar { row, timestamp }),
        Some(previous) if timestamp < previous => Err(Error::UnsortedBars {
            row,
            timestamp,
            previous,
        }),
        _ => Ok(()),
    }
}

/// The adjusted-close rule of [`BarSeries::with_adj_close`].
fn check_adj_close(row: usize, value: f64) -> Result<()> {
    crate::data::check_price(row, "adj_close", value)
}

impl Columns {
    /// Empty columns; `with_adj_close` says whether every row carries an adjusted close.
    pub(crate) fn new(validation: Validation, with_adj_close: bool, capacity: usize) -> Self {
        Columns {
            validation,
            timestamps: Vec::with_capacity(capacity),
            open: Vec::with_capacity(capacity),
            high: Vec::with_capacity(capacity),
            low: Vec::with_capacity(capacity),
            close: Vec::with_capacity(capacity),
            volume: Vec::with_capacity(capacity),
            adj_close: with_adj_close.then(|| Vec::with_capacity(capacity)),
            dropped: DroppedRows::default(),
        }
    }

    /// Validates input row `row` and appends it.
    ///
    /// Returns `Ok(true)` when kept, `Ok(false)` when dropped (lenient mode).
    /// `adj_close` must be `Some` exactly when the columns were built with one.
    ///
    /// # Errors
    /// Strict mode: the broken rule, naming `row`.
    pub(crate) fn push(&mut self, row: usize, bar: Bar, adj_close: Option<f64>) -> Result<bool> {
        let checked = bar
            .validate(row)
            .and_then(|()| check_order(row, bar.timestamp, self.timestamps.last().copied()))
            .and_then(|()| match adj_close {
                Some(value) => check_adj_close(row, value),
                None => Ok(()),
            });
        if let Err(reason) = checked {
            self.reject(row, reason)?;
            return Ok(false);
        }
        self.timestamps.push(bar.timestamp);
        self.open.push(bar.open);
        self.high.push(bar.high);
        self.low.push(bar.low);
        self.close.push(bar.close);
        self.volume.push(bar.volume);
        if let (Some(column), Some(value)) = (self.adj_close.as_mut(), adj_close) {
            column.push(value);
        }
        Ok(true)
    }

    /// A row that cannot be kept for `reason` (an unreadable field, a broken rule).
    ///
    /// # Errors
    /// Strict mode: `reason`. Lenient mode records it and returns `Ok`.
    pub(crate) fn reject(&mut self, row: usize, reason: Error) -> Result<()> {
        match self.validation {
            Validation::Strict => Err(reason),
            Validation::Lenient => {
                self.dropped.rows.push((row, reason));
                Ok(())
            }
        }
    }

    /// The finished series and the dropped rows.
    ///
    /// # Errors
    /// None in practice: every kept row passed the rules [`BarSeries::new`] checks.
    pub(crate) fn finish(self) -> Result<(BarSeries, DroppedRows)> {
        let series = BarSeries::new(
            self.timestamps,
            self.open,
            self.high,
            self.low,
            self.close,
            self.volume,
        )?;
        let series = match self.adj_close {
            Some(adj_close) => series.with_adj_close(adj_close)?,
            None => series,
        };
        Ok((series, self.dropped))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Bars drawn so that every rule is broken now and then: small timestamp steps
    /// that repeat or go back, prices around zero, NaN, high/low on either side.
    fn arbitrary_rows() -> impl Strategy<Value = Vec<(i64, [f64; 5])>> {
        let price = prop_oneof![
            8 => 1.0..3.0f64,
            1 => Just(f64::NAN),
            1 => -1.0..=0.0f64,
        ];
        let row = (
            -1i64..3,
            price.clone(),
            price.clone(),
            price.clone(),
            price,
            prop_oneof![9 => 0.0..10.0f64, 1 => Just(-1.0)],
        )
            .prop_map(|(step, o, h, l, c, v)| (step, [o, h, l, c, v]));
        prop::collection::vec(row, 0..40).prop_map(|rows| {
            let mut t = 0;
            rows.into_iter()
                .map(|(step, values)| {
                    t += step;
                    (t, values)
                })
                .collect()
        })
    }

    fn split(rows: &[(i64, [f64; 5])]) -> (Vec<i64>, [Vec<f64>; 5]) {
        let ts = rows.iter().map(|r| r.0).collect();
        let col = |i: usize| rows.iter().map(|r| r.1[i]).collect::<Vec<f64>>();
        (ts, [col(0), col(1), col(2), col(3), col(4)])
    }

    fn fill(validation: Validation, rows: &[(i64, [f64; 5])]) -> Result<(BarSeries, DroppedRows)> {
        let mut columns = Columns::new(validation, false, 0);
        for (row, &(timestamp, [open, high, low, close, volume])) in rows.iter().enumerate() {
            let bar = Bar {
                timestamp,
                open,
                high,
                low,
                close,
                volume,
            };
            columns.push(row, bar, None)?;
        }
        columns.finish()
    }

    proptest! {
        /// Row-by-row validation agrees with `BarSeries::new` and `new_lenient`,
        /// the data module's own implementation of the rules.
        #[test]
        fn agrees_with_bar_series_constructors(rows in arbitrary_rows()) {
            let (ts, [o, h, l, c, v]) = split(&rows);
            let strict = fill(Validation::Strict, &rows).map(|(s, _)| s);
            let reference = BarSeries::new(ts.clone(), o.clone(), h.clone(), l.clone(), c.clone(), v.clone());
            // NaN != NaN inside errors: compare the rendered forms.
            prop_assert_eq!(format!("{strict:?}"), format!("{reference:?}"));

            let (series, dropped) = fill(Validation::Lenient, &rows).unwrap();
            let (reference, reference_dropped) = BarSeries::new_lenient(ts, o, h, l, c, v).unwrap();
            prop_assert_eq!(series, reference);
            prop_assert_eq!(format!("{dropped:?}"), format!("{reference_dropped:?}"));
        }
    }

    #[test]
    fn adj_close_is_checked_with_the_input_row() {
        let bar = |timestamp| Bar {
            timestamp,
            open: 1.0,
            high: 1.0,
            low: 1.0,
            close: 1.0,
            volume: 0.0,
        };
        let mut strict = Columns::new(Validation::Strict, true, 2);
        assert!(strict.push(7, bar(1), Some(0.9)).unwrap());
        let err = strict.push(9, bar(2), Some(0.0)).unwrap_err();
        assert_eq!(
            err,
            Error::NonPositivePrice {
                row: 9,
                field: "adj_close",
                value: 0.0
            }
        );

        let mut lenient = Columns::new(Validation::Lenient, true, 2);
        assert!(!lenient.push(3, bar(1), Some(f64::INFINITY)).unwrap());
        assert!(lenient.push(4, bar(2), Some(2.0)).unwrap());
        let (series, dropped) = lenient.finish().unwrap();
        assert_eq!(series.adj_close(), Some(&[2.0][..]));
        assert_eq!(series.timestamps(), &[2]);
        assert_eq!(dropped.rows.len(), 1);
        assert_eq!(dropped.rows[0].0, 3);
    }
}
