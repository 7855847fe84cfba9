//! The full metrics set of an equity curve and its trades.

use serde::{Deserialize, Serialize};

use super::curve::{CurvePass, FeedPass, TimestampOrder, scan_curve, scan_feed};
use super::drawdown::DrawdownPeriod;
use super::feed::CurveFeed;
use super::returns::{cagr_from_growth, calmar_from};
use super::trades::TradeStats;
use super::undefined::{Metric, Undefined, metric_struct};
use crate::error::{Error, Result};

/// Trading days in a year, the default annualization of daily returns.
pub const TRADING_DAYS_PER_YEAR: f64 = 252.0;

/// Parameters of [`Metrics::compute`].
///
/// Defaults: `periods_per_year = 252` (daily bars), `risk_free_rate = 0`,
/// `sortino_target = 0`. Rates are per period, like the returns (an annual 4% on daily
/// bars is about `0.04 / 252`).
///
/// ```
/// use quantcore::metrics::MetricsConfig;
/// let hourly_crypto = MetricsConfig { periods_per_year: 24.0 * 365.0, ..Default::default() };
/// assert_eq!(hourly_crypto.risk_free_rate, 0.0);
/// assert!(hourly_crypto.validate().is_ok());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Periods (bars) per year used to annualize; finite and positive.
    pub periods_per_year: f64,
    /// Risk-free rate per period, subtracted in the Sharpe ratio; finite.
    pub risk_free_rate: f64,
    /// Minimum acceptable return per period of the Sortino ratio; finite.
    pub sortino_target: f64,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            periods_per_year: TRADING_DAYS_PER_YEAR,
            risk_free_rate: 0.0,
            sortino_target: 0.0,
        }
    }
}

impl MetricsConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the first bad field.
    pub fn validate(&self) -> Result<()> {
        if !(self.periods_per_year.is_finite() && self.periods_per_year > 0.0) {
            return Err(Error::invalid_parameter(
                "periods_per_year",
                self.periods_per_year,
                "must be finite and positive",
            ));
        }
        for (name, value) in [
            ("risk_free_rate", self.risk_free_rate),
            ("sortino_target", self.sortino_target),
        ] {
            if !value.is_finite() {
                return Err(Error::invalid_parameter(name, value, "must be finite"));
            }
        }
        Ok(())
    }
}

/// The largest returns buffer a thread keeps between calls of [`Metrics::compute`]
/// (4M returns, 32 MB); longer curves use a buffer of their own.
const SCRATCH_KEPT: usize = 1 << 22;

thread_local! {
    /// The returns buffer of [`Metrics::compute`], kept per thread: a backtest of a
    /// million bars would otherwise map 8 MB of fresh pages on every run, and the page
    /// faults cost about as much as the statistics (a sweep computes thousands).
    static SCRATCH: std::cell::RefCell<Vec<f64>> = const { std::cell::RefCell::new(Vec::new()) };
    /// The stored returns of [`Metrics::scan_feed`], kept per thread for the same
    /// reason.
    static STORED_RETURNS: std::cell::RefCell<Vec<f64>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` on a buffer of any length and contents: the thread's kept one when it is
/// free and the result fits [`SCRATCH_KEPT`], else a new one. The kept buffer is not
/// cleared: `f` resizes it and overwrites every element, so a call no longer rewrites
/// a million zeros before its returns.
fn with_scratch<T>(f: impl FnOnce(&mut Vec<f64>) -> T) -> T {
    with_kept(&SCRATCH, f)
}

/// [`with_scratch`] with the thread's buffer `key`.
fn with_kept<T>(
    key: &'static std::thread::LocalKey<std::cell::RefCell<Vec<f64>>>,
    f: impl FnOnce(&mut Vec<f64>) -> T,
) -> T {
    key.with(|cell| match cell.try_borrow_mut() {
        Ok(mut kept) => {
            let result = f(&mut kept);
            if kept.capacity() > SCRATCH_KEPT {
                *kept = Vec::new();
            }
            result
        }
        Err(_) => f(&mut Vec::new()),
    })
}

metric_struct! {
    /// Every return, risk and trade statistic of a run, computed by [`Metrics::compute`].
    ///
    /// Conventions are empyrical's (see the [module docs](super)). Fields that can be
    /// undefined are [`Metric`]s: `Err(reason)` instead of a made-up number. In JSON
    /// they are numbers or `null`, the reasons of the nulls under `"undefined"`.
    ///
    /// ```
    /// use quantcore::metrics::{Metrics, MetricsConfig, Undefined};
    /// let day = 86_400;
    /// let timestamps = [0, day, 2 * day, 3 * day];
    /// let equity = [100.0, 110.0, 99.0, 108.9]; // +10%, -10%, +10%
    /// let metrics = Metrics::compute(&timestamps, &equity, &[8.9], &MetricsConfig::default())?;
    /// assert!((metrics.total_return - 0.089).abs() < 1e-12);
    /// assert!((metrics.max_drawdown + 0.1).abs() < 1e-12); // 99 / 110 - 1
    /// let period = metrics.max_drawdown_period.unwrap();
    /// assert_eq!((period.peak_timestamp, period.trough_timestamp), (day, 2 * day));
    /// assert_eq!(period.recovery_timestamp, None); // 108.9 < 110
    /// assert_eq!(metrics.trades.profit_factor, Err(Undefined::NoLosingTrades));
    /// # Ok::<(), quantcore::Error>(())
    /// ```
    pub struct Metrics via MetricsJson = "MetricsJson" {
        /// The parameters used.
        pub config: MetricsConfig,
        /// Timestamp of the first point (the starting capital), Unix seconds.
        pub start_timestamp: i64,
        /// Timestamp of the last point, Unix seconds.
        pub end_timestamp: i64,
        /// Number of returns: points of the curve minus one.
        pub n_periods: usize,
        /// The starting capital, `equity[0]`.
        pub initial_equity: f64,
        /// The last equity value.
        pub final_equity: f64,
        /// `final_equity / initial_equity - 1`.
        pub total_return: f64,
        /// `min_t(equity_t / max_{s<=t} equity_s - 1)`, a fraction <= 0.
        pub max_drawdown: f64,
        /// The episode of the maximum drawdown (peak, trough, recovery, duration);
        /// `None` when the equity never fell below a previous peak.
        pub max_drawdown_period: Option<DrawdownPeriod>,
        /// Statistics of the closed trades.
        pub trades: TradeStats,
        ;
        /// Compound annual growth rate `(final / initial)^(ppy / n_periods) - 1`
        /// (empyrical's `annual_return`).
        pub cagr: Metric,
        /// Arithmetic annualized return `mean(r) * ppy`.
        pub annualized_mean_return: Metric,
        /// Annualized volatility `std(r, ddof=1) * sqrt(ppy)`.
        pub volatility: Metric,
        /// `mean(r - rf) / std(r, ddof=1) * sqrt(ppy)`.
        pub sharpe_ratio: Metric,
        /// `mean(r - target) * ppy / downside_deviation`.
        pub sortino_ratio: Metric,
        /// Annualized `sqrt(mean(min(r - target, 0)^2)) * sqrt(ppy)`, over all periods.
        pub downside_deviation: Metric,
        /// `cagr / |max_drawdown|`.
        pub calmar_ratio: Metric,
        /// Population skewness of the returns.
        pub skewness: Metric,
        /// Population excess kurtosis of the returns (0 for a normal distribution).
        pub excess_kurtosis: Metric,
        /// `|p95| / |p5|` of the returns.
        pub tail_ratio: Metric,
        /// Historical one-period VaR at 95%: the 5th percentile return (usually < 0).
        pub value_at_risk_95: Metric,
        /// Mean of the worst 5% of returns (empyrical's CVaR).
        pub conditional_value_at_risk_95: Metric,
        /// Best one-period return.
        pub best_period_return: Metric,
        /// Worst one-period return.
        pub worst_period_return: Metric,
    }
}

impl Metrics {
    /// Computes the full set from an equity curve and the PnLs of closed trades.
    ///
    /// `timestamps` (Unix seconds, non-decreasing) and `equity` have one entry per
    /// point; `equity[0]` is the starting capital, and returns are
    /// `equity[t] / equity[t - 1] - 1`. `trade_pnls` may be empty. Cost: one pass over
    /// the curve (checks, returns, moments, drawdown, tails), which keeps no more than
    /// the few percent of the returns near the percentiles, in a buffer the thread
    /// reuses; then O(n) selections among those; no sorting.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for a bad config; [`Error::LengthMismatch`] when the
    /// columns differ in length; [`Error::NotEnoughData`] for an empty curve;
    /// [`Error::NonFinite`] / [`Error::NonPositiveEquity`] naming the first bad equity
    /// point; [`Error::UnsortedTimestamps`]; [`Error::NonFinite`] for a bad trade PnL.
    pub fn compute(
        timestamps: &[i64],
        equity: &[f64],
        trade_pnls: &[f64],
        config: &MetricsConfig,
    ) -> Result<Metrics> {
        Metrics::compute_with(
            timestamps,
            equity,
            trade_pnls,
            config,
            TimestampOrder::Check,
        )
    }

    /// [`compute`](Self::compute) for timestamps the caller guarantees to be
    /// non-decreasing (e.g. one per bar of a validated [`BarSeries`](crate::BarSeries),
    /// the starting capital at the first bar's time): the pass over the curve does not
    /// read them (8 MB on a million points) but for the drawdown's dates. Everything
    /// else is checked as in `compute`, with the same errors.
    ///
    /// Unsorted timestamps are a bug of the caller: a debug build panics on them, a
    /// release build returns metrics as if they were sorted (the durations in seconds
    /// of the drawdown may then be negative).
    ///
    /// # Errors
    /// As [`compute`](Self::compute), but for [`Error::UnsortedTimestamps`], which the
    /// fast path never returns (the slow path, taken on a bad equity value or on a
    /// valid curve whose returns overflow, still checks the order).
    pub(crate) fn compute_with_sorted_timestamps(
        timestamps: &[i64],
        equity: &[f64],
        trade_pnls: &[f64],
        config: &MetricsConfig,
    ) -> Result<Metrics> {
        debug_assert!(
            timestamps.windows(2).all(|w| w[0] <= w[1]),
            "compute_with_sorted_timestamps: unsorted timestamps"
        );
        Metrics::compute_with(
            timestamps,
            equity,
            trade_pnls,
            config,
            TimestampOrder::Trusted,
        )
    }

    /// The part of [`compute_with_sorted_timestamps`](Self::compute_with_sorted_timestamps)
    /// that reads the equity, on a curve another thread is writing to `feed`, while it
    /// writes it (see `curve.rs`); [`from_feed`](Self::from_feed) finishes the work.
    /// Returns when the writer is done.
    pub(crate) fn scan_feed(feed: &CurveFeed, config: &MetricsConfig) -> FeedPass {
        with_kept(&STORED_RETURNS, |returns| {
            with_scratch(|buffer| scan_feed(feed, config.sortino_target, returns, buffer))
        })
    }

    /// The metrics of the curve `feed` received, `equity`, given the pass
    /// [`scan_feed`](Self::scan_feed) made over it: the same metrics, bit for bit, and
    /// the same errors as [`compute_with_sorted_timestamps`](Self::compute_with_sorted_timestamps).
    pub(crate) fn from_feed(
        pass: FeedPass,
        timestamps: &[i64],
        equity: &[f64],
        trade_pnls: &[f64],
        config: &MetricsConfig,
    ) -> Result<Metrics> {
        debug_assert!(
            timestamps.windows(2).all(|w| w[0] <= w[1]),
            "from_feed: unsorted timestamps"
        );
        config.validate()?;
        let curve =
            with_scratch(|buffer| pass.resolve(timestamps, equity, config.sortino_target, buffer))?;
        Metrics::assemble(curve, timestamps, equity, trade_pnls, config)
    }

    fn compute_with(
        timestamps: &[i64],
        equity: &[f64],
        trade_pnls: &[f64],
        config: &MetricsConfig,
        order: TimestampOrder,
    ) -> Result<Metrics> {
        config.validate()?;
        let curve = with_scratch(|buffer| {
            scan_curve(timestamps, equity, config.sortino_target, order, buffer)
        })?;
        Metrics::assemble(curve, timestamps, equity, trade_pnls, config)
    }

    /// The metrics from the pass over the curve (which checked it) and the trades.
    fn assemble(
        curve: CurvePass,
        timestamps: &[i64],
        equity: &[f64],
        trade_pnls: &[f64],
        config: &MetricsConfig,
    ) -> Result<Metrics> {
        let (moments, tails) = (curve.moments, curve.tails);
        let trades = TradeStats::compute(trade_pnls)?;
        let ppy = config.periods_per_year;
        let n_periods = moments.n;
        let (max_drawdown, period) = (curve.max_drawdown, curve.period);
        let initial_equity = equity[0];
        let final_equity = equity[equity.len() - 1];
        let cagr = cagr_from_growth(final_equity / initial_equity, n_periods, ppy);
        let extreme = |value: f64| {
            if n_periods == 0 {
                Err(Undefined::TooFewPeriods {
                    required: 1,
                    actual: 0,
                })
            } else {
                Ok(value)
            }
        };

        Ok(Metrics {
            config: *config,
            start_timestamp: timestamps[0],
            end_timestamp: timestamps[timestamps.len() - 1],
            n_periods,
            initial_equity,
            final_equity,
            total_return: final_equity / initial_equity - 1.0,
            max_drawdown,
            max_drawdown_period: period,
            trades,
            cagr,
            annualized_mean_return: moments.annualized_mean_return(ppy),
            volatility: moments.annual_volatility(ppy),
            sharpe_ratio: moments.sharpe_ratio(config.risk_free_rate, ppy),
            sortino_ratio: moments.sortino_ratio(config.sortino_target, ppy),
            downside_deviation: moments.downside_deviation(ppy),
            calmar_ratio: calmar_from(cagr, max_drawdown),
            skewness: moments.skewness(),
            excess_kurtosis: moments.excess_kurtosis(),
            tail_ratio: tails.tail_ratio,
            value_at_risk_95: tails.value_at_risk,
            conditional_value_at_risk_95: tails.conditional_value_at_risk,
            best_period_return: extreme(moments.best),
            worst_period_return: extreme(moments.worst),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{self as free};

    const DAY: i64 = 86_400;

    fn days(n: usize) -> Vec<i64> {
        (0..n as i64).map(|i| 1_577_836_800 + i * DAY).collect()
    }

    fn close(actual: Metric, expected: f64) {
        let actual = actual.unwrap_or_else(|reason| panic!("undefined: {reason}"));
        assert!(
            (actual - expected).abs() <= 1e-10 * expected.abs().max(1.0),
            "{actual} vs {expected}"
        );
    }

    /// Equity with returns +2%, -2%, +5%, -3%:
    /// 100 -> 102 -> 99.96 -> 104.958 -> 101.80926.
    fn sample() -> (Vec<i64>, Vec<f64>) {
        (days(5), vec![100.0, 102.0, 99.96, 104.958, 101.80926])
    }

    #[test]
    fn full_set_by_hand() {
        let (ts, equity) = sample();
        let m = Metrics::compute(&ts, &equity, &[5.0, -3.0], &MetricsConfig::default()).unwrap();
        let ppy: f64 = 252.0;
        // mean 0.02 / 4 = 0.005; deviations 0.015, -0.025, 0.045, -0.035
        // sum of squares 2.25e-4 + 6.25e-4 + 20.25e-4 + 12.25e-4 = 41e-4
        let std = (41e-4_f64 / 3.0).sqrt();
        assert_eq!(m.n_periods, 4);
        assert_eq!((m.start_timestamp, m.end_timestamp), (ts[0], ts[4]));
        assert!((m.total_return - 0.0180926).abs() < 1e-12);
        close(m.cagr, 1.0180926_f64.powf(252.0 / 4.0) - 1.0);
        close(m.annualized_mean_return, 0.005 * 252.0);
        close(m.volatility, std * ppy.sqrt());
        close(m.sharpe_ratio, 0.005 / std * ppy.sqrt());
        // downside (target 0): squares 4e-4 + 9e-4 = 13e-4, / 4 = 3.25e-4
        let downside = 3.25e-4_f64.sqrt() * ppy.sqrt();
        close(m.downside_deviation, downside);
        close(m.sortino_ratio, 0.005 * 252.0 / downside);
        // deepest fall: 104.958 (i=3) -> 101.80926 (i=4), -3%, not recovered
        assert!((m.max_drawdown + 0.03).abs() < 1e-12);
        let period = m.max_drawdown_period.unwrap();
        assert_eq!((period.peak_index, period.trough_index), (3, 4));
        assert_eq!(
            (period.peak_timestamp, period.trough_timestamp),
            (ts[3], ts[4])
        );
        assert_eq!(period.recovery_timestamp, None);
        assert_eq!((period.duration_periods, period.duration_seconds), (1, DAY));
        close(m.calmar_ratio, (1.0180926_f64.powf(63.0) - 1.0) / 0.03);
        // m3 = 0.015^3 - 0.025^3 + 0.045^3 - 0.035^3 = 36e-6; skew = (36e-6/4) / (41e-4/4)^1.5
        close(m.skewness, 9e-6 / 1.025e-3_f64.powf(1.5));
        // m4 = (0.015^4 + 0.025^4 + 0.045^4 + 0.035^4) = 604.25e-8
        close(
            m.excess_kurtosis,
            (604.25e-8 / 4.0) / 1.025e-3_f64.powi(2) - 3.0,
        );
        // sorted returns -0.03, -0.02, 0.02, 0.05; p5 at 3 * 0.05 = 0.15:
        // -0.03 + 0.15 * 0.01 = -0.0285; p95 at 2.85: 0.02 + 0.85 * 0.03 = 0.0455
        close(m.value_at_risk_95, -0.0285);
        close(m.conditional_value_at_risk_95, -0.03);
        close(m.tail_ratio, 0.0455 / 0.0285);
        close(m.best_period_return, 0.05);
        close(m.worst_period_return, -0.03);
        assert_eq!(m.trades.n_trades, 2);
        assert_eq!(m.trades.profit_factor, Ok(5.0 / 3.0));
    }

    #[test]
    fn agrees_with_the_free_functions() {
        let (ts, equity) = sample();
        let config = MetricsConfig {
            periods_per_year: 52.0,
            risk_free_rate: 0.0005,
            sortino_target: 0.001,
        };
        let m = Metrics::compute(&ts, &equity, &[], &config).unwrap();
        let r: Vec<f64> = equity.windows(2).map(|w| w[1] / w[0] - 1.0).collect();
        close(
            m.sharpe_ratio,
            free::sharpe_ratio(&r, 0.0005, 52.0).unwrap(),
        );
        close(
            m.sortino_ratio,
            free::sortino_ratio(&r, 0.001, 52.0).unwrap(),
        );
        close(m.cagr, free::cagr(&r, 52.0).unwrap());
        close(m.calmar_ratio, free::calmar_ratio(&r, 52.0).unwrap());
        close(Ok(m.max_drawdown), free::max_drawdown(&r).unwrap());
        close(Ok(m.total_return), free::total_return(&r).unwrap());
        close(m.tail_ratio, free::tail_ratio(&r).unwrap());
        close(m.value_at_risk_95, free::value_at_risk(&r, 0.05).unwrap());
    }

    #[test]
    fn a_single_point_has_only_trivial_metrics() {
        let m = Metrics::compute(&[0], &[1_000.0], &[], &MetricsConfig::default()).unwrap();
        assert_eq!(m.n_periods, 0);
        assert_eq!((m.total_return, m.max_drawdown), (0.0, 0.0));
        assert!(m.max_drawdown_period.is_none());
        let one = Undefined::TooFewPeriods {
            required: 1,
            actual: 0,
        };
        let two = Undefined::TooFewPeriods {
            required: 2,
            actual: 0,
        };
        assert_eq!(m.cagr, Err(one));
        assert_eq!(m.calmar_ratio, Err(one));
        assert_eq!(m.value_at_risk_95, Err(one));
        assert_eq!(m.best_period_return, Err(one));
        assert_eq!(m.sharpe_ratio, Err(two));
        assert_eq!(m.volatility, Err(two));
        assert_eq!(m.trades.win_rate, Err(Undefined::NoTrades));
    }

    #[test]
    fn flat_equity_is_undefined_not_zero_or_infinite() {
        let m = Metrics::compute(&days(4), &[100.0; 4], &[], &MetricsConfig::default()).unwrap();
        assert_eq!(m.sharpe_ratio, Err(Undefined::ZeroVariance));
        assert_eq!(m.sortino_ratio, Err(Undefined::NoDownside));
        assert_eq!(m.calmar_ratio, Err(Undefined::NoDrawdown));
        assert_eq!(m.tail_ratio, Err(Undefined::ZeroLeftTail));
        assert_eq!(m.skewness, Err(Undefined::ZeroVariance));
        assert_eq!(m.volatility, Ok(0.0));
        assert_eq!(m.cagr, Ok(0.0));
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        let config = MetricsConfig::default();
        let err = Metrics::compute(&days(2), &[1.0, 2.0, 3.0], &[], &config).unwrap_err();
        assert!(matches!(
            err,
            Error::LengthMismatch {
                field: "equity",
                expected: 2,
                actual: 3
            }
        ));
        let err = Metrics::compute(&[], &[], &[], &config).unwrap_err();
        assert!(matches!(
            err,
            Error::NotEnoughData {
                required: 1,
                actual: 0,
                ..
            }
        ));
        let err = Metrics::compute(&days(3), &[1.0, 0.0, 1.0], &[], &config).unwrap_err();
        assert_eq!(err.to_string(), "row 1: equity must be positive, was 0");
        let err = Metrics::compute(&days(2), &[1.0, f64::INFINITY], &[], &config).unwrap_err();
        assert!(matches!(
            err,
            Error::NonFinite {
                row: 1,
                field: "equity",
                ..
            }
        ));
        let err = Metrics::compute(&[2, 1], &[1.0, 1.0], &[], &config).unwrap_err();
        assert!(matches!(err, Error::UnsortedTimestamps { row: 1, .. }));
        let err = Metrics::compute(&days(2), &[1.0, 1.0], &[f64::NAN], &config).unwrap_err();
        assert!(matches!(
            err,
            Error::NonFinite {
                row: 0,
                field: "trade_pnls",
                ..
            }
        ));
        for bad in [
            MetricsConfig {
                periods_per_year: 0.0,
                ..config
            },
            MetricsConfig {
                risk_free_rate: f64::NAN,
                ..config
            },
            MetricsConfig {
                sortino_target: f64::INFINITY,
                ..config
            },
        ] {
            let err = Metrics::compute(&days(2), &[1.0, 1.0], &[], &bad).unwrap_err();
            assert!(matches!(err, Error::InvalidParameter { .. }), "{err}");
        }
    }

    #[test]
    fn json_is_flat_with_reasons_and_round_trips() {
        let m = Metrics::compute(&days(4), &[100.0; 4], &[1.0], &MetricsConfig::default()).unwrap();
        let json = serde_json::to_value(&m).unwrap();
        assert!(json["sharpe_ratio"].is_null());
        assert_eq!(json["undefined"]["sharpe_ratio"]["reason"], "zero_variance");
        assert_eq!(
            json["undefined"]["sharpe_ratio"]["message"],
            "returns have zero variance"
        );
        assert_eq!(json["volatility"], 0.0);
        assert_eq!(json["config"]["periods_per_year"], 252.0);
        assert_eq!(json["trades"]["win_rate"], 1.0);
        assert_eq!(
            json["trades"]["undefined"]["profit_factor"]["reason"],
            "no_losing_trades"
        );
        let back: Metrics = serde_json::from_value(json).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn config_rejects_unknown_fields_and_fills_defaults() {
        let config: MetricsConfig = serde_json::from_str(r#"{"periods_per_year": 52}"#).unwrap();
        assert_eq!(
            config,
            MetricsConfig {
                periods_per_year: 52.0,
                ..Default::default()
            }
        );
        assert!(serde_json::from_str::<MetricsConfig>(r#"{"ppy": 52}"#).is_err());
    }

    /// `compute` as it was before the fused pass over the curve (commit 5e5538c), kept
    /// verbatim but for the scratch buffer: the separate check, returns, moments (the
    /// old code, `reference_moments`) and drawdown scans. The reference of the
    /// bit-for-bit tests below.
    fn reference_compute(
        timestamps: &[i64],
        equity: &[f64],
        trade_pnls: &[f64],
        config: &MetricsConfig,
    ) -> Result<Metrics> {
        use crate::metrics::drawdown::{check_curve, max_drawdown_period};
        use crate::metrics::returns::{Tails, reference_moments, returns_by_sign};
        use crate::metrics::tails::VAR_CUTOFF;

        config.validate()?;
        check_curve(timestamps, equity)?;
        let trades = TradeStats::compute(trade_pnls)?;
        let ppy = config.periods_per_year;

        let mut returns = Vec::new();
        let (moments, tails) = {
            let returns = &mut returns;
            let cuts = returns_by_sign(equity, returns);
            let moments = reference_moments(returns, config.sortino_target);
            let cuts = [cuts.0, cuts.1];
            (moments, Tails::of_blocks(returns, VAR_CUTOFF, &cuts))
        };
        let n_periods = moments.n;
        let (max_drawdown, period) = max_drawdown_period(timestamps, equity);
        let initial_equity = equity[0];
        let final_equity = equity[equity.len() - 1];
        let cagr = cagr_from_growth(final_equity / initial_equity, n_periods, ppy);
        let extreme = |value: f64| {
            if n_periods == 0 {
                Err(Undefined::TooFewPeriods {
                    required: 1,
                    actual: 0,
                })
            } else {
                Ok(value)
            }
        };

        Ok(Metrics {
            config: *config,
            start_timestamp: timestamps[0],
            end_timestamp: timestamps[timestamps.len() - 1],
            n_periods,
            initial_equity,
            final_equity,
            total_return: final_equity / initial_equity - 1.0,
            max_drawdown,
            max_drawdown_period: period,
            trades,
            cagr,
            annualized_mean_return: moments.annualized_mean_return(ppy),
            volatility: moments.annual_volatility(ppy),
            sharpe_ratio: moments.sharpe_ratio(config.risk_free_rate, ppy),
            sortino_ratio: moments.sortino_ratio(config.sortino_target, ppy),
            downside_deviation: moments.downside_deviation(ppy),
            calmar_ratio: calmar_from(cagr, max_drawdown),
            skewness: moments.skewness(),
            excess_kurtosis: moments.excess_kurtosis(),
            tail_ratio: tails.tail_ratio,
            value_at_risk_95: tails.value_at_risk,
            conditional_value_at_risk_95: tails.conditional_value_at_risk,
            best_period_return: extreme(moments.best),
            worst_period_return: extreme(moments.worst),
        })
    }

    /// Asserts that `compute` and the reference agree: the same error, or the same
    /// metrics, bit for bit but for those from the moments and the CVaR, whose sums
    /// now run in another order (by blocks merged, see `moments.rs`; the CVaR's
    /// lowest returns in the order the pass meets them). Those must give the same
    /// reason when undefined and agree to `1e-9` of `max(|value|, 1)` for the
    /// dimensionless ones (Sharpe, Sortino, skewness, kurtosis), of `|value|` (and
    /// `1e-15`) for the others: far looser than the few ulps of the moments' own
    /// tests (`curve.rs`, `moments.rs`, against the scale of each sum), since a ratio
    /// can magnify them (a Sharpe ratio whose mean nearly cancels), yet a wrong
    /// formula or a lost return misses by many orders more. The rest (`Debug` prints
    /// every `f64` in its shortest round-trip form: equal text is equal bits) must
    /// match exactly, VaR and tail ratio included.
    fn assert_same_as_reference(
        timestamps: &[i64],
        equity: &[f64],
        trade_pnls: &[f64],
        config: &MetricsConfig,
    ) {
        use crate::metrics::curve::tests::near_metric;
        let fused = Metrics::compute(timestamps, equity, trade_pnls, config);
        let reference = reference_compute(timestamps, equity, trade_pnls, config);
        match (&fused, &reference) {
            (Ok(fused), Ok(reference)) => {
                let ratio = |a: Metric, b: Metric| {
                    let scale = b.map_or(1.0, |b| b.abs().max(1.0));
                    assert!(near_metric(a, b, 1e-9 * scale), "{a:?} vs {b:?}");
                };
                let value = |a: Metric, b: Metric| {
                    let scale = b.map_or(0.0, f64::abs);
                    assert!(near_metric(a, b, 1e-9 * scale + 1e-15), "{a:?} vs {b:?}");
                };
                value(
                    fused.annualized_mean_return,
                    reference.annualized_mean_return,
                );
                value(fused.volatility, reference.volatility);
                value(fused.downside_deviation, reference.downside_deviation);
                value(
                    fused.conditional_value_at_risk_95,
                    reference.conditional_value_at_risk_95,
                );
                ratio(fused.sharpe_ratio, reference.sharpe_ratio);
                ratio(fused.sortino_ratio, reference.sortino_ratio);
                ratio(fused.skewness, reference.skewness);
                ratio(fused.excess_kurtosis, reference.excess_kurtosis);
                let rest = |m: &Metrics| Metrics {
                    annualized_mean_return: Ok(0.0),
                    volatility: Ok(0.0),
                    downside_deviation: Ok(0.0),
                    conditional_value_at_risk_95: Ok(0.0),
                    sharpe_ratio: Ok(0.0),
                    sortino_ratio: Ok(0.0),
                    skewness: Ok(0.0),
                    excess_kurtosis: Ok(0.0),
                    ..m.clone()
                };
                assert_eq!(
                    format!("{:?}", rest(fused)),
                    format!("{:?}", rest(reference))
                );
            }
            (Err(fused), Err(reference)) => {
                assert_eq!(format!("{fused:?}"), format!("{reference:?}"));
            }
            _ => panic!("fused {fused:?}, reference {reference:?}"),
        }
    }

    /// A valid curve from `steps`: each step keeps the equity (a zero return), moves
    /// it by a return, returns exactly to the running peak (a tie that starts a new
    /// episode) or crashes; a step of kind 0 starts or ends a flat stretch (out of
    /// the market: zero returns, about 8 in a row); timestamps advance by 0 to 2 days.
    fn curve_from(start: f64, steps: &[(u8, f64, u8)]) -> (Vec<i64>, Vec<f64>) {
        let (mut equity, mut timestamps) = (vec![start], vec![1_600_000_000]);
        let mut peak = start;
        let mut flat = false;
        for &(kind, r, gap) in steps {
            let last = equity[equity.len() - 1];
            flat ^= kind % 8 == 0;
            let next = match kind % 8 {
                _ if flat => last,
                0 | 1 => last,
                2 => peak,
                3 => last * (1.0 - 0.5 * r.abs()),
                // coarse grid: exact ties between drawdowns and returns
                4 => (last + (r * 100.0).round()).max(1.0),
                _ => last * (1.0 + r),
            };
            peak = peak.max(next);
            equity.push(next);
            timestamps.push(timestamps[timestamps.len() - 1] + i64::from(gap % 3) * DAY);
        }
        (timestamps, equity)
    }

    fn config_from(ppy: u8, risk_free_rate: f64, sortino_target: f64) -> MetricsConfig {
        MetricsConfig {
            periods_per_year: [252.0, 52.0, 12.0, 8_760.0, 1.0][usize::from(ppy % 5)],
            risk_free_rate,
            sortino_target,
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(400))]

        /// Random valid curves, from a single point to about four blocks of the fused
        /// pass (every remainder of its blocks and runs, and of the moments' lanes),
        /// with zeros, flats, ties with the peak, crashes, recovered and unrecovered
        /// drawdowns: the whole `Metrics` is the reference's, bit for bit.
        #[test]
        fn fused_pass_matches_the_separate_passes(
            start in 0.01f64..1e7,
            steps in proptest::collection::vec((0u8..8, -0.2f64..0.2, 0u8..3), 0..1_100),
            pnls in proptest::collection::vec(-100.0f64..100.0, 0..5),
            ppy in 0u8..5,
            risk_free_rate in -0.001f64..0.001,
            sortino_target in -0.01f64..0.01,
        ) {
            let (timestamps, equity) = curve_from(start, &steps);
            let config = config_from(ppy, risk_free_rate, sortino_target);
            assert_same_as_reference(&timestamps, &equity, &pnls, &config);
        }

        /// The same curves with one bad equity value and/or one step back in time
        /// (or a length mismatch): the same error for the same first bad row.
        #[test]
        fn fused_pass_gives_the_same_errors(
            steps in proptest::collection::vec((0u8..8, -0.2f64..0.2, 0u8..3), 0..700),
            bad_value in 0usize..6,
            bad_row in 0usize..720,
            unsorted_row in 0usize..720,
            unsort in proptest::bool::ANY,
            truncate in 0usize..4,
            bad_pnl in proptest::bool::ANY,
        ) {
            let (mut timestamps, mut equity) = curve_from(100.0, &steps);
            let n = equity.len();
            if bad_value < 5 && bad_row < n {
                equity[bad_row] = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0, -1.0]
                    [bad_value];
            }
            if unsort && unsorted_row > 0 && unsorted_row < n {
                timestamps[unsorted_row] = timestamps[unsorted_row - 1] - 1;
            }
            match truncate {
                1 => { timestamps.pop(); }
                2 => { equity.pop(); }
                _ => {}
            }
            let pnls = if bad_pnl { vec![1.0, f64::NAN] } else { vec![1.0] };
            assert_same_as_reference(&timestamps, &equity, &pnls, &MetricsConfig::default());
        }
    }

    #[test]
    fn fused_pass_matches_on_edge_curves() {
        let config = MetricsConfig {
            sortino_target: 0.001,
            ..Default::default()
        };
        let cases: Vec<Vec<f64>> = vec![
            vec![100.0],
            vec![100.0, 100.0],
            vec![100.0; 9],
            vec![100.0, 50.0],
            vec![100.0, 150.0],
            // recovers exactly to the peak, then a deeper unrecovered fall
            vec![100.0, 90.0, 100.0, 80.0, 85.0],
            // the deepest fall recovers, a shallower one later does not
            vec![100.0, 120.0, 60.0, 119.0, 121.0, 110.0, 115.0],
            // the same depth twice: the first episode is kept
            vec![100.0, 50.0, 100.0, 50.0, 60.0],
            // only falls, only rises, alternating
            (0..37).map(|i| 1e6 * 0.99_f64.powi(i)).collect(),
            (0..38).map(|i| 1e-3 * 1.01_f64.powi(i)).collect(),
            (0..39)
                .map(|i| if i % 2 == 0 { 10.0 } else { 11.0 })
                .collect(),
            // ratios that overflow or underflow, in and after the first block of points
            (0..300).map(|i| if i == 3 { 1e300 } else { 1.0 }).collect(),
            (0..600)
                .map(|i| if i >= 290 { 1e-300 } else { 1e300 })
                .collect(),
        ];
        for equity in cases {
            let timestamps = days(equity.len());
            assert_same_as_reference(&timestamps, &equity, &[1.0, -2.0], &config);
        }
        // bad rows and shapes, one check at a time and together (the equity is checked
        // before the timestamps, whatever their rows)
        let config = MetricsConfig::default();
        assert_same_as_reference(&[], &[], &[], &config);
        assert_same_as_reference(&days(3), &[1.0, 2.0], &[], &config);
        assert_same_as_reference(
            &[0, 5, 4, 6, 7],
            &[1.0, 2.0, 3.0, 4.0, f64::NAN],
            &[],
            &config,
        );
        assert_same_as_reference(&[0, 5, 4, 6, 7], &[1.0, 2.0, 3.0, 4.0, 5.0], &[], &config);
        assert_same_as_reference(&days(6), &[1.0, 2.0, 3.0, 4.0, 0.0, -1.0], &[], &config);
        assert_same_as_reference(&days(1), &[f64::NAN], &[], &config);
    }

    /// The thread's buffer is reused without clearing: a long curve, then a short
    /// one, then one in between, each as the reference computes it on fresh memory.
    #[test]
    fn a_reused_buffer_leaves_no_trace() {
        let config = MetricsConfig::default();
        let long: Vec<f64> = (0..5_000)
            .map(|i| 100.0 + ((i as f64) * 0.37).sin() * 10.0)
            .collect();
        let flat_then_fall = [100.0, 100.0, 100.0, 99.0];
        let middle: Vec<f64> = (0..777).map(|i| 50.0 + (i % 13) as f64).collect();
        for equity in [&long[..], &flat_then_fall, &middle, &long[..10]] {
            assert_same_as_reference(&days(equity.len()), equity, &[], &config);
        }
    }

    #[test]
    fn sorted_timestamps_entry_gives_the_same_metrics() {
        let (ts, equity) = sample();
        let config = MetricsConfig::default();
        let checked = Metrics::compute(&ts, &equity, &[1.0], &config).unwrap();
        let trusted = Metrics::compute_with_sorted_timestamps(&ts, &equity, &[1.0], &config);
        assert_eq!(format!("{checked:?}"), format!("{:?}", trusted.unwrap()));
        // the equity is still checked, with the same error
        let err = Metrics::compute_with_sorted_timestamps(&days(3), &[1.0, 0.0, 1.0], &[], &config)
            .unwrap_err();
        assert_eq!(err.to_string(), "row 1: equity must be positive, was 0");
    }

    #[test]
    fn million_point_curve_is_handled() {
        // a smoke test of scale (speed is measured by the criterion bench, in release)
        let n = 1_000_000;
        let ts: Vec<i64> = (0..n as i64).collect();
        let equity: Vec<f64> = (0..n)
            .map(|i| 100.0 * (1.0 + 0.1 * ((i as f64) * 0.001).sin()) + i as f64 * 1e-4)
            .collect();
        let m = Metrics::compute(&ts, &equity, &[], &MetricsConfig::default()).unwrap();
        assert_eq!(m.n_periods, n - 1);
        assert!(m.sharpe_ratio.is_ok() && m.max_drawdown < 0.0);
    }
}
