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
    /// Runs one portfolio over several series aligned by timestamp. The strategy is
    /// called with `ctx.symbol()` set to the series' [`SymbolId`](crate::order::SymbolId)
    /// (`SymbolId(i)` is `series[i]`); give each symbol its own stateful strategy
    /// with [`PerSymbol`](super::PerSymbol).
    ///
    /// # Alignment
    /// The run's clock is the **union** of the series' timestamps. At each timestamp,
    /// every symbol that has a bar there goes through the bar's events (fill at the
    /// open, resting limits, exits, mark at the close) before any strategy is called;
    /// then their strategies are called in series order. A symbol without a bar at
    /// that timestamp is not called, its orders wait for its own next bar, and its
    /// position keeps its last mark. One equity point is recorded per union
    /// timestamp (plus the start). All symbols share one cash pool: with
    /// [`FillTiming::ThisClose`](super::FillTiming::ThisClose) a fill of an earlier
    /// series is already out of the cash a later series sees at the same timestamp,
    /// so size entries with a fraction of equity below 1 to hold several symbols
    /// (sized buys are capped at the cash left).
    ///
    /// Symbols are the series' symbols; an untagged series is named `series{i}`.
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
            .map(|(i, s)| {
                s.symbol()
                    .map_or_else(|| format!("series{i}"), str::to_owned)
            })
            .collect();
        if let Some(i) = series.iter().position(BarSeries::is_empty) {
            return Err(Error::EmptySeries {
                series: i,
                symbol: names[i].clone(),
            });
        }
        strategy.start(series.len())?;
        let union = union_timestamps(series);
        let timestamps = || {
            let mut timestamps = Vec::with_capacity(union.len() + 1);
            timestamps.push(union[0]);
            timestamps.extend_from_slice(&union);
            timestamps
        };
        self.measured(union.len() + 1, timestamps, |curve| {
            let mut engine = Engine::new(self.config(), names.iter().map(String::as_str), curve)?;

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
                        engine.mark_close(i, s, row);
                    }
                }
                for (i, s) in series.iter().enumerate() {
                    if let Some(row) = active[i] {
                        engine.decide(i, s, row, strategy)?;
                    }
                }
                engine.record_equity();
            }
            Ok(engine.into_records())
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backtest::config::{BacktestConfig, FillTiming};
    use crate::backtest::strategy::{Context, Decision, PerSymbol};
    use crate::order::{OrderStatus, Side, SymbolId};

    fn approx_all(a: &[f64], b: &[f64]) {
        assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-9, "{a:?} vs {b:?}");
        }
    }

    /// Bars with open = high = low = close.
    fn flat_bars(symbol: &str, timestamps: Vec<i64>, close: Vec<f64>) -> BarSeries {
        let n = timestamps.len();
        BarSeries::new(
            timestamps,
            close.clone(),
            close.clone(),
            close.clone(),
            close,
            vec![0.0; n],
        )
        .unwrap()
        .with_symbol(symbol)
    }

    /// A at t = 1, 2, 3, 4 (100, 110, 120, 90); B at t = 2, 3, 5 (50, 40, 60).
    fn two_symbols() -> [BarSeries; 2] {
        [
            flat_bars("A", vec![1, 2, 3, 4], vec![100.0, 110.0, 120.0, 90.0]),
            flat_bars("B", vec![2, 3, 5], vec![50.0, 40.0, 60.0]),
        ]
    }

    type Script = Box<dyn FnMut(&Context<'_>) -> Decision>;

    /// Per symbol: the decision at each of its rows, logging `(symbol, row, t)` calls.
    fn scripted(
        a: Vec<(usize, Decision)>,
        b: Vec<(usize, Decision)>,
        calls: std::rc::Rc<std::cell::RefCell<Vec<(u32, usize, i64)>>>,
    ) -> PerSymbol<Script> {
        let make = |steps: Vec<(usize, Decision)>| -> Script {
            let calls = calls.clone();
            Box::new(move |ctx: &Context<'_>| {
                calls
                    .borrow_mut()
                    .push((ctx.symbol().0, ctx.index(), ctx.timestamp()));
                steps
                    .iter()
                    .find(|(row, _)| *row == ctx.index())
                    .map_or(Decision::hold(), |(_, d)| *d)
            })
        };
        PerSymbol::new(vec![make(a), make(b)])
    }

    #[test]
    fn two_symbols_share_one_cash_pool_by_hand() {
        // ThisClose, no costs, 2_000 of capital.
        // t=1: A buys 10 at 100: cash 1_000; equity 1_000 + 1_000 = 2_000.
        // t=2: A marked 110; B buys 10 at 50: cash 500; equity 500 + 1_100 + 500 = 2_100.
        // t=3: A 120, B 40; A asks for 10 more at 120 = 1_200 with 500 in the pool:
        //      rejected; equity 500 + 1_200 + 400 = 2_100.
        // t=4: A 90, B has no bar and keeps its mark 40: 500 + 900 + 400 = 1_800.
        // t=5: B 60, A keeps 90: 500 + 900 + 600 = 2_000.
        let config = BacktestConfig {
            initial_capital: 2_000.0,
            fill_timing: FillTiming::ThisClose,
            ..BacktestConfig::default()
        };
        let calls = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let mut strategy = scripted(
            vec![
                (0, Decision::buy_quantity(10.0)),
                (2, Decision::buy_quantity(10.0)),
            ],
            vec![(0, Decision::buy_quantity(10.0))],
            calls.clone(),
        );
        let result = Backtester::new(config)
            .unwrap()
            .run_multi(&two_symbols(), &mut strategy)
            .unwrap();
        assert_eq!(result.timestamps, vec![1, 1, 2, 3, 4, 5]);
        approx_all(
            &result.equity,
            &[2_000.0, 2_000.0, 2_100.0, 2_100.0, 1_800.0, 2_000.0],
        );
        assert_eq!(result.symbols, vec!["A", "B"]);
        // Each symbol is called only on its own bars, A before B at a shared time.
        assert_eq!(
            *calls.borrow(),
            vec![
                (0, 0, 1),
                (0, 1, 2),
                (1, 0, 2),
                (0, 2, 3),
                (1, 1, 3),
                (0, 3, 4),
                (1, 2, 5)
            ]
        );
        let o = &result.orders;
        assert_eq!(o.len(), 3);
        assert_eq!(
            (o[0].symbol, o[0].status.clone()),
            (SymbolId(0), OrderStatus::Filled)
        );
        assert_eq!(
            (o[1].symbol, o[1].status.clone()),
            (SymbolId(1), OrderStatus::Filled)
        );
        assert_eq!(
            o[2].status,
            OrderStatus::Rejected {
                reason: "insufficient cash: 1200 required with commission, 500 available".into()
            }
        );
        assert_eq!(result.final_positions[0].quantity, 10.0);
        assert_eq!(result.final_positions[1].quantity, 10.0);
        assert_eq!(result.final_snapshot.cash, 500.0);
    }

    #[test]
    fn next_open_orders_wait_for_the_symbols_own_next_bar() {
        // A decides on t=1 (fills at A's open at t=2); B decides on t=3 and B's next
        // bar is t=5 (it has none at t=4), so it fills at t=5 at 60.
        let config = BacktestConfig {
            initial_capital: 2_000.0,
            fill_timing: FillTiming::NextOpen,
            ..BacktestConfig::default()
        };
        let calls = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let mut strategy = scripted(
            vec![(0, Decision::buy_quantity(1.0))],
            vec![(1, Decision::buy_quantity(1.0))],
            calls,
        );
        let result = Backtester::new(config)
            .unwrap()
            .run_multi(&two_symbols(), &mut strategy)
            .unwrap();
        let fills: Vec<(u32, i64, f64)> = result
            .fills
            .iter()
            .map(|f| (f.symbol.0, f.timestamp, f.price))
            .collect();
        assert_eq!(fills, vec![(0, 2, 110.0), (1, 5, 60.0)]);
        // t=2..4: 1_890 cash + A (110, 120, 90); t=5: 1_830 + 90 + 60.
        approx_all(
            &result.equity,
            &[2_000.0, 2_000.0, 2_000.0, 2_010.0, 1_980.0, 1_980.0],
        );
        assert_eq!(result.orders[1].side, Side::Buy);
    }

    #[test]
    fn untagged_duplicate_and_empty_series() {
        let backtester = Backtester::new(BacktestConfig::default()).unwrap();
        let mut hold = |_: &Context<'_>| Decision::hold();
        let untagged = BarSeries::new(
            vec![1],
            vec![1.0],
            vec![1.0],
            vec![1.0],
            vec![1.0],
            vec![0.0],
        )
        .unwrap();
        let result = backtester
            .run_multi(&[untagged.clone(), untagged.clone()], &mut hold)
            .unwrap();
        assert_eq!(result.symbols, vec!["series0", "series1"]);
        let a = flat_bars("A", vec![1], vec![1.0]);
        assert!(matches!(
            backtester.run_multi(&[a.clone(), a.clone()], &mut hold),
            Err(Error::InvalidSymbol { .. })
        ));
        let empty = BarSeries::default().with_symbol("E");
        assert_eq!(
            backtester.run_multi(&[a, empty], &mut hold),
            Err(Error::EmptySeries {
                series: 1,
                symbol: "E".into()
            })
        );
        assert!(matches!(
            backtester.run_multi(&[], &mut hold),
            Err(Error::NotEnoughData { .. })
        ));
    }

    #[test]
    fn union_of_timestamps() {
        let [a, b] = two_symbols();
        assert_eq!(
            union_timestamps(&[a.clone(), b.clone()]),
            vec![1, 2, 3, 4, 5]
        );
        assert_eq!(union_timestamps(&[b, a.clone()]), vec![1, 2, 3, 4, 5]);
        assert_eq!(union_timestamps(&[a]), vec![1, 2, 3, 4]);
    }

    #[test]
    fn one_symbol_run_multi_equals_run() {
        let series = crate::backtest::engine::tests::five_bars();
        let config = crate::backtest::engine::tests::config(FillTiming::NextOpen, 0.001, 1.0, 5.0);
        let backtester = Backtester::new(config).unwrap();
        let single = backtester
            .run(
                &series,
                &mut crate::backtest::MomentumStrategy::new(1, 2).unwrap(),
            )
            .unwrap();
        let multi = backtester
            .run_multi(
                std::slice::from_ref(&series),
                &mut crate::backtest::MomentumStrategy::new(1, 2).unwrap(),
            )
            .unwrap();
        assert_eq!(single, multi);
        assert!(!single.fills.is_empty());
    }
}
