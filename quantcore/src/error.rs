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
    /// A symbol name is not registered with the instruments in use.
    #[error("unknown symbol `{symbol}`")]
    UnknownSymbol { symbol: String },
    /// A [`SymbolId`](crate::order::SymbolId) does not belong to the instruments in use.
    #[error("unknown symbol id {id}")]
    UnknownSymbolId { id: u32 },
    /// A symbol is registered twice, or its name is empty.
    #[error("symbol `{symbol}` {reason}")]
    InvalidSymbol {
        symbol: String,
        reason: &'static str,
    },
    /// A field of an order is invalid (quantity, limit price, stop levels).
    #[error("order {order_id}: `{field}` {reason}, was {value}")]
    InvalidOrder {
        order_id: u64,
        field: &'static str,
        value: f64,
        reason: &'static str,
    },
    /// A field of a fill is invalid (quantity, price, commission).
    #[error("fill of order {order_id}: `{field}` {reason}, was {value}")]
    InvalidFill {
        order_id: u64,
        field: &'static str,
        value: f64,
        reason: &'static str,
    },
    /// A number given to a money function (price, equity, cash, confidence) is invalid.
    #[error("`{field}` {reason}, was {value}")]
    InvalidInput {
        field: &'static str,
        value: f64,
        reason: &'static str,
    },
    /// The order was already filled, rejected or cancelled.
    #[error("order {order_id} is {status}, not open")]
    OrderNotOpen { order_id: u64, status: String },
    /// A market order was given to a limit-order function, or the reverse.
    #[error("order {order_id} is a {actual} order, expected a {expected} order")]
    OrderKindMismatch {
        order_id: u64,
        expected: &'static str,
        actual: &'static str,
    },
    /// A fill was recorded against an order it does not belong to.
    #[error("fill of order {fill_order_id} does not match order {order_id}: `{field}` differs")]
    FillMismatch {
        order_id: u64,
        fill_order_id: u64,
        field: &'static str,
    },
    /// A sell would take a position below zero and the portfolio does not allow shorts.
    #[error(
        "order {order_id}: selling {requested} `{symbol}` exceeds the {held} held and short selling is not allowed"
    )]
    ShortNotAllowed {
        order_id: u64,
        symbol: String,
        requested: f64,
        held: f64,
    },
    /// An operation needs an open position and the symbol is flat.
    #[error("no open position in `{symbol}`")]
    NoOpenPosition { symbol: String },
    /// The risk limits rejected an order.
    #[error("order {order_id} rejected: {violation}")]
    OrderRejected {
        order_id: u64,
        violation: crate::risk::RiskViolation,
    },
    /// A configuration (risk limits, commission, execution) has invalid fields; each
    /// problem is an [`Error::InvalidParameter`].
    #[error(
        "invalid {config}: {}",
        .problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    InvalidConfig {
        config: &'static str,
        problems: Vec<Error>,
    },

    // --- ml and signal ---------------------------------------------------------------
    // iforest
    /// A feature value given to the Isolation Forest is NaN or infinite.
    #[error("row {row}, column {column}: feature must be finite, was {value}")]
    NonFiniteFeature {
        row: usize,
        column: usize,
        value: f64,
    },
    /// The input has another number of feature columns than the model was fitted on.
    #[error("input has {actual} feature columns, the model was fitted on {expected}")]
    FeatureCountMismatch { expected: usize, actual: usize },
    /// `max_features` asks for more columns than the training data has.
    #[error("parameter `max_features` asks for {requested} columns, the data has {available}")]
    MaxFeaturesExceedsColumns { requested: usize, available: usize },
    /// An error raised inside linfa (its `Fit` trait requires the conversion).
    #[error("linfa: {message}")]
    Linfa { message: String },

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

    // --- features, metrics, report ---------------------------------------------------
    /// An equity value is zero or negative.
    #[error("row {row}: equity must be positive, was {value}")]
    NonPositiveEquity { row: usize, value: f64 },
    /// A timestamp of an equity curve is before the previous one.
    #[error("row {row}: timestamp {timestamp} is before the previous point's {previous}")]
    UnsortedTimestamps {
        row: usize,
        timestamp: i64,
        previous: i64,
    },
    /// A report could not be serialized.
    #[error("could not serialize {what}: {message}")]
    Serialization { what: &'static str, message: String },

    // --- backtest -------------------------------------------------------------------
    /// A series given to the backtester holds no bar.
    #[error("series {series} (`{symbol}`) has no bars")]
    EmptySeries { series: usize, symbol: String },
    /// A strategy's decision could not become a valid order (a quantity that is NaN,
    /// not positive or not whole, a bad limit price or exit level, a confidence outside
    /// `[0, 1]`); `row` is the bar of the decision in the symbol's series.
    #[error("row {row}: decision for `{symbol}` is invalid: {source}")]
    InvalidDecision {
        row: usize,
        symbol: String,
        source: Box<Error>,
    },
    /// One run of a parameter sweep failed; `params` is the parameter set's `Debug` form.
    #[error("sweep run {index} with {params} failed: {source}")]
    SweepRun {
        index: usize,
        params: String,
        source: Box<Error>,
    },

    // --- io -----------------------------------------------------------------------
    /// Reading or writing a file failed.
    #[error("i/o error on {path}: {message}")]
    Io { path: String, message: String },
}

/// linfa's `Fit` trait needs the estimator's error to convert from linfa's.
impl From<linfa::Error> for Error {
    fn from(error: linfa::Error) -> Self {
        Error::Linfa {
            message: error.to_string(),
        }
    }
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
            | Error::InvalidField { row, .. }
            | Error::NonFiniteFeature { row, .. }
            | Error::NonPositiveEquity { row, .. }
            | Error::UnsortedTimestamps { row, .. } => Some(*row),
            Error::ForSymbol { source, .. } => source.row(),
            Error::InvalidDecision { row, .. } => Some(*row),
            _ => None,
        }
    }
}
