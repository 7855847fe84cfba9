//! Backtests a built-in strategy over one or several symbols of a CSV file and prints
//! the metrics.
//!
//! ```text
//! cargo run --release -p quantcore --example backtest -- \
//!     --csv quantcore/data/sample_daily.csv --symbol ACME \
//!     --strategy momentum --fast 10 --slow 50 --commission 0.001 --slippage-bps 5
//! ```
//!
//! `--symbol ACME,GLOBEX` runs one portfolio over both symbols (one cash pool, one
//! strategy instance per symbol, each entry sized at `1 / symbols` of equity unless
//! `--fraction` says otherwise).
//!
//! The CSV is read by `quantcore::normalize::csv`: a `symbol` column selects rows (the
//! bundled sample data has one), or a single-symbol file such as pandas' `to_csv()` of
//! a yfinance frame. `--html PATH` writes the self-contained HTML report. Run with `--help` for every option. Arguments
//! are parsed by hand: the core crate has no CLI dependency.

use std::error::Error;
use std::fmt::Display;
use std::process::ExitCode;

use quantcore::BarSeries;
use quantcore::backtest::{
    BacktestConfig, BacktestResult, Backtester, FillTiming, MeanReversionParams, MomentumParams,
    PerSymbol, StrategySpec,
};
use quantcore::execution::{CommissionModel, ExecutionModel};
use quantcore::metrics::{Metric, MetricsConfig};
use quantcore::normalize::{ParseOptions, csv};
use quantcore::order::Sizing;
use quantcore::risk::RiskLimits;

const USAGE: &str = "\
usage: backtest --csv PATH [options]

data:
  --csv PATH               CSV of bars (timestamp/date, open, high, low, close, volume[, symbol])
  --symbol SYM[,SYM...]    the symbol(s) to test (default: the file's only symbol);
                           several share one portfolio
strategy:
  --strategy NAME          momentum (default) or mean-reversion
  --fast N --slow N        momentum: SMA periods (default 10, 50)
  --window N               mean-reversion: z-score window (default 20)
  --entry-z Z --exit-z Z   mean-reversion: enter beyond -Z, exit at -Z (default 2, 0)
  --short                  also trade the short side (allows short selling)
backtest:
  --capital X              initial capital (default 10000)
  --commission RATE        commission as a fraction of notional per fill (default 0)
  --fixed-fee X            fixed fee per fill (default 0)
  --slippage-bps BPS       slippage of market orders in basis points (default 0)
  --fill TIMING            next-open (default) or this-close
  --fraction F             fraction of equity per entry, in (0, 1] (default 1 / symbols)
  --fractional             allow fractional quantities
  --periods-per-year N     annualization of the metrics (default 252: daily bars)
output:
  --html PATH              write the HTML report (equity, drawdown, every metric)
";

/// The parsed command line.
struct Options {
    csv: String,
    symbols: Vec<String>,
    /// The `--fraction` given, if any.
    fraction: Option<f64>,
    /// Where to write the HTML report.
    html: Option<String>,
    strategy: StrategySpec,
    config: BacktestConfig,
}

/// Reads the value after a flag and parses it, naming the flag on failure.
fn value<T: std::str::FromStr>(
    args: &mut impl Iterator<Item = String>,
    flag: &str,
) -> Result<T, String>
where
    T::Err: Display,
{
    let raw = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
    raw.parse()
        .map_err(|e| format!("{flag}: cannot read {raw:?}: {e}"))
}

fn parse(args: impl IntoIterator<Item = String>) -> Result<Option<Options>, String> {
    let mut args = args.into_iter();
    let (mut csv, mut symbol, mut strategy) = (None, None, "momentum".to_owned());
    let (mut fast, mut slow) = (10usize, 50usize);
    let (mut window, mut entry_z, mut exit_z) = (20usize, 2.0f64, 0.0f64);
    let (mut short, mut rate, mut fixed_fee, mut slippage_bps) = (false, 0.0, 0.0, 0.0);
    let mut config = BacktestConfig::default();
    let mut fraction = None;
    let mut html = None;
    let mut periods_per_year = MetricsConfig::default().periods_per_year;
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--csv" => csv = Some(value::<String>(&mut args, &flag)?),
            "--symbol" => symbol = Some(value::<String>(&mut args, &flag)?),
            "--strategy" => strategy = value(&mut args, &flag)?,
            "--fast" => fast = value(&mut args, &flag)?,
            "--slow" => slow = value(&mut args, &flag)?,
            "--window" => window = value(&mut args, &flag)?,
            "--entry-z" => entry_z = value(&mut args, &flag)?,
            "--exit-z" => exit_z = value(&mut args, &flag)?,
            "--short" => short = true,
            "--capital" => config.initial_capital = value(&mut args, &flag)?,
            "--commission" => rate = value(&mut args, &flag)?,
            "--fixed-fee" => fixed_fee = value(&mut args, &flag)?,
            "--slippage-bps" => slippage_bps = value(&mut args, &flag)?,
            "--fill" => {
                config.fill_timing = match value::<String>(&mut args, &flag)?.as_str() {
                    "next-open" => FillTiming::NextOpen,
                    "this-close" => FillTiming::ThisClose,
                    other => {
                        return Err(format!(
                            "--fill: expected next-open or this-close, was {other:?}"
                        ));
                    }
                }
            }
            "--fraction" => fraction = Some(value(&mut args, &flag)?),
            "--html" => html = Some(value::<String>(&mut args, &flag)?),
            "--fractional" => config.fractional = true,
            "--periods-per-year" => periods_per_year = value(&mut args, &flag)?,
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    config.execution = ExecutionModel {
        commission: CommissionModel { rate, fixed_fee },
        slippage_bps,
    };
    config.risk_limits = RiskLimits {
        allow_short: short,
        ..RiskLimits::default()
    };
    config.metrics.periods_per_year = periods_per_year;
    let strategy = match strategy.as_str() {
        "momentum" => StrategySpec::Momentum(MomentumParams {
            fast,
            slow,
            allow_short: short,
        }),
        "mean-reversion" | "mean_reversion" => StrategySpec::MeanReversion(MeanReversionParams {
            window,
            entry_z,
            exit_z,
            allow_short: short,
        }),
        other => {
            return Err(format!(
                "--strategy: expected momentum or mean-reversion, was {other:?}"
            ));
        }
    };
    let csv = csv.ok_or("--csv is required")?;
    let symbols = symbol.map_or_else(Vec::new, |list: String| {
        list.split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    });
    Ok(Some(Options {
        csv,
        symbols,
        fraction,
        html,
        strategy,
        config,
    }))
}

/// Reads the bars of each of `symbols` (or of the file's only symbol), in that order.
fn load(path: &str, symbols: &[String]) -> Result<Vec<BarSeries>, Box<dyn Error>> {
    let mut found = csv::read_bars_by_symbol(path, &ParseOptions::default())?.series;
    let names: Vec<String> = found.keys().cloned().collect();
    let wanted: Vec<String> = match symbols {
        [] if found.len() == 1 => names.clone(),
        [] => {
            return Err(format!(
                "{path} holds {} symbols ({}): choose with --symbol",
                names.len(),
                names.join(", ")
            )
            .into());
        }
        list => list.to_vec(),
    };
    wanted
        .into_iter()
        .map(|symbol| {
            found.remove(&symbol).ok_or_else(|| {
                format!(
                    "{path}: no rows for symbol {symbol:?} (found: {})",
                    names.join(", ")
                )
                .into()
            })
        })
        .collect()
}

fn metric(value: &Metric) -> String {
    match value {
        Ok(v) => format!("{v:.4}"),
        Err(reason) => format!("undefined ({reason})"),
    }
}

fn percent(value: &Metric) -> String {
    match value {
        Ok(v) => format!("{:.2} %", v * 100.0),
        Err(reason) => format!("undefined ({reason})"),
    }
}

fn print(result: &BacktestResult, spec: &StrategySpec, config: &BacktestConfig) {
    let m = &result.metrics;
    let t = &m.trades;
    let rows: Vec<(&str, String)> = vec![
        ("symbol", result.symbols.join(", ")),
        ("strategy", format!("{spec:?}")),
        ("fill timing", format!("{:?}", config.fill_timing)),
        ("bars", m.n_periods.to_string()),
        ("initial equity", format!("{:.2}", m.initial_equity)),
        ("final equity", format!("{:.2}", m.final_equity)),
        ("total return", percent(&Ok(m.total_return))),
        ("CAGR", percent(&m.cagr)),
        ("volatility (ann.)", percent(&m.volatility)),
        ("Sharpe ratio", metric(&m.sharpe_ratio)),
        ("Sortino ratio", metric(&m.sortino_ratio)),
        ("max drawdown", percent(&Ok(m.max_drawdown))),
        ("Calmar ratio", metric(&m.calmar_ratio)),
        ("VaR 95 %", percent(&m.value_at_risk_95)),
        ("closed trades", t.n_trades.to_string()),
        ("win rate", percent(&t.win_rate)),
        ("profit factor", metric(&t.profit_factor)),
        ("expectancy", metric(&t.expectancy)),
        ("orders", result.orders.len().to_string()),
        (
            "rejected orders",
            result.rejected_orders().count().to_string(),
        ),
        (
            "decisions sized to 0",
            result.zero_size_decisions.to_string(),
        ),
        ("stop/target exits", result.exits.len().to_string()),
    ];
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (key, value) in rows {
        println!("{key:<width$}  {value}");
    }
    if let Some(order) = result.rejected_orders().next() {
        println!("first rejection: order {} {}", order.id, order.status);
    }
}

fn run() -> Result<(), Box<dyn Error>> {
    let Some(options) = parse(std::env::args().skip(1))? else {
        print!("{USAGE}");
        return Ok(());
    };
    let series = load(&options.csv, &options.symbols)?;
    let mut config = options.config;
    config.sizing = Sizing::FractionOfEquity(options.fraction.unwrap_or(1.0 / series.len() as f64));
    let backtester = Backtester::new(config)?;
    let result = if let [one] = series.as_slice() {
        backtester.run(one, &mut options.strategy.build()?)?
    } else {
        let strategies = series
            .iter()
            .map(|_| options.strategy.build())
            .collect::<Result<Vec<_>, _>>()?;
        backtester.run_multi(&series, &mut PerSymbol::new(strategies))?
    };
    print(&result, &options.strategy, &config);
    if let Some(path) = &options.html {
        let title = format!("{} · {:?}", result.symbols.join(", "), options.strategy);
        result.write_report_html(path, &title)?;
        println!("report written to {path}");
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            eprintln!("(run with --help for the options)");
            ExitCode::FAILURE
        }
    }
}
