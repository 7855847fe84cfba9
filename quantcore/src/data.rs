//! Bars and bar series: the market data every other module reads.
//!
//! A [`Bar`] is one OHLCV interval; a [`BarSeries`] holds many of them in columns
//! (timestamps, open, high, low, close, volume, optional adjusted close), the layout
//! indicators and the backtester scan fastest.
//!
//! # Conventions
//! - Timestamps are Unix seconds, UTC, of the bar's *start*.
//! - A series is valid when every price is finite and positive, volume is finite and
//!   non-negative, `high >= max(open, close)`, `low <= min(open, close)`, and
//!   timestamps are strictly increasing (no duplicates).
//!
//! [`BarSeries::new`] rejects the first invalid row with an [`Error`] naming the row,
//! the field and the value. [`BarSeries::new_lenient`] drops invalid rows instead and
//! returns a [`DroppedRows`] report saying which and why.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One OHLCV bar.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bar {
    /// Start of the interval, Unix seconds UTC.
    pub timestamp: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
}

impl Bar {
    /// Checks the bar on its own (prices, volume, high/low consistency); `row` is the
    /// index reported in the error.
    ///
    /// # Errors
    /// The first violated rule, as described in the [module docs](self).
    pub fn validate(&self, row: usize) -> Result<()> {
        for (field, value) in [
            ("open", self.open),
            ("high", self.high),
            ("low", self.low),
            ("close", self.close),
        ] {
            check_price(row, field, value)?;
        }
        if !self.volume.is_finite() {
            return Err(Error::NonFinite {
                row,
                field: "volume",
                value: self.volume,
            });
        }
        if self.volume < 0.0 {
            return Err(Error::NegativeVolume {
                row,
                value: self.volume,
            });
        }
        let body_high = self.open.max(self.close);
        let body_low = self.open.min(self.close);
        if self.high < body_high {
            return Err(Error::InconsistentBar {
                row,
                field: "high",
                value: self.high,
                body_low,
                body_high,
            });
        }
        if self.low > body_low {
            return Err(Error::InconsistentBar {
                row,
                field: "low",
                value: self.low,
                body_low,
                body_high,
            });
        }
        Ok(())
    }
}

/// The price rule of every price column: finite and positive.
pub(crate) fn check_price(row: usize, field: &'static str, value: f64) -> Result<()> {
    if !value.is_finite() {
        return Err(Error::NonFinite { row, field, value });
    }
    if value <= 0.0 {
        return Err(Error::NonPositivePrice { row, field, value });
    }
    Ok(())
}

/// Rows removed by [`BarSeries::new_lenient`], with the reason for each.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DroppedRows {
    /// `(input row, reason)` in input order.
    pub rows: Vec<(usize, Error)>,
}

impl DroppedRows {
    /// Number of dropped rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when nothing was dropped.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// A validated, columnar series of bars, optionally tagged with a symbol.
///
/// ```
/// use quantcore::BarSeries;
/// let series = BarSeries::new(
///     vec![60, 120],
///     vec![10.0, 10.5],
///     vec![10.6, 10.9],
///     vec![9.9, 10.4],
///     vec![10.5, 10.8],
///     vec![1_000.0, 1_200.0],
/// )?
/// .with_symbol("AAPL");
/// assert_eq!(series.len(), 2);
/// assert_eq!(series.close(), &[10.5, 10.8]);
///
/// // Row 1 goes back in time: a typed error names it.
/// let err = BarSeries::new(vec![60, 60], vec![1.0; 2], vec![1.0; 2], vec![1.0; 2], vec![1.0; 2], vec![0.0; 2])
///     .unwrap_err();
/// assert_eq!(err.row(), Some(1));
/// # Ok::<(), quantcore::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawBarSeries")]
pub struct BarSeries {
    symbol: Option<String>,
    timestamps: Vec<i64>,
    open: Vec<f64>,
    high: Vec<f64>,
    low: Vec<f64>,
    close: Vec<f64>,
    volume: Vec<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    adj_close: Option<Vec<f64>>,
}

/// The unchecked shape [`BarSeries`] deserializes through, so that deserialized
/// series are validated like constructed ones.
#[derive(Deserialize)]
struct RawBarSeries {
    #[serde(default)]
    symbol: Option<String>,
    timestamps: Vec<i64>,
    open: Vec<f64>,
    high: Vec<f64>,
    low: Vec<f64>,
    close: Vec<f64>,
    volume: Vec<f64>,
    #[serde(default)]
    adj_close: Option<Vec<f64>>,
}

impl TryFrom<RawBarSeries> for BarSeries {
    type Error = Error;

    fn try_from(raw: RawBarSeries) -> Result<Self> {
        let series = BarSeries::new(
            raw.timestamps,
            raw.open,
            raw.high,
            raw.low,
            raw.close,
            raw.volume,
        )?;
        let series = match raw.adj_close {
            Some(adj) => series.with_adj_close(adj)?,
            None => series,
        };
        Ok(match raw.symbol {
            Some(symbol) => series.with_symbol(symbol),
            None => series,
        })
    }
}

fn check_lengths(expected: usize, columns: [(&'static str, usize); 5]) -> Result<()> {
    for (field, actual) in columns {
        if actual != expected {
            return Err(Error::LengthMismatch {
                field,
                expected,
                actual,
            });
        }
    }
    Ok(())
}

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

impl BarSeries {
    /// Builds a series from columns, validating every row.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] when the columns differ in length, otherwise the first
    /// invalid row (see the [module docs](self)).
    pub fn new(
        timestamps: Vec<i64>,
        open: Vec<f64>,
        high: Vec<f64>,
        low: Vec<f64>,
        close: Vec<f64>,
        volume: Vec<f64>,
    ) -> Result<Self> {
        check_lengths(
            timestamps.len(),
            [
                ("open", open.len()),
                ("high", high.len()),
                ("low", low.len()),
                ("close", close.len()),
                ("volume", volume.len()),
            ],
        )?;
        let series = BarSeries {
            symbol: None,
            timestamps,
            open,
            high,
            low,
            close,
            volume,
            adj_close: None,
        };
        let mut previous = None;
        for row in 0..series.len() {
            let bar = series.bar(row);
            bar.validate(row)?;
            check_order(row, bar.timestamp, previous)?;
            previous = Some(bar.timestamp);
        }
        Ok(series)
    }

    /// Builds a series from columns, dropping invalid rows instead of failing.
    ///
    /// A row whose timestamp is not after the last *kept* row is dropped, so of
    /// duplicates the first one stays.
    ///
    /// ```
    /// use quantcore::BarSeries;
    /// let (series, dropped) = BarSeries::new_lenient(
    ///     vec![1, 2, 2, 3],
    ///     vec![10.0, f64::NAN, 10.0, 10.0],
    ///     vec![10.0; 4],
    ///     vec![10.0; 4],
    ///     vec![10.0; 4],
    ///     vec![5.0; 4],
    /// )?;
    /// assert_eq!(series.timestamps(), &[1, 2, 3]);
    /// assert_eq!(dropped.len(), 1);
    /// assert_eq!(dropped.rows[0].0, 1); // the NaN open
    /// # Ok::<(), quantcore::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] only: that cannot be repaired row by row.
    pub fn new_lenient(
        timestamps: Vec<i64>,
        open: Vec<f64>,
        high: Vec<f64>,
        low: Vec<f64>,
        close: Vec<f64>,
        volume: Vec<f64>,
    ) -> Result<(Self, DroppedRows)> {
        check_lengths(
            timestamps.len(),
            [
                ("open", open.len()),
                ("high", high.len()),
                ("low", low.len()),
                ("close", close.len()),
                ("volume", volume.len()),
            ],
        )?;
        let mut series = BarSeries::with_capacity(timestamps.len());
        let mut dropped = DroppedRows::default();
        for row in 0..timestamps.len() {
            let bar = Bar {
                timestamp: timestamps[row],
                open: open[row],
                high: high[row],
                low: low[row],
                close: close[row],
                volume: volume[row],
            };
            let checked = bar
                .validate(row)
                .and_then(|()| check_order(row, bar.timestamp, series.timestamps.last().copied()));
            match checked {
                Ok(()) => series.push_unchecked(bar),
                Err(reason) => dropped.rows.push((row, reason)),
            }
        }
        Ok((series, dropped))
    }

    /// Builds a series from bars, validating every row.
    ///
    /// # Errors
    /// The first invalid row.
    pub fn from_bars(bars: &[Bar]) -> Result<Self> {
        let mut series = BarSeries::with_capacity(bars.len());
        for bar in bars {
            series.push(*bar)?;
        }
        Ok(series)
    }

    /// An empty series with room for `capacity` bars.
    pub fn with_capacity(capacity: usize) -> Self {
        BarSeries {
            symbol: None,
            timestamps: Vec::with_capacity(capacity),
            open: Vec::with_capacity(capacity),
            high: Vec::with_capacity(capacity),
            low: Vec::with_capacity(capacity),
            close: Vec::with_capacity(capacity),
            volume: Vec::with_capacity(capacity),
            adj_close: None,
        }
    }

    /// Appends a bar after validating it against the rules and the last bar.
    ///
    /// Not available on a series with an adjusted-close column.
    ///
    /// # Errors
    /// The violated rule; the series is left unchanged.
    pub fn push(&mut self, bar: Bar) -> Result<()> {
        let row = self.len();
        if self.adj_close.is_some() {
            return Err(Error::invalid_parameter(
                "adj_close",
                "present",
                "must be absent to push bars one at a time",
            ));
        }
        bar.validate(row)?;
        check_order(row, bar.timestamp, self.timestamps.last().copied())?;
        self.push_unchecked(bar);
        Ok(())
    }

    fn push_unchecked(&mut self, bar: Bar) {
        self.timestamps.push(bar.timestamp);
        self.open.push(bar.open);
        self.high.push(bar.high);
        self.low.push(bar.low);
        self.close.push(bar.close);
        self.volume.push(bar.volume);
    }

    /// Tags the series with a symbol.
    pub fn with_symbol(mut self, symbol: impl Into<String>) -> Self {
        self.symbol = Some(symbol.into());
        self
    }

    /// Adds an adjusted-close column (dividends and splits applied).
    ///
    /// # Errors
    /// [`Error::LengthMismatch`], or a non-finite or non-positive value.
    pub fn with_adj_close(mut self, adj_close: Vec<f64>) -> Result<Self> {
        if adj_close.len() != self.len() {
            return Err(Error::LengthMismatch {
                field: "adj_close",
                expected: self.len(),
                actual: adj_close.len(),
            });
        }
        for (row, &value) in adj_close.iter().enumerate() {
            check_price(row, "adj_close", value)?;
        }
        self.adj_close = Some(adj_close);
        Ok(self)
    }

    /// Number of bars.
    pub fn len(&self) -> usize {
        self.timestamps.len()
    }

    /// True when the series holds no bar.
    pub fn is_empty(&self) -> bool {
        self.timestamps.is_empty()
    }

    /// The symbol, when tagged.
    pub fn symbol(&self) -> Option<&str> {
        self.symbol.as_deref()
    }

    /// Bar start times, Unix seconds UTC.
    pub fn timestamps(&self) -> &[i64] {
        &self.timestamps
    }

    /// Open prices.
    pub fn open(&self) -> &[f64] {
        &self.open
    }

    /// High prices.
    pub fn high(&self) -> &[f64] {
        &self.high
    }

    /// Low prices.
    pub fn low(&self) -> &[f64] {
        &self.low
    }

    /// Close prices.
    pub fn close(&self) -> &[f64] {
        &self.close
    }

    /// Volumes.
    pub fn volume(&self) -> &[f64] {
        &self.volume
    }

    /// Adjusted closes, when the source gave them.
    pub fn adj_close(&self) -> Option<&[f64]> {
        self.adj_close.as_deref()
    }

    /// The bar at `index`.
    ///
    /// # Panics
    /// When `index >= self.len()`.
    pub fn bar(&self, index: usize) -> Bar {
        Bar {
            timestamp: self.timestamps[index],
            open: self.open[index],
            high: self.high[index],
            low: self.low[index],
            close: self.close[index],
            volume: self.volume[index],
        }
    }

    /// The bar at `index`, or `None` past the end.
    pub fn get(&self, index: usize) -> Option<Bar> {
        (index < self.len()).then(|| self.bar(index))
    }

    /// The last bar.
    pub fn last(&self) -> Option<Bar> {
        self.len().checked_sub(1).map(|i| self.bar(i))
    }

    /// Iterates over the bars in time order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Bar> + '_ {
        (0..self.len()).map(|i| self.bar(i))
    }

    /// A copy of bars `range` (a valid series is still valid when sliced).
    ///
    /// # Panics
    /// When the range is out of bounds.
    pub fn slice(&self, range: std::ops::Range<usize>) -> BarSeries {
        BarSeries {
            symbol: self.symbol.clone(),
            timestamps: self.timestamps[range.clone()].to_vec(),
            open: self.open[range.clone()].to_vec(),
            high: self.high[range.clone()].to_vec(),
            low: self.low[range.clone()].to_vec(),
            close: self.close[range.clone()].to_vec(),
            volume: self.volume[range.clone()].to_vec(),
            adj_close: self.adj_close.as_ref().map(|a| a[range].to_vec()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns(n: usize) -> (Vec<i64>, [Vec<f64>; 5]) {
        let ts = (0..n as i64).map(|i| 60 * i).collect();
        let close: Vec<f64> = (0..n).map(|i| 100.0 + i as f64).collect();
        let open: Vec<f64> = close.iter().map(|c| c - 0.5).collect();
        let high: Vec<f64> = close.iter().map(|c| c + 1.0).collect();
        let low: Vec<f64> = open.iter().map(|o| o - 1.0).collect();
        (ts, [open, high, low, close, vec![10.0; n]])
    }

    fn build(ts: Vec<i64>, c: [Vec<f64>; 5]) -> Result<BarSeries> {
        let [o, h, l, cl, v] = c;
        BarSeries::new(ts, o, h, l, cl, v)
    }

    #[test]
    fn valid_series_round_trips_through_bars() {
        let (ts, c) = columns(5);
        let series = build(ts, c).unwrap();
        let bars: Vec<Bar> = series.iter().collect();
        assert_eq!(BarSeries::from_bars(&bars).unwrap(), series);
        assert_eq!(series.last().unwrap().close, 104.0);
        assert!(series.get(5).is_none());
    }

    #[test]
    fn each_rule_names_row_and_field() {
        let cases: Vec<(usize, usize, f64, Error)> = vec![
            (
                0,
                2,
                f64::NAN,
                Error::NonFinite {
                    row: 2,
                    field: "open",
                    value: f64::NAN,
                },
            ),
            (
                3,
                1,
                -1.0,
                Error::NonPositivePrice {
                    row: 1,
                    field: "close",
                    value: -1.0,
                },
            ),
            (
                2,
                4,
                0.0,
                Error::NonPositivePrice {
                    row: 4,
                    field: "low",
                    value: 0.0,
                },
            ),
            (
                4,
                0,
                -3.0,
                Error::NegativeVolume {
                    row: 0,
                    value: -3.0,
                },
            ),
            (
                4,
                3,
                f64::INFINITY,
                Error::NonFinite {
                    row: 3,
                    field: "volume",
                    value: f64::INFINITY,
                },
            ),
        ];
        for (column, row, value, expected) in cases {
            let (ts, mut c) = columns(5);
            c[column][row] = value;
            let err = build(ts, c).unwrap_err();
            // NaN != NaN, so compare the rendered messages.
            assert_eq!(err.to_string(), expected.to_string());
            assert_eq!(err.row(), Some(row));
        }
    }

    #[test]
    fn high_below_body_and_low_above_body_are_rejected() {
        let (ts, mut c) = columns(3);
        c[1][1] = c[3][1] - 0.25; // high below close
        let err = build(ts.clone(), c).unwrap_err();
        assert!(
            matches!(
                err,
                Error::InconsistentBar {
                    row: 1,
                    field: "high",
                    ..
                }
            ),
            "{err}"
        );

        let (_, mut c) = columns(3);
        c[2][2] = c[0][2] + 0.1; // low above open (open < close here)
        let err = build(ts, c).unwrap_err();
        assert!(
            matches!(
                err,
                Error::InconsistentBar {
                    row: 2,
                    field: "low",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn unsorted_and_duplicate_timestamps_are_rejected() {
        let (mut ts, c) = columns(4);
        ts[2] = ts[1];
        assert_eq!(
            build(ts, c).unwrap_err(),
            Error::DuplicateBar {
                row: 2,
                timestamp: 60
            }
        );
        let (mut ts, c) = columns(4);
        ts[3] = 0;
        assert_eq!(
            build(ts, c).unwrap_err(),
            Error::UnsortedBars {
                row: 3,
                timestamp: 0,
                previous: 120
            }
        );
    }

    #[test]
    fn mismatched_columns_are_rejected() {
        let (ts, mut c) = columns(4);
        c[4].pop();
        assert_eq!(
            build(ts, c).unwrap_err(),
            Error::LengthMismatch {
                field: "volume",
                expected: 4,
                actual: 3
            }
        );
    }

    #[test]
    fn lenient_mode_drops_and_reports() {
        let (mut ts, mut c) = columns(6);
        c[3][1] = f64::NAN; // row 1 bad close
        ts[4] = ts[3]; // row 4 duplicate
        c[4][5] = -1.0; // row 5 negative volume
        let [o, h, l, cl, v] = c;
        let (series, dropped) = BarSeries::new_lenient(ts, o, h, l, cl, v).unwrap();
        assert_eq!(series.timestamps(), &[0, 120, 180]);
        let rows: Vec<usize> = dropped.rows.iter().map(|(r, _)| *r).collect();
        assert_eq!(rows, vec![1, 4, 5]);
        assert!(matches!(
            dropped.rows[1].1,
            Error::DuplicateBar { row: 4, .. }
        ));
    }

    #[test]
    fn push_leaves_series_unchanged_on_error() {
        let (ts, c) = columns(2);
        let mut series = build(ts, c).unwrap();
        let before = series.clone();
        let mut bar = series.last().unwrap();
        assert!(series.push(bar).is_err()); // duplicate timestamp
        bar.timestamp += 60;
        bar.high = bar.close - 1.0;
        assert!(series.push(bar).is_err());
        assert_eq!(series, before);
    }

    #[test]
    fn deserialization_validates() {
        let good = r#"{"symbol":"X","timestamps":[1,2],"open":[1,1],"high":[2,2],"low":[1,1],"close":[1.5,1.5],"volume":[0,0]}"#;
        let series: BarSeries = serde_json::from_str(good).unwrap();
        assert_eq!(series.symbol(), Some("X"));
        let bad = good.replace("[1,2]", "[2,1]");
        let err = serde_json::from_str::<BarSeries>(&bad).unwrap_err();
        assert!(err.to_string().contains("row 1"), "{err}");
    }

    #[test]
    fn adj_close_is_checked_and_sliced() {
        let (ts, c) = columns(4);
        let series = build(ts, c).unwrap();
        assert!(series.clone().with_adj_close(vec![1.0; 3]).is_err());
        assert!(
            series
                .clone()
                .with_adj_close(vec![1.0, 1.0, -1.0, 1.0])
                .is_err()
        );
        let series = series.with_adj_close(vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        let part = series.slice(1..3);
        assert_eq!(part.adj_close(), Some(&[2.0, 3.0][..]));
        assert_eq!(part.timestamps(), &[60, 120]);
    }
}
