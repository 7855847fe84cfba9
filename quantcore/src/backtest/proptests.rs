//! Property tests of the backtester.
//!
//! Invariants:
//! 1. **No lookahead**: for a random series and a bar `t`, replacing every bar after
//!    `t` by different bars changes no decision at or before `t`, no fill at or
//!    before `t`'s timestamp, and no equity point up to `t`'s close; for both built-in
//!    strategies and a closure that reads the whole visible history, places limit
//!    orders and sets stops, under both fill timings.
//! 2. **Accounting**: the equity curve has one point per bar plus the start; when the
//!    run ends flat, the closed trades' PnLs sum to the equity change; the final
//!    snapshot is cash plus positions.
//! 3. **The fast path changes nothing**: the built-in strategies and `from_signals`
//!    with [`Strategy::fast_forward`] give the same result, bit for bit, as with
//!    `on_bar` called on every bar; with shorts, zero-size entries, both fill timings
//!    and the kill switch (which turns the fast path off).

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::config::{BacktestConfig, FillTiming};
use super::engine::Backtester;
use super::strategies::{BuiltinStrategy, MeanReversionStrategy, MomentumStrategy};
use super::strategy::{Ahead, Context, Decision, FastForward, Strategy, from_fn};
use crate::data::BarSeries;
use crate::error::Result;
use crate::execution::{CommissionModel, ExecutionModel};

/// One bar's moves: close return, open gap from the previous close, and how far the
/// high and low reach beyond the body.
type Step = (f64, f64, f64, f64);

/// Bars from `steps`, starting at a close of 100, daily timestamps from `start_day`.
fn series_from(steps: &[Step], start_close: f64, start_day: i64) -> BarSeries {
    let mut previous = start_close;
    let mut columns: [Vec<f64>; 4] = Default::default();
    for &(ret, gap, up, down) in steps {
        let open = previous * (1.0 + gap);
        let close = previous * (1.0 + ret);
        columns[0].push(open);
        columns[1].push(open.max(close) * (1.0 + up));
        columns[2].push(open.min(close) * (1.0 - down));
        columns[3].push(close);
        previous = close;
    }
    let n = steps.len() as i64;
    let [open, high, low, close] = columns;
    BarSeries::new(
        (start_day..start_day + n).map(|d| d * 86_400).collect(),
        open,
        high,
        low,
        close,
        vec![1_000.0; steps.len()],
    )
    .expect("positive, consistent bars")
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    (-0.05f64..0.05, -0.02f64..0.02, 0.0f64..0.02, 0.0f64..0.02)
}

/// A random walk of `n` valid bars, for tests elsewhere in the module.
pub(crate) fn random_series(rng: &mut impl Rng, n: usize) -> BarSeries {
    let steps: Vec<Step> = (0..n)
        .map(|_| {
            (
                rng.gen_range(-0.03..0.03),
                rng.gen_range(-0.01..0.01),
                rng.gen_range(0.0..0.01),
                rng.gen_range(0.0..0.01),
            )
        })
        .collect();
    series_from(&steps, 100.0, 1)
}

/// Logs every decision of the wrapped strategy with its bar index.
struct Recorder<S> {
    inner: S,
    log: Vec<(usize, Decision)>,
}

impl<S: Strategy> Strategy for Recorder<S> {
    fn on_bar(&mut self, ctx: &Context<'_>) -> Decision {
        let decision = self.inner.on_bar(ctx);
        self.log.push((ctx.index(), decision));
        decision
    }

    fn start(&mut self, symbols: usize) -> Result<()> {
        self.log.clear();
        self.inner.start(symbols)
    }

    /// Forwards the fast path, so the lookahead test covers it too (the held bars it
    /// skips are not logged: only the decision it stops at).
    fn fast_forward(&mut self, ctx: &Context<'_>, ahead: Ahead<'_>) -> FastForward {
        let found = self.inner.fast_forward(ctx, ahead);
        if let FastForward::DecidesAt { index, decision } = found {
            self.log.push((index, decision));
        }
        found
    }
}

/// The wrapped strategy without its fast path: the engine calls `on_bar` on every bar.
struct OnBarOnly<S>(S);

impl<S: Strategy> Strategy for OnBarOnly<S> {
    fn on_bar(&mut self, ctx: &Context<'_>) -> Decision {
        self.0.on_bar(ctx)
    }

    fn start(&mut self, symbols: usize) -> Result<()> {
        self.0.start(symbols)
    }
}

/// A closure strategy reading the whole visible history: buys below the running
/// mean with a stop and a target, places a limit below the close when well above
/// it, closes above it.
fn history_reader(ctx: &Context<'_>) -> Decision {
    let close = ctx.history().close();
    assert_eq!(close.len(), ctx.index() + 1);
    assert_eq!(ctx.history().timestamps().last(), Some(&ctx.timestamp()));
    if close.len() < 3 {
        return Decision::hold();
    }
    let mean = close.iter().sum::<f64>() / close.len() as f64;
    let last = close[close.len() - 1];
    let held = ctx.position().quantity;
    if held == 0.0 && last < mean {
        Decision::buy()
            .with_stop_loss(last * 0.97)
            .with_take_profit(last * 1.05)
    } else if held == 0.0 && last > mean * 1.02 {
        Decision::buy_quantity(1.0).limit(last * 0.99)
    } else if held > 0.0 && last > mean {
        Decision::close()
    } else {
        Decision::hold()
    }
}

/// What must not change when bars after `t` change.
#[derive(Debug, PartialEq)]
struct Past {
    decisions: Vec<(usize, Decision)>,
    fills: Vec<crate::execution::Fill>,
    equity: Vec<f64>,
}

fn past<S: Strategy>(config: BacktestConfig, series: &BarSeries, t: usize, strategy: S) -> Past {
    let mut recorder = Recorder {
        inner: strategy,
        log: Vec::new(),
    };
    let result = Backtester::new(config)
        .unwrap()
        .run(series, &mut recorder)
        .unwrap();
    let cutoff = series.timestamps()[t];
    Past {
        decisions: recorder.log.into_iter().filter(|(i, _)| *i <= t).collect(),
        fills: result
            .fills
            .into_iter()
            .filter(|f| f.timestamp <= cutoff)
            .collect(),
        // The start, then bars 0..=t.
        equity: result.equity[..t + 2].to_vec(),
    }
}

fn config(timing: FillTiming) -> BacktestConfig {
    BacktestConfig {
        fill_timing: timing,
        execution: ExecutionModel::new(CommissionModel::new(0.001, 0.25).unwrap(), 5.0).unwrap(),
        ..BacktestConfig::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn changing_later_bars_changes_nothing_before(
        steps in proptest::collection::vec(step(), 6..40),
        replacement in proptest::collection::vec(step(), 40),
        cut in 0.0f64..1.0,
        this_close in any::<bool>(),
    ) {
        let n = steps.len();
        let t = ((n - 1) as f64 * cut) as usize;
        let original = series_from(&steps, 100.0, 1);
        let mut changed_steps = steps[..=t].to_vec();
        changed_steps.extend_from_slice(&replacement[..n - 1 - t]);
        let changed = series_from(&changed_steps, 100.0, 1);
        prop_assert_eq!(&original.close()[..=t], &changed.close()[..=t]);
        let timing = if this_close { FillTiming::ThisClose } else { FillTiming::NextOpen };
        let config = config(timing);

        let momentum = || MomentumStrategy::new(2, 4).unwrap();
        prop_assert_eq!(past(config, &original, t, momentum()), past(config, &changed, t, momentum()));
        let reversion = || MeanReversionStrategy::new(3, 0.8, 0.0).unwrap();
        prop_assert_eq!(past(config, &original, t, reversion()), past(config, &changed, t, reversion()));
        prop_assert_eq!(
            past(config, &original, t, history_reader),
            past(config, &changed, t, history_reader)
        );
    }

    #[test]
    fn accounting_holds_for_random_runs(
        steps in proptest::collection::vec(step(), 1..60),
        this_close in any::<bool>(),
        fast in 1usize..4,
        extra in 1usize..6,
    ) {
        let series = series_from(&steps, 100.0, 1);
        let timing = if this_close { FillTiming::ThisClose } else { FillTiming::NextOpen };
        let result = Backtester::new(config(timing))
            .unwrap()
            .run(&series, &mut MomentumStrategy::new(fast, fast + extra).unwrap())
            .unwrap();
        prop_assert_eq!(result.equity.len(), series.len() + 1);
        prop_assert_eq!(result.timestamps.len(), series.len() + 1);
        let snapshot = result.final_snapshot;
        prop_assert!((snapshot.total_value - result.final_equity()).abs() < 1e-9);
        let held: f64 = result.final_positions.iter().map(|p| p.quantity * p.current_price).sum();
        prop_assert!((snapshot.cash + held - snapshot.total_value).abs() < 1e-9);
        prop_assert!(snapshot.cash >= 0.0);
        if result.final_positions.iter().all(|p| p.quantity == 0.0) {
            let pnl: f64 = result.trades.iter().map(|t| t.pnl).sum();
            prop_assert!((result.final_equity() - result.initial_equity() - pnl).abs() < 1e-6);
        }
        prop_assert_eq!(result.metrics.trades.n_trades, result.trades.len());
    }

    #[test]
    fn the_fast_path_gives_the_result_of_calling_on_bar_on_every_bar(
        steps in proptest::collection::vec(step(), 1..120),
        this_close in any::<bool>(),
        short in any::<bool>(),
        capital in prop_oneof![Just(150.0), Just(10_000.0)],
        kill_switch in any::<bool>(),
        fast in 1usize..4,
        extra in 1usize..6,
        seed in any::<u64>(),
    ) {
        let series = series_from(&steps, 100.0, 1);
        let timing = if this_close { FillTiming::ThisClose } else { FillTiming::NextOpen };
        let mut config = config(timing);
        // A small account sizes some entries to zero units; the kill switch turns the
        // fast path off (the engine must notice and call `on_bar`).
        config.initial_capital = capital;
        config.risk_limits.allow_short = short;
        config.risk_limits.max_drawdown = kill_switch.then_some(0.05);
        let backtester = Backtester::new(config).unwrap();
        let run = |strategy: BuiltinStrategy| {
            let with = backtester.run(&series, &mut strategy.clone()).unwrap();
            let without = backtester.run(&series, &mut OnBarOnly(strategy)).unwrap();
            (with, without)
        };
        let (with, without) = run(BuiltinStrategy::Momentum(
            MomentumStrategy::new(fast, fast + extra).unwrap().with_short(short),
        ));
        prop_assert_eq!(with, without);
        let (with, without) = run(BuiltinStrategy::MeanReversion(
            MeanReversionStrategy::new(fast + extra, 0.7, 0.1).unwrap().with_short(short),
        ));
        prop_assert_eq!(with, without);

        let mut rng = StdRng::seed_from_u64(seed);
        let entries: Vec<bool> = (0..series.len()).map(|_| rng.gen_bool(0.15)).collect();
        let exits: Vec<bool> = (0..series.len()).map(|_| rng.gen_bool(0.15)).collect();
        let with = backtester.from_signals(&series, &entries, &exits).unwrap();
        let signals = |ctx: &Context<'_>| {
            let i = ctx.index();
            let held = ctx.position().quantity;
            if entries[i] && exits[i] {
                Decision::hold()
            } else if entries[i] && held == 0.0 {
                Decision::buy()
            } else if exits[i] && held > 0.0 {
                Decision::close()
            } else {
                Decision::hold()
            }
        };
        let without = backtester.run(&series, &mut from_fn(signals)).unwrap();
        prop_assert_eq!(with, without);
    }
}
