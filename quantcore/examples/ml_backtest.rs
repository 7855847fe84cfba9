//! Walk-forward LSTM strategy on the bundled sample data, against momentum and
//! buy-and-hold.
//!
//! 1. loads the synthetic daily bars of `ACME` (`quantcore::sample`, 1,565 bars);
//! 2. runs [`MlStrategy`]: an LSTM (window 20, hidden 16, up to 10 epochs) first fitted
//!    at bar 499 on the 500 bars so far, refitted every 126 bars (about half a year)
//!    on the last 500 bars, predicting the next close every bar; its signals go
//!    long (sized by confidence) or flat;
//! 3. runs the SMA 10/50 crossover ([`MomentumStrategy`]) on the same bars and
//!    settings;
//! 4. prints both runs' metrics over the whole series and each one's return from bar
//!    500 on (where the LSTM starts trading), with buy-and-hold over that period.
//!
//! ```text
//! cargo run --release -p quantcore --example ml_backtest
//! ```
//!
//! Costs: 0.1 % commission and 5 bps slippage per fill, market orders at the next
//! open. The sample data is generated (a random walk with volatility clustering), so
//! there is nothing for either strategy to find: read the output as a demonstration
//! of the mechanics, not as evidence about either rule.

#[cfg(feature = "lstm")]
fn main() -> quantcore::Result<()> {
    use std::time::Instant;

    use quantcore::backtest::{
        BacktestConfig, BacktestResult, Backtester, MlParams, MlStrategy, MomentumStrategy,
    };
    use quantcore::execution::{CommissionModel, ExecutionModel};
    use quantcore::ml::lstm::LstmConfig;
    use quantcore::order::Sizing;
    use quantcore::signal::SignalConfig;

    fn ratio(value: &quantcore::metrics::Metric) -> String {
        value
            .as_ref()
            .map_or_else(|_| "n/a".to_owned(), |v| format!("{v:.2}"))
    }

    fn row(name: &str, result: &BacktestResult, from_bar: usize) {
        let m = &result.metrics;
        // equity[k] is the value at the close of bar k - 1.
        let since = result.equity.last().unwrap() / result.equity[from_bar] - 1.0;
        println!(
            "{name:<22} {:>+8.1}% {:>7} {:>7.1}% {:>7} {:>+12.1}%",
            m.total_return * 100.0,
            ratio(&m.sharpe_ratio),
            m.max_drawdown * 100.0,
            m.trades.n_trades,
            since * 100.0,
        );
    }

    let daily = quantcore::sample::daily()?;
    let acme = &daily["ACME"];
    let execution = ExecutionModel::new(CommissionModel::new(0.001, 0.0)?, 5.0)?;
    let base = BacktestConfig {
        initial_capital: 100_000.0,
        execution,
        ..BacktestConfig::default()
    };

    let params = MlParams {
        lstm: LstmConfig {
            window: 20,
            hidden_size: 16,
            epochs: 10,
            learning_rate: 3e-3,
            ..LstmConfig::default()
        },
        // Costs as in the backtest: the threshold is their round trip, 0.3 %.
        signal: SignalConfig {
            commission: 0.001,
            slippage_bps: 5.0,
            ..SignalConfig::default()
        },
        train_window: 500,
        retrain_every: 126,
        min_history: 500,
        volatility_window: 20,
        allow_short: false,
    };
    let mut ml = MlStrategy::new(params)?;
    let ml_config = BacktestConfig {
        sizing: Sizing::Confidence { max_fraction: 1.0 },
        ..base
    };
    let started = Instant::now();
    let ml_result = Backtester::new(ml_config)?.run(acme, &mut ml)?;
    let ml_time = started.elapsed();

    let momentum_result = Backtester::new(base)?.run(acme, &mut MomentumStrategy::new(10, 50)?)?;

    println!(
        "ACME (synthetic), {} daily bars; LSTM: {} fits at bars {:?} in {:.2} s{}",
        acme.len(),
        ml.fits(),
        ml.fit_bars(),
        ml_time.as_secs_f64(),
        if ml.errors().is_empty() {
            String::new()
        } else {
            format!(", {} failures: {:?}", ml.errors().len(), ml.errors())
        }
    );
    let from_bar = ml.params().min_history;
    println!(
        "\n{:<22} {:>9} {:>7} {:>8} {:>7} {:>13}",
        "strategy", "return", "sharpe", "max dd", "trades", "from bar 500"
    );
    row("lstm walk-forward", &ml_result, from_bar);
    row("momentum 10/50", &momentum_result, from_bar);
    let close = acme.close();
    let last = close[close.len() - 1];
    println!(
        "{:<22} {:>+8.1}% {:>7} {:>8} {:>7} {:>+12.1}%",
        "buy and hold (close)",
        (last / close[0] - 1.0) * 100.0,
        "",
        "",
        "",
        (last / close[from_bar - 1] - 1.0) * 100.0
    );
    Ok(())
}

#[cfg(not(feature = "lstm"))]
fn main() {
    eprintln!("this example needs the `lstm` feature (on by default)");
}
