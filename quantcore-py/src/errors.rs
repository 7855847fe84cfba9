//! The one place where a [`quantcore::Error`] becomes a Python exception.
//!
//! The exception classes are defined in Python (`quantcore/exceptions.py`), because
//! they inherit from two bases (`InvalidDataError(QuantcoreError, ValueError)`), which
//! `create_exception!` cannot express. Each raised exception carries the core error's
//! message and, as attributes, `kind` (the variant's name in snake case), `row`,
//! `field`, `value` (or `None` when the variant has none) and `details` (every other
//! field of the variant, as a dict).

use std::fmt::Debug;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyType};
use quantcore::Error;
use quantcore::metrics::Undefined;
use quantcore::risk::RiskViolation;

/// A Python exception class of `quantcore.exceptions`, imported once.
macro_rules! exception_class {
    ($fn_name:ident, $class:literal) => {
        fn $fn_name(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
            static CLASS: PyOnceLock<Py<PyType>> = PyOnceLock::new();
            CLASS.import(py, "quantcore.exceptions", $class)
        }
    };
}

exception_class!(quantcore_error, "QuantcoreError");
exception_class!(invalid_data_error, "InvalidDataError");
exception_class!(parse_error, "ParseError");
exception_class!(invalid_parameter_error, "InvalidParameterError");
exception_class!(order_error, "OrderError");
exception_class!(order_rejected_error, "OrderRejectedError");
exception_class!(undefined_metric_error, "UndefinedMetricError");
exception_class!(file_error, "FileError");
exception_class!(model_error, "ModelError");

/// The exception class of each error kind.
#[derive(Clone, Copy)]
enum Class {
    Base,
    InvalidData,
    Parse,
    InvalidParameter,
    Order,
    OrderRejected,
    UndefinedMetric,
    File,
    Model,
}

impl Class {
    fn get(self, py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
        match self {
            Class::Base => quantcore_error(py),
            Class::InvalidData => invalid_data_error(py),
            Class::Parse => parse_error(py),
            Class::InvalidParameter => invalid_parameter_error(py),
            Class::Order => order_error(py),
            Class::OrderRejected => order_rejected_error(py),
            Class::UndefinedMetric => undefined_metric_error(py),
            Class::File => file_error(py),
            Class::Model => model_error(py),
        }
    }
}

/// A value for the `value` attribute: a number stays a number, text stays text.
enum Value {
    Float(f64),
    Int(i64),
    Text(String),
}

impl<'py> IntoPyObject<'py> for &Value {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = std::convert::Infallible;

    fn into_pyobject(self, py: Python<'py>) -> Result<Self::Output, Self::Error> {
        Ok(match self {
            Value::Float(v) => v.into_pyobject(py)?.into_any(),
            Value::Int(v) => v.into_pyobject(py)?.into_any(),
            Value::Text(v) => v.into_pyobject(py)?.into_any(),
        })
    }
}

/// What the exception carries besides its message.
struct Parts {
    class: Class,
    kind: String,
    row: Option<usize>,
    field: Option<String>,
    value: Option<Value>,
    details: Vec<(&'static str, Value)>,
}

impl Parts {
    fn new(class: Class, kind: impl Into<String>) -> Self {
        Parts {
            class,
            kind: kind.into(),
            row: None,
            field: None,
            value: None,
            details: Vec::new(),
        }
    }

    fn row(mut self, row: usize) -> Self {
        self.row = Some(row);
        self
    }

    fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    fn value(mut self, value: Value) -> Self {
        self.value = Some(value);
        self
    }

    fn detail(mut self, name: &'static str, value: Value) -> Self {
        self.details.push((name, value));
        self
    }

    fn raise(self, py: Python<'_>, message: String) -> PyErr {
        match self.build(py, message) {
            Ok(err) => err,
            Err(err) => err,
        }
    }

    fn build(self, py: Python<'_>, message: String) -> PyResult<PyErr> {
        let instance = self.class.get(py)?.call1((message,))?;
        instance.setattr("kind", self.kind)?;
        instance.setattr("row", self.row)?;
        instance.setattr("field", self.field)?;
        instance.setattr("value", self.value.as_ref())?;
        let details = PyDict::new(py);
        for (name, value) in &self.details {
            details.set_item(name, value)?;
        }
        instance.setattr("details", details)?;
        Ok(PyErr::from_value(instance))
    }
}

/// The variant's name from its `Debug` form, in snake case (`NonFinite { .. }` →
/// `non_finite`), for variants added to the core after these bindings.
fn kind_of(error: &impl Debug) -> String {
    let debug = format!("{error:?}");
    let name = debug
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .next()
        .unwrap_or_default();
    let mut kind = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                kind.push('_');
            }
            kind.extend(c.to_lowercase());
        } else {
            kind.push(c);
        }
    }
    kind
}

fn parts(error: &Error) -> Parts {
    use Class::*;
    use Value::{Float, Int, Text};
    let kind = kind_of(error);
    match error {
        Error::NonFinite { row, field, value } | Error::NonPositivePrice { row, field, value } => {
            Parts::new(InvalidData, kind)
                .row(*row)
                .field(*field)
                .value(Float(*value))
        }
        Error::NegativeVolume { row, value } => Parts::new(InvalidData, kind)
            .row(*row)
            .field("volume")
            .value(Float(*value)),
        Error::InconsistentBar {
            row,
            field,
            value,
            body_low,
            body_high,
        } => Parts::new(InvalidData, kind)
            .row(*row)
            .field(*field)
            .value(Float(*value))
            .detail("body_low", Float(*body_low))
            .detail("body_high", Float(*body_high)),
        Error::UnsortedBars {
            row,
            timestamp,
            previous,
        }
        | Error::UnsortedTimestamps {
            row,
            timestamp,
            previous,
        } => Parts::new(InvalidData, kind)
            .row(*row)
            .field("timestamp")
            .value(Int(*timestamp))
            .detail("previous", Int(*previous)),
        Error::DuplicateBar { row, timestamp } => Parts::new(InvalidData, kind)
            .row(*row)
            .field("timestamp")
            .value(Int(*timestamp)),
        Error::LengthMismatch {
            field,
            expected,
            actual,
        } => Parts::new(InvalidData, kind)
            .field(*field)
            .value(Int(*actual as i64))
            .detail("expected", Int(*expected as i64)),
        Error::NotEnoughData {
            what,
            required,
            actual,
        } => Parts::new(InvalidData, kind)
            .field(*what)
            .value(Int(*actual as i64))
            .detail("required", Int(*required as i64)),
        Error::Malformed {
            format,
            location,
            message,
        } => Parts::new(Parse, kind)
            .detail("format", Text(format.to_string()))
            .detail("location", Text(location.clone()))
            .detail("message", Text(message.clone())),
        Error::MissingField { format, field } => Parts::new(Parse, kind)
            .field(field.clone())
            .detail("format", Text(format.to_string())),
        Error::InvalidField {
            format,
            row,
            field,
            message,
        } => Parts::new(Parse, kind)
            .row(*row)
            .field(field.clone())
            .detail("format", Text(format.to_string()))
            .detail("message", Text(message.clone())),
        Error::SourceError {
            format,
            code,
            description,
        } => Parts::new(Parse, kind)
            .value(Text(code.clone()))
            .detail("format", Text(format.to_string()))
            .detail("description", Text(description.clone())),
        Error::ForSymbol { symbol, source } => {
            // The inner error decides the class and the row/field/value; the symbol
            // is added. `kind` stays the inner error's, which is what a caller acts on.
            parts(source).detail("symbol", Text(symbol.clone()))
        }
        Error::InvalidParameter {
            name,
            value,
            reason,
        } => Parts::new(InvalidParameter, kind)
            .field(*name)
            .value(Text(value.clone()))
            .detail("reason", Text(reason.to_string())),
        Error::InvalidConfig { config, problems } => {
            let mut parts = Parts::new(InvalidParameter, kind)
                .detail("config", Text(config.to_string()))
                .detail(
                    "problems",
                    Text(
                        problems
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("; "),
                    ),
                );
            if let Some(Error::InvalidParameter { name, value, .. }) = problems.first() {
                parts = parts.field(*name).value(Text(value.clone()));
            }
            parts
        }
        Error::MaxFeaturesExceedsColumns {
            requested,
            available,
        } => Parts::new(InvalidParameter, kind)
            .field("max_features")
            .value(Int(*requested as i64))
            .detail("available", Int(*available as i64)),
        Error::UnknownSymbol { symbol } => Parts::new(Order, kind)
            .field("symbol")
            .value(Text(symbol.clone())),
        Error::UnknownSymbolId { id } => Parts::new(Order, kind)
            .field("symbol_id")
            .value(Int(i64::from(*id))),
        Error::InvalidSymbol { symbol, reason } => Parts::new(Order, kind)
            .field("symbol")
            .value(Text(symbol.clone()))
            .detail("reason", Text(reason.to_string())),
        Error::InvalidOrder {
            order_id,
            field,
            value,
            reason,
        }
        | Error::InvalidFill {
            order_id,
            field,
            value,
            reason,
        } => Parts::new(Order, kind)
            .field(*field)
            .value(Float(*value))
            .detail("order_id", Int(*order_id as i64))
            .detail("reason", Text(reason.to_string())),
        Error::InvalidInput {
            field,
            value,
            reason,
        } => Parts::new(InvalidData, kind)
            .field(*field)
            .value(Float(*value))
            .detail("reason", Text(reason.to_string())),
        Error::OrderNotOpen { order_id, status } => Parts::new(Order, kind)
            .field("status")
            .value(Text(status.clone()))
            .detail("order_id", Int(*order_id as i64)),
        Error::OrderKindMismatch {
            order_id,
            expected,
            actual,
        } => Parts::new(Order, kind)
            .field("kind")
            .value(Text(actual.to_string()))
            .detail("order_id", Int(*order_id as i64))
            .detail("expected", Text(expected.to_string())),
        Error::FillMismatch {
            order_id,
            fill_order_id,
            field,
        } => Parts::new(Order, kind)
            .field(*field)
            .detail("order_id", Int(*order_id as i64))
            .detail("fill_order_id", Int(*fill_order_id as i64)),
        Error::ShortNotAllowed {
            order_id,
            symbol,
            requested,
            held,
        } => Parts::new(Order, kind)
            .field("quantity")
            .value(Float(*requested))
            .detail("order_id", Int(*order_id as i64))
            .detail("symbol", Text(symbol.clone()))
            .detail("held", Float(*held)),
        Error::NoOpenPosition { symbol } => Parts::new(Order, kind)
            .field("symbol")
            .value(Text(symbol.clone())),
        Error::OrderRejected {
            order_id,
            violation,
        } => violation_parts(violation).detail("order_id", Int(*order_id as i64)),
        Error::NonFiniteFeature { row, column, value } => Parts::new(InvalidData, kind)
            .row(*row)
            .field(format!("column {column}"))
            .value(Float(*value))
            .detail("column", Int(*column as i64)),
        Error::FeatureCountMismatch { expected, actual } => Parts::new(InvalidData, kind)
            .field("n_features")
            .value(Int(*actual as i64))
            .detail("expected", Int(*expected as i64)),
        Error::Linfa { message } => {
            Parts::new(Model, kind).detail("message", Text(message.clone()))
        }
        Error::NonPositiveEquity { row, value } => Parts::new(InvalidData, kind)
            .row(*row)
            .field("equity")
            .value(Float(*value)),
        Error::Serialization { what, message } => Parts::new(Base, kind)
            .field(*what)
            .detail("message", Text(message.clone())),
        Error::Io { path, message } => Parts::new(File, kind)
            .value(Text(path.clone()))
            .detail("path", Text(path.clone()))
            .detail("message", Text(message.clone())),
        Error::EmptySeries { series, symbol } => Parts::new(InvalidData, kind)
            .field("series")
            .value(Int(*series as i64))
            .detail("symbol", Text(symbol.clone())),
        Error::InvalidDecision {
            row,
            symbol,
            source,
        } => {
            // The decision's bar is the row; the inner error names the bad field.
            let inner = parts(source);
            let mut outer = Parts::new(InvalidParameter, kind)
                .row(*row)
                .detail("symbol", Text(symbol.clone()))
                .detail("cause", Text(source.to_string()));
            outer.field = inner.field;
            outer.value = inner.value;
            outer
        }
        Error::SweepRun {
            index,
            params,
            source,
        } => parts(source)
            .detail("sweep_index", Int(*index as i64))
            .detail("params", Text(params.clone())),
        Error::MissingTensor { path, name } | Error::UnexpectedTensor { path, name } => {
            Parts::new(Model, kind)
                .field(name.clone())
                .detail("path", Text(path.clone()))
        }
        Error::TensorShape {
            path,
            name,
            expected,
            actual,
        } => Parts::new(Model, kind)
            .field(name.clone())
            .value(Text(format!("{actual:?}")))
            .detail("path", Text(path.clone()))
            .detail("expected", Text(format!("{expected:?}"))),
        Error::ModelFormat { path, message } => Parts::new(Model, kind)
            .detail("path", Text(path.clone()))
            .detail("message", Text(message.clone())),
        Error::Backend { operation, message } => Parts::new(Model, kind)
            .field(*operation)
            .detail("message", Text(message.clone())),
        Error::TrainingDiverged { epoch, loss } => Parts::new(Model, kind)
            .field("loss")
            .value(Float(*loss))
            .detail("epoch", Int(*epoch as i64)),
        Error::InvalidSignalInput {
            field,
            value,
            reason,
        } => Parts::new(InvalidData, kind)
            .field(*field)
            .value(Float(*value))
            .detail("reason", Text(reason.to_string())),
        // Variants added to the core later: the base class, the kind from the name,
        // the row when the core knows one.
        other => {
            let parts = Parts::new(Base, kind);
            match other.row() {
                Some(row) => parts.row(row),
                None => parts,
            }
        }
    }
}

fn violation_parts(violation: &RiskViolation) -> Parts {
    use Value::{Float, Int};
    let parts = Parts::new(Class::OrderRejected, "order_rejected")
        .detail("violation", Value::Text(kind_of(violation)));
    let parts = match violation.excess() {
        Some(excess) => parts.detail("excess", Float(excess)),
        None => parts,
    };
    match *violation {
        RiskViolation::InvalidPrice { price } => parts.field("price").value(Float(price)),
        RiskViolation::InvalidQuantity { quantity } => {
            parts.field("quantity").value(Float(quantity))
        }
        RiskViolation::UnknownSymbol { id } => parts.field("symbol_id").value(Int(i64::from(id))),
        RiskViolation::InsufficientCash {
            required,
            available,
        } => parts
            .field("cash")
            .value(Float(required))
            .detail("available", Float(available)),
        RiskViolation::InsufficientPosition { requested, held } => parts
            .field("quantity")
            .value(Float(requested))
            .detail("held", Float(held)),
        RiskViolation::PositionTooLarge { notional, limit } => parts
            .field("max_position_fraction")
            .value(Float(notional))
            .detail("limit", Float(limit)),
        RiskViolation::OrderTooLarge { notional, limit } => parts
            .field("max_order_notional")
            .value(Float(notional))
            .detail("limit", Float(limit)),
        RiskViolation::TooManyOpenPositions { open, limit } => parts
            .field("max_open_positions")
            .value(Int(open as i64))
            .detail("limit", Int(limit as i64)),
        RiskViolation::DrawdownHalt { drawdown, limit } => parts
            .field("max_drawdown")
            .value(Float(drawdown))
            .detail("limit", Float(limit)),
    }
}

/// Converts a core error into the matching `quantcore` exception.
pub fn to_py_err(error: Error) -> PyErr {
    Python::attach(|py| parts(&error).raise(py, error.to_string()))
}

/// A risk violation as an `OrderRejectedError` (for an order the caller wants raised).
pub fn violation_to_py_err(violation: RiskViolation, order_id: u64) -> PyErr {
    to_py_err(violation.into_error(order_id))
}

/// Converts why a metric is undefined into an exception: bad input becomes an
/// `InvalidDataError`, a bad parameter an `InvalidParameterError`, anything else an
/// `UndefinedMetricError` whose `kind` is the reason (`zero_variance`, ...).
pub fn undefined_to_py_err(reason: Undefined) -> PyErr {
    let parts = match reason {
        Undefined::NonFiniteInput { index, value } => Parts::new(Class::InvalidData, "non_finite")
            .row(index)
            .field("returns")
            .value(Value::Float(value)),
        Undefined::InvalidParameter { parameter, value } => {
            Parts::new(Class::InvalidParameter, "invalid_parameter")
                .field(parameter.to_string())
                .value(Value::Float(value))
        }
        Undefined::TooFewPeriods { required, actual } => {
            Parts::new(Class::UndefinedMetric, kind_of(&reason))
                .value(Value::Int(actual as i64))
                .detail("required", Value::Int(required as i64))
        }
        other => Parts::new(Class::UndefinedMetric, kind_of(&other)),
    };
    Python::attach(|py| parts.raise(py, reason.to_string()))
}

/// Extension: `?` on core results inside the bindings.
pub trait IntoPyResult<T> {
    /// Maps the core error with [`to_py_err`].
    fn into_py(self) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for quantcore::Result<T> {
    fn into_py(self) -> PyResult<T> {
        self.map_err(to_py_err)
    }
}
