//! Trading signals from price predictions: BUY, SELL or HOLD, a confidence, and
//! volatility-scaled stop-loss and take-profit levels.
//!
//! [`SignalGenerator::generate`] turns a [`Prediction`] (a predicted next price for a
//! symbol, stamped with the time it was made), the current price and a volatility
//! estimate into a [`Signal`]. The core has no clock: the signal's `created_at` is the
//! prediction's `timestamp`.
//!
//! # Rules
//! With `p` the current price, `p̂` the predicted price and `σ` the volatility:
//!
//! - **Expected return**: `r = (p̂ - p) / p`, a simple return over the prediction's horizon.
//! - **Volatility** `σ` is the standard deviation of simple returns over the *same*
//!   horizon (one bar for a next-bar prediction), as a fraction of the price: `0.01`
//!   means 1 %. An ATR works too once divided by the price (`σ = ATR / p`).
//! - **Action**: BUY when `r > threshold`, SELL when `r < -threshold`, HOLD otherwise,
//!   and HOLD as well when the confidence is below [`SignalConfig::min_confidence`].
//!   The default threshold is the round-trip cost `2 * (commission + slippage_bps /
//!   10_000)`: a predicted move that does not pay for entering and leaving is not traded.
//! - **Confidence**: `2 * Phi(|r| / σ) - 1 = erf(|r| / (σ * sqrt 2))`, with `Phi` the
//!   standard normal CDF (computed through statrs' `erf`, the same number without the
//!   cancellation of `2 * Phi - 1` near zero). Read it as the probability mass of a
//!   centred normal with standard deviation `σ` lying within `|r|` of zero: a move of one
//!   `σ` gives 0.683, two `σ` give 0.954. It is 0 when `p̂ = p`, and always in `[0, 1]`.
//! - **Zero volatility**: the history shows no movement, so it carries no evidence about
//!   how reliable a predicted move is; the signal is HOLD with confidence 0 and no
//!   stop-loss or take-profit (`|r| / 0` is not turned into a certainty).
//! - **Stop-loss and take-profit** sit `k * σ * p` away from the price, `k` being
//!   [`SignalConfig::stop_loss_multiple`] or [`SignalConfig::take_profit_multiple`]:
//!   below and above the price for a BUY, above and below it for a SELL, none for a
//!   HOLD. A level that would be zero or negative (a SELL's take-profit with
//!   `k * σ >= 1`, or a BUY's stop-loss) is left out (`None`): it is not a price.
//!
//! NaN or infinite inputs, a non-positive price or predicted price, and a negative
//! volatility are rejected with [`Error::InvalidSignalInput`] naming the input.

use serde::{Deserialize, Serialize};
use statrs::function::erf::erf;

use crate::error::{Error, Result};

/// What to do with the instrument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Action {
    /// Go long (or cover a short).
    Buy,
    /// Go short (or sell a long).
    Sell,
    /// Do nothing.
    Hold,
}

/// A model's prediction of the next price of one instrument.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The instrument.
    pub symbol: String,
    /// When the prediction was made, Unix seconds UTC (becomes the signal's `created_at`).
    pub timestamp: i64,
    /// The predicted price at the end of the horizon (the next bar's close for the LSTM).
    pub predicted_price: f64,
}

/// A trading signal; see the [module docs](self) for how each field is computed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    /// The instrument.
    pub symbol: String,
    /// BUY, SELL or HOLD.
    pub action: Action,
    /// `2 * Phi(|expected_return| / volatility) - 1`, in `[0, 1]`.
    pub confidence: f64,
    /// The current price the signal was made at.
    pub price: f64,
    /// The predicted price.
    pub predicted_price: f64,
    /// `(predicted_price - price) / price`.
    pub expected_return: f64,
    /// Protective exit level, `None` for HOLD or when disabled.
    pub stop_loss: Option<f64>,
    /// Profit-taking exit level, `None` for HOLD or when disabled.
    pub take_profit: Option<f64>,
    /// The prediction's timestamp, Unix seconds UTC.
    pub created_at: i64,
}

/// Parameters of a [`SignalGenerator`].
///
/// Defaults (spelled out in [`Default`]): commission 0.001 (10 bps per side), slippage
/// 5 bps, threshold `None` (the round-trip cost, 0.003 with these defaults), stop-loss
/// at 2 σ, take-profit at 3 σ, no minimum confidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SignalConfig {
    /// Commission as a fraction of notional per side.
    pub commission: f64,
    /// Slippage per side in basis points.
    pub slippage_bps: f64,
    /// Minimum `|expected return|` for a BUY or SELL; `None` means the round-trip cost
    /// `2 * (commission + slippage_bps / 10_000)`.
    pub threshold: Option<f64>,
    /// Stop-loss distance in multiples of `volatility * price`; `None` disables it.
    pub stop_loss_multiple: Option<f64>,
    /// Take-profit distance in multiples of `volatility * price`; `None` disables it.
    pub take_profit_multiple: Option<f64>,
    /// Signals less confident than this are HOLD; in `[0, 1]`.
    pub min_confidence: f64,
}

impl Default for SignalConfig {
    fn default() -> Self {
        SignalConfig {
            commission: 0.001,
            slippage_bps: 5.0,
            threshold: None,
            stop_loss_multiple: Some(2.0),
            take_profit_multiple: Some(3.0),
            min_confidence: 0.0,
        }
    }
}

impl SignalConfig {
    /// The round-trip trading cost as a fraction: `2 * (commission + slippage_bps / 10_000)`.
    pub fn round_trip_cost(&self) -> f64 {
        2.0 * (self.commission + self.slippage_bps / 10_000.0)
    }

    /// The threshold in force: the explicit one, or the round-trip cost.
    pub fn effective_threshold(&self) -> f64 {
        self.threshold.unwrap_or_else(|| self.round_trip_cost())
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for the first field out of range: a negative or
    /// non-finite commission, slippage or threshold, a non-positive or non-finite
    /// multiple, or a minimum confidence outside `[0, 1]`.
    pub fn validate(&self) -> Result<()> {
        let non_negative = [
            ("commission", Some(self.commission)),
            ("slippage_bps", Some(self.slippage_bps)),
            ("threshold", self.threshold),
        ];
        for (name, value) in non_negative {
            if let Some(value) = value
                && !(value.is_finite() && value >= 0.0)
            {
                return Err(Error::invalid_parameter(
                    name,
                    value,
                    "must be finite and non-negative",
                ));
            }
        }
        let positive = [
            ("stop_loss_multiple", self.stop_loss_multiple),
            ("take_profit_multiple", self.take_profit_multiple),
        ];
        for (name, value) in positive {
            if let Some(value) = value
                && !(value.is_finite() && value > 0.0)
            {
                return Err(Error::invalid_parameter(
                    name,
                    value,
                    "must be finite and positive",
                ));
            }
        }
        if !(0.0..=1.0).contains(&self.min_confidence) {
            return Err(Error::invalid_parameter(
                "min_confidence",
                self.min_confidence,
                "must be in [0, 1]",
            ));
        }
        Ok(())
    }
}

/// Turns predictions into [`Signal`]s under a checked [`SignalConfig`].
///
/// ```
/// use quantcore::signal::{Action, Prediction, SignalConfig, SignalGenerator};
/// let generator = SignalGenerator::new(SignalConfig::default())?;
/// let prediction = Prediction { symbol: "AAPL".into(), timestamp: 1_700_000_000, predicted_price: 101.0 };
/// // +1 % expected against 1 % volatility and a 0.3 % round-trip cost.
/// let signal = generator.generate(&prediction, 100.0, 0.01)?;
/// assert_eq!(signal.action, Action::Buy);
/// assert!((signal.confidence - 0.682_689_492).abs() < 1e-9); // 2 Phi(1) - 1
/// assert_eq!(signal.stop_loss, Some(98.0)); // 2 sigma below
/// assert_eq!(signal.take_profit, Some(103.0)); // 3 sigma above
/// assert_eq!(signal.created_at, 1_700_000_000);
/// # Ok::<(), quantcore::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SignalGenerator {
    config: SignalConfig,
    threshold: f64,
}

impl SignalGenerator {
    /// A generator for `config`.
    ///
    /// # Errors
    /// As [`SignalConfig::validate`].
    pub fn new(config: SignalConfig) -> Result<Self> {
        config.validate()?;
        let threshold = config.effective_threshold();
        Ok(SignalGenerator { config, threshold })
    }

    /// The configuration.
    pub fn config(&self) -> &SignalConfig {
        &self.config
    }

    /// The expected-return threshold in force.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// The signal for `prediction` at `current_price`, given the per-horizon
    /// `volatility` (fraction of price); see the [module docs](self) for the rules.
    ///
    /// # Errors
    /// [`Error::InvalidSignalInput`] when the predicted or current price is not finite
    /// and positive, or the volatility is not finite and non-negative.
    pub fn generate(
        &self,
        prediction: &Prediction,
        current_price: f64,
        volatility: f64,
    ) -> Result<Signal> {
        check_price("predicted_price", prediction.predicted_price)?;
        check_price("current_price", current_price)?;
        if !(volatility.is_finite() && volatility >= 0.0) {
            return Err(Error::InvalidSignalInput {
                field: "volatility",
                value: volatility,
                reason: "must be finite and non-negative",
            });
        }
        let expected_return = (prediction.predicted_price - current_price) / current_price;
        let confidence = if volatility > 0.0 {
            // 2 Phi(z) - 1 = erf(z / sqrt 2); clamp guards the last ulp of erf.
            erf(expected_return.abs() / (volatility * std::f64::consts::SQRT_2)).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let action = if volatility == 0.0 || confidence < self.config.min_confidence {
            Action::Hold
        } else if expected_return > self.threshold {
            Action::Buy
        } else if expected_return < -self.threshold {
            Action::Sell
        } else {
            Action::Hold
        };
        // +1 for levels above the price, -1 below; a BUY's stop is below.
        let direction = match action {
            Action::Buy => 1.0,
            Action::Sell => -1.0,
            Action::Hold => 0.0,
        };
        let level = |multiple: Option<f64>, side: f64| -> Option<f64> {
            if action == Action::Hold {
                return None;
            }
            let level = current_price * (1.0 + side * multiple? * volatility);
            (level > 0.0).then_some(level)
        };
        Ok(Signal {
            symbol: prediction.symbol.clone(),
            action,
            confidence,
            price: current_price,
            predicted_price: prediction.predicted_price,
            expected_return,
            stop_loss: level(self.config.stop_loss_multiple, -direction),
            take_profit: level(self.config.take_profit_multiple, direction),
            created_at: prediction.timestamp,
        })
    }
}

fn check_price(field: &'static str, value: f64) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidSignalInput {
            field,
            value,
            reason: "must be finite and positive",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prediction(predicted_price: f64) -> Prediction {
        Prediction {
            symbol: "XYZ".into(),
            timestamp: 1_234,
            predicted_price,
        }
    }

    fn default_generator() -> SignalGenerator {
        SignalGenerator::new(SignalConfig::default()).unwrap()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn default_threshold_is_the_round_trip_cost() {
        // 2 * (0.001 + 5 / 10_000) = 0.003
        assert!(close(default_generator().threshold(), 0.003));
        let explicit = SignalGenerator::new(SignalConfig {
            threshold: Some(0.01),
            ..SignalConfig::default()
        })
        .unwrap();
        assert_eq!(explicit.threshold(), 0.01);
    }

    #[test]
    fn buy_levels_and_confidence_by_hand() {
        // p = 50, p^ = 51 -> r = 0.02; sigma = 0.01 -> z = 2 -> 2 Phi(2) - 1 = 0.954499736104
        let s = default_generator()
            .generate(&prediction(51.0), 50.0, 0.01)
            .unwrap();
        assert_eq!(s.action, Action::Buy);
        assert!(close(s.expected_return, 0.02));
        assert!((s.confidence - 0.954_499_736_104).abs() < 1e-11);
        // stop 50 * (1 - 2 * 0.01) = 49, take 50 * (1 + 3 * 0.01) = 51.5
        assert!(close(s.stop_loss.unwrap(), 49.0));
        assert!(close(s.take_profit.unwrap(), 51.5));
        assert!(s.stop_loss.unwrap() < s.price && s.take_profit.unwrap() > s.price);
        assert_eq!((s.symbol.as_str(), s.created_at), ("XYZ", 1_234));
        assert_eq!(s.predicted_price, 51.0);
        assert_eq!(s.price, 50.0);
    }

    #[test]
    fn sell_levels_are_mirrored() {
        // p = 200, p^ = 197 -> r = -0.015; sigma = 0.03 -> z = 0.5 -> 0.382924922548
        let s = default_generator()
            .generate(&prediction(197.0), 200.0, 0.03)
            .unwrap();
        assert_eq!(s.action, Action::Sell);
        assert!(close(s.expected_return, -0.015));
        assert!((s.confidence - 0.382_924_922_548).abs() < 1e-11);
        // stop 200 * (1 + 0.06) = 212, take 200 * (1 - 0.09) = 182
        assert!(close(s.stop_loss.unwrap(), 212.0));
        assert!(close(s.take_profit.unwrap(), 182.0));
        assert!(s.stop_loss.unwrap() > s.price && s.take_profit.unwrap() < s.price);
    }

    #[test]
    fn small_moves_hold_without_levels() {
        // r = 0.002 < 0.003: HOLD, confidence still reported (z = 0.2 -> 0.158519418878).
        let s = default_generator()
            .generate(&prediction(100.2), 100.0, 0.01)
            .unwrap();
        assert_eq!(s.action, Action::Hold);
        assert!((s.confidence - 0.158_519_418_878).abs() < 1e-11);
        assert_eq!((s.stop_loss, s.take_profit), (None, None));
        // Just below the negative threshold: SELL; just inside it: HOLD.
        let g = default_generator();
        assert_eq!(
            g.generate(&prediction(99.69), 100.0, 0.01).unwrap().action,
            Action::Sell
        );
        assert_eq!(
            g.generate(&prediction(99.71), 100.0, 0.01).unwrap().action,
            Action::Hold
        );
    }

    #[test]
    fn prediction_equal_to_price_holds_with_zero_confidence() {
        let zero_threshold = SignalGenerator::new(SignalConfig {
            threshold: Some(0.0),
            ..SignalConfig::default()
        })
        .unwrap();
        for g in [default_generator(), zero_threshold] {
            let s = g.generate(&prediction(42.0), 42.0, 0.02).unwrap();
            assert_eq!(s.action, Action::Hold);
            assert_eq!(s.confidence, 0.0);
            assert_eq!(s.expected_return, 0.0);
        }
    }

    #[test]
    fn zero_volatility_holds_with_zero_confidence() {
        let s = default_generator()
            .generate(&prediction(120.0), 100.0, 0.0)
            .unwrap();
        assert_eq!(s.action, Action::Hold);
        assert_eq!(s.confidence, 0.0);
        assert!(close(s.expected_return, 0.2));
        assert_eq!((s.stop_loss, s.take_profit), (None, None));
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        let g = default_generator();
        let cases = [
            (f64::NAN, 100.0, 0.01, "predicted_price"),
            (-1.0, 100.0, 0.01, "predicted_price"),
            (100.0, f64::NAN, 0.01, "current_price"),
            (100.0, 0.0, 0.01, "current_price"),
            (100.0, f64::INFINITY, 0.01, "current_price"),
            (100.0, 100.0, f64::NAN, "volatility"),
            (100.0, 100.0, -0.01, "volatility"),
            (100.0, 100.0, f64::INFINITY, "volatility"),
        ];
        for (predicted, price, vol, field) in cases {
            let err = g.generate(&prediction(predicted), price, vol).unwrap_err();
            assert!(
                matches!(err, Error::InvalidSignalInput { field: f, .. } if f == field),
                "{err}"
            );
            assert!(err.to_string().contains(field), "{err}");
        }
    }

    #[test]
    fn min_confidence_and_disabled_levels() {
        let g = SignalGenerator::new(SignalConfig {
            min_confidence: 0.9,
            stop_loss_multiple: None,
            ..SignalConfig::default()
        })
        .unwrap();
        // z = 1 -> 0.683 < 0.9: HOLD although r = 1 % clears the threshold.
        let s = g.generate(&prediction(101.0), 100.0, 0.01).unwrap();
        assert_eq!(s.action, Action::Hold);
        // z = 3 -> 0.9973 >= 0.9: BUY, no stop, take-profit 100 * 1.03.
        let s = g.generate(&prediction(103.0), 100.0, 0.01).unwrap();
        assert_eq!(s.action, Action::Buy);
        assert_eq!(s.stop_loss, None);
        assert!(close(s.take_profit.unwrap(), 103.0));
    }

    #[test]
    fn non_positive_levels_are_dropped() {
        // SELL with sigma = 0.5: take-profit 10 * (1 - 1.5) < 0 -> None; stop 10 * 2 = 20.
        let s = default_generator()
            .generate(&prediction(5.0), 10.0, 0.5)
            .unwrap();
        assert_eq!(s.action, Action::Sell);
        assert_eq!(s.take_profit, None);
        assert!(close(s.stop_loss.unwrap(), 20.0));
    }

    #[test]
    fn confidence_stays_in_unit_interval() {
        let g = default_generator();
        for (predicted, vol) in [(1e6, 1e-9), (100.0 + 1e-12, 10.0), (1e-6, 1e-3)] {
            let c = g
                .generate(&prediction(predicted), 100.0, vol)
                .unwrap()
                .confidence;
            assert!((0.0..=1.0).contains(&c), "{c}");
        }
        let huge = g.generate(&prediction(1e6), 100.0, 1e-9).unwrap();
        assert_eq!(huge.confidence, 1.0);
    }

    #[test]
    fn bad_configs_are_rejected() {
        let cases: Vec<(SignalConfig, &str)> = vec![
            (
                SignalConfig {
                    commission: -0.1,
                    ..Default::default()
                },
                "commission",
            ),
            (
                SignalConfig {
                    slippage_bps: f64::NAN,
                    ..Default::default()
                },
                "slippage_bps",
            ),
            (
                SignalConfig {
                    threshold: Some(-1e-3),
                    ..Default::default()
                },
                "threshold",
            ),
            (
                SignalConfig {
                    stop_loss_multiple: Some(0.0),
                    ..Default::default()
                },
                "stop_loss_multiple",
            ),
            (
                SignalConfig {
                    take_profit_multiple: Some(f64::INFINITY),
                    ..Default::default()
                },
                "take_profit_multiple",
            ),
            (
                SignalConfig {
                    min_confidence: 1.5,
                    ..Default::default()
                },
                "min_confidence",
            ),
        ];
        for (config, field) in cases {
            let err = SignalGenerator::new(config).unwrap_err();
            assert!(
                matches!(err, Error::InvalidParameter { name, .. } if name == field),
                "{err}"
            );
        }
    }

    #[test]
    fn signal_serializes_with_uppercase_actions() {
        let s = default_generator()
            .generate(&prediction(51.0), 50.0, 0.01)
            .unwrap();
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["action"], "BUY");
        assert_eq!(json["symbol"], "XYZ");
        let back: Signal = serde_json::from_value(json).unwrap();
        assert_eq!(back, s);
        let config: SignalConfig = serde_json::from_str(r#"{"threshold":0.01}"#).unwrap();
        assert_eq!(config.threshold, Some(0.01));
        assert_eq!(config.commission, 0.001);
        assert!(serde_json::from_str::<SignalConfig>(r#"{"thresold":0.01}"#).is_err());
    }

    #[test]
    fn generator_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<SignalGenerator>();
        check::<Signal>();
    }
}
