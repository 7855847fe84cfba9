//! Statistics of closed round-trip trades (the trade analyzer).

use super::undefined::{Metric, Undefined, metric_struct};
use crate::error::{Error, Result};

metric_struct! {
    /// Statistics of closed round-trip trades, from their PnLs (in money, after fees).
    ///
    /// A trade with PnL > 0 is a win, < 0 a loss; a trade at exactly 0 is neither but
    /// counts among the closed trades (the win-rate denominator).
    ///
    /// ```
    /// use quantcore::metrics::{TradeStats, Undefined};
    /// let stats = TradeStats::compute(&[100.0, -50.0, 30.0, -20.0])?;
    /// assert_eq!(stats.n_trades, 4);
    /// assert_eq!(stats.win_rate, Ok(0.5));
    /// assert_eq!(stats.profit_factor, Ok(130.0 / 70.0));
    /// assert_eq!(stats.expectancy, Ok(15.0)); // 60 / 4
    ///
    /// let none = TradeStats::compute(&[])?;
    /// assert_eq!(none.win_rate, Err(Undefined::NoTrades));
    /// # Ok::<(), quantcore::Error>(())
    /// ```
    pub struct TradeStats via TradeStatsJson = "TradeStatsJson" {
        /// Closed trades.
        pub n_trades: usize,
        /// Trades with PnL > 0.
        pub n_winning: usize,
        /// Trades with PnL < 0.
        pub n_losing: usize,
        /// Sum of all PnLs.
        pub total_pnl: f64,
        /// Sum of the winning PnLs (>= 0).
        pub gross_profit: f64,
        /// Sum of the losing PnLs' magnitudes (>= 0).
        pub gross_loss: f64,
        ;
        /// `n_winning / n_trades`.
        pub win_rate: Metric,
        /// Mean PnL of the winning trades (> 0).
        pub average_win: Metric,
        /// Mean PnL of the losing trades (< 0).
        pub average_loss: Metric,
        /// `gross_profit / gross_loss`.
        pub profit_factor: Metric,
        /// `average_win / |average_loss|`.
        pub payoff_ratio: Metric,
        /// Mean PnL per trade, `total_pnl / n_trades`
        /// (= win rate * average win + loss rate * average loss).
        pub expectancy: Metric,
        /// Largest PnL.
        pub best_trade: Metric,
        /// Smallest PnL.
        pub worst_trade: Metric,
    }
}

impl TradeStats {
    /// Computes every statistic in one pass over the PnLs of closed trades.
    ///
    /// # Errors
    /// [`Error::NonFinite`] naming the first NaN/infinite PnL (field `trade_pnls`).
    pub fn compute(trade_pnls: &[f64]) -> Result<TradeStats> {
        let (mut n_winning, mut n_losing) = (0usize, 0usize);
        let (mut gross_profit, mut gross_loss, mut total_pnl) = (0.0, 0.0, 0.0);
        let (mut best, mut worst) = (f64::NEG_INFINITY, f64::INFINITY);
        for (row, &pnl) in trade_pnls.iter().enumerate() {
            if !pnl.is_finite() {
                return Err(Error::NonFinite {
                    row,
                    field: "trade_pnls",
                    value: pnl,
                });
            }
            total_pnl += pnl;
            best = f64::max(best, pnl);
            worst = f64::min(worst, pnl);
            if pnl > 0.0 {
                n_winning += 1;
                gross_profit += pnl;
            } else if pnl < 0.0 {
                n_losing += 1;
                gross_loss -= pnl;
            }
        }
        let n_trades = trade_pnls.len();
        let any = |value: f64| {
            if n_trades > 0 {
                Ok(value)
            } else {
                Err(Undefined::NoTrades)
            }
        };
        let average_win = if n_winning > 0 {
            Ok(gross_profit / n_winning as f64)
        } else if n_trades == 0 {
            Err(Undefined::NoTrades)
        } else {
            Err(Undefined::NoWinningTrades)
        };
        let average_loss = if n_losing > 0 {
            Ok(-gross_loss / n_losing as f64)
        } else if n_trades == 0 {
            Err(Undefined::NoTrades)
        } else {
            Err(Undefined::NoLosingTrades)
        };
        let profit_factor = match average_loss {
            Ok(_) => Ok(gross_profit / gross_loss),
            Err(reason) => Err(reason),
        };
        let payoff_ratio = match (average_win, average_loss) {
            (Ok(win), Ok(loss)) => Ok(win / -loss),
            (Err(reason), _) | (_, Err(reason)) => Err(reason),
        };
        Ok(TradeStats {
            n_trades,
            n_winning,
            n_losing,
            total_pnl,
            gross_profit,
            gross_loss,
            win_rate: any(n_winning as f64 / n_trades as f64),
            average_win,
            average_loss,
            profit_factor,
            payoff_ratio,
            expectancy: any(total_pnl / n_trades as f64),
            best_trade: any(best),
            worst_trade: any(worst),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_hand() {
        // wins 100, 30, 50 -> gross profit 180, average 60
        // losses -50, -20 -> gross loss 70, average -35; one scratch trade at 0
        // win rate 3/6 = 0.5; profit factor 180/70; payoff 60/35;
        // expectancy (180 - 70)/6 = 110/6
        let stats = TradeStats::compute(&[100.0, -50.0, 30.0, 0.0, -20.0, 50.0]).unwrap();
        assert_eq!((stats.n_trades, stats.n_winning, stats.n_losing), (6, 3, 2));
        assert_eq!(
            (stats.gross_profit, stats.gross_loss, stats.total_pnl),
            (180.0, 70.0, 110.0)
        );
        assert_eq!(stats.win_rate, Ok(0.5));
        assert_eq!(stats.average_win, Ok(60.0));
        assert_eq!(stats.average_loss, Ok(-35.0));
        assert_eq!(stats.profit_factor, Ok(180.0 / 70.0));
        assert_eq!(stats.payoff_ratio, Ok(60.0 / 35.0));
        assert_eq!(stats.expectancy, Ok(110.0 / 6.0));
        assert_eq!(stats.best_trade, Ok(100.0));
        assert_eq!(stats.worst_trade, Ok(-50.0));
        // expectancy = win rate * average win + loss rate * average loss
        let identity = 0.5 * 60.0 + (2.0 / 6.0) * -35.0;
        assert!((stats.expectancy.unwrap() - identity).abs() < 1e-12);
    }

    #[test]
    fn no_trades_is_undefined_everywhere() {
        let stats = TradeStats::compute(&[]).unwrap();
        assert_eq!(stats.n_trades, 0);
        for metric in [
            stats.win_rate,
            stats.average_win,
            stats.average_loss,
            stats.profit_factor,
            stats.payoff_ratio,
            stats.expectancy,
            stats.best_trade,
            stats.worst_trade,
        ] {
            assert_eq!(metric, Err(Undefined::NoTrades));
        }
    }

    #[test]
    fn only_winners_has_no_profit_factor() {
        let stats = TradeStats::compute(&[10.0, 5.0]).unwrap();
        assert_eq!(stats.win_rate, Ok(1.0));
        assert_eq!(stats.profit_factor, Err(Undefined::NoLosingTrades));
        assert_eq!(stats.average_loss, Err(Undefined::NoLosingTrades));
        assert_eq!(stats.payoff_ratio, Err(Undefined::NoLosingTrades));
        assert_eq!(stats.expectancy, Ok(7.5));
    }

    #[test]
    fn only_losers_has_a_zero_profit_factor() {
        // gross profit 0 over gross loss 30 is a real 0, not undefined
        let stats = TradeStats::compute(&[-10.0, -20.0]).unwrap();
        assert_eq!(stats.win_rate, Ok(0.0));
        assert_eq!(stats.profit_factor, Ok(0.0));
        assert_eq!(stats.average_win, Err(Undefined::NoWinningTrades));
        assert_eq!(stats.payoff_ratio, Err(Undefined::NoWinningTrades));
    }

    #[test]
    fn non_finite_pnl_is_an_error() {
        let err = TradeStats::compute(&[1.0, f64::NAN]).unwrap_err();
        assert!(
            matches!(
                err,
                Error::NonFinite {
                    row: 1,
                    field: "trade_pnls",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn json_has_nulls_with_reasons_and_round_trips() {
        let stats = TradeStats::compute(&[10.0, 5.0]).unwrap();
        let json = serde_json::to_value(&stats).unwrap();
        assert_eq!(json["win_rate"], 1.0);
        assert!(json["profit_factor"].is_null());
        assert_eq!(
            json["undefined"]["profit_factor"]["reason"],
            "no_losing_trades"
        );
        assert_eq!(
            json["undefined"]["profit_factor"]["message"],
            "no losing trades, gross loss is zero"
        );
        let back: TradeStats = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, stats);
        // a null without its reason is rejected
        let mut broken = json;
        broken["undefined"]
            .as_object_mut()
            .unwrap()
            .remove("payoff_ratio");
        assert!(serde_json::from_value::<TradeStats>(broken).is_err());
    }
}
