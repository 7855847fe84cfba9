//! Times the engine on bars from a CSV file, for a same-data comparison with the Python
//! module (`python/bench/perf.py --csv PATH` writes its series and times the same run):
//! momentum 10/50, 10,000,000 capital, 100 units per order, 0.1 % commission, 5 bps
//! slippage, next-open fills; best of 5 runs, loading excluded. It prints the final value
//! so that a run of `benches/compare/vectorbt_momentum.py` on the same file can be checked
//! to be the same backtest.
//!
//! ```text
//! cargo run --release -p quantcore --example time_backtest -- walk.csv
//! ```

use std::time::Instant;

use quantcore::backtest::{BacktestConfig, Backtester, MomentumStrategy};
use quantcore::execution::{CommissionModel, ExecutionModel};
use quantcore::normalize::{ParseOptions, csv};
use quantcore::order::Sizing;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: time_backtest BARS.csv")?;
    let series = csv::read_bars(&path, &ParseOptions::default())?.series;
    let config = BacktestConfig {
        initial_capital: 10_000_000.0,
        execution: ExecutionModel {
            commission: CommissionModel {
                rate: 0.001,
                fixed_fee: 0.0,
            },
            slippage_bps: 5.0,
        },
        sizing: Sizing::FixedQuantity(100.0),
        ..BacktestConfig::default()
    };
    let backtester = Backtester::new(config)?;
    let mut best = f64::INFINITY;
    let mut last = None;
    for _ in 0..5 {
        let mut strategy = MomentumStrategy::new(10, 50)?;
        let started = Instant::now();
        let result = backtester.run(&series, &mut strategy)?;
        best = best.min(started.elapsed().as_secs_f64());
        last = Some(result);
    }
    let result = last.ok_or("no run")?;
    let metrics = &result.metrics;
    println!(
        "{} bars from Rust: {:.1} ms ({} orders, final value {:.6}, total return {:.9}, \
         max drawdown {:.9})",
        series.len(),
        best * 1e3,
        result.orders.len(),
        metrics.final_equity,
        metrics.total_return,
        metrics.max_drawdown,
    );
    Ok(())
}
