//! Parameter sweeps: one backtest per parameter set, in parallel, into a metrics table.
//!
//! [`sweep`] runs `make(&params)` over a grid with rayon (one run per task, on every
//! core of rayon's global pool), each run exactly [`Backtester::run`] on the same
//! series, and keeps each run's [`Metrics`]; the equity curves and order records are
//! dropped as each run ends, so memory stays at a few runs' worth. The table keeps the
//! grid's order; sort it by any metric with [`SweepTable::sort_by_metric`].

use std::cmp::Ordering;
use std::fmt::Debug;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::config::BacktestConfig;
use super::engine::Backtester;
use super::strategy::Strategy;
use crate::data::BarSeries;
use crate::error::{Error, Result};
use crate::metrics::Metrics;

/// One parameter set and the metrics of its run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepRow<P> {
    pub params: P,
    pub metrics: Metrics,
}

/// The rows of a sweep, in grid order until sorted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepTable<P> {
    pub rows: Vec<SweepRow<P>>,
}

impl<P> SweepTable<P> {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when the grid was empty.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Sorts the rows by `key` of their metrics, best first: highest first when
    /// `descending`, lowest first otherwise. Rows whose key is `None` (an undefined
    /// metric, e.g. `m.sharpe_ratio.ok()` on a flat curve) go last, in grid order.
    /// The sort is stable.
    ///
    /// ```
    /// # use quantcore::backtest::{sweep, BacktestConfig, MomentumStrategy};
    /// # use quantcore::BarSeries;
    /// # let close: Vec<f64> = (0..80).map(|i| 100.0 + (i as f64 / 6.0).sin() * 10.0).collect();
    /// # let series = BarSeries::new((0..80).collect(), close.clone(), close.clone(), close.clone(), close, vec![0.0; 80])?;
    /// let grid = vec![(2, 5), (3, 10), (5, 20)];
    /// let mut table = sweep(&series, &grid, |&(fast, slow)| MomentumStrategy::new(fast, slow), &BacktestConfig::default())?;
    /// table.sort_by_metric(|m| Some(m.total_return), true);
    /// assert!(table.rows[0].metrics.total_return >= table.rows[2].metrics.total_return);
    /// # Ok::<(), quantcore::Error>(())
    /// ```
    pub fn sort_by_metric(&mut self, key: impl Fn(&Metrics) -> Option<f64>, descending: bool) {
        self.rows
            .sort_by(|a, b| match (key(&a.metrics), key(&b.metrics)) {
                (Some(x), Some(y)) if descending => y.total_cmp(&x),
                (Some(x), Some(y)) => x.total_cmp(&y),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            });
    }

    /// The row with the best defined `key` (highest when `descending`), if any.
    pub fn best_by(
        &self,
        key: impl Fn(&Metrics) -> Option<f64>,
        descending: bool,
    ) -> Option<&SweepRow<P>> {
        self.rows
            .iter()
            .filter_map(|row| key(&row.metrics).map(|k| (k, row)))
            .reduce(|best, next| {
                let better = if descending {
                    next.0 > best.0
                } else {
                    next.0 < best.0
                };
                if better { next } else { best }
            })
            .map(|(_, row)| row)
    }
}

/// Runs one backtest of `series` per parameter set of `grid`, in parallel, with the
/// strategy `make(params)` and `config`, and keeps each run's [`Metrics`].
///
/// Each run is exactly [`Backtester::run`] (so a row equals the single run with the
/// same parameters); runs are spread over rayon's global pool (every core), and
/// each run's equity curve and records are dropped as it ends. The table keeps the
/// grid's order; sort it with [`SweepTable::sort_by_metric`].
///
/// ```
/// use quantcore::backtest::{sweep, BacktestConfig, MomentumStrategy};
/// use quantcore::BarSeries;
/// let close: Vec<f64> = (0..100).map(|i| 100.0 + (i as f64 / 8.0).sin() * 10.0).collect();
/// let series = BarSeries::new((0..100).collect(), close.clone(), close.clone(), close.clone(), close, vec![0.0; 100])?;
/// let grid: Vec<(usize, usize)> = [2, 3, 5].iter().flat_map(|&f| [10, 20].map(move |s| (f, s))).collect();
/// let table = sweep(&series, &grid, |&(fast, slow)| MomentumStrategy::new(fast, slow), &BacktestConfig::default())?;
/// assert_eq!(table.len(), 6);
/// assert_eq!(table.rows[0].params, (2, 10)); // grid order
/// let best = table.best_by(|m| m.sharpe_ratio.ok(), true);
/// # Ok::<(), quantcore::Error>(())
/// ```
///
/// # Errors
/// As [`Backtester::new`] for the configuration; [`Error::SweepRun`] naming the
/// index and parameters of a failed run (the strategy could not be built, or the run
/// failed) with its error as the source. When several fail, one of them is reported.
pub fn sweep<P, S, F>(
    series: &BarSeries,
    grid: &[P],
    make: F,
    config: &BacktestConfig,
) -> Result<SweepTable<P>>
where
    P: Clone + Debug + Send + Sync,
    S: Strategy,
    F: Fn(&P) -> Result<S> + Sync,
{
    Backtester::new(*config)?.sweep(series, grid, make)
}

impl Backtester {
    /// [`sweep`] with this backtester's configuration.
    ///
    /// # Errors
    /// As [`sweep`].
    pub fn sweep<P, S, F>(&self, series: &BarSeries, grid: &[P], make: F) -> Result<SweepTable<P>>
    where
        P: Clone + Debug + Send + Sync,
        S: Strategy,
        F: Fn(&P) -> Result<S> + Sync,
    {
        let rows = grid
            .par_iter()
            .enumerate()
            .map(|(index, params)| {
                let run = || -> Result<Metrics> {
                    let mut strategy = make(params)?;
                    Ok(self.run(series, &mut strategy)?.metrics)
                };
                run()
                    .map(|metrics| SweepRow {
                        params: params.clone(),
                        metrics,
                    })
                    .map_err(|source| Error::SweepRun {
                        index,
                        params: format!("{params:?}"),
                        source: Box::new(source),
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(SweepTable { rows })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backtest::config::FillTiming;
    use crate::backtest::proptests::random_series;
    use crate::backtest::strategies::{MeanReversionStrategy, MomentumStrategy};
    use rand::{SeedableRng, rngs::StdRng};

    #[test]
    fn sweep_rows_equal_single_runs_in_grid_order() {
        let series = random_series(&mut StdRng::seed_from_u64(3), 400);
        let config = BacktestConfig {
            fill_timing: FillTiming::ThisClose,
            ..BacktestConfig::default()
        };
        let grid: Vec<(usize, usize)> = [2, 5, 10]
            .iter()
            .flat_map(|&f| [20, 40].map(move |s| (f, s)))
            .collect();
        let table = sweep(
            &series,
            &grid,
            |&(f, s)| MomentumStrategy::new(f, s),
            &config,
        )
        .unwrap();
        assert_eq!(table.len(), grid.len());
        let backtester = Backtester::new(config).unwrap();
        for (row, &(fast, slow)) in table.rows.iter().zip(&grid) {
            assert_eq!(row.params, (fast, slow));
            let single = backtester
                .run(&series, &mut MomentumStrategy::new(fast, slow).unwrap())
                .unwrap();
            assert_eq!(row.metrics, single.metrics);
        }
        // Different parameters give different runs (the test would be empty otherwise).
        assert!(
            table
                .rows
                .iter()
                .any(|r| r.metrics != table.rows[0].metrics)
        );
    }

    #[test]
    fn sorting_puts_undefined_last_and_best_first() {
        let series = random_series(&mut StdRng::seed_from_u64(5), 300);
        let grid = vec![
            (5, 1.0, 0.0),
            (10, 1.5, 0.0),
            (20, 2.0, 0.5),
            (50, 4.0, 0.0),
        ];
        let config = BacktestConfig::default();
        let mut table = sweep(
            &series,
            &grid,
            |&(w, entry, exit)| MeanReversionStrategy::new(w, entry, exit),
            &config,
        )
        .unwrap();
        table.sort_by_metric(|m| m.trades.win_rate.ok(), true);
        let keys: Vec<Option<f64>> = table
            .rows
            .iter()
            .map(|r| r.metrics.trades.win_rate.ok())
            .collect();
        let defined: Vec<f64> = keys.iter().flatten().copied().collect();
        assert!(defined.windows(2).all(|w| w[0] >= w[1]), "{keys:?}");
        let first_none = keys.iter().position(Option::is_none).unwrap_or(keys.len());
        assert!(keys[first_none..].iter().all(Option::is_none), "{keys:?}");
        let best = table.best_by(|m| Some(m.total_return), true).unwrap();
        assert!(
            table
                .rows
                .iter()
                .all(|r| r.metrics.total_return <= best.metrics.total_return)
        );
        let worst = table.best_by(|m| Some(m.total_return), false).unwrap();
        assert!(
            table
                .rows
                .iter()
                .all(|r| r.metrics.total_return >= worst.metrics.total_return)
        );
    }

    #[test]
    fn a_failed_run_names_its_parameters() {
        let series = random_series(&mut StdRng::seed_from_u64(1), 50);
        let grid = vec![(2, 5), (5, 5)];
        let err = sweep(
            &series,
            &grid,
            |&(f, s)| MomentumStrategy::new(f, s),
            &BacktestConfig::default(),
        )
        .unwrap_err();
        let Error::SweepRun {
            index,
            params,
            source,
        } = &err
        else {
            panic!("{err:?}");
        };
        assert_eq!((*index, params.as_str()), (1, "(5, 5)"));
        assert!(matches!(
            **source,
            Error::InvalidParameter { name: "slow", .. }
        ));
    }
}
