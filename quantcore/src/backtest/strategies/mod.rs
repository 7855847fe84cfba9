//! The built-in strategies and a serializable way to name one.
//!
//! | strategy | parameters | rule |
//! |---|---|---|
//! | [`MomentumStrategy`] | `fast`, `slow` (bars), `allow_short` | long while SMA(fast) > SMA(slow), else flat (or short) |
//! | [`MeanReversionStrategy`] | `window`, `entry_z`, `exit_z`, `allow_short` | buy when the z-score < -entry_z, sell back when it is >= -exit_z |
//! | `MlStrategy` (feature `lstm`) | `MlParams`: LSTM and signal configs, `train_window`, `retrain_every`, `min_history` | walk-forward LSTM: refit every `retrain_every` bars on past bars only, trade the `SignalGenerator`'s signal |
//!
//! [`StrategySpec`] names one of them with its parameters in JSON (what the CLI
//! example, the service's `POST /backtest` and the bindings parse), and
//! [`BuiltinStrategy`] runs whichever it names without boxing.

mod mean_reversion;
#[cfg(feature = "lstm")]
mod ml;
mod momentum;

pub use mean_reversion::{MeanReversionParams, MeanReversionStrategy};
#[cfg(feature = "lstm")]
pub use ml::{MlParams, MlStrategy};
pub use momentum::{MomentumParams, MomentumStrategy};

use serde::{Deserialize, Serialize};

use super::strategy::{Ahead, Context, Decision, FastForward, Strategy};
use crate::error::{Error, Result};

/// The built-ins follow one symbol: their indicators would mix several.
fn one_symbol(symbols: usize) -> Result<()> {
    if symbols == 1 {
        Ok(())
    } else {
        Err(Error::invalid_parameter(
            "symbols",
            symbols,
            "must be 1 for a built-in strategy; give each symbol its own with `PerSymbol`",
        ))
    }
}

/// A built-in strategy and its parameters, as JSON names it.
///
/// ```
/// use quantcore::backtest::{StrategySpec, MomentumParams};
/// let spec: StrategySpec = serde_json::from_str(r#"{"strategy": "momentum", "fast": 10, "slow": 50}"#)?;
/// assert_eq!(spec, StrategySpec::Momentum(MomentumParams::new(10, 50)));
/// let strategy = spec.build()?;
/// let bad: StrategySpec = serde_json::from_str(r#"{"strategy": "mean_reversion", "window": 1, "entry_z": 2, "exit_z": 0}"#)?;
/// assert!(bad.build().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "strategy", rename_all = "snake_case")]
pub enum StrategySpec {
    Momentum(MomentumParams),
    MeanReversion(MeanReversionParams),
}

impl StrategySpec {
    /// The strategy with checked parameters.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] from the parameters' `validate`.
    pub fn build(&self) -> Result<BuiltinStrategy> {
        Ok(match *self {
            StrategySpec::Momentum(params) => BuiltinStrategy::Momentum(params.build()?),
            StrategySpec::MeanReversion(params) => BuiltinStrategy::MeanReversion(params.build()?),
        })
    }
}

/// One of the built-in strategies, dispatched by `match` (no boxing).
#[derive(Debug, Clone)]
pub enum BuiltinStrategy {
    Momentum(MomentumStrategy),
    MeanReversion(MeanReversionStrategy),
}

impl Strategy for BuiltinStrategy {
    #[inline]
    fn on_bar(&mut self, ctx: &Context<'_>) -> Decision {
        match self {
            BuiltinStrategy::Momentum(s) => s.on_bar(ctx),
            BuiltinStrategy::MeanReversion(s) => s.on_bar(ctx),
        }
    }

    fn start(&mut self, symbols: usize) -> Result<()> {
        match self {
            BuiltinStrategy::Momentum(s) => s.start(symbols),
            BuiltinStrategy::MeanReversion(s) => s.start(symbols),
        }
    }

    #[inline]
    fn fast_forward(&mut self, ctx: &Context<'_>, ahead: Ahead<'_>) -> FastForward {
        match self {
            BuiltinStrategy::Momentum(s) => s.fast_forward(ctx, ahead),
            BuiltinStrategy::MeanReversion(s) => s.fast_forward(ctx, ahead),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_json_shapes_and_unknown_fields() {
        let spec: StrategySpec = serde_json::from_str(
            r#"{"strategy": "mean_reversion", "window": 20, "entry_z": 2.0, "exit_z": 0.5, "allow_short": true}"#,
        )
        .unwrap();
        let StrategySpec::MeanReversion(p) = spec else {
            panic!("{spec:?}");
        };
        assert_eq!(
            (p.window, p.entry_z, p.exit_z, p.allow_short),
            (20, 2.0, 0.5, true)
        );
        assert!(
            serde_json::from_str::<StrategySpec>(
                r#"{"strategy": "momentum", "fast": 1, "slow": 2, "sloow": 3}"#
            )
            .is_err()
        );
        assert!(serde_json::from_str::<StrategySpec>(r#"{"strategy": "magic"}"#).is_err());
        let json =
            serde_json::to_string(&StrategySpec::Momentum(MomentumParams::new(3, 7))).unwrap();
        assert_eq!(
            json,
            r#"{"strategy":"momentum","fast":3,"slow":7,"allow_short":false}"#
        );
        assert!(matches!(
            StrategySpec::Momentum(MomentumParams::new(7, 3)).build(),
            Err(Error::InvalidParameter { name: "slow", .. })
        ));
    }
}
