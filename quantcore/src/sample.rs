//! The bundled **synthetic** sample data, for examples, tests and offline replay.
//!
//! Two CSV files ship inside the crate (about 0.5 MB together):
//! - [`daily`]: three symbols (`ACME`, `GLOBEX`, `INITECH`), one bar per weekday from
//!   2019-01-02 to 2024-12-31 (1,565 bars each, midnight UTC timestamps);
//! - [`minute`]: the same symbols, 390 one-minute bars per session over three sessions
//!   (2024-03-04 to 2024-03-06, 14:30-21:00 UTC).
//!
//! They are generated, not recorded: geometric Brownian motion with GARCH(1,1) volatility
//! clustering; `GLOBEX` is pulled back toward its starting price (mean reversion) and
//! `INITECH` has rare jumps of six standard deviations. `cargo run -p quantcore --example
//! make_sample_data` regenerates them byte for byte. Nothing about real markets should
//! be read from them.
//!
//! ```
//! let daily = quantcore::sample::daily()?;
//! let acme = &daily["ACME"];
//! assert_eq!(acme.len(), 1_565);
//! assert_eq!(acme.symbol(), Some("ACME"));
//! # Ok::<(), quantcore::Error>(())
//! ```

use std::collections::BTreeMap;

use crate::BarSeries;
use crate::error::Result;
use crate::normalize::{ParseOptions, csv};

/// The symbols of the sample data.
pub const SYMBOLS: [&str; 3] = ["ACME", "GLOBEX", "INITECH"];

/// The daily sample file, as shipped.
pub const DAILY_CSV: &[u8] = include_bytes!("../data/sample_daily.csv");

/// The one-minute sample file, as shipped.
pub const MINUTE_CSV: &[u8] = include_bytes!("../data/sample_minute.csv");

/// Daily bars of every sample symbol, by symbol.
///
/// # Errors
/// None in practice: the bundled file is valid (a test checks it); the `Result` is the
/// parser's.
pub fn daily() -> Result<BTreeMap<String, BarSeries>> {
    Ok(csv::parse_bars_by_symbol(DAILY_CSV, &ParseOptions::default())?.series)
}

/// One-minute bars of every sample symbol, by symbol.
///
/// # Errors
/// As [`daily`].
pub fn minute() -> Result<BTreeMap<String, BarSeries>> {
    Ok(csv::parse_bars_by_symbol(MINUTE_CSV, &ParseOptions::default())?.series)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_files_are_valid_and_complete() {
        let daily = daily().unwrap();
        let minute = minute().unwrap();
        for symbol in SYMBOLS {
            let d = &daily[symbol];
            assert_eq!(d.len(), 1_565, "{symbol}");
            // 2019-01-02 and 2024-12-31, midnight UTC.
            assert_eq!(d.timestamps()[0], 1_546_387_200);
            assert_eq!(*d.timestamps().last().unwrap(), 1_735_603_200);
            let m = &minute[symbol];
            assert_eq!(m.len(), 3 * 390, "{symbol}");
            // 2024-03-04T14:30:00Z.
            assert_eq!(m.timestamps()[0], 1_709_562_600);
        }
        assert_eq!(daily.len(), SYMBOLS.len());
    }
}
