//! The crate's error type.
//!
//! One variant per failure a caller can act on. Messages name the row, the field
//! and the offending value; they are lowercase with no trailing period.

/// Every failure of the quantcore crate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // --- data: bar validation -------------------------------------------------
    /// A price or volume is NaN or infinite.
    #[error("row {row}: `{field}` must be finite, was {value}")]
    NonFinite {
        row: usize,
        field: &'static str,
        value: f64,
    },
    /// A price is zero or negative.
    #[error("row {row}: `{field}` must be positive, was {value}")]
    NonPositivePrice {
        row: usize,
        field: &'static str,
        value: f64,
    },
    /// Volume is negative.
    #[error("row {row}: `volume` must be non-negative, was {value}")]
    NegativeVolume { row: usize, value: f64 },
    /// High is below the open or the close, or low is above them.
    #[error("row {row}: `{field}` is {value}, outside the bar body [{body_low}, {body_high}]")]
    InconsistentBar {
        row: usize,
        field: &'static str,
        value: f64,
        body_low: f64,
        body_high: f64,
    },
    /// A timestamp is not after the previous one.
    #[error("row {row}: timestamp {timestamp} is not after the previous bar's {previous}")]
    UnsortedBars {
        row: usize,
        timestamp: i64,
        previous: i64,
    },
    /// The same timestamp appears twice.
    #[error("row {row}: timestamp {timestamp} duplicates the previous bar")]
    DuplicateBar { row: usize, timestamp: i64 },
    /// Parallel columns of different lengths.
    #[error("column `{field}` has {actual} values, expected {expected}")]
    LengthMismatch {
        field: &'static str,
        expected: usize,
        actual: usize,
    },
    /// An operation needs at least `required` values and got fewer.
    #[error("need at least {required} values for {what}, was {actual}")]
    NotEnoughData {
        what: &'static str,
        required: usize,
        actual: usize,
    },

    // --- normalize: parsing market-data formats -------------------------------
    /// The input is not valid for the format as a whole: broken JSON (truncated, a
    /// value of the wrong type), an empty CSV file, a bad CSV header. `location` says
    /// where (`line 3, column 17`, `header`).
    #[error("{format}: malformed input at {location}: {message}")]
    Malformed {
        format: &'static str,
        location: String,
        message: String,
    },
    /// A required field or column is absent (`field` is a path such as
    /// `chart.result[0].meta.symbol`, or a CSV column name).
    #[error("{format}: missing field `{field}`")]
    MissingField { format: &'static str, field: String },
    /// One row's field could not be read as the expected type (a bad timestamp, a
    /// price that is not a number, an empty value). `row` is the 0-based data row of
    /// the input; `field` is the name the input uses.
    #[error("{format}: row {row}: field `{field}` could not be read: {message}")]
    InvalidField {
        format: &'static str,
        row: usize,
        field: String,
        message: String,
    },
    /// The data source answered with an error object instead of data.
    #[error("{format}: source error {code}: {description}")]
    SourceError {
        format: &'static str,
        code: String,
        description: String,
    },
    /// An error in the bars of one symbol of a multi-symbol input, whose row numbers
    /// count within that symbol's bars.
    #[error("symbol `{symbol}`: {source}")]
    ForSymbol { symbol: String, source: Box<Error> },

    // --- parameters -------------------------------------------------------------
    /// A parameter is out of its valid range.
    #[error("parameter `{name}` {reason}, was {value}")]
    InvalidParameter {
        name: &'static str,
        value: String,
        reason: &'static str,
    },

    // --- money: order, risk, execution, portfolio, backtest -----------------------
    // (variants of the money core go here)

    // --- ml and signal ---------------------------------------------------------------
    // (variants of ml::lstm, ml::iforest and signal go here)

    // --- io -----------------------------------------------------------------------
    /// Reading or writing a file failed.
    #[error("i/o error on {path}: {message}")]
    Io { path: String, message: String },
}

/// `Result` with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Builds an [`Error::InvalidParameter`].
    pub fn invalid_parameter(
        name: &'static str,
        value: impl std::fmt::Display,
        reason: &'static str,
    ) -> Self {
        Error::InvalidParameter {
            name,
            value: value.to_string(),
            reason,
        }
    }

    /// The row the error points at, when it points at one.
    pub fn row(&self) -> Option<usize> {
        match self {
            Error::NonFinite { row, .. }
            | Error::NonPositivePrice { row, .. }
            | Error::NegativeVolume { row, .. }
            | Error::InconsistentBar { row, .. }
            | Error::UnsortedBars { row, .. }
            | Error::DuplicateBar { row, .. }
            | Error::InvalidField { row, .. } => Some(*row),
            _ => None,
        }
    }
}
