//! Bus messages: a versioned JSON envelope around three payloads.
//!
//! Every message on the bus is one JSON object, an [`Envelope`]:
//!
//! ```json
//! {"schema_version": 1, "id": "0196…", "key": "ACME", "produced_at": "2024-01-02T15:04:05Z",
//!  "payload": {"symbol": "ACME", "timestamp": 1704207845, "open": 10.0, …}}
//! ```
//!
//! # Conventions
//! - `schema_version` is [`SCHEMA_VERSION`]; a consumer rejects any other version (the message
//!   goes to the dead-letter topic rather than being half understood).
//! - `id` is a UUID v7 (time-ordered) made by the producer; consumers use it for idempotent
//!   processing (`Store::mark_processed`), so a redelivered message never acts twice.
//! - `key` is the symbol: the bus partitions by it, so the messages of one symbol keep
//!   their order and are handled by one consumer of a group. It must equal the payload's
//!   symbol.
//! - Timestamps inside payloads are Unix seconds UTC of the bar's start, as in
//!   [`quantcore::data::Bar`].
//! - Unknown fields are rejected (`deny_unknown_fields`): a changed shape needs a new
//!   schema version.
//! - Prices and scores must be finite: JSON has no NaN, and `serde_json` would write `null`.
//!
//! Topic names are in [`topics`].

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The envelope version this build writes and accepts.
pub const SCHEMA_VERSION: u32 = 1;

/// Topic names of the design.
pub mod topics {
    /// Bars, one message per bar, keyed by symbol.
    pub const MARKET_DATA: &str = "market_data";
    /// Non-HOLD signals from the ml role, keyed by symbol.
    pub const TRADING_SIGNALS: &str = "trading_signals";
    /// Anomaly scores from the ml role, keyed by symbol.
    pub const ANOMALIES: &str = "anomalies";

    /// Returns the dead-letter topic of `topic`: `<topic>.dlq`.
    ///
    /// ```
    /// assert_eq!(quantcore_service::messages::topics::dead_letter("market_data"), "market_data.dlq");
    /// ```
    pub fn dead_letter(topic: &str) -> String {
        format!("{topic}.dlq")
    }
}

/// Why a message could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    /// The bytes are not the JSON shape of the envelope or its payload.
    #[error("invalid message JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The envelope was written by another schema version.
    #[error("unsupported schema_version {version}, this build reads {supported}")]
    UnsupportedSchemaVersion { version: u32, supported: u32 },
    /// The envelope key is not the payload's symbol.
    #[error("envelope key {key:?} differs from the payload symbol {symbol:?}")]
    KeyMismatch { key: String, symbol: String },
    /// The symbol is empty.
    #[error("`symbol` must not be empty")]
    EmptySymbol,
    /// A number is not finite or out of its range.
    #[error("`{field}` {reason}, was {value}")]
    InvalidNumber {
        field: &'static str,
        value: f64,
        reason: &'static str,
    },
    /// The OHLCV fields do not form a valid bar (see [`quantcore::data::Bar::validate`]).
    #[error("invalid bar: {0}")]
    InvalidBar(#[from] quantcore::Error),
}

/// A payload that can travel in an [`Envelope`].
pub trait Payload: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The symbol the payload is about; the envelope key.
    fn symbol(&self) -> &str;

    /// Checks the payload's own fields.
    ///
    /// # Errors
    /// The first invalid field.
    fn validate(&self) -> Result<(), MessageError>;
}

/// The JSON envelope around every payload; see the [module docs](self).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope<P> {
    /// Always [`SCHEMA_VERSION`] when written by this build.
    pub schema_version: u32,
    /// Unique message id, the idempotency key: a UUID v7, or for a message derived from
    /// another one a UUID v5 of that message's id ([`Envelope::derived`]).
    pub id: Uuid,
    /// Partition key: the symbol.
    pub key: String,
    /// When the producer made the message (UTC).
    pub produced_at: DateTime<Utc>,
    /// The content.
    pub payload: P,
}

impl<P: Payload> Envelope<P> {
    /// Wraps `payload` with a fresh UUID v7 id, the payload's symbol as key and the current time.
    ///
    /// ```
    /// use quantcore_service::messages::{Envelope, AnomalyMessage};
    /// let message = Envelope::new(AnomalyMessage {
    ///     symbol: "ACME".into(), timestamp: 1_704_207_600, score: 0.71, is_anomaly: true,
    /// });
    /// assert_eq!(message.key, "ACME");
    /// let bytes = message.to_json()?;
    /// assert_eq!(Envelope::<AnomalyMessage>::from_json(&bytes)?, message);
    /// # Ok::<(), quantcore_service::messages::MessageError>(())
    /// ```
    pub fn new(payload: P) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            id: Uuid::now_v7(),
            key: payload.symbol().to_owned(),
            produced_at: Utc::now(),
            payload,
        }
    }

    /// Wraps `payload`, made from the message `source`, with an id that is a function of
    /// `source` and `topic` (a UUID v5 in `source`'s namespace): making it again from a
    /// redelivered `source` gives the same id, so consumers drop the repeat.
    ///
    /// ```
    /// use quantcore_service::messages::{Envelope, AnomalyMessage, topics};
    /// let anomaly = AnomalyMessage { symbol: "ACME".into(), timestamp: 1, score: 0.7, is_anomaly: true };
    /// let bar_id = uuid::Uuid::now_v7();
    /// let first = Envelope::derived(anomaly.clone(), bar_id, topics::ANOMALIES);
    /// let again = Envelope::derived(anomaly.clone(), bar_id, topics::ANOMALIES);
    /// assert_eq!(first.id, again.id);
    /// assert_ne!(first.id, Envelope::derived(anomaly, bar_id, topics::TRADING_SIGNALS).id);
    /// ```
    pub fn derived(payload: P, source: Uuid, topic: &str) -> Self {
        Self {
            id: Uuid::new_v5(&source, topic.as_bytes()),
            ..Self::new(payload)
        }
    }

    /// Checks the version, the key and the payload.
    ///
    /// # Errors
    /// [`MessageError::UnsupportedSchemaVersion`], [`MessageError::KeyMismatch`] or the
    /// payload's own error.
    pub fn validate(&self) -> Result<(), MessageError> {
        if self.schema_version != SCHEMA_VERSION {
            return Err(MessageError::UnsupportedSchemaVersion {
                version: self.schema_version,
                supported: SCHEMA_VERSION,
            });
        }
        self.payload.validate()?;
        if self.key != self.payload.symbol() {
            return Err(MessageError::KeyMismatch {
                key: self.key.clone(),
                symbol: self.payload.symbol().to_owned(),
            });
        }
        Ok(())
    }

    /// Validates, then serializes to JSON bytes.
    ///
    /// # Errors
    /// A validation error (a NaN price, say), never invalid JSON on the wire.
    pub fn to_json(&self) -> Result<Vec<u8>, MessageError> {
        self.validate()?;
        Ok(serde_json::to_vec(self)?)
    }

    /// Parses JSON bytes and validates the result.
    ///
    /// # Errors
    /// [`MessageError::Json`] for bytes of the wrong shape, else a validation error.
    pub fn from_json(bytes: &[u8]) -> Result<Self, MessageError> {
        let envelope: Self = serde_json::from_slice(bytes)?;
        envelope.validate()?;
        Ok(envelope)
    }
}

fn check_symbol(symbol: &str) -> Result<(), MessageError> {
    if symbol.trim().is_empty() {
        Err(MessageError::EmptySymbol)
    } else {
        Ok(())
    }
}

fn check_finite(field: &'static str, value: f64) -> Result<(), MessageError> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(MessageError::InvalidNumber {
            field,
            value,
            reason: "must be finite",
        })
    }
}

fn check_positive(field: &'static str, value: f64) -> Result<(), MessageError> {
    check_finite(field, value)?;
    if value > 0.0 {
        Ok(())
    } else {
        Err(MessageError::InvalidNumber {
            field,
            value,
            reason: "must be positive",
        })
    }
}

/// One OHLCV bar of one symbol, topic [`topics::MARKET_DATA`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarketDataMessage {
    pub symbol: String,
    /// Bar start, Unix seconds UTC.
    pub timestamp: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
}

impl MarketDataMessage {
    /// Builds the message of `bar` for `symbol`.
    pub fn from_bar(symbol: impl Into<String>, bar: &quantcore::data::Bar) -> Self {
        Self {
            symbol: symbol.into(),
            timestamp: bar.timestamp,
            open: bar.open,
            high: bar.high,
            low: bar.low,
            close: bar.close,
            volume: bar.volume,
        }
    }

    /// Returns the bar (without the symbol).
    pub fn bar(&self) -> quantcore::data::Bar {
        quantcore::data::Bar {
            timestamp: self.timestamp,
            open: self.open,
            high: self.high,
            low: self.low,
            close: self.close,
            volume: self.volume,
        }
    }
}

impl Payload for MarketDataMessage {
    fn symbol(&self) -> &str {
        &self.symbol
    }

    /// Checks the symbol, then the bar with the core's rules ([`quantcore::data::Bar::validate`]).
    fn validate(&self) -> Result<(), MessageError> {
        check_symbol(&self.symbol)?;
        self.bar().validate(0)?;
        Ok(())
    }
}

/// What a signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SignalAction {
    Buy,
    Sell,
    Hold,
}

impl SignalAction {
    /// Returns the wire and database spelling: `BUY`, `SELL` or `HOLD`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Buy => "BUY",
            Self::Sell => "SELL",
            Self::Hold => "HOLD",
        }
    }

    /// Parses the spelling of [`SignalAction::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "BUY" => Some(Self::Buy),
            "SELL" => Some(Self::Sell),
            "HOLD" => Some(Self::Hold),
            _ => None,
        }
    }
}

/// A trading signal, topic [`topics::TRADING_SIGNALS`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalMessage {
    pub symbol: String,
    /// Start of the bar the signal was computed on, Unix seconds UTC.
    pub timestamp: i64,
    pub action: SignalAction,
    /// In `[0, 1]`.
    pub confidence: f64,
    /// Price when the signal was made (the bar's close).
    pub price: f64,
    /// The model's predicted next price.
    pub predicted_price: f64,
    pub stop_loss: Option<f64>,
    pub take_profit: Option<f64>,
    /// `predicted_price / price - 1`, as a fraction.
    pub expected_return: f64,
}

impl Payload for SignalMessage {
    fn symbol(&self) -> &str {
        &self.symbol
    }

    fn validate(&self) -> Result<(), MessageError> {
        check_symbol(&self.symbol)?;
        check_finite("confidence", self.confidence)?;
        if !(0.0..=1.0).contains(&self.confidence) {
            return Err(MessageError::InvalidNumber {
                field: "confidence",
                value: self.confidence,
                reason: "must be in [0, 1]",
            });
        }
        check_positive("price", self.price)?;
        check_positive("predicted_price", self.predicted_price)?;
        if let Some(stop_loss) = self.stop_loss {
            check_positive("stop_loss", stop_loss)?;
        }
        if let Some(take_profit) = self.take_profit {
            check_positive("take_profit", take_profit)?;
        }
        check_finite("expected_return", self.expected_return)
    }
}

/// An anomaly score, topic [`topics::ANOMALIES`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnomalyMessage {
    pub symbol: String,
    /// Start of the scored bar, Unix seconds UTC.
    pub timestamp: i64,
    /// Isolation Forest score in `[0, 1]`; higher is more anomalous.
    pub score: f64,
    /// Whether the score passed the detector's threshold.
    pub is_anomaly: bool,
}

impl Payload for AnomalyMessage {
    fn symbol(&self) -> &str {
        &self.symbol
    }

    fn validate(&self) -> Result<(), MessageError> {
        check_symbol(&self.symbol)?;
        check_finite("score", self.score)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar_message() -> MarketDataMessage {
        MarketDataMessage {
            symbol: "ACME".into(),
            timestamp: 1_704_207_600,
            open: 10.0,
            high: 11.0,
            low: 9.5,
            close: 10.5,
            volume: 1200.0,
        }
    }

    #[test]
    fn envelope_round_trips_and_has_the_documented_fields() {
        let message = Envelope::new(bar_message());
        let bytes = message.to_json().unwrap();
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(value["schema_version"], 1);
        assert_eq!(value["key"], "ACME");
        assert_eq!(value["payload"]["close"], 10.5);
        assert_eq!(value["id"].as_str().unwrap(), message.id.to_string());
        assert_eq!(message.id.get_version_num(), 7);
        assert_eq!(
            Envelope::<MarketDataMessage>::from_json(&bytes).unwrap(),
            message
        );
    }

    #[test]
    fn ids_are_unique() {
        let a = Envelope::new(bar_message());
        let b = Envelope::new(bar_message());
        assert_ne!(a.id, b.id);
    }

    #[test]
    fn rejects_other_schema_versions() {
        let mut message = Envelope::new(bar_message());
        message.schema_version = 2;
        let bytes = serde_json::to_vec(&message).unwrap();
        let error = Envelope::<MarketDataMessage>::from_json(&bytes).unwrap_err();
        assert!(matches!(
            error,
            MessageError::UnsupportedSchemaVersion {
                version: 2,
                supported: 1
            }
        ));
    }

    #[test]
    fn rejects_a_key_that_is_not_the_symbol() {
        let mut message = Envelope::new(bar_message());
        message.key = "OTHER".into();
        assert!(matches!(
            message.to_json().unwrap_err(),
            MessageError::KeyMismatch { .. }
        ));
    }

    #[test]
    fn rejects_unknown_fields_and_garbage() {
        let message = Envelope::new(bar_message());
        let mut value = serde_json::to_value(&message).unwrap();
        value["payload"]["vwap"] = serde_json::json!(10.2);
        let bytes = serde_json::to_vec(&value).unwrap();
        let error = Envelope::<MarketDataMessage>::from_json(&bytes).unwrap_err();
        assert!(
            error.to_string().contains("unknown field `vwap`"),
            "{error}"
        );
        assert!(matches!(
            Envelope::<MarketDataMessage>::from_json(b"not json").unwrap_err(),
            MessageError::Json(_)
        ));
    }

    #[test]
    fn bars_are_checked_with_the_core_rules() {
        let mut payload = bar_message();
        payload.high = 9.0; // below the open and close
        let error = Envelope::new(payload).to_json().unwrap_err();
        assert!(matches!(error, MessageError::InvalidBar(_)), "{error}");
    }

    #[test]
    fn non_finite_numbers_never_reach_the_wire() {
        let signal = SignalMessage {
            symbol: "ACME".into(),
            timestamp: 0,
            action: SignalAction::Buy,
            confidence: 0.8,
            price: f64::NAN,
            predicted_price: 11.0,
            stop_loss: None,
            take_profit: Some(12.0),
            expected_return: 0.1,
        };
        let error = Envelope::new(signal.clone()).to_json().unwrap_err();
        assert_eq!(error.to_string(), "`price` must be finite, was NaN");
        let error = Envelope::new(SignalMessage {
            price: 10.0,
            confidence: 1.5,
            ..signal
        })
        .to_json()
        .unwrap_err();
        assert_eq!(error.to_string(), "`confidence` must be in [0, 1], was 1.5");
    }

    #[test]
    fn actions_use_upper_case_on_the_wire() {
        assert_eq!(
            serde_json::to_string(&SignalAction::Sell).unwrap(),
            "\"SELL\""
        );
        for action in [SignalAction::Buy, SignalAction::Sell, SignalAction::Hold] {
            assert_eq!(SignalAction::parse(action.as_str()), Some(action));
        }
        assert_eq!(SignalAction::parse("buy"), None);
    }
}
