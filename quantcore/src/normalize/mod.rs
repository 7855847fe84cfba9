//! Parsers from market-data wire formats into [`BarSeries`](crate::BarSeries).
//!
//! | format | entry points | result |
//! |---|---|---|
//! | Yahoo Finance v8 chart JSON | [`yahoo::parse_chart`] | [`yahoo::YahooChart`]: series, `meta`, skipped null rows, partial last bar |
//! | Alpaca v2 bars JSON, one symbol | [`alpaca::parse_bars`] | [`alpaca::AlpacaPage`]: series, `next_page_token` |
//! | Alpaca v2 bars JSON, several symbols | [`alpaca::parse_multi_bars`] | [`alpaca::AlpacaMultiPage`]: symbol → series, `next_page_token` |
//! | CSV (incl. pandas/yfinance `to_csv`) | [`csv::parse_bars`], [`csv::read_bars`] | [`csv::CsvBars`]: one series |
//! | CSV with a `symbol` column | [`csv::parse_bars_by_symbol`], [`csv::read_bars_by_symbol`] | [`csv::CsvBarsBySymbol`]: symbol → series |
//!
//! # Conventions
//! - Timestamps become Unix seconds UTC of the bar's start, as everywhere in the crate.
//!   Text timestamps (Alpaca's `t`, CSV) accept RFC 3339 (`2024-01-16T14:30:00Z`,
//!   fractional seconds, `+01:00` offsets), `YYYY-MM-DD` (midnight UTC),
//!   `YYYY-MM-DD HH:MM:SS` (no offset: read as UTC), pandas' tz-aware
//!   `YYYY-MM-DD HH:MM:SS-05:00`, and plain Unix seconds. Fractional seconds are
//!   floored to the second.
//! - Prices are kept as the source prints them: Yahoo's float32-as-float64 values
//!   (`217.5500030517578`) are not rounded.
//! - **Rows** in errors and in [`DroppedRows`](crate::DroppedRows) are 0-based
//!   indices *into the input*: the position in Yahoo's parallel arrays, in Alpaca's
//!   `bars` array (of that symbol, for the multi-symbol shape), or the CSV data row
//!   (the first row after the header is row 0; for a file without quoted line breaks
//!   and a one-line header, the 1-based line number is `row + 2`). Rows skipped or
//!   dropped never shift later row numbers.
//! - Every row goes through the [`data`](crate::data) rules
//!   ([`Bar::validate`](crate::Bar::validate), strictly increasing timestamps; a present
//!   adjusted close must be finite and positive). [`Validation::Strict`] (the default)
//!   stops at the first bad row with its error; [`Validation::Lenient`] drops bad rows,
//!   including rows whose fields cannot be read, and reports each in a
//!   [`DroppedRows`](crate::DroppedRows). Whole-input problems (broken JSON, a missing
//!   column, a source error object, a second symbol in a single-series CSV) fail in
//!   both modes.
//!
//! # Errors
//! | failure | variant |
//! |---|---|
//! | broken JSON, wrong JSON types, empty CSV, bad CSV header | [`Error::Malformed`] (with `line, column`) |
//! | absent required field or column | [`Error::MissingField`] |
//! | one field of one row unreadable | [`Error::InvalidField`] |
//! | parallel arrays of different lengths (Yahoo) | [`Error::LengthMismatch`] |
//! | Yahoo `error` object, Alpaca `{code, message}` body | [`Error::SourceError`] |
//! | invalid bar (NaN, price ≤ 0, high/low, unsorted, duplicate) | the [`data`](crate::data) variants |
//! | a row error inside one symbol of a multi-symbol Alpaca page | [`Error::ForSymbol`] |
//! | reading a CSV file | [`Error::Io`] |
//!
//! No input makes a parser panic: a property test feeds arbitrary bytes to each, and
//! the `fuzz/` project at the repository root runs them under libFuzzer.
//!
//! # Implementation notes
//! JSON goes through serde into typed structs (`Vec<Option<f64>>` columns for Yahoo,
//! Alpaca's `t` read into seconds inside deserialization), CSV through the `csv`
//! crate's [`ByteRecord`](::csv::ByteRecord) with fields parsed straight from bytes:
//! no row allocates, and every parser is one pass. The text-timestamp reader is
//! hand-written (fixed-width digit fields; calendar checks and day counts by chrono)
//! because chrono's parsers each take one layout, and trying the accepted layouts in
//! turn would cost several parses per CSV row; tests check it against chrono's parsers.
//! serde_json without its `float_roundtrip` feature reads decimals of up to 15
//! significant digits exactly but may land one unit in the last place off on longer
//! ones; Yahoo's 17-digit float32 prints are restored exactly (see [`yahoo`]).
//!
//! ```
//! use quantcore::normalize::{csv, ParseOptions, Validation};
//! let text = "Date,Open,High,Low,Close,Adj Close,Volume\n\
//!             2024-01-02,187.15,188.44,183.89,185.64,184.29,82488700\n\
//!             2024-01-03,184.22,185.88,183.43,184.25,182.91,58414500\n";
//! let bars = csv::parse_bars(text.as_bytes(), &ParseOptions::default())?;
//! assert_eq!(bars.series.timestamps(), &[1_704_153_600, 1_704_240_000]);
//! assert_eq!(bars.series.adj_close(), Some(&[184.29, 182.91][..]));
//!
//! // A row with high below close: strict fails naming it, lenient drops it.
//! let bad = text.replace("188.44", "180.0");
//! let err = csv::parse_bars(bad.as_bytes(), &ParseOptions::default()).unwrap_err();
//! assert_eq!(err.row(), Some(0));
//! let lenient = ParseOptions::default().validation(Validation::Lenient);
//! let bars = csv::parse_bars(bad.as_bytes(), &lenient)?;
//! assert_eq!(bars.series.len(), 1);
//! assert_eq!(bars.dropped.rows[0].0, 0);
//! # Ok::<(), quantcore::Error>(())
//! ```

pub mod alpaca;
mod columns;
pub mod csv;
mod timestamp;
pub mod yahoo;

use crate::error::Error;

/// How parsers treat rows that break the [`data`](crate::data) rules or cannot be read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Validation {
    /// Fail with the first bad row's error (the default).
    #[default]
    Strict,
    /// Drop bad rows and report them in a [`DroppedRows`](crate::DroppedRows).
    Lenient,
}

/// Options shared by every parser of this module.
///
/// Defaults: [`Validation::Strict`], a partial last Yahoo bar kept (and flagged),
/// no `as_of` time (Yahoo's `meta.regularMarketTime` stands in).
///
/// ```
/// use quantcore::normalize::{ParseOptions, Validation};
/// let options = ParseOptions::default()
///     .validation(Validation::Lenient)
///     .drop_partial_bar(true)
///     .as_of(1_726_760_000);
/// assert_eq!(options.validation_mode(), Validation::Lenient);
/// assert!(options.drops_partial_bar());
/// assert_eq!(options.as_of_time(), Some(1_726_760_000));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ParseOptions {
    validation: Validation,
    drop_partial_bar: bool,
    as_of: Option<i64>,
}

impl ParseOptions {
    /// The defaults (same as [`Default`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets strict or lenient row validation.
    pub fn validation(mut self, validation: Validation) -> Self {
        self.validation = validation;
        self
    }

    /// Yahoo only: when true, a still-forming last bar is left out of the series
    /// instead of being kept and flagged (see [`yahoo`] for the rule).
    pub fn drop_partial_bar(mut self, drop: bool) -> Self {
        self.drop_partial_bar = drop;
        self
    }

    /// Yahoo only: the time (Unix seconds) the response was fetched, used to decide
    /// whether the last bar is still forming. Without it the response's
    /// `meta.regularMarketTime` stands in.
    pub fn as_of(mut self, unix_seconds: i64) -> Self {
        self.as_of = Some(unix_seconds);
        self
    }

    /// The validation mode.
    pub fn validation_mode(&self) -> Validation {
        self.validation
    }

    /// Whether a partial last Yahoo bar is dropped.
    pub fn drops_partial_bar(&self) -> bool {
        self.drop_partial_bar
    }

    /// The fetch time, when set.
    pub fn as_of_time(&self) -> Option<i64> {
        self.as_of
    }
}

/// Maps a serde_json error to [`Error::Malformed`] with its line and column.
fn json_error(format: &'static str, err: &serde_json::Error) -> Error {
    let text = err.to_string();
    // serde_json appends " at line L column C"; the location has its own field.
    let message = match text.rfind(" at line ") {
        Some(at) => text[..at].to_string(),
        None => text,
    };
    Error::Malformed {
        format,
        location: format!("line {}, column {}", err.line(), err.column()),
        message,
    }
}

#[cfg(test)]
mod tests {
    //! Properties shared by the parsers: no input panics. Arbitrary bytes mostly fail
    //! at the first byte, so the inputs also include fixtures cut short and with one
    //! byte changed, which reach the row-level code.
    use super::*;
    use proptest::prelude::*;

    fn fixtures() -> Vec<Vec<u8>> {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");
        let mut all = Vec::new();
        for folder in ["yahoo", "alpaca", "csv"] {
            let mut paths: Vec<_> = std::fs::read_dir(format!("{root}/{folder}"))
                .unwrap()
                .map(|entry| entry.unwrap().path())
                .collect();
            paths.sort();
            all.extend(paths.into_iter().map(|path| std::fs::read(path).unwrap()));
        }
        all
    }

    /// Runs every parser in both validation modes; a panic fails the test.
    fn parse_everything(bytes: &[u8]) {
        for options in [
            ParseOptions::default(),
            ParseOptions::default()
                .validation(Validation::Lenient)
                .drop_partial_bar(true),
        ] {
            let _ = yahoo::parse_chart(bytes, &options);
            let _ = alpaca::parse_bars(bytes, &options);
            let _ = alpaca::parse_multi_bars(bytes, &options);
            let _ = csv::parse_bars(bytes, &options);
            let _ = csv::parse_bars_by_symbol(bytes, &options);
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            parse_everything(&bytes);
        }

        #[test]
        fn damaged_fixtures_never_panic(
            which in any::<prop::sample::Index>(),
            cut in any::<prop::sample::Index>(),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let fixtures = fixtures();
            let fixture = &fixtures[which.index(fixtures.len())];
            if fixture.is_empty() {
                return Ok(());
            }
            let mut changed = fixture.clone();
            changed[at.index(fixture.len())] = byte;
            parse_everything(&changed);
            parse_everything(&fixture[..cut.index(fixture.len())]);
        }
    }

    #[test]
    fn every_fixture_parses_without_panic() {
        let fixtures = fixtures();
        assert!(fixtures.len() >= 30, "found {} fixtures", fixtures.len());
        for fixture in &fixtures {
            parse_everything(fixture);
        }
    }

    #[test]
    fn json_errors_carry_line_and_column() {
        let err = json_error(
            "yahoo",
            &serde_json::from_str::<Vec<f64>>("[1,\n 2,\n x]").unwrap_err(),
        );
        assert_eq!(
            err,
            Error::Malformed {
                format: "yahoo",
                location: "line 3, column 2".into(),
                message: "expected value".into()
            }
        );
    }
}
