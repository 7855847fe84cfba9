//! Several symbols in one portfolio: [`Backtester::run_multi`].
//!
//! # Alignment
//! The run's clock is the **union** of the series' timestamps, merged in order. At
//! each timestamp, the symbols that have a bar there go through the bar's events
//! (fills at the open, resting limits, exits, mark at the close) and then their
//! strategies are called, in series order; a symbol without a bar at that timestamp
//! is not called, its orders wait for its next bar, and its position keeps its last
//! mark. One equity point is recorded per union timestamp, so the curve has
//! `union length + 1` points. All symbols share one cash pool: with
//! [`FillTiming::ThisClose`](super::FillTiming::ThisClose) a fill of an earlier
//! series reduces the cash a later series' sizing and risk check see at the same
//! timestamp; size with a fraction of equity below 1 to hold several symbols.
//!
//! Symbols are the series' symbols (`SymbolId(i)` is the `i`-th series); an untagged
//! series is named `series{i}`. Two series with the same symbol are refused.

use super::engine::{Backtester, Engine};
use super::result::BacktestResult;
use super::strategy::Strategy;
use crate::data::BarSeries;
use crate::error::{Error, Result};

impl Backtester {
    /// Runs one portfolio over several series aligned by timestamp (see the
    /// [module docs](self)). The strategy is called with `ctx.symbol()` set to the
    /// series' [`SymbolId`](crate::order::SymbolId); give each symbol its own
    /// stateful strategy with [`PerSymbol`](super::PerSymbol).
    ///
    /// ```
    /// use quantcore::backtest::{from_fn, Backtester, BacktestConfig, Decision, FillTiming};
    /// use quantcore::order::Sizing;
    /// use quantcore::BarSeries;
    /// let flat = |ts: Vec<i64>, price: f64| {
    ///     let n = ts.len();
    ///     BarSeries::new(ts, vec![price; n], vec![price; n], vec![price; n], vec![price; n], vec![0.0; n])
    /// };
    /// let a = flat(vec![1, 2, 3], 10.0)?.with_symbol("A");
    /// let b = flat(vec![2, 4], 20.0)?.with_symbol("B");
    /// let config = BacktestConfig {
    ///     fill_timing: FillTiming::ThisClose,
    ///     sizing: Sizing::FractionOfEquity(0.5),
    ///     ..Default::default()
    /// };
    /// // Buy each symbol on its first bar.
    /// let mut strategy = from_fn(|ctx| if ctx.index() == 0 { Decision::buy() } else { Decision::hold() });
    /// let result = Backtester::new(config)?.run_multi(&[a, b], &mut strategy)?;
    /// assert_eq!(result.timestamps, vec![1, 1, 2, 3, 4]); // start + union of 1,2,3 and 2,4
    /// assert_eq!(result.symbols, vec!["A", "B"]);
    /// assert_eq!(result.fills.len(), 2);
    /// # Ok::<(), quantcore::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::NotEnoughData`] when `series` is empty; [`Error::EmptySeries`] naming
    /// the first series without bars; [`Error::InvalidSymbol`] for a duplicate
    /// symbol; otherwise as [`run`](Backtester::run).
    pub fn run_multi<S: Strategy>(
        &self,
        series: &[BarSeries],
        strategy: &mut S,
    ) -> Result<BacktestResult> {
        if series.is_empty() {
            return Err(Error::NotEnoughData {
                what: "a multi-symbol backtest (series)",
                required: 1,
                actual: 0,
            });
        }
        let names: Vec<String> = series
            .iter()
            .enumerate()
            .map(|(i, s)| s.symbol().map_or_else(|| format!("series{i}"), str::to_owned))
            .collect();
        if let Some(i) = series.iter().position(BarSeries::is_empty) {
            return Err(Error::EmptySeries {
                series: i,
                symbol: names[i].clone(),
            });
        }
        strategy.start(series.len())?;
        let union = union_timestamps(series);
        let mut timestamps = Vec::with_capacity(union.len() + 1);
        timestamps.push(union[0]);
        timestamps.extend_from_slice(&union);
        let mut engine = Engine::new(self.config(), names.iter().map(String::as_str), timestamps.len())?;

        // `cursor[i]`: the next bar of series i; `active[i]`: its row at this timestamp.
        let mut cursor = vec![0usize; series.len()];
        let mut active: Vec<Option<usize>> = vec![None; series.len()];
        for &t in &union {
            for (i, s) in series.iter().enumerate() {
                let row = cursor[i];
                active[i] = (row < s.len() && s.timestamps()[row] == t).then(|| {
                    cursor[i] += 1;
                    row
                });
            }
            for (i, s) in series.iter().enumerate() {
                if let Some(row) = active[i] {
                    engine.before_close(i, s, row)?;
                    engine.mark_close(i, s, row)?;
                }
            }
            for (i, s) in series.iter().enumerate() {
                if let Some(row) = active[i] {
                    engine.decide(i, s, row, strategy)?;
                }
            }
            engine.record_equity();
        }
        engine.finish(timestamps)
    }
}

/// The sorted union of the series' timestamps (each series is strictly increasing).
pub(crate) fn union_timestamps(series: &[BarSeries]) -> Vec<i64> {
    let capacity = series.iter().map(BarSeries::len).max().unwrap_or(0);
    let mut union = Vec::with_capacity(capacity);
    let mut cursor = vec![0usize; series.len()];
    loop {
        let next = series
            .iter()
            .zip(&cursor)
            .filter_map(|(s, &row)| s.timestamps().get(row).copied())
            .min();
        let Some(t) = next else {
            return union;
        };
        union.push(t);
        for (s, row) in series.iter().zip(cursor.iter_mut()) {
            if s.timestamps().get(*row) == Some(&t) {
                *row += 1;
            }
        }
    }
}
