//! [`MlStrategy`]: the LSTM predictor and the signal generator as a backtest
//! strategy, retrained walk-forward on a rolling window of past bars.
//!
//! # Walk-forward scheme
//! With `m = min_history`, `r = retrain_every` and `w = train_window`, and bars
//! numbered from 0:
//!
//! | what | when | on which bars |
//! |---|---|---|
//! | fit `k = 0, 1, ...` | at the close of bar `s_k = m - 1 + k * r` (the first once `m` bars are visible) | bars `max(0, s_k + 1 - w) ..= s_k`: the last `w` bars up to and including `s_k` (fewer for early fits when `m < w`: the window grows until it holds `w` bars, then rolls) |
//! | model in force at bar `t >= m - 1` | the fit of `s = m - 1 + floor((t - m + 1) / r) * r`, the latest scheduled bar `<= t` | — |
//! | prediction at bar `t` | every bar from `m - 1` on | bars `t - window ..= t` (`window + 1` bars: each feature row compares a bar with the previous one) |
//! | volatility at bar `t` | every bar | the last `volatility_window` simple one-bar returns up to bar `t` ([`RollingVolatility`], fed one close per bar) |
//! | decision at bar `t` | every bar | [`SignalGenerator::generate`] on the prediction, `close[t]` and the volatility |
//!
//! Every input of the decision at bar `t` is a bar `<= t`: the training targets of a
//! fit at `s` are returns up to `close[s]`, its validation part (the last
//! `validation_fraction` of those samples, for early stopping) lies inside the same
//! window, and the scaler is fitted on the training part only (see
//! [`LstmPredictor::train`]). The strategy reads bars only through the
//! [`History`](crate::backtest::History) the backtester hands it, which ends at the
//! current bar, so a later bar cannot even be reached; a test runs a series and the
//! same series with every bar after `t` replaced and finds identical decisions and
//! predictions up to `t`. With [`FillTiming::NextOpen`](crate::backtest::FillTiming)
//! (the default) the decision of bar `t` trades at the open of bar `t + 1`.
//!
//! The model in force depends only on the bar index, not on the order of calls: when
//! the strategy is called on a bar that is not the one after the previous call (a
//! hand-driven [`Context`]), it fits on the scheduled bar's window if that fit is not
//! the one it holds, and re-warms the volatility from the history.
//!
//! # From signal to decision
//! | signal | decision |
//! |---|---|
//! | BUY | [`Decision::enter_long`] with the signal's confidence, stop-loss and take-profit (the engine does nothing when already long) |
//! | SELL | [`Decision::close`], or [`Decision::enter_short`] (confidence, levels) when `allow_short` |
//! | HOLD | [`Decision::hold`] |
//!
//! Before the first fit, and while the volatility warms up, the decision is hold. No
//! money rule lives here: the engine sizes the orders (for example
//! [`Sizing::Confidence`](crate::order::Sizing::Confidence) reads the confidence),
//! applies the risk limits, fills and books them.
//!
//! # Cost
//! A run makes about `(bars - m) / r + 1` trainings, each `epochs` passes over
//! `w - window - 1` samples (fewer with early stopping), plus one forward pass and a
//! copy of `window + 1` bars per bar from bar `m - 1` on. Training dominates: the
//! `ml_backtest` example (window 20, hidden size 16, 10 epochs, 500-bar windows, 9
//! fits over 1,565 daily bars) takes about 3 s in a release build on this project's
//! shared two-core machine, about 0.3 s per fit; the default [`LstmConfig`] (hidden
//! size 64, up to 50 epochs) costs several times more per fit. A long series with a
//! short `retrain_every` is expensive: keep the network small or refit rarely.
//!
//! # Determinism
//! Every fit starts from the seeded initialisation of the [`LstmConfig`] and shuffles
//! with its seed, so the same series and parameters give the same decisions, run
//! after run.
//!
//! # Failures
//! [`Strategy::on_bar`] cannot return an error. A fit or a prediction that fails (a
//! diverging training, a non-finite prediction) is recorded with its bar in
//! [`MlStrategy::errors`] and the decision is hold; a failed fit leaves the strategy
//! without a model (holding) until the next scheduled fit.

use serde::{Deserialize, Serialize};

use crate::backtest::strategy::{Context, Decision, History, Strategy};
use crate::data::BarSeries;
use crate::error::{Error, Result};
use crate::features::RollingVolatility;
use crate::ml::lstm::{LstmConfig, LstmPredictor};
use crate::signal::{Action as SignalAction, Prediction, Signal, SignalConfig, SignalGenerator};

const TOO_FEW_TRAINING_BARS: &str =
    "must be at least `lstm.window` + 2 bars (+ 1 with a validation part) to train on";

/// The parameters of an [`MlStrategy`]: the model, the signal rule and the
/// walk-forward schedule.
///
/// Defaults, spelled out in [`Default`]: [`LstmConfig::default`],
/// [`SignalConfig::default`], `train_window` 500 bars, `retrain_every` 63 bars (a
/// quarter of daily bars), `min_history` 250 bars, `volatility_window` 20 returns,
/// long only. Unknown fields are rejected when deserializing.
///
/// ```
/// use quantcore::backtest::MlParams;
/// use quantcore::ml::lstm::LstmConfig;
/// let params: MlParams = serde_json::from_str(
///     r#"{"lstm": {"window": 10, "hidden_size": 8}, "train_window": 200, "retrain_every": 20, "min_history": 100}"#,
/// )?;
/// params.validate()?;
/// assert_eq!((params.lstm.window, params.volatility_window), (10, 20));
/// // 200 bars cannot train a 300-row window.
/// let bad = MlParams { lstm: LstmConfig { window: 300, ..params.lstm.clone() }, ..params };
/// assert!(bad.validate().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MlParams {
    /// The predictor's architecture, inputs, training schedule and seed.
    pub lstm: LstmConfig,
    /// Threshold, confidence and stop-loss / take-profit rule.
    pub signal: SignalConfig,
    /// Bars each fit trains on: the last `train_window` bars up to the fit's bar; at
    /// least `lstm.window + 2` (`+ 1` with a validation part).
    pub train_window: usize,
    /// Bars between fits, `>= 1`.
    pub retrain_every: usize,
    /// Bars visible before the first fit (the first fit is at bar `min_history - 1`);
    /// at least the minimum `train_window`. It may be below `train_window`: the early
    /// fits then train on every bar so far.
    pub min_history: usize,
    /// One-bar simple returns in the volatility given to the signal generator, `>= 2`.
    pub volatility_window: usize,
    /// Go short on SELL signals (the risk limits must allow shorts); otherwise a SELL
    /// closes a long.
    pub allow_short: bool,
}

impl Default for MlParams {
    fn default() -> Self {
        MlParams {
            lstm: LstmConfig::default(),
            signal: SignalConfig::default(),
            train_window: 500,
            retrain_every: 63,
            min_history: 250,
            volatility_window: 20,
            allow_short: false,
        }
    }
}

impl MlParams {
    /// The fewest bars a fit needs: `window + 2`, `+ 1` with a validation part (one
    /// training and one validation sample, as [`LstmPredictor::train`] requires).
    pub fn min_training_bars(&self) -> usize {
        let validation = usize::from(self.lstm.validation_fraction > 0.0);
        self.lstm.window + 2 + validation
    }

    /// The bar of the fit in force at bar `index`: the latest scheduled fit bar
    /// `min_history - 1 + k * retrain_every <= index`; `None` before the first.
    ///
    /// ```
    /// use quantcore::backtest::MlParams;
    /// let params = MlParams { min_history: 100, retrain_every: 50, ..MlParams::default() };
    /// assert_eq!(params.fit_bar(98), None);
    /// assert_eq!(params.fit_bar(99), Some(99));
    /// assert_eq!(params.fit_bar(148), Some(99));
    /// assert_eq!(params.fit_bar(149), Some(149));
    /// ```
    pub fn fit_bar(&self, index: usize) -> Option<usize> {
        let first = self.min_history.checked_sub(1)?;
        let step = self.retrain_every.max(1);
        (index >= first).then(|| first + (index - first) / step * step)
    }

    /// Checks every field.
    ///
    /// # Errors
    /// As [`LstmConfig::validate`] and [`SignalConfig::validate`] (naming the nested
    /// field); [`Error::InvalidParameter`] naming `train_window` or `min_history` when
    /// below [`min_training_bars`](Self::min_training_bars), `retrain_every` when 0,
    /// `volatility_window` when below 2.
    pub fn validate(&self) -> Result<()> {
        self.lstm.validate()?;
        self.signal.validate()?;
        if self.retrain_every == 0 {
            return Err(Error::invalid_parameter(
                "retrain_every",
                0,
                "must be at least 1",
            ));
        }
        if self.volatility_window < 2 {
            return Err(Error::invalid_parameter(
                "volatility_window",
                self.volatility_window,
                "must be at least 2 (a sample standard deviation needs two returns)",
            ));
        }
        let least = self.min_training_bars();
        if self.train_window < least {
            return Err(Error::invalid_parameter(
                "train_window",
                self.train_window,
                TOO_FEW_TRAINING_BARS,
            ));
        }
        if self.min_history < least {
            return Err(Error::invalid_parameter(
                "min_history",
                self.min_history,
                TOO_FEW_TRAINING_BARS,
            ));
        }
        Ok(())
    }

    /// The strategy.
    ///
    /// # Errors
    /// As [`validate`](Self::validate).
    pub fn build(self) -> Result<MlStrategy> {
        MlStrategy::new(self)
    }
}

/// An LSTM next-close predictor turned into decisions by a [`SignalGenerator`],
/// refitted walk-forward on the bars seen so far.
///
/// Fits happen at the close of bars `min_history - 1 + k * retrain_every` on the last
/// `train_window` bars up to that bar; every bar from the first fit on predicts the
/// next close from the last `window + 1` bars and maps the signal to a decision (BUY:
/// enter long with the signal's confidence and levels; SELL: close, or enter short
/// with `allow_short`; HOLD: hold). See the [module docs](self) for the full scheme,
/// the no-lookahead argument and the cost: about `bars / retrain_every` trainings per
/// run.
///
/// The strategy follows one symbol; [`start`](Strategy::start) resets it, so one
/// instance runs several times with the same results.
///
/// ```
/// use quantcore::backtest::{BacktestConfig, Backtester, MlParams, MlStrategy};
/// use quantcore::ml::lstm::LstmConfig;
/// use quantcore::signal::SignalConfig;
/// use quantcore::BarSeries;
/// let n = 160;
/// let close: Vec<f64> = (0..n).map(|i| 100.0 + 5.0 * (i as f64 / 6.0).sin()).collect();
/// let series = BarSeries::new(
///     (0..n as i64).map(|i| 1_700_000_000 + i * 86_400).collect(),
///     close.clone(),
///     close.iter().map(|c| c * 1.01).collect(),
///     close.iter().map(|c| c * 0.99).collect(),
///     close,
///     vec![1e4; n],
/// )?;
/// let params = MlParams {
///     lstm: LstmConfig { window: 10, hidden_size: 4, epochs: 2, ..LstmConfig::default() },
///     signal: SignalConfig { threshold: Some(0.0), ..SignalConfig::default() },
///     train_window: 80,
///     retrain_every: 40,
///     min_history: 60,
///     volatility_window: 10,
///     allow_short: false,
/// };
/// let mut strategy = MlStrategy::new(params)?;
/// let result = Backtester::new(BacktestConfig::default())?.run(&series, &mut strategy)?;
/// assert_eq!(strategy.fit_bars(), &[59, 99, 139]); // 60 - 1, then every 40 bars
/// assert_eq!(result.equity.len(), n + 1);
/// assert!(strategy.errors().is_empty());
/// # Ok::<(), quantcore::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct MlStrategy {
    params: MlParams,
    generator: SignalGenerator,
    volatility: RollingVolatility,
    /// The model in force, `None` before the first fit or after a failed one.
    model: Option<LstmPredictor>,
    /// The scheduled bar of the last fit attempted (successful or not).
    attempted: Option<usize>,
    fit_bars: Vec<usize>,
    /// The bar index the next call is expected at (consecutive calls stream the
    /// volatility; any other index re-warms it from the history).
    next_index: usize,
    last_signal: Option<Signal>,
    errors: Vec<(usize, Error)>,
}

impl MlStrategy {
    /// The strategy for checked `params`.
    ///
    /// # Errors
    /// As [`MlParams::validate`].
    pub fn new(params: MlParams) -> Result<Self> {
        params.validate()?;
        Ok(MlStrategy {
            generator: SignalGenerator::new(params.signal.clone())?,
            volatility: RollingVolatility::new(params.volatility_window)?,
            params,
            model: None,
            attempted: None,
            fit_bars: Vec::new(),
            next_index: 0,
            last_signal: None,
            errors: Vec::new(),
        })
    }

    /// The parameters.
    pub fn params(&self) -> &MlParams {
        &self.params
    }

    /// Number of successful fits since the last [`start`](Strategy::start).
    pub fn fits(&self) -> usize {
        self.fit_bars.len()
    }

    /// The bar index of each successful fit since the last [`start`](Strategy::start),
    /// in order: each model was trained on bars up to and including its bar.
    pub fn fit_bars(&self) -> &[usize] {
        &self.fit_bars
    }

    /// The model in force, once a fit succeeded.
    pub fn model(&self) -> Option<&LstmPredictor> {
        self.model.as_ref()
    }

    /// The signal of the last bar that produced one (the prediction, expected return,
    /// confidence and levels behind the last decision).
    pub fn last_signal(&self) -> Option<&Signal> {
        self.last_signal.as_ref()
    }

    /// The fits and predictions that failed since the last
    /// [`start`](Strategy::start), with the bar index each happened at; the decision
    /// on those bars was hold.
    pub fn errors(&self) -> &[(usize, Error)] {
        &self.errors
    }

    /// Feeds the current close to the volatility, or re-warms it from the history
    /// when this call does not follow the previous one.
    fn update_volatility(&mut self, history: &History<'_>) -> Option<f64> {
        let index = history.index();
        let close = history.close();
        if index != self.next_index {
            self.volatility.reset();
            let from = index.saturating_sub(self.params.volatility_window);
            for &price in &close[from..index] {
                self.volatility.update(price);
            }
        }
        self.next_index = index + 1;
        self.volatility.update(close[index])
    }

    /// Trains on the window ending at `fit_bar` when that fit is not the one held.
    fn refit_if_due(&mut self, history: &History<'_>) {
        let Some(fit_bar) = self.params.fit_bar(history.index()) else {
            return;
        };
        if self.attempted == Some(fit_bar) {
            return;
        }
        self.attempted = Some(fit_bar);
        let from = (fit_bar + 1).saturating_sub(self.params.train_window);
        let fitted = bars(history, from, fit_bar)
            .and_then(|series| LstmPredictor::train(&series, &self.params.lstm, |_| ()));
        match fitted {
            Ok(model) => {
                self.model = Some(model);
                self.fit_bars.push(fit_bar);
            }
            Err(err) => {
                self.model = None;
                self.errors.push((history.index(), err));
            }
        }
    }

    /// The signal of the current bar from the model in force.
    fn signal(&self, ctx: &Context<'_>, model: &LstmPredictor, volatility: f64) -> Result<Signal> {
        let index = ctx.index();
        let recent = bars(ctx.history(), index - self.params.lstm.window, index)?;
        let prediction = Prediction {
            symbol: ctx.symbol_name().to_string(),
            timestamp: ctx.timestamp(),
            predicted_price: model.predict(&recent)?,
        };
        self.generator
            .generate(&prediction, ctx.close(), volatility)
    }
}

/// A copy of bars `from ..= to` of the history (all at or before its current bar).
fn bars(history: &History<'_>, from: usize, to: usize) -> Result<BarSeries> {
    let range = from..to + 1;
    let series = BarSeries::new(
        history.timestamps()[range.clone()].to_vec(),
        history.open()[range.clone()].to_vec(),
        history.high()[range.clone()].to_vec(),
        history.low()[range.clone()].to_vec(),
        history.close()[range.clone()].to_vec(),
        history.volume()[range].to_vec(),
    )?;
    Ok(match history.symbol() {
        Some(symbol) => series.with_symbol(symbol),
        None => series,
    })
}

/// The decision for a signal; see the table in the [module docs](self).
fn decision_for(signal: &Signal, allow_short: bool) -> Decision {
    let with_levels = |mut decision: Decision| {
        decision = decision.with_confidence(signal.confidence);
        if let Some(stop) = signal.stop_loss {
            decision = decision.with_stop_loss(stop);
        }
        if let Some(take) = signal.take_profit {
            decision = decision.with_take_profit(take);
        }
        decision
    };
    match signal.action {
        SignalAction::Buy => with_levels(Decision::enter_long()),
        SignalAction::Sell if allow_short => with_levels(Decision::enter_short()),
        SignalAction::Sell => Decision::close(),
        SignalAction::Hold => Decision::hold(),
    }
}

impl Strategy for MlStrategy {
    fn on_bar(&mut self, ctx: &Context<'_>) -> Decision {
        let volatility = self.update_volatility(ctx.history());
        self.refit_if_due(ctx.history());
        let (Some(model), Some(volatility)) = (&self.model, volatility) else {
            return Decision::hold();
        };
        match self.signal(ctx, model, volatility) {
            Ok(signal) => {
                let decision = decision_for(&signal, self.params.allow_short);
                self.last_signal = Some(signal);
                decision
            }
            Err(err) => {
                self.errors.push((ctx.index(), err));
                Decision::hold()
            }
        }
    }

    fn start(&mut self, symbols: usize) -> Result<()> {
        super::one_symbol(symbols)?;
        self.volatility.reset();
        self.model = None;
        self.attempted = None;
        self.fit_bars.clear();
        self.next_index = 0;
        self.last_signal = None;
        self.errors.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backtest::{BacktestConfig, Backtester, from_fn};
    use crate::execution::{CommissionModel, ExecutionModel};
    use crate::order::{Instrument, OrderStatus, SymbolId};
    use crate::portfolio::Portfolio;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// Bars around `close` with a deterministic intrabar range and volume.
    fn series_from(close: &[f64]) -> BarSeries {
        let n = close.len();
        let open: Vec<f64> = (0..n)
            .map(|i| if i == 0 { close[0] } else { close[i - 1] })
            .collect();
        let high = (0..n).map(|i| open[i].max(close[i]) * 1.004).collect();
        let low = (0..n).map(|i| open[i].min(close[i]) * 0.996).collect();
        let volume = (0..n).map(|i| 1e4 + 500.0 * (i % 7) as f64).collect();
        BarSeries::new(
            (0..n as i64).map(|i| 1_700_000_000 + i * 86_400).collect(),
            open,
            high,
            low,
            close.to_vec(),
            volume,
        )
        .unwrap()
        .with_symbol("SYN")
    }

    /// Closes whose log returns follow an AR(1) with coefficient 0.6: learnable
    /// structure (a return predicts the sign of the next one).
    fn ar1_closes(n: usize, seed: u64) -> Vec<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut price = 100.0;
        let mut previous = 0.0;
        (0..n)
            .map(|_| {
                let r = 0.6 * previous + rng.gen_range(-0.01..0.01);
                previous = r;
                price *= f64::exp(r);
                price
            })
            .collect()
    }

    /// Small and fast: debug-build tests train a few tiny networks.
    fn params() -> MlParams {
        MlParams {
            lstm: LstmConfig {
                window: 8,
                hidden_size: 6,
                epochs: 2,
                batch_size: 32,
                learning_rate: 0.01,
                ..LstmConfig::default()
            },
            signal: SignalConfig {
                threshold: Some(0.0),
                ..SignalConfig::default()
            },
            train_window: 80,
            retrain_every: 50,
            min_history: 100,
            volatility_window: 10,
            allow_short: false,
        }
    }

    fn config() -> BacktestConfig {
        BacktestConfig {
            initial_capital: 100_000.0,
            execution: ExecutionModel::new(CommissionModel::new(0.0005, 0.0).unwrap(), 2.0)
                .unwrap(),
            ..BacktestConfig::default()
        }
    }

    /// Runs the strategy, recording per bar the decision and the predicted price.
    fn run_recording(
        strategy: &mut MlStrategy,
        series: &BarSeries,
    ) -> (
        crate::backtest::BacktestResult,
        Vec<(Decision, Option<f64>)>,
    ) {
        // The closure does not forward `start`: reset the strategy here.
        strategy.start(1).unwrap();
        let mut log = Vec::new();
        let mut recording = from_fn(|ctx| {
            let decision = strategy.on_bar(ctx);
            let predicted = strategy.last_signal().map(|s| s.predicted_price);
            log.push((decision, predicted));
            decision
        });
        let result = Backtester::new(config())
            .unwrap()
            .run(series, &mut recording)
            .unwrap();
        (result, log)
    }

    #[test]
    fn later_bars_change_no_earlier_decision() {
        let n = 300;
        let cut = 180;
        let original = ar1_closes(n, 1);
        // Same bars up to `cut`, then a different (still valid) path.
        let mut altered = original.clone();
        let other = ar1_closes(n, 99);
        for i in cut + 1..n {
            altered[i] = original[cut] * other[i] / other[cut] * 1.3;
        }
        let mut strategy = MlStrategy::new(params()).unwrap();
        let (_, first) = run_recording(&mut strategy, &series_from(&original));
        let first_fits = strategy.fit_bars().to_vec();
        let (_, second) = run_recording(&mut strategy, &series_from(&altered));
        assert_eq!(first.len(), n);
        assert_eq!(second.len(), n);
        // Predictions are compared bit for bit: the fits at bars 99 and 149 saw the
        // same bars, so they are the same models.
        assert_eq!(first[..=cut], second[..=cut]);
        assert!(first[99..=cut].iter().all(|(_, p)| p.is_some()));
        // The test can fail: the later bars do change the later predictions.
        assert_ne!(first[cut + 1..], second[cut + 1..]);
        assert_eq!(first_fits, strategy.fit_bars());
    }

    #[test]
    fn it_trades_on_a_learnable_series_and_the_result_is_consistent() {
        let n = 300;
        let series = series_from(&ar1_closes(n, 7));
        // Ten epochs on 100 bars (a third of a second in a debug build) are enough for
        // the network to pick up the AR(1) sign persistence.
        let p = MlParams {
            lstm: LstmConfig {
                epochs: 10,
                ..params().lstm
            },
            train_window: 100,
            ..params()
        };
        let mut strategy = MlStrategy::new(p).unwrap();
        let (result, log) = run_recording(&mut strategy, &series);
        assert!(strategy.errors().is_empty(), "{:?}", strategy.errors());
        // Hold before the first fit (bar 99), a signal on every bar after it.
        assert!(log[..99].iter().all(|(d, p)| d.is_hold() && p.is_none()));
        assert!(log[99..].iter().all(|(_, p)| p.is_some()));
        let entries = log
            .iter()
            .filter(|(d, _)| matches!(d.action, crate::backtest::Action::Enter { .. }))
            .count();
        assert!(entries > 0);
        let filled: Vec<_> = result
            .orders
            .iter()
            .filter(|o| o.status == OrderStatus::Filled)
            .collect();
        assert!(!filled.is_empty(), "no order filled");
        let exit_orders: Vec<u64> = result.exits.iter().map(|e| e.order_id).collect();
        for order in &filled {
            assert!(order.created_at >= series.timestamps()[99]);
            if exit_orders.contains(&order.id) {
                // A stop-loss / take-profit fills on the bar that reaches its level.
                assert_eq!(order.filled_at, Some(order.created_at));
            } else {
                // Decided at a close, filled at the next bar's open.
                assert!(order.filled_at.unwrap() > order.created_at);
            }
        }
        // Entries carry the signal's levels: with the default multiples the stop is
        // 2 sigma below and the take-profit 3 sigma above the decision bar's close.
        let entry = filled
            .iter()
            .find(|o| o.side == crate::order::Side::Buy)
            .unwrap();
        let bar = series
            .timestamps()
            .iter()
            .position(|&t| t == entry.created_at)
            .unwrap();
        let close = series.close()[bar];
        let (stop, take) = (entry.stop_loss.unwrap(), entry.take_profit.unwrap());
        assert!(stop < close && close < take, "{stop} {close} {take}");
        assert!(((take - close) / (close - stop) - 1.5).abs() < 1e-9);
        // How often the predicted direction of the next close was right, against the
        // rule that knows the process (the next return has the sign of the last one;
        // for a Gaussian AR(1) with coefficient 0.6 it is right 0.5 + asin(0.6) / pi =
        // 70 % of the time) and a coin (50 %, standard deviation 3.5 % over 200 bars).
        let close = series.close();
        let up = |t: usize| close[t + 1] > close[t];
        let model_hits = (99..n - 1)
            .filter(|&t| (log[t].1.unwrap() > close[t]) == up(t))
            .count();
        let rule_hits = (99..n - 1)
            .filter(|&t| (close[t] > close[t - 1]) == up(t))
            .count();
        println!(
            "orders {}, filled {}, exits {}, trades {}; direction right: model {model_hits}/200, \
             sign of the last return {rule_hits}/200",
            result.orders.len(),
            filled.len(),
            result.exits.len(),
            result.trades.len(),
        );
        assert!(model_hits > 120, "model right {model_hits}/200");
        assert_eq!(result.equity.len(), n + 1);
        assert!(result.equity.iter().all(|e| e.is_finite() && *e > 0.0));
        assert_eq!(result.fills.len(), filled.len());
        assert_eq!(result.metrics.trades.n_trades, result.trades.len());
        let last = *result.equity.last().unwrap();
        assert!((result.final_snapshot.total_value - last).abs() < 1e-6 * last);
    }

    #[test]
    fn fits_happen_at_the_documented_bars_on_the_documented_window() {
        let n = 300;
        let series = series_from(&ar1_closes(n, 3));
        let mut strategy = MlStrategy::new(params()).unwrap();
        let (_, log) = run_recording(&mut strategy, &series);
        // min_history 100, retrain_every 50: bars 99, 149, 199, 249, 299.
        assert_eq!(strategy.fit_bars(), &[99, 149, 199, 249, 299]);
        assert_eq!(strategy.fits(), 5);
        // An independent fit on bars 170 ..= 249 (train_window 80 ending at the fit
        // bar 249) predicts what the strategy predicted at bar 260 from bars 252 ..= 260.
        let independent = LstmPredictor::train(&series.slice(170..250), &params().lstm, |_| ())
            .unwrap()
            .predict(&series.slice(252..261))
            .unwrap();
        assert_eq!(log[260].1, Some(independent));
        // ... and a fit on a window shifted by one bar does not.
        let shifted = LstmPredictor::train(&series.slice(171..251), &params().lstm, |_| ())
            .unwrap()
            .predict(&series.slice(252..261))
            .unwrap();
        assert_ne!(log[260].1, Some(shifted));
        // A second run refits from scratch and repeats itself exactly.
        let (_, again) = run_recording(&mut strategy, &series);
        assert_eq!(strategy.fit_bars(), &[99, 149, 199, 249, 299]);
        assert_eq!(log, again);
    }

    #[test]
    fn early_fits_use_every_bar_when_min_history_is_below_the_window() {
        // min_history 40 < train_window 80: the fit at bar 39 trains on bars 0 ..= 39.
        let series = series_from(&ar1_closes(60, 5));
        let p = MlParams {
            min_history: 40,
            retrain_every: 100,
            ..params()
        };
        let mut strategy = MlStrategy::new(p.clone()).unwrap();
        let (_, log) = run_recording(&mut strategy, &series);
        assert_eq!(strategy.fit_bars(), &[39]);
        let independent = LstmPredictor::train(&series.slice(0..40), &p.lstm, |_| ())
            .unwrap()
            .predict(&series.slice(42..51))
            .unwrap();
        assert_eq!(log[50].1, Some(independent));
    }

    #[test]
    fn hand_driven_calls_match_the_backtester_run() {
        // Calling bars out of order (a fresh instance jumping straight to bar 230) gives
        // the model of the scheduled fit at 199, as the consecutive run had.
        let series = series_from(&ar1_closes(300, 11));
        let mut strategy = MlStrategy::new(params()).unwrap();
        let (_, log) = run_recording(&mut strategy, &series);
        let mut portfolio = Portfolio::new(100_000.0).unwrap();
        let id = portfolio.register(Instrument::new("SYN")).unwrap();
        assert_eq!(id, SymbolId(0));
        let mut fresh = MlStrategy::new(params()).unwrap();
        let ctx = Context::new(History::new(&series, 230), &portfolio, id);
        fresh.on_bar(&ctx);
        assert_eq!(fresh.fit_bars(), &[199]);
        let predicted = fresh.last_signal().unwrap().predicted_price;
        assert_eq!(Some(predicted), log[230].1);
        // The re-warmed volatility is the one of the last 10 returns up to bar 230.
        let close = series.close();
        let returns: Vec<f64> = (221..=230).map(|i| close[i] / close[i - 1] - 1.0).collect();
        let mean = returns.iter().sum::<f64>() / 10.0;
        let std = (returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / 9.0).sqrt();
        let confidence = fresh.last_signal().unwrap().confidence;
        let r = (predicted - close[230]) / close[230];
        let expected = statrs::function::erf::erf(r.abs() / (std * std::f64::consts::SQRT_2));
        assert!(
            (confidence - expected).abs() < 1e-9,
            "{confidence} vs {expected}"
        );
    }

    #[test]
    fn signals_map_to_decisions() {
        let signal = |action, stop_loss, take_profit| Signal {
            symbol: "X".into(),
            action,
            confidence: 0.4,
            price: 100.0,
            predicted_price: 101.0,
            expected_return: 0.01,
            stop_loss,
            take_profit,
            created_at: 0,
        };
        let buy = signal(SignalAction::Buy, Some(98.0), Some(103.0));
        let expected = Decision::enter_long()
            .with_confidence(0.4)
            .with_stop_loss(98.0)
            .with_take_profit(103.0);
        assert_eq!(decision_for(&buy, false), expected);
        assert_eq!(decision_for(&buy, true), expected);
        let sell = signal(SignalAction::Sell, Some(102.0), None);
        assert_eq!(decision_for(&sell, false), Decision::close());
        assert_eq!(
            decision_for(&sell, true),
            Decision::enter_short()
                .with_confidence(0.4)
                .with_stop_loss(102.0)
        );
        let hold = signal(SignalAction::Hold, None, None);
        assert_eq!(decision_for(&hold, true), Decision::hold());
    }

    #[test]
    fn a_failed_fit_is_recorded_and_the_strategy_holds() {
        // An absurd (but finite) learning rate overflows f32 and diverges.
        let p = MlParams {
            lstm: LstmConfig {
                learning_rate: 1e30,
                ..params().lstm
            },
            ..params()
        };
        let series = series_from(&ar1_closes(160, 2));
        let mut strategy = MlStrategy::new(p).unwrap();
        let (result, log) = run_recording(&mut strategy, &series);
        assert!(log.iter().all(|(d, p)| d.is_hold() && p.is_none()));
        assert!(result.orders.is_empty());
        assert_eq!(strategy.fits(), 0);
        let bars: Vec<usize> = strategy.errors().iter().map(|(bar, _)| *bar).collect();
        assert_eq!(bars, vec![99, 149]); // one attempt per scheduled fit
        assert!(
            matches!(strategy.errors()[0].1, Error::TrainingDiverged { .. }),
            "{:?}",
            strategy.errors()
        );
    }

    #[test]
    fn bad_parameters_are_rejected_by_name() {
        let base = params();
        // window 8 with a validation part: at least 8 + 3 = 11 bars.
        assert_eq!(base.min_training_bars(), 11);
        let cases: Vec<(MlParams, &str)> = vec![
            (
                MlParams {
                    train_window: 10,
                    ..base.clone()
                },
                "train_window",
            ),
            (
                MlParams {
                    min_history: 10,
                    ..base.clone()
                },
                "min_history",
            ),
            (
                MlParams {
                    retrain_every: 0,
                    ..base.clone()
                },
                "retrain_every",
            ),
            (
                MlParams {
                    volatility_window: 1,
                    ..base.clone()
                },
                "volatility_window",
            ),
            (
                MlParams {
                    lstm: LstmConfig {
                        hidden_size: 0,
                        ..base.lstm.clone()
                    },
                    ..base.clone()
                },
                "hidden_size",
            ),
            (
                MlParams {
                    signal: SignalConfig {
                        min_confidence: 1.5,
                        ..base.signal.clone()
                    },
                    ..base.clone()
                },
                "min_confidence",
            ),
        ];
        for (bad, field) in cases {
            let err = MlStrategy::new(bad).unwrap_err();
            assert!(
                matches!(err, Error::InvalidParameter { name, .. } if name == field),
                "{field}: {err}"
            );
        }
        // Exactly the minimum is accepted; without a validation part one bar less.
        MlStrategy::new(MlParams {
            train_window: 11,
            min_history: 11,
            ..base.clone()
        })
        .unwrap();
        let no_validation = MlParams {
            lstm: LstmConfig {
                validation_fraction: 0.0,
                ..base.lstm.clone()
            },
            train_window: 10,
            min_history: 10,
            ..base.clone()
        };
        assert_eq!(no_validation.min_training_bars(), 10);
        no_validation.build().unwrap();
        let mut strategy = MlStrategy::new(base).unwrap();
        assert!(matches!(
            strategy.start(2),
            Err(Error::InvalidParameter {
                name: "symbols",
                ..
            })
        ));
        assert!(
            serde_json::from_str::<MlParams>(r#"{"train_windw": 100}"#).is_err(),
            "unknown fields are rejected"
        );
    }

    #[test]
    fn defaults_are_valid_and_the_strategy_is_send() {
        let defaults = MlParams::default();
        defaults.validate().unwrap();
        assert_eq!(
            (
                defaults.train_window,
                defaults.retrain_every,
                defaults.min_history,
                defaults.volatility_window
            ),
            (500, 63, 250, 20)
        );
        fn check<T: Send + Sync>() {}
        check::<MlStrategy>();
    }
}
