//! Alpaca market data API v2 bar pages into [`BarSeries`].
//!
//! Two shapes:
//! - one symbol, `/v2/stocks/{symbol}/bars`:
//!   `{"bars": [...], "symbol": "AAPL", "next_page_token": ...}` → [`parse_bars`];
//! - several symbols, `/v2/stocks/bars?symbols=AAPL,MSFT`:
//!   `{"bars": {"AAPL": [...], "MSFT": [...]}, "next_page_token": ...}` →
//!   [`parse_multi_bars`].
//!
//! Each bar is `{"t", "o", "h", "l", "c", "v", "n", "vw"}`: `t` is an RFC 3339 time
//! (fractional seconds and offsets accepted, see [`normalize`](super)) read into Unix
//! seconds; `n` (trade count) and `vw` (volume-weighted price) are kept beside the
//! series when every kept bar carries them.
//!
//! # Awkward cases
//! - `"bars": null` (Alpaca's answer when the range holds no data), and a symbol mapped
//!   to `null`: an empty series.
//! - `next_page_token` is surfaced as given (`null` and `""` both mean the last page);
//!   pass it back as `page_token` to fetch the next page.
//! - An error body `{"code": 40010001, "message": "..."}` (HTTP 4xx, or 429 when rate
//!   limited): [`Error::SourceError`].
//! - A bar whose `t` is not a timestamp, or whose `o/h/l/c/v` is missing or `null`:
//!   [`Error::InvalidField`] with the bar's index (dropped in lenient mode). A value of
//!   the wrong JSON type (a price as a string): [`Error::Malformed`] with line and column.
//! - Multi-symbol pages: row numbers count within each symbol's array, and strict-mode
//!   row errors come wrapped in [`Error::ForSymbol`].
//!
//! ```
//! use quantcore::normalize::{alpaca, ParseOptions};
//! let body = br#"{"bars": [
//!     {"t": "2024-01-16T14:30:00Z", "o": 182.16, "h": 184.26, "l": 180.93, "c": 183.63,
//!      "v": 65603, "n": 812, "vw": 182.9}],
//!   "symbol": "AAPL", "next_page_token": "QUFQTHxNfDIwMjQtMDEtMTZUMTQ6MzA6MDAuMDAwMDAwMDAwWg=="}"#;
//! let page = alpaca::parse_bars(body, &ParseOptions::default())?;
//! assert_eq!(page.bars.series.timestamps(), &[1_705_415_400]);
//! assert_eq!(page.bars.series.symbol(), Some("AAPL"));
//! assert_eq!(page.bars.trade_counts.as_deref(), Some(&[812][..]));
//! assert!(page.next_page_token.is_some());
//! # Ok::<(), quantcore::Error>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, Visitor};

use super::columns::Columns;
use super::timestamp::parse_timestamp;
use super::{ParseOptions, json_error};
use crate::data::{Bar, BarSeries, DroppedRows};
use crate::error::{Error, Result};

const FORMAT: &str = "alpaca";

/// The bars of one symbol.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct AlpacaBars {
    /// The bars, tagged with the symbol when the page names it.
    pub series: BarSeries,
    /// `n`, the trade count of each kept bar, when every kept bar has one.
    pub trade_counts: Option<Vec<u64>>,
    /// `vw`, the volume-weighted average price of each kept bar, when every kept bar
    /// has one.
    pub vwap: Option<Vec<f64>>,
    /// Rows dropped by [`Validation::Lenient`](super::Validation::Lenient).
    pub dropped: DroppedRows,
}

/// A single-symbol page.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct AlpacaPage {
    /// The page's bars.
    pub bars: AlpacaBars,
    /// `symbol`, when the page names it.
    pub symbol: Option<String>,
    /// The token for the next page; `None` on the last page.
    pub next_page_token: Option<String>,
}

/// A multi-symbol page.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct AlpacaMultiPage {
    /// Bars by symbol, each series tagged with its symbol.
    pub bars: BTreeMap<String, AlpacaBars>,
    /// The token for the next page; `None` on the last page.
    pub next_page_token: Option<String>,
}

impl AlpacaMultiPage {
    /// The series by symbol, without the trade counts, VWAPs and drop reports.
    pub fn into_series(self) -> BTreeMap<String, BarSeries> {
        self.bars
            .into_iter()
            .map(|(symbol, bars)| (symbol, bars.series))
            .collect()
    }
}

/// `t`, read into Unix seconds as it is deserialized (no `String` per bar); a bad
/// value keeps its text for the row's error.
struct RawTime(std::result::Result<i64, String>);

impl<'de> Deserialize<'de> for RawTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct TimeVisitor;
        impl Visitor<'_> for TimeVisitor {
            type Value = RawTime;

            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("an RFC 3339 timestamp string")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> std::result::Result<RawTime, E> {
                Ok(RawTime(parse_timestamp(text.as_bytes()).map_err(
                    |reason| format!("{text:?} is not a timestamp: {reason}"),
                )))
            }
        }
        deserializer.deserialize_str(TimeVisitor)
    }
}

#[derive(Deserialize)]
struct RawBar {
    t: Option<RawTime>,
    o: Option<f64>,
    h: Option<f64>,
    l: Option<f64>,
    c: Option<f64>,
    v: Option<f64>,
    n: Option<u64>,
    vw: Option<f64>,
}

/// `Some(value)` for a present field (`null` included), so that an absent `bars` can
/// be told from `"bars": null`.
fn present<'de, D, T>(deserializer: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[derive(Deserialize)]
struct RawPage {
    #[serde(default, deserialize_with = "present")]
    bars: Option<Option<Vec<RawBar>>>,
    #[serde(default)]
    symbol: Option<String>,
    #[serde(default)]
    next_page_token: Option<String>,
    #[serde(default)]
    code: Option<serde_json::Value>,
    #[serde(default)]
    message: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawMultiPage {
    #[serde(default, deserialize_with = "present")]
    bars: Option<Option<BTreeMap<String, Option<Vec<RawBar>>>>>,
    #[serde(default)]
    next_page_token: Option<String>,
    #[serde(default)]
    code: Option<serde_json::Value>,
    #[serde(default)]
    message: Option<serde_json::Value>,
}

fn value_text(value: Option<serde_json::Value>) -> String {
    match value {
        Some(serde_json::Value::String(text)) => text,
        Some(serde_json::Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// The `bars` of a page, or the error the body stands for.
fn required_bars<T>(
    bars: Option<Option<T>>,
    code: Option<serde_json::Value>,
    message: Option<serde_json::Value>,
) -> Result<Option<T>> {
    match bars {
        Some(bars) => Ok(bars),
        None if code.is_some() || message.is_some() => Err(Error::SourceError {
            format: FORMAT,
            code: value_text(code),
            description: value_text(message),
        }),
        None => Err(Error::MissingField {
            format: FORMAT,
            field: "bars".into(),
        }),
    }
}

fn invalid(row: usize, field: &str, message: impl Into<String>) -> Error {
    Error::InvalidField {
        format: FORMAT,
        row,
        field: field.into(),
        message: message.into(),
    }
}

/// One raw bar as a [`Bar`] with its `n` and `vw`.
fn read_bar(row: usize, raw: RawBar) -> Result<(Bar, Option<u64>, Option<f64>)> {
    let timestamp = match raw.t {
        Some(RawTime(Ok(timestamp))) => timestamp,
        Some(RawTime(Err(message))) => return Err(invalid(row, "t", message)),
        None => return Err(invalid(row, "t", "missing or null")),
    };
    let price = |field: &str, value: Option<f64>| {
        value.ok_or_else(|| invalid(row, field, "missing or null"))
    };
    let bar = Bar {
        timestamp,
        open: price("o", raw.o)?,
        high: price("h", raw.h)?,
        low: price("l", raw.l)?,
        close: price("c", raw.c)?,
        volume: price("v", raw.v)?,
    };
    Ok((bar, raw.n, raw.vw))
}

/// Validates one symbol's bars.
fn convert(raw: Vec<RawBar>, symbol: Option<&str>, options: &ParseOptions) -> Result<AlpacaBars> {
    let mut columns = Columns::new(options.validation, false, raw.len());
    let mut trade_counts = Some(Vec::with_capacity(raw.len()));
    let mut vwap = Some(Vec::with_capacity(raw.len()));
    for (row, raw_bar) in raw.into_iter().enumerate() {
        let (bar, count, average) = match read_bar(row, raw_bar) {
            Ok(read) => read,
            Err(reason) => {
                columns.reject(row, reason)?;
                continue;
            }
        };
        if columns.push(row, bar, None)? {
            // A column missing for one kept bar is dropped for all.
            trade_counts = trade_counts.zip(count).map(|(mut all, one)| {
                all.push(one);
                all
            });
            vwap = vwap.zip(average).map(|(mut all, one)| {
                all.push(one);
                all
            });
        }
    }
    let (series, dropped) = columns.finish()?;
    Ok(AlpacaBars {
        series: match symbol {
            Some(symbol) => series.with_symbol(symbol),
            None => series,
        },
        trade_counts,
        vwap,
        dropped,
    })
}

fn page_token(token: Option<String>) -> Option<String> {
    token.filter(|token| !token.is_empty())
}

/// Parses a single-symbol bars page.
///
/// # Errors
/// [`Error::Malformed`] (broken JSON, wrong types, a multi-symbol page),
/// [`Error::SourceError`] (an error body), [`Error::MissingField`] (no `bars`), and in
/// strict mode the first bad bar's error, its row being the index in `bars`.
pub fn parse_bars(bytes: &[u8], options: &ParseOptions) -> Result<AlpacaPage> {
    let page: RawPage = serde_json::from_slice(bytes).map_err(|e| json_error(FORMAT, &e))?;
    let raw = required_bars(page.bars, page.code, page.message)?.unwrap_or_default();
    Ok(AlpacaPage {
        bars: convert(raw, page.symbol.as_deref(), options)?,
        symbol: page.symbol,
        next_page_token: page_token(page.next_page_token),
    })
}

/// Parses a multi-symbol bars page.
///
/// # Errors
/// As [`parse_bars`]; a bad bar's error comes wrapped in [`Error::ForSymbol`].
pub fn parse_multi_bars(bytes: &[u8], options: &ParseOptions) -> Result<AlpacaMultiPage> {
    let page: RawMultiPage = serde_json::from_slice(bytes).map_err(|e| json_error(FORMAT, &e))?;
    let raw = required_bars(page.bars, page.code, page.message)?.unwrap_or_default();
    let mut bars = BTreeMap::new();
    for (symbol, raw_bars) in raw {
        let converted =
            convert(raw_bars.unwrap_or_default(), Some(&symbol), options).map_err(|source| {
                Error::ForSymbol {
                    symbol: symbol.clone(),
                    source: Box::new(source),
                }
            })?;
        bars.insert(symbol, converted);
    }
    Ok(AlpacaMultiPage {
        bars,
        next_page_token: page_token(page.next_page_token),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::Validation;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/fixtures/alpaca/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn strict() -> ParseOptions {
        ParseOptions::default()
    }

    #[test]
    fn single_symbol_page_with_token() {
        let page = parse_bars(&fixture("single_page.json"), &strict()).unwrap();
        // 2024-01-16 is day 19738 after the epoch: 19738 * 86400 = 1705363200;
        // 14:30Z adds 52200 s, each later bar one minute.
        assert_eq!(
            page.bars.series.timestamps(),
            &[1_705_415_400, 1_705_415_460, 1_705_415_520]
        );
        assert_eq!(page.bars.series.open(), &[182.16, 183.63, 183.9]);
        assert_eq!(page.bars.series.volume(), &[65603.0, 31230.0, 28811.0]);
        assert_eq!(page.bars.trade_counts, Some(vec![812, 421, 390]));
        assert_eq!(page.bars.vwap, Some(vec![182.9, 183.71, 183.95]));
        assert_eq!(page.symbol.as_deref(), Some("AAPL"));
        assert_eq!(page.bars.series.symbol(), Some("AAPL"));
        assert_eq!(
            page.next_page_token.as_deref(),
            Some("QUFQTHxNfDIwMjQtMDEtMTZUMTQ6MzM6MDAuMDAwMDAwMDAwWg==")
        );
    }

    #[test]
    fn fractional_seconds_and_offsets() {
        let page = parse_bars(&fixture("offsets.json"), &strict()).unwrap();
        // 09:31:00.5-05:00 = 14:31:00.5Z, floored; 15:32+01:00 = 14:32Z.
        assert_eq!(
            page.bars.series.timestamps(),
            &[1_705_415_400, 1_705_415_460, 1_705_415_520]
        );
        // One bar has no `n`: the column is left out, `vw` is kept.
        assert_eq!(page.bars.trade_counts, None);
        assert_eq!(page.bars.vwap.as_ref().map(Vec::len), Some(3));
    }

    #[test]
    fn multi_symbol_page() {
        let page = parse_multi_bars(&fixture("multi_page.json"), &strict()).unwrap();
        assert_eq!(page.next_page_token, None);
        let symbols: Vec<&str> = page.bars.keys().map(String::as_str).collect();
        assert_eq!(symbols, ["AAPL", "MSFT", "TSLA"]);
        assert_eq!(page.bars["MSFT"].series.close(), &[390.47, 391.2]);
        assert_eq!(page.bars["MSFT"].series.symbol(), Some("MSFT"));
        assert!(page.bars["TSLA"].series.is_empty()); // "TSLA": null
        let series = page.into_series();
        assert_eq!(series["AAPL"].len(), 2);
    }

    #[test]
    fn null_bars_is_an_empty_page() {
        let page = parse_bars(&fixture("null_bars.json"), &strict()).unwrap();
        assert!(page.bars.series.is_empty());
        assert_eq!(page.bars.series.symbol(), Some("AAPL"));
        assert_eq!(page.next_page_token, None);
        let multi =
            parse_multi_bars(br#"{"bars": null, "next_page_token": null}"#, &strict()).unwrap();
        assert!(multi.bars.is_empty());
    }

    #[test]
    fn error_body_is_a_source_error() {
        let expected = Error::SourceError {
            format: "alpaca",
            code: "40010001".into(),
            description: "invalid timeframe".into(),
        };
        assert_eq!(
            parse_bars(&fixture("error.json"), &strict()).unwrap_err(),
            expected
        );
        assert_eq!(
            parse_multi_bars(&fixture("error.json"), &strict()).unwrap_err(),
            expected
        );
        let err = parse_bars(br#"{"message": "too many requests."}"#, &strict()).unwrap_err();
        assert!(
            matches!(err, Error::SourceError { ref code, .. } if code.is_empty()),
            "{err}"
        );
        assert_eq!(
            parse_bars(b"{}", &strict()).unwrap_err(),
            Error::MissingField {
                format: "alpaca",
                field: "bars".into()
            }
        );
    }

    #[test]
    fn bad_bars_strict_and_lenient() {
        // Row 1: bad `t`; row 2: `c` null; row 3: high below close; row 4: fine.
        let err = parse_bars(&fixture("bad_bars.json"), &strict()).unwrap_err();
        match &err {
            Error::InvalidField {
                row: 1,
                field,
                message,
                ..
            } => {
                assert_eq!(field, "t");
                assert!(message.contains("2024-01-16T25:00:00Z"), "{message}");
            }
            other => panic!("expected InvalidField at row 1, was {other:?}"),
        }
        let lenient = ParseOptions::default().validation(Validation::Lenient);
        let page = parse_bars(&fixture("bad_bars.json"), &lenient).unwrap();
        assert_eq!(
            page.bars.series.timestamps(),
            &[1_705_415_400, 1_705_415_640]
        );
        let rows: Vec<usize> = page.bars.dropped.rows.iter().map(|(row, _)| *row).collect();
        assert_eq!(rows, vec![1, 2, 3]);
        assert!(matches!(
            &page.bars.dropped.rows[1].1,
            Error::InvalidField { field, .. } if field == "c"
        ));
        assert!(matches!(
            page.bars.dropped.rows[2].1,
            Error::InconsistentBar {
                row: 3,
                field: "high",
                ..
            }
        ));
        // The trade counts follow the kept bars only.
        assert_eq!(page.bars.trade_counts, Some(vec![812, 100]));
    }

    #[test]
    fn multi_symbol_errors_name_the_symbol() {
        let body = br#"{"bars": {"AAPL": [{"t": "2024-01-16T14:30:00Z", "o": 1, "h": 1, "l": 1, "c": 1, "v": 1}],
                        "MSFT": [{"t": "2024-01-16T14:30:00Z", "o": 1, "h": 1, "l": 1, "c": 1, "v": 1},
                                 {"t": "2024-01-16T14:29:00Z", "o": 1, "h": 1, "l": 1, "c": 1, "v": 1}]},
                        "next_page_token": null}"#;
        let err = parse_multi_bars(body, &strict()).unwrap_err();
        assert_eq!(
            err,
            Error::ForSymbol {
                symbol: "MSFT".into(),
                source: Box::new(Error::UnsortedBars {
                    row: 1,
                    timestamp: 1_705_415_340,
                    previous: 1_705_415_400
                })
            }
        );
        assert!(
            err.to_string().starts_with("symbol `MSFT`: row 1:"),
            "{err}"
        );
    }

    #[test]
    fn malformed_inputs_give_typed_errors() {
        for name in ["truncated.json", "string_price.json"] {
            let err = parse_bars(&fixture(name), &strict()).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::Malformed {
                        format: "alpaca",
                        ..
                    }
                ),
                "{name}: {err:?}"
            );
        }
        // The multi-symbol shape given to the single-symbol parser, and back.
        assert!(matches!(
            parse_bars(&fixture("multi_page.json"), &strict()).unwrap_err(),
            Error::Malformed { .. }
        ));
        assert!(matches!(
            parse_multi_bars(&fixture("single_page.json"), &strict()).unwrap_err(),
            Error::Malformed { .. }
        ));
        // `t` as a number.
        let err = parse_bars(
            br#"{"bars": [{"t": 1705415400, "o": 1, "h": 1, "l": 1, "c": 1, "v": 1}]}"#,
            &strict(),
        )
        .unwrap_err();
        assert!(
            matches!(err, Error::Malformed { ref message, .. } if message.contains("RFC 3339")),
            "{err}"
        );
    }
}
