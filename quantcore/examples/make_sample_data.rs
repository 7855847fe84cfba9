//! Writes the bundled synthetic sample data (`quantcore/data/sample_daily.csv` and
//! `quantcore/data/sample_minute.csv`).
//!
//! The data are **synthetic**: geometric Brownian motion whose volatility follows a
//! GARCH(1,1) process (so calm and turbulent spells alternate, as in real prices), with
//! a slow mean-reverting component for one symbol and rare jumps for another, so that
//! the momentum, mean-reversion and anomaly examples all have something to find.
//! Fixed seeds make the files reproducible byte for byte:
//!
//! ```text
//! cargo run -p quantcore --example make_sample_data
//! ```

use std::fmt::Write as _;

use rand::{Rng, SeedableRng, rngs::StdRng};
use rand_distr::StandardNormal;

/// How one synthetic symbol moves.
struct Profile {
    symbol: &'static str,
    start_price: f64,
    /// Annual drift and long-run annual volatility.
    drift: f64,
    volatility: f64,
    /// Pull toward the starting log price per period (0 = pure GBM).
    mean_reversion: f64,
    /// Probability of a jump per period and its size in units of volatility.
    jump_probability: f64,
    jump_size: f64,
    base_volume: f64,
}

const PROFILES: [Profile; 3] = [
    Profile {
        symbol: "ACME",
        start_price: 100.0,
        drift: 0.12,
        volatility: 0.25,
        mean_reversion: 0.0,
        jump_probability: 0.0,
        jump_size: 0.0,
        base_volume: 2.0e6,
    },
    Profile {
        symbol: "GLOBEX",
        start_price: 50.0,
        drift: 0.02,
        volatility: 0.20,
        mean_reversion: 0.02,
        jump_probability: 0.0,
        jump_size: 0.0,
        base_volume: 8.0e5,
    },
    Profile {
        symbol: "INITECH",
        start_price: 25.0,
        drift: 0.05,
        volatility: 0.45,
        mean_reversion: 0.0,
        jump_probability: 0.004,
        jump_size: 6.0,
        base_volume: 5.0e6,
    },
];

/// Generates `timestamps.len()` bars for `profile`, appending CSV rows to `out`.
/// `periods_per_year` scales drift and volatility to one bar.
fn simulate(
    profile: &Profile,
    timestamps: &[i64],
    periods_per_year: f64,
    seed: u64,
    out: &mut String,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let long_run_variance = profile.volatility.powi(2) / periods_per_year;
    // GARCH(1,1): alpha + beta < 1, omega chosen for the long-run variance.
    let (alpha, beta) = (0.08, 0.90);
    let omega = long_run_variance * (1.0 - alpha - beta);
    let mu = profile.drift / periods_per_year - 0.5 * long_run_variance;
    let anchor = profile.start_price.ln();

    let mut variance = long_run_variance;
    let mut log_close = anchor;
    let mut previous_shock = 0.0_f64;
    for &timestamp in timestamps {
        variance = omega + alpha * previous_shock.powi(2) + beta * variance;
        let sigma = variance.sqrt();
        let jump = if rng.r#gen::<f64>() < profile.jump_probability {
            let direction = if rng.r#gen::<bool>() { 1.0 } else { -1.0 };
            direction * profile.jump_size * sigma
        } else {
            0.0
        };
        let mut normal = || -> f64 { rng.sample(StandardNormal) };
        let shock = sigma * normal() + jump;
        let pull = -profile.mean_reversion * (log_close - anchor);
        // The overnight/inter-bar gap takes a fifth of the move.
        let log_open = log_close + 0.2 * shock;
        log_close += mu + pull + shock;
        // Jumps are news, not volatility regime: keep them out of the GARCH recursion.
        previous_shock = shock - jump;

        let open = log_open.exp();
        let close = log_close.exp();
        let wick = sigma * 0.5;
        let high = open.max(close) * (wick * normal().abs()).exp();
        let low = open.min(close) * (-wick * normal().abs()).exp();
        // Prices on a one-cent tick: high rounded up, low down, so the bar stays consistent.
        let round = |x: f64| (x * 100.0).round() / 100.0;
        let (open, close) = (round(open), round(close));
        let high = ((high * 100.0).ceil() / 100.0).max(open).max(close);
        let low = ((low * 100.0).floor() / 100.0)
            .min(open)
            .min(close)
            .max(0.01);
        let surprise = (shock / sigma).abs();
        let volume =
            (profile.base_volume * (0.3 * normal()).exp() * (0.6 + 0.4 * surprise)).round();
        let date = chrono::DateTime::from_timestamp(timestamp, 0).expect("timestamp in range");
        writeln!(
            out,
            "{},{},{open:.2},{high:.2},{low:.2},{close:.2},{volume}",
            profile.symbol,
            date.format("%Y-%m-%dT%H:%M:%SZ"),
        )
        .expect("writing to a String cannot fail");
    }
}

/// Weekdays from 2019-01-02 to 2024-12-31, at 00:00 UTC (holidays are not removed).
fn daily_timestamps() -> Vec<i64> {
    let start = chrono::NaiveDate::from_ymd_opt(2019, 1, 2).expect("valid date");
    let end = chrono::NaiveDate::from_ymd_opt(2024, 12, 31).expect("valid date");
    start
        .iter_days()
        .take_while(|d| *d <= end)
        .filter(|d| chrono::Datelike::weekday(d).num_days_from_monday() < 5)
        .map(|d| {
            d.and_hms_opt(0, 0, 0)
                .expect("midnight")
                .and_utc()
                .timestamp()
        })
        .collect()
}

/// 390 one-minute bars per session (14:30-21:00 UTC) over three sessions.
fn minute_timestamps() -> Vec<i64> {
    ["2024-03-04", "2024-03-05", "2024-03-06"]
        .iter()
        .flat_map(|day| {
            let open = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
                .expect("valid date")
                .and_hms_opt(14, 30, 0)
                .expect("valid time")
                .and_utc()
                .timestamp();
            (0..390).map(move |minute| open + 60 * minute)
        })
        .collect()
}

fn main() -> std::io::Result<()> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    std::fs::create_dir_all(&dir)?;
    let header = "symbol,timestamp,open,high,low,close,volume\n";
    for (name, timestamps, periods_per_year, seed_base) in [
        ("sample_daily.csv", daily_timestamps(), 252.0, 1_000),
        (
            "sample_minute.csv",
            minute_timestamps(),
            252.0 * 390.0,
            2_000,
        ),
    ] {
        let mut out = String::from(header);
        for (i, profile) in PROFILES.iter().enumerate() {
            simulate(
                profile,
                &timestamps,
                periods_per_year,
                seed_base + i as u64,
                &mut out,
            );
        }
        let path = dir.join(name);
        std::fs::write(&path, out)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
