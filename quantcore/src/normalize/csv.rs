//! CSV bars into [`BarSeries`], one series or one per symbol.
//!
//! # Columns
//! The first row is the header. Names are matched ignoring ASCII case, spaces,
//! underscores and hyphens, so `Adj Close`, `adj_close` and `AdjClose` are one name:
//!
//! | column | names | required |
//! |---|---|---|
//! | bar start | `timestamp`, `date`, `datetime` | yes |
//! | prices | `open`, `high`, `low`, `close` | yes |
//! | volume | `volume` | yes |
//! | adjusted close | `adj_close` (`Adj Close`, ...) | no |
//! | symbol | `symbol`, `ticker` | no; needed by the by-symbol readers |
//!
//! Other columns (pandas' unnamed index, yfinance's `Dividends`, `Stock Splits`) are
//! ignored; columns may come in any order. Timestamps may be RFC 3339, `YYYY-MM-DD`,
//! `YYYY-MM-DD HH:MM:SS` (UTC), pandas' tz-aware `YYYY-MM-DD HH:MM:SS-05:00` or Unix
//! seconds (see [`normalize`](super)). A UTF-8 byte-order mark is skipped.
//!
//! pandas' `df.to_csv()` of a yfinance frame loads as is, both the classic header
//! `Date,Open,High,Low,Close,Adj Close,Volume` and the three-line header that
//! `yf.download` frames (two column levels) write:
//!
//! ```text
//! Price,Adj Close,Close,High,Low,Open,Volume
//! Ticker,AAPL,AAPL,AAPL,AAPL,AAPL,AAPL
//! Date,,,,,,
//! ```
//!
//! whose `Ticker` line gives the series' symbol (one ticker per file).
//!
//! # Rows
//! Rows are numbered from 0 at the first data row (the row after the header lines);
//! for a file with a one-line header and no quoted line breaks, the 1-based line number
//! is `row + 2`. A row whose field count differs from the header's, or with an empty or
//! unreadable value, gives [`Error::InvalidField`] naming the row and the column as the
//! header writes it; then the [`data`](crate::data) rules apply, as described in
//! [`normalize`](super).
//!
//! # One series or several
//! [`parse_bars`] / [`read_bars`] return one series, tagged with the symbol when the file
//! has a symbol column (or a yfinance `Ticker` line); a second symbol is an error. The
//! by-symbol readers [`parse_bars_by_symbol`] / [`read_bars_by_symbol`] group rows by
//! the symbol column into one series each; a symbol's rows need not be contiguous, only
//! in time order among themselves. Row numbers stay those of the file.
//!
//! ```
//! use quantcore::normalize::{csv, ParseOptions};
//! let text = "symbol,timestamp,open,high,low,close,volume\n\
//!             AAPL,2024-01-16T14:30:00Z,182.16,184.26,180.93,183.63,65603\n\
//!             AAPL,2024-01-16T14:31:00Z,183.63,184.0,183.5,183.9,31230\n\
//!             MSFT,2024-01-16T14:30:00Z,393.66,394.0,390.1,390.47,40112\n";
//! let by_symbol = csv::parse_bars_by_symbol(text.as_bytes(), &ParseOptions::default())?;
//! assert_eq!(by_symbol.series["AAPL"].len(), 2);
//! assert_eq!(by_symbol.series["MSFT"].close(), &[390.47]);
//!
//! // The single-series reader refuses a second symbol, naming its row.
//! let err = csv::parse_bars(text.as_bytes(), &ParseOptions::default()).unwrap_err();
//! assert_eq!(err.row(), Some(2));
//! # Ok::<(), quantcore::Error>(())
//! ```

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use ::csv::{ByteRecord, Reader, ReaderBuilder};

use super::columns::Columns;
use super::timestamp::parse_timestamp;
use super::{ParseOptions, Validation};
use crate::data::{Bar, BarSeries, DroppedRows};
use crate::error::{Error, Result};

const FORMAT: &str = "csv";

/// One series read from CSV.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct CsvBars {
    /// The bars, tagged with the file's symbol when it names one.
    pub series: BarSeries,
    /// Rows dropped by [`Validation::Lenient`] (always empty in strict mode).
    pub dropped: DroppedRows,
}

/// Series by symbol read from CSV.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct CsvBarsBySymbol {
    /// One series per symbol, each tagged with its symbol.
    pub series: BTreeMap<String, BarSeries>,
    /// Rows dropped by [`Validation::Lenient`], all symbols together, in file order.
    pub dropped: DroppedRows,
}

/// Parses CSV text holding one series.
///
/// # Errors
/// [`Error::Malformed`] (empty input, bad header), [`Error::MissingField`] (a required
/// column), [`Error::InvalidField`] (a second symbol; in strict mode an unreadable
/// value), and in strict mode the first invalid row's error.
pub fn parse_bars(bytes: &[u8], options: &ParseOptions) -> Result<CsvBars> {
    read_single(CsvInput::open(bytes, None, line_count(bytes))?, options)
}

/// Parses CSV text with a symbol column into one series per symbol.
///
/// # Errors
/// As [`parse_bars`], and [`Error::MissingField`] when there is no symbol column (nor
/// a yfinance `Ticker` line); an empty symbol is an [`Error::InvalidField`].
pub fn parse_bars_by_symbol(bytes: &[u8], options: &ParseOptions) -> Result<CsvBarsBySymbol> {
    read_by_symbol(CsvInput::open(bytes, None, line_count(bytes))?, options)
}

/// Reads a CSV file holding one series.
///
/// # Errors
/// [`Error::Io`] when the file cannot be opened or read, otherwise as [`parse_bars`].
pub fn read_bars(path: impl AsRef<Path>, options: &ParseOptions) -> Result<CsvBars> {
    let path = path.as_ref();
    let (file, size) = open_file(path)?;
    read_single(CsvInput::open(file, Some(path), size)?, options)
}

/// Reads a CSV file with a symbol column into one series per symbol.
///
/// # Errors
/// [`Error::Io`] when the file cannot be opened or read, otherwise as
/// [`parse_bars_by_symbol`].
pub fn read_bars_by_symbol(
    path: impl AsRef<Path>,
    options: &ParseOptions,
) -> Result<CsvBarsBySymbol> {
    let path = path.as_ref();
    let (file, size) = open_file(path)?;
    read_by_symbol(CsvInput::open(file, Some(path), size)?, options)
}

fn io_error(path: &Path, err: &std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        message: err.to_string(),
    }
}

/// Rows to preallocate for in-memory input: its line count (one fast pass, cheaper
/// than growing six columns).
fn line_count(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&byte| byte == b'\n').count()
}

/// The file and a guess of its row count (daily OHLCV rows are 50 to 80 bytes).
fn open_file(path: &Path) -> Result<(File, usize)> {
    let file = File::open(path).map_err(|e| io_error(path, &e))?;
    let size = file
        .metadata()
        .map(|m| usize::try_from(m.len()).unwrap_or(usize::MAX))
        .unwrap_or(0);
    Ok((file, size / 64))
}

fn invalid(row: usize, field: &str, message: String) -> Error {
    Error::InvalidField {
        format: FORMAT,
        row,
        field: field.to_string(),
        message,
    }
}

fn malformed(location: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Malformed {
        format: FORMAT,
        location: location.into(),
        message: message.into(),
    }
}

/// A header name reduced for matching: ASCII lowercase, without ` `, `_`, `-`.
fn canonical(name: &[u8]) -> String {
    name.iter()
        .filter(|b| !matches!(b, b' ' | b'_' | b'-'))
        .map(|b| char::from(b.to_ascii_lowercase()))
        .collect()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Timestamp,
    Open,
    High,
    Low,
    Close,
    Volume,
    AdjClose,
    Symbol,
}

impl Role {
    fn of(canonical: &str) -> Option<Role> {
        Some(match canonical {
            "timestamp" | "date" | "datetime" => Role::Timestamp,
            "open" => Role::Open,
            "high" => Role::High,
            "low" => Role::Low,
            "close" => Role::Close,
            "volume" => Role::Volume,
            "adjclose" => Role::AdjClose,
            "symbol" | "ticker" => Role::Symbol,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Role::Timestamp => "timestamp",
            Role::Open => "open",
            Role::High => "high",
            Role::Low => "low",
            Role::Close => "close",
            Role::Volume => "volume",
            Role::AdjClose => "adj_close",
            Role::Symbol => "symbol",
        }
    }
}

/// Where each column is, found from the header.
struct Layout {
    /// Header names as written, for errors.
    names: Vec<String>,
    timestamp: usize,
    open: usize,
    high: usize,
    low: usize,
    close: usize,
    volume: usize,
    adj_close: Option<usize>,
    symbol: Option<usize>,
    /// The ticker of a yfinance multi-level header.
    header_symbol: Option<String>,
}

/// A CSV reader positioned after the header, with the record being read.
struct CsvInput<'p, R> {
    reader: Reader<R>,
    layout: Layout,
    record: ByteRecord,
    next_row: usize,
    path: Option<&'p Path>,
    /// Rows to preallocate for (a guess).
    rows_hint: usize,
}

impl<'p, R: Read> CsvInput<'p, R> {
    fn open(input: R, path: Option<&'p Path>, rows_hint: usize) -> Result<Self> {
        let mut reader = ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .from_reader(input);
        let header = match reader.byte_headers() {
            Ok(header) => header.clone(),
            Err(err) => return Err(csv_error(path, err, None)),
        };
        let layout = read_layout(&mut reader, path, &header)?;
        Ok(CsvInput {
            reader,
            layout,
            record: ByteRecord::new(),
            next_row: 0,
            path,
            // A hint only: never reserve more than 16M rows up front.
            rows_hint: rows_hint.min(1 << 24),
        })
    }

    /// Reads the next record; returns its row number, or `None` at the end.
    fn next_row(&mut self) -> Result<Option<usize>> {
        match self.reader.read_byte_record(&mut self.record) {
            Ok(true) => {
                let row = self.next_row;
                self.next_row += 1;
                Ok(Some(row))
            }
            Ok(false) => Ok(None),
            Err(err) => Err(csv_error(self.path, err, Some(self.next_row))),
        }
    }

    fn field(&self, index: usize) -> &[u8] {
        self.record.get(index).unwrap_or_default().trim_ascii()
    }

    /// The current record as a bar and its adjusted close.
    fn bar(&self, row: usize) -> Result<(Bar, Option<f64>)> {
        let layout = &self.layout;
        if self.record.len() != layout.names.len() {
            return Err(invalid(
                row,
                "record",
                format!(
                    "has {} fields, the header has {}",
                    self.record.len(),
                    layout.names.len()
                ),
            ));
        }
        let text = self.field(layout.timestamp);
        let timestamp = parse_timestamp(text).map_err(|reason| {
            invalid(
                row,
                &layout.names[layout.timestamp],
                format!(
                    "{:?} is not a timestamp: {reason}",
                    String::from_utf8_lossy(text)
                ),
            )
        })?;
        let number = |index: usize| {
            let text = self.field(index);
            parse_number(text).ok_or_else(|| {
                let message = if text.is_empty() {
                    "empty value".to_string()
                } else {
                    format!("{:?} is not a number", String::from_utf8_lossy(text))
                };
                invalid(row, &layout.names[index], message)
            })
        };
        let bar = Bar {
            timestamp,
            open: number(layout.open)?,
            high: number(layout.high)?,
            low: number(layout.low)?,
            close: number(layout.close)?,
            volume: number(layout.volume)?,
        };
        let adj_close = layout.adj_close.map(number).transpose()?;
        Ok((bar, adj_close))
    }

    /// The current record's symbol, checked non-empty UTF-8.
    fn symbol(&self, row: usize, index: usize) -> Result<&str> {
        let text = self.field(index);
        let name = &self.layout.names[index];
        if text.is_empty() {
            return Err(invalid(row, name, "empty value".into()));
        }
        std::str::from_utf8(text).map_err(|_| {
            invalid(
                row,
                name,
                format!("{:?} is not UTF-8", String::from_utf8_lossy(text)),
            )
        })
    }
}

/// Finds the columns from the header (and the extra lines of pandas' two-level
/// yfinance layout, which it reads from `reader`).
fn read_layout<R: Read>(
    reader: &mut Reader<R>,
    path: Option<&Path>,
    header: &ByteRecord,
) -> Result<Layout> {
    if header.len() <= 1
        && header
            .get(0)
            .is_none_or(|name| name.trim_ascii().is_empty())
    {
        return Err(malformed("line 1", "empty input, expected a header row"));
    }
    let names: Vec<String> = header
        .iter()
        .map(|name| String::from_utf8_lossy(name.trim_ascii()).into_owned())
        .collect();
    // pandas' two-level yfinance layout: `Price,...` then `Ticker,...` and
    // `Date,,...` lines; read them first, since a multi-ticker file repeats names.
    let mut header_symbol = None;
    let yfinance_levels = names
        .first()
        .is_some_and(|n| canonical(n.as_bytes()) == "price")
        && !names
            .iter()
            .any(|n| Role::of(&canonical(n.as_bytes())) == Some(Role::Timestamp));
    if yfinance_levels {
        header_symbol = read_yfinance_levels(reader, path, names.len())?;
    }
    let mut roles: [Option<usize>; 8] = [None; 8];
    let slot = |role: Role| role as usize;
    if yfinance_levels {
        roles[slot(Role::Timestamp)] = Some(0);
    }
    for (index, name) in header.iter().enumerate() {
        let Some(role) = Role::of(&canonical(name.trim_ascii())) else {
            continue;
        };
        if let Some(first) = roles[slot(role)] {
            return Err(malformed(
                "header",
                format!(
                    "columns `{}` and `{}` both give the {}",
                    names[first],
                    names[index],
                    role.name()
                ),
            ));
        }
        roles[slot(role)] = Some(index);
    }
    let required = |role: Role| {
        roles[slot(role)].ok_or_else(|| Error::MissingField {
            format: FORMAT,
            field: role.name().into(),
        })
    };
    Ok(Layout {
        timestamp: required(Role::Timestamp)?,
        open: required(Role::Open)?,
        high: required(Role::High)?,
        low: required(Role::Low)?,
        close: required(Role::Close)?,
        volume: required(Role::Volume)?,
        adj_close: roles[slot(Role::AdjClose)],
        symbol: roles[slot(Role::Symbol)],
        header_symbol,
        names,
    })
}

/// Reads the `Ticker,...` and `Date,,,...` lines that follow a yfinance
/// `Price,...` header; returns the ticker.
fn read_yfinance_levels<R: Read>(
    reader: &mut Reader<R>,
    path: Option<&Path>,
    width: usize,
) -> Result<Option<String>> {
    const LAYOUT: &str = "a `Price` header must be followed by `Ticker,...` and `Date,,...` \
                          lines (pandas' two-level yfinance layout)";
    let mut record = ByteRecord::new();
    let next_line =
        |reader: &mut Reader<R>, record: &mut ByteRecord| match reader.read_byte_record(record) {
            Ok(true) if record.len() == width => Ok(()),
            Ok(_) => Err(malformed("header", LAYOUT)),
            Err(err) => Err(csv_error(path, err, None)),
        };
    next_line(reader, &mut record)?;
    if canonical(record.get(0).unwrap_or_default().trim_ascii()) != "ticker" {
        return Err(malformed("header", LAYOUT));
    }
    let mut ticker: Option<&[u8]> = None;
    for value in record.iter().skip(1).map(<[u8]>::trim_ascii) {
        match ticker {
            _ if value.is_empty() => {}
            None => ticker = Some(value),
            Some(first) if first != value => {
                return Err(malformed(
                    "header",
                    "several tickers in one yfinance header: save one ticker per file",
                ));
            }
            Some(_) => {}
        }
    }
    let ticker = ticker
        .map(|t| String::from_utf8_lossy(t).into_owned())
        .filter(|t| !t.is_empty());
    let mut index_line = ByteRecord::new();
    next_line(reader, &mut index_line)?;
    let index_name_ok = Role::of(&canonical(
        index_line.get(0).unwrap_or_default().trim_ascii(),
    )) == Some(Role::Timestamp);
    if !index_name_ok
        || index_line
            .iter()
            .skip(1)
            .any(|v| !v.trim_ascii().is_empty())
    {
        return Err(malformed("header", LAYOUT));
    }
    Ok(ticker)
}

/// A decimal number (Rust's `f64` syntax: `1.5`, `-2e3`, `NaN`, `inf`); `None` when
/// empty or not a number. NaN and infinities are read, so that validation names them.
fn parse_number(text: &[u8]) -> Option<f64> {
    if let Some(value) = parse_short_decimal(text) {
        return Some(value);
    }
    if text.is_empty() {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// Exact powers of ten (every one up to 1e22 is a float64).
const POWERS_OF_TEN: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// The fast path for the common price text `[-+]digits[.digits]` with at most 15
/// digits; `None` for anything else (the caller falls back to `str::parse`).
///
/// With at most 15 digits the digits form an integer below 2^53 and the divisor is a
/// power of ten up to 1e15, both exact in float64, so the one division is correctly
/// rounded: the result is bit for bit what `str::parse` returns (Clinger's fast
/// path), at a fraction of its cost on the CSV hot path.
fn parse_short_decimal(text: &[u8]) -> Option<f64> {
    let (negative, body) = match text.first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let mut mantissa: u64 = 0;
    let mut digits = 0usize;
    let mut fraction_digits = 0usize;
    let mut seen_point = false;
    for &byte in body {
        match byte {
            b'0'..=b'9' => {
                digits += 1;
                if digits > 15 {
                    return None;
                }
                mantissa = mantissa * 10 + u64::from(byte - b'0');
                fraction_digits += usize::from(seen_point);
            }
            b'.' if !seen_point => seen_point = true,
            _ => return None,
        }
    }
    if digits == 0 {
        return None;
    }
    // `mantissa < 10^15 < 2^53`: the conversion is exact.
    let value = mantissa as f64 / POWERS_OF_TEN[fraction_digits];
    Some(if negative { -value } else { value })
}

fn csv_error(path: Option<&Path>, err: ::csv::Error, row: Option<usize>) -> Error {
    let message = err.to_string();
    if err.is_io_error() {
        return Error::Io {
            path: path.map_or_else(|| "<input>".to_string(), |p| p.display().to_string()),
            message,
        };
    }
    let location = match (row, err.position()) {
        (Some(row), Some(position)) => format!("row {row} (line {})", position.line()),
        (None, Some(position)) => format!("line {}", position.line()),
        (Some(row), None) => format!("row {row}"),
        (None, None) => "header".to_string(),
    };
    malformed(location, message)
}

/// Records a bad row (lenient) or returns its error (strict).
fn reject(
    validation: Validation,
    dropped: &mut DroppedRows,
    row: usize,
    reason: Error,
) -> Result<()> {
    match validation {
        Validation::Strict => Err(reason),
        Validation::Lenient => {
            dropped.rows.push((row, reason));
            Ok(())
        }
    }
}

fn read_single<R: Read>(mut input: CsvInput<'_, R>, options: &ParseOptions) -> Result<CsvBars> {
    let layout_adj = input.layout.adj_close.is_some();
    let mut columns = Columns::new(options.validation, layout_adj, input.rows_hint);
    let mut symbol: Option<String> = input.layout.header_symbol.clone();
    let symbol_column = input.layout.symbol;
    while let Some(row) = input.next_row()? {
        if let Some(index) = symbol_column {
            match input.symbol(row, index) {
                Err(reason) => {
                    columns.reject(row, reason)?;
                    continue;
                }
                Ok(this) => match &symbol {
                    None => symbol = Some(this.to_string()),
                    Some(first) if first != this => {
                        return Err(invalid(
                            row,
                            &input.layout.names[index],
                            format!(
                                "a second symbol `{this}` after `{first}`: \
                                 read this file with `parse_bars_by_symbol`"
                            ),
                        ));
                    }
                    Some(_) => {}
                },
            }
        }
        match input.bar(row) {
            Ok((bar, adj_close)) => {
                columns.push(row, bar, adj_close)?;
            }
            Err(reason) => columns.reject(row, reason)?,
        }
    }
    let (series, dropped) = columns.finish()?;
    Ok(CsvBars {
        series: match symbol {
            Some(symbol) => series.with_symbol(symbol),
            None => series,
        },
        dropped,
    })
}

fn read_by_symbol<R: Read>(
    mut input: CsvInput<'_, R>,
    options: &ParseOptions,
) -> Result<CsvBarsBySymbol> {
    let Some(symbol_column) = input.layout.symbol else {
        let Some(symbol) = input.layout.header_symbol.clone() else {
            return Err(Error::MissingField {
                format: FORMAT,
                field: "symbol".into(),
            });
        };
        let single = read_single(input, options)?;
        return Ok(CsvBarsBySymbol {
            series: BTreeMap::from([(symbol, single.series)]),
            dropped: single.dropped,
        });
    };
    let with_adj = input.layout.adj_close.is_some();
    let mut groups: Vec<(String, Columns)> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    let mut current = 0;
    // Rows that belong to no symbol (empty or unreadable symbol).
    let mut unassigned = DroppedRows::default();
    while let Some(row) = input.next_row()? {
        let symbol = match input.symbol(row, symbol_column) {
            Ok(symbol) => symbol,
            Err(reason) => {
                reject(options.validation, &mut unassigned, row, reason)?;
                continue;
            }
        };
        // Rows of one symbol usually come together: compare with the last symbol
        // before looking it up, and allocate only for a new symbol.
        if groups.get(current).is_none_or(|(name, _)| name != symbol) {
            current = match index.get(symbol) {
                Some(&found) => found,
                None => {
                    index.insert(symbol.to_string(), groups.len());
                    groups.push((
                        symbol.to_string(),
                        Columns::new(options.validation, with_adj, 0),
                    ));
                    groups.len() - 1
                }
            };
        }
        let bar = input.bar(row);
        let columns = &mut groups[current].1;
        match bar {
            Ok((bar, adj_close)) => {
                columns.push(row, bar, adj_close)?;
            }
            Err(reason) => columns.reject(row, reason)?,
        }
    }
    let mut dropped = unassigned;
    let mut series = BTreeMap::new();
    for (symbol, columns) in groups {
        let (bars, symbol_dropped) = columns.finish()?;
        dropped.rows.extend(symbol_dropped.rows);
        series.insert(symbol.clone(), bars.with_symbol(symbol));
    }
    // Each list is in row order; a stable sort merges them.
    dropped.rows.sort_by_key(|(row, _)| *row);
    Ok(CsvBarsBySymbol { series, dropped })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(name: &str) -> String {
        format!("{}/fixtures/csv/{name}", env!("CARGO_MANIFEST_DIR"))
    }

    fn read(name: &str) -> Result<CsvBars> {
        read_bars(path(name), &ParseOptions::default())
    }

    fn lenient() -> ParseOptions {
        ParseOptions::default().validation(Validation::Lenient)
    }

    // Day numbers after 1970-01-01: 2024-01-01 is 54 * 365 + 13 leap days = 19723.
    const JAN_2: i64 = 19_724 * 86_400;
    const DAY: i64 = 86_400;

    proptest::proptest! {
        /// The short-decimal fast path gives exactly what `str::parse` gives, and
        /// never accepts what it rejects.
        #[test]
        fn numbers_agree_with_str_parse(text in "[-+]?[0-9]{0,9}[.]?[0-9]{0,9}") {
            let reference = text.parse::<f64>().ok();
            let fast = parse_number(text.as_bytes());
            proptest::prop_assert_eq!(fast.map(f64::to_bits), reference.map(f64::to_bits), "{}", text);
        }

        #[test]
        fn price_like_numbers_agree_with_str_parse(integer in 0u64..10_000_000, fraction in 0u64..100_000_000, width in 0usize..9) {
            let text = format!("{integer}.{fraction:0width$}");
            let expected: f64 = text.parse().unwrap();
            proptest::prop_assert_eq!(parse_number(text.as_bytes()).map(f64::to_bits), Some(expected.to_bits()), "{}", text);
        }
    }

    #[test]
    fn number_forms() {
        for (text, expected) in [
            ("0", Some(0.0)),
            ("-0", Some(-0.0)),
            ("1.", Some(1.0)),
            (".5", Some(0.5)),
            ("+2.25", Some(2.25)),
            ("217.55000305175781", Some(217.550_003_051_757_8)), // 17 digits: slow path
            ("1e3", Some(1000.0)),
            ("", None),
            (".", None),
            ("1.2.3", None),
            ("1,5", None),
            ("--1", None),
        ] {
            assert_eq!(
                parse_number(text.as_bytes()).map(f64::to_bits),
                expected.map(f64::to_bits),
                "{text}"
            );
        }
        assert!(parse_number(b"NaN").unwrap().is_nan());
        assert_eq!(parse_number(b"-inf"), Some(f64::NEG_INFINITY));
    }

    #[test]
    fn pandas_yfinance_daily_with_adj_close() {
        let bars = read("yfinance_daily.csv").unwrap();
        assert_eq!(
            bars.series.timestamps(),
            &[JAN_2, JAN_2 + DAY, JAN_2 + 2 * DAY]
        );
        assert_eq!(bars.series.open(), &[187.149994, 184.220001, 182.149994]);
        assert_eq!(bars.series.close(), &[185.639999, 184.25, 181.910004]);
        assert_eq!(
            bars.series.volume(),
            &[82_488_700.0, 58_414_500.0, 71_983_600.0]
        );
        assert_eq!(
            bars.series.adj_close(),
            Some(&[184.290405, 182.910522, 180.58754][..])
        );
        assert_eq!(bars.series.symbol(), None);
        assert!(bars.dropped.is_empty());
    }

    #[test]
    fn pandas_tz_aware_dates_are_instants() {
        // Ticker.history() frames: midnight New York (UTC-5 in January) = 05:00Z.
        let bars = read("yfinance_tz_aware.csv").unwrap();
        let five_am = JAN_2 + 5 * 3600;
        assert_eq!(
            bars.series.timestamps(),
            &[five_am, five_am + DAY, five_am + 2 * DAY]
        );
        assert_eq!(bars.series.adj_close(), None); // Dividends, Stock Splits ignored
        assert_eq!(bars.series.high(), &[187.31, 184.77, 182.0]);

        let bars = read("yfinance_intraday.csv").unwrap();
        // 2024-09-19 09:30-04:00 = 13:30Z; 2024-09-19 is day 19985.
        let open = 19_985 * DAY + 13 * 3600 + 30 * 60;
        assert_eq!(bars.series.timestamps(), &[open, open + 60]);
        assert_eq!(bars.series.open()[0], f64::from(217.55_f32));
        assert_eq!(bars.series.volume()[0], 0.0);
    }

    #[test]
    fn yfinance_multi_level_header() {
        let bars = read("yfinance_multilevel.csv").unwrap();
        assert_eq!(bars.series.symbol(), Some("AAPL"));
        assert_eq!(bars.series.timestamps(), &[JAN_2, JAN_2 + DAY]);
        assert_eq!(bars.series.open(), &[187.15, 184.22]);
        assert_eq!(bars.series.close(), &[185.64, 184.25]);
        assert_eq!(bars.series.adj_close(), Some(&[184.29, 182.91][..]));
        let by_symbol =
            read_bars_by_symbol(path("yfinance_multilevel.csv"), &ParseOptions::default()).unwrap();
        assert_eq!(by_symbol.series["AAPL"], bars.series);

        let several = "Price,Close,Close\nTicker,AAPL,MSFT\nDate,,\n";
        assert!(matches!(
            parse_bars(several.as_bytes(), &ParseOptions::default()).unwrap_err(),
            Error::Malformed { ref message, .. } if message.contains("several tickers")
        ));
        let broken = "Price,Close\n2024-01-02,1\n";
        assert!(matches!(
            parse_bars(broken.as_bytes(), &ParseOptions::default()).unwrap_err(),
            Error::Malformed { .. }
        ));
    }

    #[test]
    fn unix_seconds_timestamps() {
        let bars = read("unix_seconds.csv").unwrap();
        assert_eq!(
            bars.series.timestamps(),
            &[1_705_415_400, 1_705_415_460, 1_705_415_520]
        );
    }

    #[test]
    fn symbol_column_by_symbol_and_single() {
        let by_symbol = read_bars_by_symbol(path("symbols.csv"), &ParseOptions::default()).unwrap();
        let lengths: Vec<(&str, usize)> = by_symbol
            .series
            .iter()
            .map(|(symbol, series)| (symbol.as_str(), series.len()))
            .collect();
        assert_eq!(lengths, [("AAPL", 2), ("MSFT", 2), ("SPY", 1)]);
        assert_eq!(by_symbol.series["MSFT"].symbol(), Some("MSFT"));
        assert_eq!(by_symbol.series["MSFT"].close(), &[390.47, 391.2]);
        assert_eq!(by_symbol.series["SPY"].timestamps(), &[1_705_415_400]);

        // Interleaved rows, `Ticker`/`Datetime` names, columns in another order.
        let interleaved =
            read_bars_by_symbol(path("symbols_interleaved.csv"), &ParseOptions::default()).unwrap();
        assert_eq!(interleaved.series["AAPL"], by_symbol.series["AAPL"]);
        assert_eq!(interleaved.series["MSFT"], by_symbol.series["MSFT"]);

        // One symbol only: the single reader tags the series.
        let one = "symbol,timestamp,open,high,low,close,volume\nSPY,1,2,2,2,2,0\nSPY,2,2,2,2,2,0\n";
        let bars = parse_bars(one.as_bytes(), &ParseOptions::default()).unwrap();
        assert_eq!(bars.series.symbol(), Some("SPY"));

        // Several symbols: the single reader names the first row of the second one,
        // in lenient mode too.
        for options in [ParseOptions::default(), lenient()] {
            let err = read_bars(path("symbols.csv"), &options).unwrap_err();
            match err {
                Error::InvalidField {
                    row: 2,
                    ref field,
                    ref message,
                    ..
                } => {
                    assert_eq!(field, "symbol");
                    assert!(
                        message.contains("MSFT") && message.contains("AAPL"),
                        "{message}"
                    );
                }
                other => panic!("expected InvalidField at row 2, was {other:?}"),
            }
        }
        // No symbol column: the by-symbol reader has nothing to group by.
        assert_eq!(
            read_bars_by_symbol(path("unix_seconds.csv"), &ParseOptions::default()).unwrap_err(),
            Error::MissingField {
                format: "csv",
                field: "symbol".into()
            }
        );
    }

    #[test]
    fn by_symbol_lenient_reports_file_rows_in_order() {
        let text = "symbol,timestamp,open,high,low,close,volume\n\
                    A,1,2,2,2,2,0\n\
                    B,1,2,2,2,2,0\n\
                    A,1,2,2,2,2,0\n\
                    ,2,2,2,2,2,0\n\
                    B,2,2,1,2,2,0\n\
                    A,3,2,2,2,2,0\n";
        let err = parse_bars_by_symbol(text.as_bytes(), &ParseOptions::default()).unwrap_err();
        assert_eq!(
            err,
            Error::DuplicateBar {
                row: 2,
                timestamp: 1
            }
        );
        let result = parse_bars_by_symbol(text.as_bytes(), &lenient()).unwrap();
        assert_eq!(result.series["A"].timestamps(), &[1, 3]);
        assert_eq!(result.series["B"].timestamps(), &[1]);
        let rows: Vec<usize> = result.dropped.rows.iter().map(|(row, _)| *row).collect();
        assert_eq!(rows, [2, 3, 4]);
        assert!(
            matches!(&result.dropped.rows[1].1, Error::InvalidField { row: 3, field, .. } if field == "symbol")
        );
        assert!(matches!(
            result.dropped.rows[2].1,
            Error::InconsistentBar {
                row: 4,
                field: "high",
                ..
            }
        ));
    }

    #[test]
    fn header_variants_bom_crlf_quotes_and_spaces() {
        let text = "\u{feff} Timestamp ,OPEN,high,Low,\"close\",adj_close,VOLUME,extra\r\n\
                    \"2024-01-02\", 10 ,11,9,10.5,10.4,7,x\r\n";
        let bars = parse_bars(text.as_bytes(), &ParseOptions::default()).unwrap();
        assert_eq!(bars.series.timestamps(), &[JAN_2]);
        assert_eq!(bars.series.open(), &[10.0]);
        assert_eq!(bars.series.adj_close(), Some(&[10.4][..]));

        let twice = "date,timestamp,open,high,low,close,volume\n";
        assert!(matches!(
            parse_bars(twice.as_bytes(), &ParseOptions::default()).unwrap_err(),
            Error::Malformed { ref location, ref message, .. }
                if location == "header" && message.contains("`date` and `timestamp`")
        ));
    }

    #[test]
    fn empty_and_header_only_files() {
        // A header of blank names is a header without the needed columns.
        assert_eq!(
            parse_bars(b",,\n1,2,3\n", &ParseOptions::default()).unwrap_err(),
            Error::MissingField {
                format: "csv",
                field: "timestamp".into()
            }
        );
        let err = read("empty.csv").unwrap_err();
        assert!(
            matches!(err, Error::Malformed { format: "csv", .. }),
            "{err:?}"
        );
        let bars = read("header_only.csv").unwrap();
        assert!(bars.series.is_empty());
        assert_eq!(
            read("missing_column.csv").unwrap_err(),
            Error::MissingField {
                format: "csv",
                field: "volume".into()
            }
        );
    }

    #[test]
    fn unreadable_fields_name_row_and_column() {
        let cases = [
            ("bad_number.csv", "open", "\"abc\" is not a number"),
            ("bad_timestamp.csv", "date", "no such calendar date"),
            ("empty_value.csv", "close", "empty value"),
            ("short_row.csv", "record", "has 3 fields, the header has 6"),
        ];
        for (name, column, text) in cases {
            match read(name).unwrap_err() {
                Error::InvalidField {
                    format,
                    row,
                    field,
                    message,
                } => {
                    assert_eq!((format, row, field.as_str()), ("csv", 1, column), "{name}");
                    assert!(message.contains(text), "{name}: {message}");
                }
                other => panic!("{name}: expected InvalidField, was {other:?}"),
            }
            // Lenient: the row is dropped with that reason; the others stay.
            let bars = read_bars(path(name), &lenient()).unwrap();
            assert_eq!(bars.dropped.rows.len(), 1, "{name}");
            assert_eq!(bars.dropped.rows[0].0, 1, "{name}");
            assert_eq!(bars.series.timestamps()[0], JAN_2, "{name}");
        }
        let bars = read_bars(path("short_row.csv"), &lenient()).unwrap();
        assert_eq!(bars.series.timestamps(), &[JAN_2, JAN_2 + 2 * DAY]);
    }

    #[test]
    fn invalid_bars_use_the_data_rules() {
        assert_eq!(
            format!("{:?}", read("nan_price.csv").unwrap_err()),
            format!(
                "{:?}",
                Error::NonFinite {
                    row: 1,
                    field: "open",
                    value: f64::NAN
                }
            )
        );
        assert_eq!(
            read("negative_price.csv").unwrap_err(),
            Error::NonPositivePrice {
                row: 1,
                field: "low",
                value: -183.43
            }
        );
        assert_eq!(
            read("unsorted.csv").unwrap_err(),
            Error::UnsortedBars {
                row: 1,
                timestamp: JAN_2,
                previous: JAN_2 + DAY
            }
        );
        assert_eq!(
            read("duplicate.csv").unwrap_err(),
            Error::DuplicateBar {
                row: 1,
                timestamp: JAN_2
            }
        );
        let bars = read_bars(path("duplicate.csv"), &lenient()).unwrap();
        assert_eq!(bars.series.timestamps(), &[JAN_2, JAN_2 + DAY]);
        assert_eq!(bars.series.open(), &[187.15, 184.22]);
    }

    #[test]
    fn strict_reports_the_first_bad_row_whatever_its_kind() {
        // Row 1 breaks a rule, row 2 is unreadable: strict names row 1.
        let text = "date,open,high,low,close,volume\n\
                    2024-01-02,2,2,2,2,0\n\
                    2024-01-03,2,1,2,2,0\n\
                    2024-01-04,x,2,2,2,0\n";
        let err = parse_bars(text.as_bytes(), &ParseOptions::default()).unwrap_err();
        assert!(
            matches!(err, Error::InconsistentBar { row: 1, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn io_errors_name_the_path() {
        let missing = path("no_such_file.csv");
        match read_bars(&missing, &ParseOptions::default()).unwrap_err() {
            Error::Io { path, message } => {
                assert_eq!(path, missing);
                assert!(!message.is_empty());
            }
            other => panic!("expected Io, was {other:?}"),
        }
        assert!(matches!(
            read_bars_by_symbol(path("."), &ParseOptions::default()).unwrap_err(),
            Error::Io { .. }
        ));
    }
}
