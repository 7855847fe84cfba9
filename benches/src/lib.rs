//! Data builders shared by the benches: deterministic synthetic bars and returns, and
//! the same bars rendered as CSV and as a Yahoo chart response, all built outside the
//! timed closures.

use std::fmt::Write as _;

use quantcore::BarSeries;
use quantcore::backtest::BacktestConfig;
use quantcore::execution::{CommissionModel, ExecutionModel};
use quantcore::order::Sizing;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Standard normal draw (Box–Muller), so the benches need no extra crate.
pub fn standard_normal(rng: &mut StdRng) -> f64 {
    let (u, v): (f64, f64) = (1.0 - rng.r#gen::<f64>(), rng.r#gen());
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// `n` one-minute bars of a geometric random walk (1% daily-ish volatility per bar
/// scaled down), valid by construction, from a fixed seed.
pub fn random_walk_series(n: usize, seed: u64) -> BarSeries {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut series = BarSeries::with_capacity(n);
    let mut close = 100.0_f64;
    for i in 0..n {
        let open = close;
        close = (open * (0.001 * standard_normal(&mut rng)).exp()).max(0.01);
        let high = open.max(close) * (1.0 + 0.0005 * rng.r#gen::<f64>());
        let low = open.min(close) * (1.0 - 0.0005 * rng.r#gen::<f64>());
        let volume = (1_000.0 * (1.0 + rng.r#gen::<f64>())).round();
        series
            .push(quantcore::Bar {
                timestamp: 1_600_000_000 + 60 * i as i64,
                open,
                high,
                low,
                close,
                volume,
            })
            .expect("the random walk is a valid series");
    }
    series
}

/// `n` simple returns, normal with mean 0.0003 and deviation 0.01, from a fixed seed.
pub fn random_returns(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| 0.0003 + 0.01 * standard_normal(&mut rng))
        .collect()
}

/// An equity curve starting at 100,000 compounding `returns`, with one-minute timestamps.
pub fn equity_curve(returns: &[f64]) -> (Vec<i64>, Vec<f64>) {
    let mut equity = Vec::with_capacity(returns.len() + 1);
    equity.push(100_000.0);
    for r in returns {
        let last = *equity.last().expect("not empty");
        equity.push(last * (1.0 + r));
    }
    let timestamps = (0..equity.len() as i64)
        .map(|i| 1_600_000_000 + 60 * i)
        .collect();
    (timestamps, equity)
}

/// The series as the CSV a pandas `to_csv()` of a yfinance frame would write
/// (`Date,Open,High,Low,Close,Adj Close,Volume`, timestamps as Unix seconds here).
pub fn to_csv(series: &BarSeries) -> Vec<u8> {
    let mut out = String::with_capacity(series.len() * 64);
    out.push_str("timestamp,open,high,low,close,volume\n");
    for bar in series.iter() {
        writeln!(
            out,
            "{},{:.4},{:.4},{:.4},{:.4},{}",
            bar.timestamp, bar.open, bar.high, bar.low, bar.close, bar.volume
        )
        .expect("writing to a String cannot fail");
    }
    out.into_bytes()
}

/// The series as a Yahoo Finance v8 chart response.
pub fn to_yahoo_json(series: &BarSeries) -> Vec<u8> {
    let column = |values: &[f64]| -> String {
        let mut out = String::with_capacity(values.len() * 12);
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write!(out, "{v:.4}").expect("writing to a String cannot fail");
        }
        out
    };
    let timestamps = series
        .timestamps()
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let last = series.last().map_or(0, |bar| bar.timestamp + 60);
    format!(
        concat!(
            r#"{{"chart":{{"result":[{{"meta":{{"currency":"USD","symbol":"BENCH","#,
            r#""exchangeName":"NMS","instrumentType":"EQUITY","gmtoffset":-14400,"#,
            r#""timezone":"EDT","exchangeTimezoneName":"America/New_York","#,
            r#""regularMarketPrice":100.0,"regularMarketTime":{last},"#,
            r#""dataGranularity":"1m","range":"max"}},"timestamp":[{ts}],"#,
            r#""indicators":{{"quote":[{{"open":[{o}],"high":[{h}],"low":[{l}],"#,
            r#""close":[{c}],"volume":[{v}]}}]}}}}],"error":null}}}}"#
        ),
        last = last,
        ts = timestamps,
        o = column(series.open()),
        h = column(series.high()),
        l = column(series.low()),
        c = column(series.close()),
        v = column(series.volume()),
    )
    .into_bytes()
}

/// `n` daily bars whose log close is a random walk (about 1 % a day) pulled slowly
/// toward ln 100, so that a million bars stay in a realistic range (roughly 35 to 280)
/// and trends of all lengths occur; the open is a small gap from the previous close
/// and the high and low reach beyond the body.
pub fn drifting_walk(n: usize, seed: u64, symbol: &str) -> BarSeries {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut columns: [Vec<f64>; 5] = std::array::from_fn(|_| Vec::with_capacity(n));
    let anchor = 100f64.ln();
    let mut log_close = anchor;
    for _ in 0..n {
        let previous = log_close.exp();
        log_close += 0.0005 * (anchor - log_close) + rng.gen_range(-0.017..0.017);
        let open = previous * (1.0 + rng.gen_range(-0.002..0.002));
        let close = log_close.exp();
        columns[0].push(open);
        columns[1].push(open.max(close) * (1.0 + rng.gen_range(0.0..0.01)));
        columns[2].push(open.min(close) * (1.0 - rng.gen_range(0.0..0.01)));
        columns[3].push(close);
        columns[4].push(rng.gen_range(1e4..1e6));
    }
    let [open, high, low, close, volume] = columns;
    let timestamps = (0..n as i64).map(|i| 946_684_800 + i * 86_400).collect();
    BarSeries::new(timestamps, open, high, low, close, volume)
        .expect("the walk builds valid bars")
        .with_symbol(symbol)
}

/// The backtests' configuration: a 10,000,000 account trading a fixed 100 units,
/// 0.1 % commission and 5 bps slippage, next-open fills.
pub fn backtest_config() -> BacktestConfig {
    BacktestConfig {
        initial_capital: 10_000_000.0,
        execution: ExecutionModel::new(CommissionModel::new(0.001, 0.0).expect("valid"), 5.0)
            .expect("valid"),
        sizing: Sizing::FixedQuantity(100.0),
        ..BacktestConfig::default()
    }
}
