//! The main job on the bundled sample data, with no configuration and no network:
//!
//! 1. loads the synthetic daily bars of three symbols (`quantcore::sample`);
//! 2. flags anomalous bars with an Isolation Forest over per-bar features;
//! 3. backtests momentum (SMA 10/50 crossover) and mean reversion (z-score 20, entry 2)
//!    per symbol against buy-and-hold, with 0.1 % commission and 5 bps slippage, fills
//!    at the next bar's open;
//! 4. sweeps momentum's (fast, slow) over a grid in parallel and picks the best Sharpe;
//! 5. runs the three symbols as one momentum portfolio (one cash pool) and writes its
//!    HTML report to `quantcore-report.html` (or the path given as first argument).
//!
//! ```text
//! cargo run --release -p quantcore --example quickstart
//! ```

use quantcore::backtest::{BacktestConfig, Backtester, Decision, PerSymbol, from_fn};
use quantcore::execution::{CommissionModel, ExecutionModel};
use quantcore::features::extract_features;
use quantcore::linfa::DatasetBase;
use quantcore::linfa::traits::Fit;
use quantcore::order::Sizing;
use quantcore::{IsolationForest, MeanReversionStrategy, MomentumStrategy, Result};

fn percent(value: f64) -> String {
    format!("{:+.1}%", value * 100.0)
}

fn ratio(value: &quantcore::metrics::Metric) -> String {
    value
        .as_ref()
        .map_or_else(|_| "n/a".to_owned(), |v| format!("{v:.2}"))
}

fn main() -> Result<()> {
    let report_path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "quantcore-report.html".to_owned());
    let daily = quantcore::sample::daily()?;
    println!(
        "sample data (synthetic): {} symbols, {} daily bars each\n",
        daily.len(),
        daily["ACME"].len()
    );

    println!("== anomalies (Isolation Forest, 100 trees, contamination 0.5%)");
    for (symbol, series) in &daily {
        let features = extract_features(series)?;
        let forest = IsolationForest::params()
            .contamination(0.005)
            .seed(7)
            .fit(&DatasetBase::from(features.values().view()))?;
        let detection = forest.detect(features.values())?;
        let mut rows = detection.anomalous_rows();
        rows.sort_by(|&a, &b| detection.scores[b].total_cmp(&detection.scores[a]));
        let top: Vec<String> = rows
            .iter()
            .take(3)
            .map(|&row| {
                let bar = series.bar(features.bar_index(row));
                let date = chrono::DateTime::from_timestamp(bar.timestamp, 0).map_or_else(
                    || bar.timestamp.to_string(),
                    |d| d.format("%Y-%m-%d").to_string(),
                );
                format!("{date} (score {:.2})", detection.scores[row])
            })
            .collect();
        println!(
            "{symbol:<8} {} flagged; top: {}",
            rows.len(),
            top.join(", ")
        );
    }

    let config = BacktestConfig {
        execution: ExecutionModel {
            commission: CommissionModel {
                rate: 0.001,
                fixed_fee: 0.0,
            },
            slippage_bps: 5.0,
        },
        ..BacktestConfig::default()
    };
    let backtester = Backtester::new(config)?;

    println!("\n== per-symbol backtests (commission 0.1%, slippage 5 bps, next-open fills)");
    println!(
        "{:<8} {:<22} {:>9} {:>7} {:>9} {:>7}",
        "symbol", "strategy", "return", "sharpe", "max dd", "trades"
    );
    for (symbol, series) in &daily {
        let runs = [
            (
                "buy and hold",
                backtester.run(series, &mut from_fn(|_| Decision::enter_long())),
            ),
            (
                "momentum 10/50",
                backtester.run(series, &mut MomentumStrategy::new(10, 50)?),
            ),
            (
                "mean reversion 20/2.0",
                backtester.run(series, &mut MeanReversionStrategy::new(20, 2.0, 0.0)?),
            ),
        ];
        for (name, result) in runs {
            let m = result?.metrics;
            println!(
                "{symbol:<8} {name:<22} {:>9} {:>7} {:>9} {:>7}",
                percent(m.total_return),
                ratio(&m.sharpe_ratio),
                percent(m.max_drawdown),
                m.trades.n_trades
            );
        }
    }

    let grid: Vec<(usize, usize)> = (2..=30)
        .step_by(2)
        .flat_map(|fast| (40..=200).step_by(10).map(move |slow| (fast, slow)))
        .collect();
    let started = std::time::Instant::now();
    let table = backtester.sweep(&daily["ACME"], &grid, |&(fast, slow)| {
        MomentumStrategy::new(fast, slow)
    })?;
    let best = table.best_by(|m| m.sharpe_ratio.ok(), true);
    println!(
        "\n== momentum sweep on ACME: {} (fast, slow) pairs in {:.0?}",
        grid.len(),
        started.elapsed()
    );
    if let Some(row) = best {
        println!(
            "best Sharpe: fast {} slow {} -> sharpe {}, return {} (in-sample: expect less out of sample)",
            row.params.0,
            row.params.1,
            ratio(&row.metrics.sharpe_ratio),
            percent(row.metrics.total_return)
        );
    }

    let series: Vec<_> = daily.values().cloned().collect();
    let portfolio_config = BacktestConfig {
        sizing: Sizing::FractionOfEquity(1.0 / series.len() as f64),
        ..config
    };
    let strategies = (0..series.len())
        .map(|_| MomentumStrategy::new(10, 50))
        .collect::<Result<Vec<_>>>()?;
    let result =
        Backtester::new(portfolio_config)?.run_multi(&series, &mut PerSymbol::new(strategies))?;
    println!(
        "\n== one portfolio, three symbols, momentum 10/50, a third of equity per entry\n{}",
        result.report_text()
    );
    result.write_report_html(
        &report_path,
        "Momentum 10/50 on ACME, GLOBEX, INITECH (synthetic sample)",
    )?;
    println!("HTML report written to {report_path}");
    Ok(())
}
