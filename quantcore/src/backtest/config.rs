//! The backtester's configuration: capital, costs, fill timing, sizing, risk limits
//! and the metrics' annualization.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::execution::ExecutionModel;
use crate::metrics::MetricsConfig;
use crate::order::Sizing;
use crate::risk::RiskLimits;

/// When a market order decided on a bar fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FillTiming {
    /// At the close of the bar the strategy decided on (the strategy saw that close:
    /// optimistic, as vectorbt's default).
    ThisClose,
    /// At the open of the symbol's next bar (backtesting.py's default, and the one
    /// that cannot trade on a price the strategy has not seen). A decision on a
    /// symbol's last bar is never filled.
    #[default]
    NextOpen,
}

/// Everything a backtest run is parameterized by.
///
/// Defaults (spelled out in [`Default`]): 10,000 of initial capital, no commission
/// and no slippage, [`FillTiming::NextOpen`], [`Sizing::FractionOfEquity`]`(1.0)`
/// (all in), [`RiskLimits::default`] (long only, positions up to 100 % of equity),
/// whole units only, and [`MetricsConfig::default`] (252 periods per year: daily
/// bars; set it for other bar sizes, it is never guessed from the timestamps).
///
/// Unknown fields are refused when deserializing, so a typo does not silently fall
/// back to a default:
///
/// ```
/// use quantcore::backtest::{BacktestConfig, FillTiming};
/// let config: BacktestConfig = serde_json::from_str(
///     r#"{"initial_capital": 50000, "fill_timing": "this_close",
///         "execution": {"commission": {"rate": 0.001}, "slippage_bps": 5},
///         "metrics": {"periods_per_year": 252}}"#,
/// )?;
/// assert_eq!(config.fill_timing, FillTiming::ThisClose);
/// assert_eq!(config.execution.slippage_bps, 5.0);
/// config.validate()?;
/// assert!(serde_json::from_str::<BacktestConfig>(r#"{"initial_captal": 1}"#).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BacktestConfig {
    /// Starting cash in account currency, finite and `> 0`.
    pub initial_capital: f64,
    /// Commission (rate of notional plus fixed fee per fill) and slippage (bps).
    pub execution: ExecutionModel,
    /// When market orders fill.
    pub fill_timing: FillTiming,
    /// The quantity of orders whose decision gives none.
    pub sizing: Sizing,
    /// Pre-trade limits; `allow_short` also lets the portfolio hold shorts.
    pub risk_limits: RiskLimits,
    /// Whether quantities may be fractional (crypto, fractional shares); otherwise
    /// sizing rounds down to whole units and a fractional order is invalid.
    pub fractional: bool,
    /// Annualization and rates of the metrics.
    pub metrics: MetricsConfig,
}

impl Default for BacktestConfig {
    fn default() -> Self {
        BacktestConfig {
            initial_capital: 10_000.0,
            execution: ExecutionModel::default(),
            fill_timing: FillTiming::NextOpen,
            sizing: Sizing::FractionOfEquity(1.0),
            risk_limits: RiskLimits::default(),
            fractional: false,
            metrics: MetricsConfig::default(),
        }
    }
}

impl BacktestConfig {
    /// Checks every field, the nested models' included.
    ///
    /// ```
    /// use quantcore::backtest::BacktestConfig;
    /// use quantcore::order::Sizing;
    /// use quantcore::Error;
    /// let mut config = BacktestConfig { initial_capital: -1.0, sizing: Sizing::FractionOfEquity(2.0), ..Default::default() };
    /// config.execution.slippage_bps = f64::NAN;
    /// let Err(Error::InvalidConfig { problems, .. }) = config.validate() else { panic!() };
    /// let names: Vec<String> = problems.iter().map(|p| match p {
    ///     Error::InvalidParameter { name, .. } => name.to_string(),
    ///     other => other.to_string(),
    /// }).collect();
    /// assert_eq!(names, ["initial_capital", "slippage_bps", "fraction_of_equity"]);
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] (config `"backtest config"`) whose problems are an
    /// [`Error::InvalidParameter`] for each bad field, in field order: the initial
    /// capital, the execution model's, the sizing's, the risk limits' and the metrics'.
    pub fn validate(&self) -> Result<()> {
        let mut problems = Vec::new();
        if !(self.initial_capital.is_finite() && self.initial_capital > 0.0) {
            problems.push(Error::invalid_parameter(
                "initial_capital",
                self.initial_capital,
                "must be finite and positive",
            ));
        }
        let mut add = |result: Result<()>| match result {
            Ok(()) => {}
            Err(Error::InvalidConfig {
                problems: nested, ..
            }) => problems.extend(nested),
            Err(other) => problems.push(other),
        };
        add(self.execution.validate());
        add(self.sizing.validate());
        add(self.risk_limits.validate());
        add(self.metrics.validate());
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidConfig {
                config: "backtest config",
                problems,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execution::CommissionModel;

    #[test]
    fn defaults_are_valid_and_as_documented() {
        let config = BacktestConfig::default();
        config.validate().unwrap();
        assert_eq!(config.initial_capital, 10_000.0);
        assert_eq!(config.fill_timing, FillTiming::NextOpen);
        assert_eq!(config.sizing, Sizing::FractionOfEquity(1.0));
        assert_eq!(config.metrics.periods_per_year, 252.0);
        assert!(!config.fractional);
        // An empty object is the default.
        let parsed: BacktestConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(parsed, config);
    }

    #[test]
    fn validate_lists_every_bad_field() {
        let config = BacktestConfig {
            initial_capital: 0.0,
            execution: ExecutionModel {
                commission: CommissionModel {
                    rate: -0.01,
                    fixed_fee: 0.0,
                },
                slippage_bps: 1e6,
            },
            sizing: Sizing::FixedQuantity(f64::NAN),
            risk_limits: RiskLimits {
                max_open_positions: Some(0),
                ..RiskLimits::default()
            },
            metrics: MetricsConfig {
                periods_per_year: 0.0,
                ..MetricsConfig::default()
            },
            fill_timing: FillTiming::ThisClose,
            fractional: true,
        };
        let err = config.validate().unwrap_err();
        let Error::InvalidConfig { config, problems } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(*config, "backtest config");
        let names: Vec<&str> = problems
            .iter()
            .map(|p| match p {
                Error::InvalidParameter { name, .. } => *name,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            names,
            [
                "initial_capital",
                "rate",
                "slippage_bps",
                "fixed_quantity",
                "max_open_positions",
                "periods_per_year"
            ]
        );
        assert!(
            err.to_string()
                .starts_with("invalid backtest config: parameter `initial_capital` must be finite and positive, was 0; "),
            "{err}"
        );
    }

    #[test]
    fn serde_round_trip_and_timing_names() {
        let config = BacktestConfig {
            fill_timing: FillTiming::ThisClose,
            sizing: Sizing::FixedQuantity(3.0),
            ..BacktestConfig::default()
        };
        let json = serde_json::to_string(&config).unwrap();
        assert!(json.contains(r#""fill_timing":"this_close""#), "{json}");
        let back: BacktestConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, config);
        let next: FillTiming = serde_json::from_str(r#""next_open""#).unwrap();
        assert_eq!(next, FillTiming::NextOpen);
    }
}
