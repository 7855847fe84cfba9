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
    /// The input is not valid JSON, or has the wrong shape for the format.
    #[error("{format}: malformed input at {location}: {message}")]
    Malformed {
        format: &'static str,
        location: String,
        message: String,
    },
    /// A required field is absent.
    #[error("{format}: missing field `{field}`")]
    MissingField { format: &'static str, field: String },
    /// A field could not be read as the expected type.
    #[error("{format}: row {row}: field `{field}` could not be read: {message}")]
    InvalidField {
        format: &'static str,
        row: usize,
        field: String,
        message: String,
    },
    /// The data source answered with an error object.
    #[error("{format}: source error {code}: {description}")]
    SourceError {
        format: &'static str,
        code: String,
        description: String,
    },

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
    // lstm and signal
    /// A saved model lacks a tensor its configuration needs.
    #[error("model file {path}: missing tensor `{name}`")]
    MissingTensor { path: String, name: String },
    /// A saved tensor has another shape than the configuration implies.
    #[error("model file {path}: tensor `{name}` has shape {actual:?}, expected {expected:?}")]
    TensorShape {
        path: String,
        name: String,
        expected: Vec<usize>,
        actual: Vec<usize>,
    },
    /// A saved model holds a tensor the configuration does not use (another architecture).
    #[error("model file {path}: unexpected tensor `{name}`")]
    UnexpectedTensor { path: String, name: String },
    /// A model file or its metadata cannot be read (bad JSON, bad safetensors, unknown
    /// format version).
    #[error("model file {path}: {message}")]
    ModelFormat { path: String, message: String },
    /// The tensor backend (candle) failed.
    #[error("tensor backend error in {operation}: {message}")]
    Backend {
        operation: &'static str,
        message: String,
    },
    /// Training produced a non-finite loss (diverged).
    #[error("training diverged at epoch {epoch}: loss was {loss}")]
    TrainingDiverged { epoch: usize, loss: f64 },
    /// An input of the signal generator is NaN, infinite or out of range.
    #[error("signal input `{field}` {reason}, was {value}")]
    InvalidSignalInput {
        field: &'static str,
        value: f64,
        reason: &'static str,
    },

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
