//! Boolean signal arrays as a strategy: [`from_signals`], vectorbt's entry point.
//!
//! `entries[i]` / `exits[i]` are the signals of bar `i`. On each bar:
//! - flat and `entries[i]`: buy with the configured [`Sizing`](crate::order::Sizing)
//!   ([`Decision::buy`]);
//! - long and `exits[i]`: sell the whole position ([`Decision::close`]);
//! - both signals on one bar: neither (vectorbt's default conflict rule, "ignore");
//! - otherwise hold (an entry while long or an exit while flat does nothing).
//!
//! The signals become a strategy run by the same engine as every other strategy, so
//! fill timing, costs, sizing, risk limits and metrics are exactly those of
//! [`Backtester::run`]: `from_signals` gives the same result as this closure.
//!
//! ```
//! # use quantcore::backtest::{from_fn, Decision};
//! # let (entries, exits) = (vec![true], vec![false]);
//! let strategy = from_fn(|ctx| {
//!     let (entry, exit) = (entries[ctx.index()], exits[ctx.index()]);
//!     let held = ctx.position().quantity;
//!     if entry && exit { Decision::hold() }
//!     else if held == 0.0 && entry { Decision::buy() }
//!     else if held > 0.0 && exit { Decision::close() }
//!     else { Decision::hold() }
//! });
//! ```

use super::config::BacktestConfig;
use super::engine::Backtester;
use super::result::BacktestResult;
use super::strategy::{Ahead, Context, Decision, FastForward, Strategy};
use crate::data::BarSeries;
use crate::error::{Error, Result};

/// Runs boolean entry and exit signals over `series` with `config` (vectorbt's
/// `Portfolio.from_signals`).
///
/// On bar `i`: flat and `entries[i]` buys with the configured sizing; long and
/// `exits[i]` sells the whole position; both signals on one bar do nothing (vectorbt's
/// default conflict rule); an entry while long or an exit while flat does nothing.
/// The signals run as a strategy through the same engine as [`Backtester::run`], with
/// its fill timing, costs, sizing, risk limits and metrics.
///
/// ```
/// use quantcore::backtest::{from_signals, BacktestConfig, FillTiming};
/// use quantcore::BarSeries;
/// let close = vec![10.0, 11.0, 12.0, 13.0];
/// let series = BarSeries::new(vec![1, 2, 3, 4], close.clone(), close.clone(), close.clone(), close, vec![0.0; 4])?;
/// let config = BacktestConfig { fill_timing: FillTiming::ThisClose, initial_capital: 100.0, ..Default::default() };
/// let result = from_signals(&series, &[true, false, false, false], &[false, false, true, false], &config)?;
/// // 10 units bought at 10, sold at 12.
/// assert_eq!(result.trades.len(), 1);
/// assert_eq!(result.trades[0].pnl, 20.0);
/// assert_eq!(result.final_equity(), 120.0);
/// # Ok::<(), quantcore::Error>(())
/// ```
///
/// # Errors
/// [`Error::LengthMismatch`] (field `entries` or `exits`) unless both have one value
/// per bar; otherwise as [`Backtester::new`] and [`Backtester::run`].
pub fn from_signals(
    series: &BarSeries,
    entries: &[bool],
    exits: &[bool],
    config: &BacktestConfig,
) -> Result<BacktestResult> {
    Backtester::new(*config)?.from_signals(series, entries, exits)
}

impl Backtester {
    /// [`from_signals`] with this backtester's configuration.
    ///
    /// # Errors
    /// As [`from_signals`].
    pub fn from_signals(
        &self,
        series: &BarSeries,
        entries: &[bool],
        exits: &[bool],
    ) -> Result<BacktestResult> {
        for (field, signals) in [("entries", entries), ("exits", exits)] {
            if signals.len() != series.len() {
                return Err(Error::LengthMismatch {
                    field,
                    expected: series.len(),
                    actual: signals.len(),
                });
            }
        }
        self.run(series, &mut Signals { entries, exits })
    }
}

/// The strategy behind [`from_signals`]; the lengths are checked before it runs.
struct Signals<'a> {
    entries: &'a [bool],
    exits: &'a [bool],
}

impl Signals<'_> {
    /// The decision of bar `i` with `held` units: the one rule of both
    /// [`on_bar`](Strategy::on_bar) and [`fast_forward`](Strategy::fast_forward).
    #[inline(always)]
    fn decide(&self, i: usize, held: f64) -> Decision {
        let (entry, exit) = (self.entries[i], self.exits[i]);
        if entry && exit {
            Decision::hold()
        } else if entry && held == 0.0 {
            Decision::buy()
        } else if exit && held > 0.0 {
            Decision::close()
        } else {
            Decision::hold()
        }
    }
}

impl Strategy for Signals<'_> {
    #[inline]
    fn on_bar(&mut self, ctx: &Context<'_>) -> Decision {
        self.decide(ctx.index(), ctx.position().quantity)
    }

    /// The signals and the position decide: scans the arrays from the current bar.
    #[inline]
    fn fast_forward(&mut self, ctx: &Context<'_>, ahead: Ahead<'_>) -> FastForward {
        let held = ctx.position().quantity;
        ahead.until_decision(|history| self.decide(history.index(), held))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backtest::config::FillTiming;
    use crate::backtest::proptests::random_series;
    use crate::backtest::strategy::from_fn;
    use crate::execution::{CommissionModel, ExecutionModel};
    use rand::{Rng, SeedableRng, rngs::StdRng};

    #[test]
    fn signals_equal_the_same_decisions_through_a_closure() {
        let mut rng = StdRng::seed_from_u64(11);
        for timing in [FillTiming::ThisClose, FillTiming::NextOpen] {
            for trial in 0..20 {
                let n = rng.gen_range(2..60);
                let series = random_series(&mut rng, n);
                let entries: Vec<bool> = (0..n).map(|_| rng.gen_bool(0.2)).collect();
                let exits: Vec<bool> = (0..n).map(|_| rng.gen_bool(0.2)).collect();
                let config = BacktestConfig {
                    fill_timing: timing,
                    execution: ExecutionModel::new(CommissionModel::new(0.001, 0.5).unwrap(), 3.0)
                        .unwrap(),
                    ..BacktestConfig::default()
                };
                let vectorized = from_signals(&series, &entries, &exits, &config).unwrap();
                let mut closure = from_fn(|ctx| {
                    let (entry, exit) = (entries[ctx.index()], exits[ctx.index()]);
                    let held = ctx.position().quantity;
                    if entry && exit {
                        Decision::hold()
                    } else if held == 0.0 && entry {
                        Decision::buy()
                    } else if held > 0.0 && exit {
                        Decision::close()
                    } else {
                        Decision::hold()
                    }
                });
                let scripted = Backtester::new(config)
                    .unwrap()
                    .run(&series, &mut closure)
                    .unwrap();
                assert_eq!(vectorized, scripted, "{timing:?} trial {trial}");
            }
        }
    }

    #[test]
    fn signal_rules_by_hand() {
        // ThisClose, 1_000 of capital, flat price 10 then 20: entry on 0 (100 units),
        // a second entry while long on 1 does nothing, both signals on 2 do nothing,
        // exit on 3 at 20: +1_000.
        let close = vec![10.0, 10.0, 20.0, 20.0, 20.0];
        let series = BarSeries::new(
            (0..5).collect(),
            close.clone(),
            close.clone(),
            close.clone(),
            close,
            vec![0.0; 5],
        )
        .unwrap();
        let config = BacktestConfig {
            fill_timing: FillTiming::ThisClose,
            initial_capital: 1_000.0,
            ..BacktestConfig::default()
        };
        let entries = [true, true, true, false, false];
        let exits = [false, false, true, true, true];
        let result = from_signals(&series, &entries, &exits, &config).unwrap();
        assert_eq!(result.orders.len(), 2);
        assert_eq!(result.orders[0].quantity, 100.0);
        assert_eq!(result.orders[1].created_at, 3);
        assert_eq!(result.final_equity(), 2_000.0);
    }

    #[test]
    fn length_mismatch_is_a_typed_error() {
        let series = crate::backtest::engine::tests::five_bars();
        let config = BacktestConfig::default();
        assert_eq!(
            from_signals(&series, &[true; 4], &[false; 5], &config),
            Err(Error::LengthMismatch {
                field: "entries",
                expected: 5,
                actual: 4
            })
        );
        assert_eq!(
            from_signals(&series, &[true; 5], &[false; 6], &config),
            Err(Error::LengthMismatch {
                field: "exits",
                expected: 5,
                actual: 6
            })
        );
    }
}
