//! What a run returns: [`BacktestResult`] and [`ExitEvent`].

use serde::{Deserialize, Serialize};

use std::path::Path;

use crate::error::Result;
use crate::execution::Fill;
use crate::metrics::Metrics;
use crate::order::{Order, OrderStatus, SymbolId};
use crate::portfolio::{Position, RoundTrip, Snapshot};
use crate::risk::ExitReason;

/// A stop-loss or take-profit that fired, and the order that closed the position.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ExitEvent {
    /// The closing market order, in [`BacktestResult::orders`].
    pub order_id: u64,
    pub symbol: SymbolId,
    pub reason: ExitReason,
    /// The bar on which the level was reached (Unix seconds UTC).
    pub timestamp: i64,
    /// The level, or the open when the bar gapped through it; the fill price is this
    /// moved by slippage.
    pub trigger_price: f64,
}

/// Everything a backtest produced.
///
/// # The equity curve
/// `equity[0]` is the initial capital; `equity[k]` for `k >= 1` is the portfolio's
/// value at the close of the `k`-th timestamp of the run (every open position marked
/// at its symbol's latest close). `timestamps` is parallel to it: the starting point
/// repeats the first bar's timestamp (the value *before* that bar trades), so the
/// timestamps are non-decreasing rather than strictly increasing. With several
/// symbols the bar timestamps are the union of the series' timestamps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BacktestResult {
    /// Symbol names by [`SymbolId`]: `symbols[i]` is `SymbolId(i)`, the `i`-th series.
    pub symbols: Vec<String>,
    /// One timestamp per equity point (Unix seconds UTC); see above.
    pub timestamps: Vec<i64>,
    /// The starting capital, then the equity at each bar's close.
    pub equity: Vec<f64>,
    /// Closed round trips, in the order they closed (the portfolio's rule: a partial
    /// close is its own round trip).
    pub trades: Vec<RoundTrip>,
    /// Every order, by id: filled, rejected (with the reason), cancelled, or still
    /// resting ([`OrderStatus::New`]) at the end of the data.
    pub orders: Vec<Order>,
    /// Every fill, in time order.
    pub fills: Vec<Fill>,
    /// Every stop-loss / take-profit that fired.
    pub exits: Vec<ExitEvent>,
    /// Decisions whose configured sizing gave zero units (the equity could not pay
    /// for one unit at the expected price): no order was placed for them.
    pub zero_size_decisions: usize,
    /// The metrics of `equity` and the trades' PnLs: [`Metrics::compute`]'s, bit for
    /// bit, but for the CVaR of a run of 65,536 bars or more, whose tail sum may
    /// differ by a few ulps (the metrics of such a run are computed while it runs;
    /// see [`metrics`](crate::metrics)).
    pub metrics: Metrics,
    /// The portfolio at the end, stamped with the last timestamp.
    pub final_snapshot: Snapshot,
    /// Each symbol's position at the end, by [`SymbolId`].
    pub final_positions: Vec<Position>,
}

impl BacktestResult {
    /// Simple returns of the equity curve, `equity[t] / equity[t - 1] - 1`: one per
    /// bar timestamp (the first is the first bar's return on the initial capital).
    ///
    /// ```
    /// # use quantcore::backtest::{from_fn, Backtester, BacktestConfig, Decision};
    /// # use quantcore::BarSeries;
    /// # let series = BarSeries::new(vec![1, 2, 3], vec![10.0; 3], vec![11.0; 3], vec![9.0; 3], vec![10.0; 3], vec![0.0; 3])?;
    /// let result = Backtester::new(BacktestConfig::default())?.run(&series, &mut from_fn(|_| Decision::hold()))?;
    /// assert_eq!(result.returns(), vec![0.0; 3]); // never traded
    /// assert_eq!(result.equity.len(), series.len() + 1);
    /// # Ok::<(), quantcore::Error>(())
    /// ```
    pub fn returns(&self) -> Vec<f64> {
        self.equity.windows(2).map(|w| w[1] / w[0] - 1.0).collect()
    }

    /// The starting capital, `equity[0]`.
    pub fn initial_equity(&self) -> f64 {
        self.equity[0]
    }

    /// The last equity point.
    pub fn final_equity(&self) -> f64 {
        self.equity[self.equity.len() - 1]
    }

    /// The orders the risk check refused, each with its reason.
    pub fn rejected_orders(&self) -> impl Iterator<Item = &Order> + '_ {
        self.orders
            .iter()
            .filter(|o| matches!(o.status, OrderStatus::Rejected { .. }))
    }

    /// The name of a symbol id of this run.
    pub fn symbol(&self, id: SymbolId) -> Option<&str> {
        self.symbols.get(id.index()).map(String::as_str)
    }

    /// The metrics as a plain-text table ([`report::text`](crate::report::text)).
    pub fn report_text(&self) -> String {
        crate::report::text(&self.metrics)
    }

    /// The metrics as JSON ([`report::json`](crate::report::json)).
    ///
    /// # Errors
    /// [`Error::Serialization`](crate::Error::Serialization) only if serde fails.
    pub fn report_json(&self) -> Result<String> {
        crate::report::json(&self.metrics)
    }

    /// A self-contained HTML report (equity and drawdown charts, every metric):
    /// [`report::html`](crate::report::html) over this run's curve.
    ///
    /// ```
    /// # use quantcore::backtest::{Backtester, BacktestConfig, MomentumStrategy};
    /// let series = &quantcore::sample::daily()?["ACME"];
    /// let mut strategy = MomentumStrategy::new(10, 50)?;
    /// let result = Backtester::new(BacktestConfig::default())?.run(series, &mut strategy)?;
    /// let page = result.report_html("ACME momentum 10/50")?;
    /// assert!(page.contains("<svg") && page.contains("ACME momentum 10/50"));
    /// # Ok::<(), quantcore::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`report::html`](crate::report::html).
    pub fn report_html(&self, title: &str) -> Result<String> {
        crate::report::html(title, &self.timestamps, &self.equity, &self.metrics)
    }

    /// Writes [`report_html`](Self::report_html) to `path`.
    ///
    /// # Errors
    /// As [`report_html`](Self::report_html), and [`Error::Io`](crate::Error::Io).
    pub fn write_report_html(&self, path: impl AsRef<Path>, title: &str) -> Result<()> {
        crate::report::write_html(path, title, &self.timestamps, &self.equity, &self.metrics)
    }
}
