//! [`LstmConfig`]: the predictor's architecture, inputs and training schedule.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::features::windows::BarFeature;

/// Architecture, inputs and training schedule of an [`LstmPredictor`](super::LstmPredictor).
///
/// Defaults, spelled out in [`Default`]:
///
/// | field | default |
/// |---|---|
/// | `window` | 30 feature rows (31 bars) |
/// | `features` | all five [`BarFeature`]s: log return, range, log volume change, body, gap |
/// | `hidden_size` | 64 |
/// | `num_layers` | 1 |
/// | `dropout` | 0.0 |
/// | `epochs` | 50 |
/// | `batch_size` | 64 |
/// | `learning_rate` | 0.001 (AdamW) |
/// | `weight_decay` | 0.01 (AdamW's decoupled decay, PyTorch's default) |
/// | `validation_fraction` | 0.2 (the chronologically last 20 % of the samples) |
/// | `patience` | `Some(5)` epochs without a better validation loss |
/// | `seed` | 42 |
///
/// Unknown fields are rejected when deserializing, so a typo in a config file is an
/// error rather than a silently ignored setting.
///
/// ```
/// use quantcore::ml::lstm::LstmConfig;
/// let config: LstmConfig = serde_json::from_str(r#"{"hidden_size": 32, "epochs": 10}"#).unwrap();
/// assert_eq!((config.window, config.hidden_size), (30, 32));
/// config.validate()?;
/// assert!(LstmConfig { dropout: 1.0, ..config }.validate().is_err());
/// # Ok::<(), quantcore::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LstmConfig {
    /// Number of per-bar feature rows the network reads; a prediction needs
    /// `window + 1` bars because each row compares a bar with the previous one.
    pub window: usize,
    /// The per-bar input features, in the order the network sees them.
    pub features: Vec<BarFeature>,
    /// Width of each LSTM layer's hidden and cell state.
    pub hidden_size: usize,
    /// Number of stacked LSTM layers (each one layer reading the previous one's outputs).
    pub num_layers: usize,
    /// Dropout probability applied to the outputs of every LSTM layer but the last,
    /// during training only, as PyTorch's `nn.LSTM(dropout=...)` does; it has no effect
    /// with one layer. In `[0, 1)`.
    pub dropout: f64,
    /// Maximum number of passes over the training samples.
    pub epochs: usize,
    /// Samples per optimizer step.
    pub batch_size: usize,
    /// AdamW learning rate.
    pub learning_rate: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// Fraction of the samples, taken from the end of the series, held out for
    /// validation and early stopping; 0 trains on everything without early stopping.
    /// In `[0, 1)`.
    pub validation_fraction: f64,
    /// Stop after this many epochs without a better validation loss and restore the best
    /// weights; `None` always runs `epochs` epochs (the best weights are still restored
    /// when there is a validation part).
    pub patience: Option<usize>,
    /// Seed of the weight initialisation, the batch shuffling and the dropout masks.
    pub seed: u64,
}

impl Default for LstmConfig {
    fn default() -> Self {
        LstmConfig {
            window: 30,
            features: BarFeature::ALL.to_vec(),
            hidden_size: 64,
            num_layers: 1,
            dropout: 0.0,
            epochs: 50,
            batch_size: 64,
            learning_rate: 1e-3,
            weight_decay: 0.01,
            validation_fraction: 0.2,
            patience: Some(5),
            seed: 42,
        }
    }
}

impl LstmConfig {
    /// Number of input features per time step.
    pub fn input_size(&self) -> usize {
        self.features.len()
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the first field out of range: a zero window,
    /// hidden size, layer count, epoch count, batch size or patience; an empty or
    /// repeating feature list; a dropout or validation fraction outside `[0, 1)`; a
    /// non-positive or non-finite learning rate; a negative or non-finite weight decay.
    pub fn validate(&self) -> Result<()> {
        let at_least_one = [
            ("window", self.window),
            ("hidden_size", self.hidden_size),
            ("num_layers", self.num_layers),
            ("epochs", self.epochs),
            ("batch_size", self.batch_size),
            ("patience", self.patience.unwrap_or(1)),
        ];
        for (name, value) in at_least_one {
            if value == 0 {
                return Err(Error::invalid_parameter(name, 0, "must be at least 1"));
            }
        }
        if self.features.is_empty() {
            return Err(Error::invalid_parameter(
                "features",
                "[]",
                "must name at least one feature",
            ));
        }
        for (i, feature) in self.features.iter().enumerate() {
            if self.features[..i].contains(feature) {
                return Err(Error::invalid_parameter(
                    "features",
                    format!("{:?}", self.features),
                    "must not repeat a feature",
                ));
            }
        }
        for (name, value) in [
            ("dropout", self.dropout),
            ("validation_fraction", self.validation_fraction),
        ] {
            if !(0.0..1.0).contains(&value) {
                return Err(Error::invalid_parameter(name, value, "must be in [0, 1)"));
            }
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(Error::invalid_parameter(
                "learning_rate",
                self.learning_rate,
                "must be finite and positive",
            ));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(Error::invalid_parameter(
                "weight_decay",
                self.weight_decay,
                "must be finite and non-negative",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_matches_the_documented_values() {
        let c = LstmConfig::default();
        c.validate().unwrap();
        assert_eq!((c.window, c.hidden_size, c.num_layers), (30, 64, 1));
        assert_eq!(c.input_size(), 5);
        assert_eq!((c.epochs, c.batch_size, c.patience), (50, 64, Some(5)));
    }

    #[test]
    fn each_bad_field_is_named() {
        let base = LstmConfig::default();
        let cases: Vec<(LstmConfig, &str)> = vec![
            (
                LstmConfig {
                    window: 0,
                    ..base.clone()
                },
                "window",
            ),
            (
                LstmConfig {
                    hidden_size: 0,
                    ..base.clone()
                },
                "hidden_size",
            ),
            (
                LstmConfig {
                    num_layers: 0,
                    ..base.clone()
                },
                "num_layers",
            ),
            (
                LstmConfig {
                    epochs: 0,
                    ..base.clone()
                },
                "epochs",
            ),
            (
                LstmConfig {
                    batch_size: 0,
                    ..base.clone()
                },
                "batch_size",
            ),
            (
                LstmConfig {
                    patience: Some(0),
                    ..base.clone()
                },
                "patience",
            ),
            (
                LstmConfig {
                    features: vec![],
                    ..base.clone()
                },
                "features",
            ),
            (
                LstmConfig {
                    features: vec![BarFeature::Range, BarFeature::Range],
                    ..base.clone()
                },
                "features",
            ),
            (
                LstmConfig {
                    dropout: -0.1,
                    ..base.clone()
                },
                "dropout",
            ),
            (
                LstmConfig {
                    validation_fraction: 1.0,
                    ..base.clone()
                },
                "validation_fraction",
            ),
            (
                LstmConfig {
                    learning_rate: f64::NAN,
                    ..base.clone()
                },
                "learning_rate",
            ),
            (
                LstmConfig {
                    weight_decay: -1.0,
                    ..base.clone()
                },
                "weight_decay",
            ),
        ];
        for (config, field) in cases {
            let err = config.validate().unwrap_err();
            assert!(
                matches!(err, Error::InvalidParameter { name, .. } if name == field),
                "{field}: {err}"
            );
        }
    }

    #[test]
    fn serde_round_trip_and_unknown_fields() {
        let c = LstmConfig {
            num_layers: 2,
            dropout: 0.25,
            features: vec![BarFeature::Gap],
            ..LstmConfig::default()
        };
        let json = serde_json::to_string(&c).unwrap();
        assert!(json.contains(r#""features":["gap"]"#), "{json}");
        assert_eq!(serde_json::from_str::<LstmConfig>(&json).unwrap(), c);
        assert!(serde_json::from_str::<LstmConfig>(r#"{"hiden_size": 3}"#).is_err());
    }
}
