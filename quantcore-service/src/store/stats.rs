//! Portfolio statistics over snapshot values, for the SQLite store.
//!
//! PostgreSQL computes these in the `get_portfolio_stats` procedure; SQLite has no
//! procedures, so [`portfolio_stats`] computes the same numbers in Rust. The conformance
//! suite checks that both agree with each other and with a hand computation.
//!
//! # Conventions (empyrical, as in the design's numeric conventions)
//! With snapshot values `v_0..v_n` in time order (ties by snapshot id):
//! - returns `r_i = v_i / v_{i-1} - 1`, `i = 1..n` (a return after a zero value is
//!   undefined and skipped, as SQL aggregates skip NULL);
//! - total return `v_n / v_0 - 1`;
//! - volatility `std(r, ddof=1) * sqrt(periods_per_year)`;
//! - Sharpe `mean(r) / std(r, ddof=1) * sqrt(periods_per_year)` (risk-free rate 0);
//!   undefined for zero variance;
//! - max drawdown `min_t(v_t / max_{s<=t} v_s - 1)`, a fraction `<= 0`, the first snapshot
//!   counting as the first peak.
//!
//! Each snapshot counts as one period: `periods_per_year` says how many there are in a
//! year (252 for one snapshot per trading day). Undefined numbers are `None`.
//!
//! The numbers come from [`quantcore::metrics`], so the money maths lives once, in the
//! core; this module only maps the snapshot rows onto it and the undefined cases onto
//! `None`.

use quantcore::metrics;

use super::PortfolioStats;

/// Computes [`PortfolioStats`] over `values` (oldest first); see the [module docs](self).
///
/// ```
/// use quantcore_service::store::stats::portfolio_stats;
/// let stats = portfolio_stats(&[100.0, 110.0, 99.0], 252.0);
/// assert!((stats.total_return.unwrap() - (-0.01)).abs() < 1e-12);
/// assert!((stats.max_drawdown.unwrap() - (99.0 / 110.0 - 1.0)).abs() < 1e-12);
/// ```
pub fn portfolio_stats(values: &[f64], periods_per_year: f64) -> PortfolioStats {
    let snapshots = values.len() as u64;
    let mut stats = PortfolioStats {
        snapshots,
        start_value: values.first().copied(),
        end_value: values.last().copied(),
        ..PortfolioStats::default()
    };
    if values.len() < 2 {
        return stats;
    }
    let (first, last) = (values[0], values[values.len() - 1]);
    stats.total_return = (first != 0.0).then(|| last / first - 1.0);
    // `drawdown_series` needs positive values, as every real portfolio value is.
    stats.max_drawdown = metrics::drawdown_series(values)
        .ok()
        .map(|drawdowns| drawdowns.into_iter().fold(0.0, f64::min));
    let returns: Vec<f64> = values
        .windows(2)
        .filter(|pair| pair[0] != 0.0)
        .map(|pair| pair[1] / pair[0] - 1.0)
        .collect();
    stats.volatility = metrics::annual_volatility(&returns, periods_per_year).ok();
    stats.sharpe_ratio = metrics::sharpe_ratio(&returns, 0.0, periods_per_year).ok();
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1.0)
    }

    #[test]
    fn matches_a_hand_computation() {
        // values 100, 102, 99.96, 101.9592: returns +2%, -2%, +2%.
        let values = [100.0, 102.0, 99.96, 101.9592];
        let stats = portfolio_stats(&values, 252.0);
        // mean = 0.02/3; deviations 0.04/3, -0.08/3, 0.04/3;
        // var = (0.0016 + 0.0064 + 0.0016) / 9 / 2 = 0.0096 / 18.
        let mean = 0.02 / 3.0;
        let std = (0.0096_f64 / 18.0).sqrt();
        assert_eq!(stats.snapshots, 4);
        assert!(close(stats.total_return.unwrap(), 0.019592));
        assert!(close(stats.volatility.unwrap(), std * 252f64.sqrt()));
        assert!(close(
            stats.sharpe_ratio.unwrap(),
            mean / std * 252f64.sqrt()
        ));
        assert!(close(stats.max_drawdown.unwrap(), 99.96 / 102.0 - 1.0));
    }

    #[test]
    fn undefined_numbers_are_none() {
        let empty = portfolio_stats(&[], 252.0);
        assert_eq!(empty.snapshots, 0);
        assert_eq!(empty.start_value, None);
        let one = portfolio_stats(&[100.0], 252.0);
        assert_eq!(one.start_value, Some(100.0));
        assert_eq!(one.total_return, None);
        assert_eq!(one.max_drawdown, None);
        let two = portfolio_stats(&[100.0, 110.0], 252.0);
        assert!(close(two.total_return.unwrap(), 0.1));
        assert_eq!(two.volatility, None, "one return has no sample deviation");
        let flat = portfolio_stats(&[100.0, 100.0, 100.0], 252.0);
        assert_eq!(flat.volatility, Some(0.0));
        assert_eq!(flat.sharpe_ratio, None, "zero variance");
        assert_eq!(flat.max_drawdown, Some(0.0));
    }

    #[test]
    fn the_first_snapshot_is_the_first_peak() {
        let stats = portfolio_stats(&[100.0, 90.0, 95.0, 120.0, 60.0], 252.0);
        assert!(close(stats.max_drawdown.unwrap(), -0.5));
        let stats = portfolio_stats(&[100.0, 80.0, 130.0], 252.0);
        assert!(close(stats.max_drawdown.unwrap(), -0.2));
    }
}
