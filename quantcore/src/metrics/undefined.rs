//! Why a metric has no value, and how such metrics travel in JSON.

use serde::{Deserialize, Serialize};

/// A metric: its value, or the reason it is undefined.
pub type Metric = Result<f64, Undefined>;

/// A parameter of a metric function, named in [`Undefined::InvalidParameter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Parameter {
    /// Periods per year, used to annualize; must be finite and positive.
    PeriodsPerYear,
    /// Risk-free rate per period; must be finite.
    RiskFreeRate,
    /// Target return per period (Sortino); must be finite.
    Target,
    /// Tail probability of VaR and CVaR; must lie strictly between 0 and 1.
    Cutoff,
}

impl std::fmt::Display for Parameter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Parameter::PeriodsPerYear => "periods_per_year",
            Parameter::RiskFreeRate => "risk_free_rate",
            Parameter::Target => "target",
            Parameter::Cutoff => "cutoff",
        })
    }
}

/// Why a metric has no value. Metrics never substitute a number (0, infinity) for an
/// undefined value; they return one of these instead.
///
/// In JSON a reason is an object tagged by `reason`, e.g.
/// `{"reason": "too_few_periods", "required": 2, "actual": 1}`.
///
/// ```
/// use quantcore::metrics::{sharpe_ratio, Undefined};
/// let flat = [0.01, 0.01, 0.01];
/// assert_eq!(sharpe_ratio(&flat, 0.0, 252.0), Err(Undefined::ZeroVariance));
/// assert_eq!(Undefined::ZeroVariance.to_string(), "returns have zero variance");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "reason", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Undefined {
    /// Not enough periods (returns) for the statistic.
    #[error("needs at least {required} periods, had {actual}")]
    TooFewPeriods { required: usize, actual: usize },
    /// The returns do not vary (standard deviation zero up to rounding), so a ratio
    /// over the standard deviation, skewness or kurtosis is undefined.
    #[error("returns have zero variance")]
    ZeroVariance,
    /// No return fell below the target, so the downside deviation is zero.
    #[error("no return is below the target, downside deviation is zero")]
    NoDownside,
    /// The equity never fell below a previous peak (Calmar divides by the drawdown).
    #[error("the equity never fell below a previous peak")]
    NoDrawdown,
    /// The 5th percentile return is zero (tail ratio divides by it).
    #[error("the 5th percentile return is zero")]
    ZeroLeftTail,
    /// The compounded equity reaches zero or below, so a growth rate is undefined.
    #[error("the compounded equity falls to zero or below")]
    EquityNotPositive,
    /// The value does not fit a 64-bit float (e.g. CAGR over a tiny fraction of a year).
    #[error("the value overflows a 64-bit float")]
    Overflow,
    /// No closed trades.
    #[error("no closed trades")]
    NoTrades,
    /// No trade with a positive PnL.
    #[error("no winning trades")]
    NoWinningTrades,
    /// No trade with a negative PnL, so the gross loss is zero.
    #[error("no losing trades, gross loss is zero")]
    NoLosingTrades,
    /// An input of a free function is NaN or infinite.
    #[error("input at index {index} is not finite, was {value}")]
    NonFiniteInput { index: usize, value: f64 },
    /// A parameter of a free function is out of range.
    #[error("parameter `{parameter}` is out of range, was {value}")]
    InvalidParameter { parameter: Parameter, value: f64 },
}

/// An [`Undefined`] in JSON: the tagged reason plus its message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct UndefinedJson {
    #[serde(flatten)]
    pub(crate) reason: Undefined,
    pub(crate) message: String,
}

impl From<Undefined> for UndefinedJson {
    fn from(reason: Undefined) -> Self {
        UndefinedJson {
            reason,
            message: reason.to_string(),
        }
    }
}

/// Defines a struct whose fields are plain values then [`Metric`]s, serialized through a
/// flat JSON mirror: each metric is a number or `null`, and the reasons of the nulls
/// are listed under `"undefined"` by field name, e.g.
/// `{"sharpe_ratio": null, ..., "undefined": {"sharpe_ratio": {"reason": "zero_variance", "message": "returns have zero variance"}}}`.
/// Deserializing checks that every `null` has its reason.
macro_rules! metric_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident via $json:ident = $json_name:literal {
            $( $(#[$plain_meta:meta])* pub $plain:ident : $plain_ty:ty, )*
            ;
            $( $(#[$metric_meta:meta])* pub $metric:ident : $metric_ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(into = $json_name, try_from = $json_name)]
        pub struct $name {
            $( $(#[$plain_meta])* pub $plain: $plain_ty, )*
            $( $(#[$metric_meta])* pub $metric: $metric_ty, )*
        }

        #[derive(serde::Serialize, serde::Deserialize)]
        struct $json {
            $( $plain: $plain_ty, )*
            $( $metric: Option<f64>, )*
            #[serde(default)]
            undefined: std::collections::BTreeMap<String, $crate::metrics::undefined::UndefinedJson>,
        }

        impl From<$name> for $json {
            fn from(value: $name) -> Self {
                let mut undefined = std::collections::BTreeMap::new();
                $(
                    let $metric = match value.$metric {
                        Ok(number) => Some(number),
                        Err(reason) => {
                            undefined.insert(stringify!($metric).to_string(), reason.into());
                            None
                        }
                    };
                )*
                $json { $( $plain: value.$plain, )* $( $metric, )* undefined }
            }
        }

        impl TryFrom<$json> for $name {
            type Error = String;
            fn try_from(json: $json) -> Result<Self, String> {
                let mut undefined = json.undefined;
                $(
                    let $metric = match json.$metric {
                        Some(number) => Ok(number),
                        None => Err(undefined
                            .remove(stringify!($metric))
                            .map(|entry| entry.reason)
                            .ok_or_else(|| {
                                format!("`{}` is null but has no reason in `undefined`", stringify!($metric))
                            })?),
                    };
                )*
                Ok($name { $( $plain: json.$plain, )* $( $metric, )* })
            }
        }
    };
}

pub(crate) use metric_struct;
