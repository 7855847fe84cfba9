//! Yahoo Finance v8 chart responses (`/v8/finance/chart/{symbol}`, what yfinance's
//! `Ticker.history()` calls) into a [`BarSeries`].
//!
//! # What is read
//! `chart.result[0]`: `meta` (see [`YahooMeta`]), `timestamp` (Unix seconds UTC, the
//! bar starts), `indicators.quote[0].{open,high,low,close,volume}` and, when present
//! (daily and longer intervals), `indicators.adjclose[0].adjclose`. Other fields
//! (`events`, `tradingPeriods`, ...) are ignored.
//!
//! # Awkward cases
//! - **Nulls.** The arrays are parallel and any element may be `null` (a minute with no
//!   trade). Such a row is skipped, never filled, and counted in
//!   [`YahooChart::skipped_null_rows`]; it is not a validation error, so it is skipped in
//!   both validation modes and row numbers after it still count input positions.
//! - **No `timestamp`** (the range holds no data, e.g. the market is closed): an empty
//!   series, not an error.
//! - **Error object** `{"chart": {"result": null, "error": {"code", "description"}}}`,
//!   which Yahoo sends with HTTP 404, 400 and sometimes 200: [`Error::SourceError`]. The
//!   `{"finance": {"error": ...}}` envelope of Yahoo's other endpoints (e.g. an invalid
//!   crumb) is read the same way.
//! - **Prices** are float32 values printed as float64 (`217.5500030517578`) and are
//!   kept as given, not rounded to a tick: the series holds exactly the float64 the
//!   text denotes (the workspace enables serde_json's `float_roundtrip`, whose parser
//!   is correctly rounded; the default one can land one unit in the last place off on
//!   these 17-digit decimals).
//! - Parallel arrays of different lengths: [`Error::LengthMismatch`] naming the column.
//!
//! # The partial last bar
//! Intraday, the last bar can be the current, still-forming one. The last bar that
//! has no null is **partial** when all of these hold:
//! 1. `meta.dataGranularity` is one of `1m 2m 5m 15m 30m 60m 90m 1h 1d` (longer
//!    granularities are never flagged), giving the bar length `L`;
//! 2. an "as of" time is known: [`ParseOptions::as_of`] (the caller's fetch time) or
//!    else `meta.regularMarketTime` (the last trade);
//! 3. `as_of < end`, where `end = timestamp + L`, cut to
//!    `meta.currentTradingPeriod.regular.end` when the bar starts inside that regular
//!    session (a 90-minute bar starting at 15:30 ends at the 16:00 close).
//!
//! So during the session the bar holding the last trade is partial, and after the
//! close the session's last bar is complete (the closing trade is at or after the
//! session end). Without `as_of`, extended-hours bars (`includePrePost`) after the
//! close stay flagged, since `regularMarketTime` stops at the close: the rule errs
//! towards flagging, which only delays a bar to the next fetch (the bar is upserted
//! by symbol and timestamp). The outcome is [`YahooChart::partial_bar`];
//! [`ParseOptions::drop_partial_bar`] leaves the bar out.
//!
//! ```
//! use quantcore::normalize::{yahoo, ParseOptions};
//! let body = br#"{"chart": {"result": [{
//!     "meta": {"symbol": "AAPL", "currency": "USD", "dataGranularity": "1m",
//!              "regularMarketTime": 1726752690},
//!     "timestamp": [1726752600, 1726752660],
//!     "indicators": {"quote": [{"open": [217.5500030517578, 217.6], "high": [217.9, 217.7],
//!         "low": [217.4, 217.5], "close": [217.6, 217.65], "volume": [59788, 4120]}]}}],
//!     "error": null}}"#;
//! let chart = yahoo::parse_chart(body, &ParseOptions::default())?;
//! assert_eq!(chart.series.symbol(), Some("AAPL"));
//! assert_eq!(chart.series.open()[0], 217.5500030517578);
//! // The last trade (…690) falls inside the bar starting at …660: still forming.
//! assert!(chart.partial_bar.is_kept());
//!
//! let dropped = yahoo::parse_chart(body, &ParseOptions::default().drop_partial_bar(true))?;
//! assert_eq!(dropped.series.timestamps(), &[1726752600]);
//! # Ok::<(), quantcore::Error>(())
//! ```
//!
//! [`ParseOptions::as_of`]: super::ParseOptions::as_of
//! [`ParseOptions::drop_partial_bar`]: super::ParseOptions::drop_partial_bar

use serde::Deserialize;

use super::columns::Columns;
use super::{ParseOptions, json_error};
use crate::data::{Bar, BarSeries, DroppedRows};
use crate::error::{Error, Result};

const FORMAT: &str = "yahoo";

/// A parsed chart response.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct YahooChart {
    /// The bars, tagged with `meta.symbol`, with the adjusted close when present.
    pub series: BarSeries,
    /// The response's useful `meta` fields.
    pub meta: YahooMeta,
    /// Rows skipped because an element was `null`.
    pub skipped_null_rows: usize,
    /// Whether the last bar is still forming, and what was done with it.
    pub partial_bar: PartialBar,
    /// Rows dropped by [`Validation::Lenient`](super::Validation::Lenient) (always
    /// empty in strict mode).
    pub dropped: DroppedRows,
}

/// Whether the response's last bar is still forming (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartialBar {
    /// The last bar is complete, or the rule cannot tell (unknown granularity or time).
    Complete,
    /// The series' last bar, starting at `timestamp`, is still forming and was kept.
    Kept { timestamp: i64 },
    /// A still-forming bar starting at `timestamp` was left out of the series.
    Dropped { timestamp: i64 },
}

impl PartialBar {
    /// True when the series' last bar is still forming.
    pub fn is_kept(&self) -> bool {
        matches!(self, PartialBar::Kept { .. })
    }
}

/// The `meta` fields of a chart response worth keeping.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct YahooMeta {
    /// `symbol` (required).
    pub symbol: String,
    /// `currency`, e.g. `USD`.
    pub currency: Option<String>,
    /// `exchangeName`, e.g. `NMS`.
    pub exchange_name: Option<String>,
    /// `instrumentType`, e.g. `EQUITY`.
    pub instrument_type: Option<String>,
    /// `exchangeTimezoneName`, an IANA name such as `America/New_York`.
    pub exchange_timezone_name: Option<String>,
    /// `timezone`, the abbreviation in force, e.g. `EDT`.
    pub timezone: Option<String>,
    /// `gmtoffset`: the exchange's UTC offset in seconds (east positive).
    pub gmt_offset: Option<i64>,
    /// `regularMarketPrice`.
    pub regular_market_price: Option<f64>,
    /// `regularMarketTime`: Unix seconds of the last regular-session trade.
    pub regular_market_time: Option<i64>,
    /// `dataGranularity`, the bar interval: `1m`, `5m`, `1h`, `1d`, `1wk`, ...
    pub data_granularity: Option<String>,
    /// `range`, e.g. `1d`, when the request gave one.
    pub range: Option<String>,
    /// `currentTradingPeriod.regular`: the current or next regular session.
    pub regular_trading_period: Option<TradingPeriod>,
}

/// A trading session, Unix seconds `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TradingPeriod {
    /// Session open.
    pub start: i64,
    /// Session close.
    pub end: i64,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    chart: Option<RawChart>,
    /// Yahoo's other endpoints wrap errors in `finance`.
    #[serde(default)]
    finance: Option<RawChart>,
}

#[derive(Deserialize)]
struct RawChart {
    #[serde(default)]
    result: Option<Vec<RawResult>>,
    #[serde(default)]
    error: Option<RawError>,
}

#[derive(Deserialize)]
struct RawError {
    #[serde(default)]
    code: Option<serde_json::Value>,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Deserialize)]
struct RawResult {
    #[serde(default)]
    meta: Option<RawMeta>,
    #[serde(default)]
    timestamp: Option<Vec<i64>>,
    #[serde(default)]
    indicators: Option<RawIndicators>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMeta {
    symbol: Option<String>,
    currency: Option<String>,
    exchange_name: Option<String>,
    instrument_type: Option<String>,
    exchange_timezone_name: Option<String>,
    timezone: Option<String>,
    #[serde(rename = "gmtoffset")]
    gmt_offset: Option<i64>,
    regular_market_price: Option<f64>,
    regular_market_time: Option<i64>,
    data_granularity: Option<String>,
    range: Option<String>,
    current_trading_period: Option<RawTradingPeriods>,
}

#[derive(Deserialize)]
struct RawTradingPeriods {
    regular: Option<RawPeriod>,
}

#[derive(Deserialize)]
struct RawPeriod {
    start: Option<i64>,
    end: Option<i64>,
}

#[derive(Deserialize)]
struct RawIndicators {
    #[serde(default)]
    quote: Vec<RawQuote>,
    #[serde(default)]
    adjclose: Option<Vec<RawAdjClose>>,
}

type Column = Option<Vec<Option<f64>>>;

#[derive(Deserialize)]
struct RawQuote {
    open: Column,
    high: Column,
    low: Column,
    close: Column,
    volume: Column,
}

#[derive(Deserialize)]
struct RawAdjClose {
    adjclose: Column,
}

impl RawMeta {
    fn into_meta(self) -> Result<YahooMeta> {
        let symbol = self.symbol.ok_or_else(|| Error::MissingField {
            format: FORMAT,
            field: "chart.result[0].meta.symbol".into(),
        })?;
        let regular_trading_period = self
            .current_trading_period
            .and_then(|periods| periods.regular)
            .and_then(|period| {
                Some(TradingPeriod {
                    start: period.start?,
                    end: period.end?,
                })
            });
        Ok(YahooMeta {
            symbol,
            currency: self.currency,
            exchange_name: self.exchange_name,
            instrument_type: self.instrument_type,
            exchange_timezone_name: self.exchange_timezone_name,
            timezone: self.timezone,
            gmt_offset: self.gmt_offset,
            regular_market_price: self.regular_market_price,
            regular_market_time: self.regular_market_time,
            data_granularity: self.data_granularity,
            range: self.range,
            regular_trading_period,
        })
    }
}

/// Bar length in seconds for the granularities the partial-bar rule covers.
fn granularity_seconds(granularity: &str) -> Option<i64> {
    Some(match granularity {
        "1m" => 60,
        "2m" => 120,
        "5m" => 300,
        "15m" => 900,
        "30m" => 1_800,
        "60m" | "1h" => 3_600,
        "90m" => 5_400,
        "1d" => 86_400,
        _ => return None,
    })
}

/// The partial-bar rule of the [module docs](self).
fn is_partial(timestamp: i64, meta: &YahooMeta, as_of: Option<i64>) -> bool {
    let Some(length) = meta
        .data_granularity
        .as_deref()
        .and_then(granularity_seconds)
    else {
        return false;
    };
    let Some(as_of) = as_of.or(meta.regular_market_time) else {
        return false;
    };
    let mut end = timestamp.saturating_add(length);
    if let Some(session) = meta.regular_trading_period
        && (session.start..session.end).contains(&timestamp)
    {
        end = end.min(session.end);
    }
    as_of < end
}

/// The first element of `indicators.quote`/`adjclose` column `name`, checked against
/// the number of timestamps.
fn checked_column(
    column: Column,
    path: &str,
    name: &'static str,
    expected: usize,
) -> Result<Vec<Option<f64>>> {
    let values = column.ok_or_else(|| Error::MissingField {
        format: FORMAT,
        field: format!("{path}.{name}"),
    })?;
    if values.len() != expected {
        return Err(Error::LengthMismatch {
            field: name,
            expected,
            actual: values.len(),
        });
    }
    Ok(values)
}

/// Parses a chart response body.
///
/// See the [module docs](self) for what is read and the awkward cases.
///
/// # Errors
/// [`Error::Malformed`] (broken JSON or wrong types, with line and column),
/// [`Error::SourceError`] (the error object), [`Error::MissingField`] (no `chart`,
/// `result`, `meta.symbol`, or a quote column while timestamps are present),
/// [`Error::LengthMismatch`], and in strict mode the first invalid row's error
/// (rows are indices into the arrays).
pub fn parse_chart(bytes: &[u8], options: &ParseOptions) -> Result<YahooChart> {
    let envelope: Envelope = serde_json::from_slice(bytes).map_err(|e| json_error(FORMAT, &e))?;
    let chart = envelope
        .chart
        .or(envelope.finance)
        .ok_or_else(|| Error::MissingField {
            format: FORMAT,
            field: "chart".into(),
        })?;
    if let Some(error) = chart.error {
        let code = match error.code {
            Some(serde_json::Value::String(code)) => code,
            Some(serde_json::Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        return Err(Error::SourceError {
            format: FORMAT,
            code,
            description: error.description.unwrap_or_default(),
        });
    }
    let result = chart
        .result
        .and_then(|results| results.into_iter().next())
        .ok_or_else(|| Error::MissingField {
            format: FORMAT,
            field: "chart.result[0]".into(),
        })?;
    let meta = result
        .meta
        .ok_or_else(|| Error::MissingField {
            format: FORMAT,
            field: "chart.result[0].meta".into(),
        })?
        .into_meta()?;

    let timestamps = result.timestamp.unwrap_or_default();
    let mut chart = YahooChart {
        series: BarSeries::default().with_symbol(meta.symbol.clone()),
        meta,
        skipped_null_rows: 0,
        partial_bar: PartialBar::Complete,
        dropped: DroppedRows::default(),
    };
    if timestamps.is_empty() {
        return Ok(chart);
    }

    let n = timestamps.len();
    const QUOTE: &str = "chart.result[0].indicators.quote[0]";
    let indicators = result.indicators.ok_or_else(|| Error::MissingField {
        format: FORMAT,
        field: "chart.result[0].indicators".into(),
    })?;
    let quote = indicators
        .quote
        .into_iter()
        .next()
        .ok_or_else(|| Error::MissingField {
            format: FORMAT,
            field: QUOTE.into(),
        })?;
    let open = checked_column(quote.open, QUOTE, "open", n)?;
    let high = checked_column(quote.high, QUOTE, "high", n)?;
    let low = checked_column(quote.low, QUOTE, "low", n)?;
    let close = checked_column(quote.close, QUOTE, "close", n)?;
    let volume = checked_column(quote.volume, QUOTE, "volume", n)?;
    let adj_close = match indicators
        .adjclose
        .and_then(|a| a.into_iter().next())
        .and_then(|a| a.adjclose)
    {
        Some(values) => Some(checked_column(
            Some(values),
            "chart.result[0].indicators.adjclose[0]",
            "adjclose",
            n,
        )?),
        None => None,
    };

    let complete_row = |row: usize| -> Option<(Bar, Option<f64>)> {
        let bar = Bar {
            timestamp: timestamps[row],
            open: open[row]?,
            high: high[row]?,
            low: low[row]?,
            close: close[row]?,
            volume: volume[row]?,
        };
        match &adj_close {
            Some(adj) => Some((bar, Some(adj[row]?))),
            None => Some((bar, None)),
        }
    };

    // The partial-bar rule looks at the last row without nulls.
    let last_row = (0..n).rev().find(|&row| complete_row(row).is_some());
    let partial_row =
        last_row.filter(|&row| is_partial(timestamps[row], &chart.meta, options.as_of));

    let mut columns = Columns::new(options.validation, adj_close.is_some(), n);
    for row in 0..n {
        let Some((bar, adj)) = complete_row(row) else {
            chart.skipped_null_rows += 1;
            continue;
        };
        if Some(row) == partial_row && options.drop_partial_bar {
            chart.partial_bar = PartialBar::Dropped {
                timestamp: bar.timestamp,
            };
            continue;
        }
        let kept = columns.push(row, bar, adj)?;
        if kept && Some(row) == partial_row {
            chart.partial_bar = PartialBar::Kept {
                timestamp: bar.timestamp,
            };
        }
    }
    let (series, dropped) = columns.finish()?;
    chart.series = series.with_symbol(chart.meta.symbol.clone());
    chart.dropped = dropped;
    Ok(chart)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::Validation;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/fixtures/yahoo/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn parse(name: &str) -> Result<YahooChart> {
        parse_chart(&fixture(name), &ParseOptions::default())
    }

    #[test]
    fn intraday_with_nulls_skips_rows_and_keeps_input_row_numbers() {
        let chart = parse("intraday_nulls.json").unwrap();
        // Rows 1 (all null) and 3 (only volume null) are skipped.
        assert_eq!(chart.skipped_null_rows, 2);
        assert_eq!(
            chart.series.timestamps(),
            &[1726752600, 1726752720, 1726752840]
        );
        assert_eq!(
            chart.series.open(),
            &[217.5500030517578, 217.60000610351562, 217.8000030517578]
        );
        assert_eq!(chart.series.volume(), &[59788.0, 4120.0, 3001.0]);
        assert_eq!(chart.series.symbol(), Some("AAPL"));
        assert_eq!(chart.series.adj_close(), None);
        assert_eq!(chart.meta.currency.as_deref(), Some("USD"));
        assert_eq!(
            chart.meta.exchange_timezone_name.as_deref(),
            Some("America/New_York")
        );
        assert_eq!(chart.meta.gmt_offset, Some(-14400));
        assert_eq!(chart.meta.data_granularity.as_deref(), Some("1m"));
        // After the close (regularMarketTime = session end): the last bar is complete.
        assert_eq!(chart.partial_bar, PartialBar::Complete);

        // Same data with a bad bar at input row 4: the error names row 4, not the
        // 3rd kept row.
        let text = String::from_utf8(fixture("intraday_nulls.json")).unwrap();
        let bad = text.replacen("217.8000030517578", "-217.8", 1);
        let err = parse_chart(bad.as_bytes(), &ParseOptions::default()).unwrap_err();
        assert_eq!(
            err,
            Error::NonPositivePrice {
                row: 4,
                field: "open",
                value: -217.8
            }
        );
    }

    #[test]
    fn prices_are_kept_exactly_as_printed() {
        let chart = parse("intraday_nulls.json").unwrap();
        // Reference: Rust's correctly rounded decimal parser on the printed text.
        for (value, text) in [
            (chart.series.open()[0], "217.5500030517578"),
            (chart.series.open()[1], "217.60000610351562"),
            (chart.series.high()[0], "217.88999938964844"),
        ] {
            assert_eq!(value, text.parse::<f64>().unwrap(), "{text}");
        }
    }

    proptest::proptest! {
        /// Every positive float32 printed as Yahoo prints it reads back as the exact
        /// value of its text (Rust's correctly rounded parser is the reference).
        #[test]
        fn float32_prices_read_exactly(price in 1e-3f32..1e7) {
            let text = format!("{}", f64::from(price));
            let body = format!(
                r#"{{"chart":{{"result":[{{"meta":{{"symbol":"X"}},"timestamp":[1],
                "indicators":{{"quote":[{{"open":[{text}],"high":[{text}],"low":[{text}],
                "close":[{text}],"volume":[1]}}],"adjclose":[{{"adjclose":[{text}]}}]}}}}],"error":null}}}}"#
            );
            let chart = parse_chart(body.as_bytes(), &ParseOptions::default()).unwrap();
            let expected: f64 = text.parse().unwrap();
            proptest::prop_assert_eq!(expected, f64::from(price));
            proptest::prop_assert_eq!(chart.series.close()[0], expected);
            proptest::prop_assert_eq!(chart.series.adj_close().unwrap()[0], expected);
        }
    }

    #[test]
    fn daily_adjclose_is_attached() {
        let chart = parse("daily_adjclose.json").unwrap();
        assert_eq!(chart.series.len(), 3);
        assert_eq!(
            chart.series.adj_close(),
            Some(&[184.2899932861328, 182.91000366210938, 180.58999633789062][..])
        );
        assert_eq!(chart.series.close()[2], 181.91000366210938);
        assert_eq!(chart.partial_bar, PartialBar::Complete);
        assert_eq!(chart.skipped_null_rows, 0);
    }

    #[test]
    fn missing_timestamp_is_an_empty_series() {
        let chart = parse("no_timestamp.json").unwrap();
        assert!(chart.series.is_empty());
        assert_eq!(chart.series.symbol(), Some("AAPL"));
        assert_eq!(chart.meta.range.as_deref(), Some("1d"));
    }

    #[test]
    fn error_object_with_status_200_is_a_source_error() {
        assert_eq!(
            parse("error_not_found.json").unwrap_err(),
            Error::SourceError {
                format: "yahoo",
                code: "Not Found".into(),
                description: "No data found, symbol may be delisted".into()
            }
        );
        let err = parse_chart(
            br#"{"finance":{"result":null,"error":{"code":"Unauthorized","description":"Invalid Crumb"}}}"#,
            &ParseOptions::default(),
        )
        .unwrap_err();
        assert!(
            matches!(err, Error::SourceError { ref code, .. } if code == "Unauthorized"),
            "{err}"
        );
    }

    #[test]
    fn partial_last_bar_is_flagged_or_dropped() {
        // regularMarketTime 1726762287 lies inside the last bar [1726762260, +60).
        let chart = parse("intraday_partial.json").unwrap();
        assert_eq!(
            chart.partial_bar,
            PartialBar::Kept {
                timestamp: 1726762260
            }
        );
        assert_eq!(chart.series.len(), 3);

        let options = ParseOptions::default().drop_partial_bar(true);
        let chart = parse_chart(&fixture("intraday_partial.json"), &options).unwrap();
        assert_eq!(
            chart.partial_bar,
            PartialBar::Dropped {
                timestamp: 1726762260
            }
        );
        assert_eq!(chart.series.timestamps(), &[1726762140, 1726762200]);

        // A caller's clock after the bar's end overrides regularMarketTime.
        let options = ParseOptions::default().as_of(1726762320);
        let chart = parse_chart(&fixture("intraday_partial.json"), &options).unwrap();
        assert_eq!(chart.partial_bar, PartialBar::Complete);
        assert_eq!(chart.series.len(), 3);
    }

    #[test]
    fn partial_rule_cases() {
        let meta = |granularity: &str, time: Option<i64>| YahooMeta {
            symbol: "X".into(),
            data_granularity: Some(granularity.into()),
            regular_market_time: time,
            regular_trading_period: Some(TradingPeriod {
                start: 1_000_000,
                end: 1_023_400,
            }),
            ..YahooMeta::default()
        };
        // 1m bar at start+60: last trade 30 s into it -> partial; at its end -> complete.
        assert!(is_partial(1_000_060, &meta("1m", Some(1_000_090)), None));
        assert!(!is_partial(1_000_060, &meta("1m", Some(1_000_120)), None));
        // 90m bar starting 30 min before the close ends at the close.
        assert!(!is_partial(1_021_600, &meta("90m", Some(1_023_400)), None));
        assert!(is_partial(1_021_600, &meta("90m", Some(1_023_399)), None));
        // Daily bar of today, session still open / closed.
        assert!(is_partial(1_000_000, &meta("1d", Some(1_010_000)), None));
        assert!(!is_partial(1_000_000, &meta("1d", Some(1_023_400)), None));
        // Weekly bars and unknown times are never flagged.
        assert!(!is_partial(1_000_000, &meta("1wk", Some(1_000_001)), None));
        assert!(!is_partial(1_000_060, &meta("1m", None), None));
        // as_of wins over regularMarketTime; no overflow at the end of time.
        assert!(is_partial(1_000_060, &meta("1m", None), Some(1_000_061)));
        assert!(is_partial(
            i64::MAX - 10,
            &meta("1m", None),
            Some(i64::MAX - 5)
        ));
    }

    #[test]
    fn malformed_inputs_give_typed_errors() {
        let err = parse("truncated.json").unwrap_err();
        match &err {
            Error::Malformed {
                format,
                location,
                message,
            } => {
                assert_eq!(*format, "yahoo");
                assert!(location.starts_with("line "), "{location}");
                assert!(message.contains("EOF"), "{message}");
            }
            other => panic!("expected Malformed, was {other:?}"),
        }

        let err = parse("string_price.json").unwrap_err();
        match &err {
            Error::Malformed {
                location, message, ..
            } => {
                // The string sits on line 8 of the fixture.
                assert!(location.starts_with("line 8,"), "{location}");
                assert!(message.contains("invalid type: string"), "{message}");
            }
            other => panic!("expected Malformed, was {other:?}"),
        }

        assert_eq!(
            parse("length_mismatch.json").unwrap_err(),
            Error::LengthMismatch {
                field: "close",
                expected: 3,
                actual: 2
            }
        );
        assert_eq!(
            parse("missing_close.json").unwrap_err(),
            Error::MissingField {
                format: "yahoo",
                field: "chart.result[0].indicators.quote[0].close".into()
            }
        );
        assert_eq!(
            parse_chart(
                br#"{"chart":{"result":[{"meta":{}}],"error":null}}"#,
                &ParseOptions::default()
            )
            .unwrap_err(),
            Error::MissingField {
                format: "yahoo",
                field: "chart.result[0].meta.symbol".into()
            }
        );
        assert_eq!(
            parse_chart(
                br#"{"chart":{"result":[],"error":null}}"#,
                &ParseOptions::default()
            )
            .unwrap_err(),
            Error::MissingField {
                format: "yahoo",
                field: "chart.result[0]".into()
            }
        );
        assert!(matches!(
            parse_chart(b"", &ParseOptions::default()).unwrap_err(),
            Error::Malformed { .. }
        ));
        assert!(matches!(
            parse_chart(b"Too Many Requests", &ParseOptions::default()).unwrap_err(),
            Error::Malformed { .. }
        ));
        assert_eq!(
            parse_chart(b"{}", &ParseOptions::default()).unwrap_err(),
            Error::MissingField {
                format: "yahoo",
                field: "chart".into()
            }
        );
    }

    #[test]
    fn invalid_rows_strict_and_lenient() {
        // Row 1 has a negative close, row 2 duplicates row 0's timestamp... see fixture.
        let err = parse("invalid_rows.json").unwrap_err();
        assert_eq!(
            err,
            Error::NonPositivePrice {
                row: 1,
                field: "close",
                value: -1.0
            }
        );
        let lenient = ParseOptions::default().validation(Validation::Lenient);
        let chart = parse_chart(&fixture("invalid_rows.json"), &lenient).unwrap();
        assert_eq!(chart.series.timestamps(), &[1726752600, 1726752780]);
        let rows: Vec<usize> = chart.dropped.rows.iter().map(|(row, _)| *row).collect();
        assert_eq!(rows, vec![1, 2]);
        assert!(matches!(
            chart.dropped.rows[1].1,
            Error::DuplicateBar {
                row: 2,
                timestamp: 1726752600
            }
        ));
    }
}
