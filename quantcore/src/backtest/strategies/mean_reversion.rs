//! Z-score mean reversion: buy a stretch below the rolling mean, sell back near it.

use serde::{Deserialize, Serialize};

use crate::backtest::strategy::{Ahead, Context, Decision, FastForward, Strategy};
use crate::error::{Error, Result};
use crate::features::RollingZScore;

/// The checked parameters of a [`MeanReversionStrategy`].
///
/// ```
/// use quantcore::backtest::MeanReversionParams;
/// let params = MeanReversionParams::new(20, 2.0, 0.0);
/// params.validate()?;
/// assert!(MeanReversionParams::new(20, 1.0, 1.5).validate().is_err()); // exit_z >= entry_z
/// # Ok::<(), quantcore::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeanReversionParams {
    /// Bars of the rolling mean and standard deviation, `>= 2`.
    pub window: usize,
    /// Enter when the z-score is beyond `entry_z` standard deviations; finite, `> 0`.
    pub entry_z: f64,
    /// Exit once the z-score is back within `exit_z` of the mean; finite, `< entry_z`.
    pub exit_z: f64,
    /// Mirror the rule on the short side (default false).
    #[serde(default)]
    pub allow_short: bool,
}

impl MeanReversionParams {
    /// Long-only parameters.
    pub fn new(window: usize, entry_z: f64, exit_z: f64) -> Self {
        MeanReversionParams {
            window,
            entry_z,
            exit_z,
            allow_short: false,
        }
    }

    /// Checks every parameter.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the first bad one: `window < 2`, `entry_z`
    /// not finite and positive, `exit_z` not finite or not below `entry_z`.
    pub fn validate(&self) -> Result<()> {
        if self.window < 2 {
            return Err(Error::invalid_parameter(
                "window",
                self.window,
                "must be at least 2",
            ));
        }
        if !(self.entry_z.is_finite() && self.entry_z > 0.0) {
            return Err(Error::invalid_parameter(
                "entry_z",
                self.entry_z,
                "must be finite and positive",
            ));
        }
        if !(self.exit_z.is_finite() && self.exit_z < self.entry_z) {
            return Err(Error::invalid_parameter(
                "exit_z",
                self.exit_z,
                "must be finite and below `entry_z`",
            ));
        }
        Ok(())
    }

    /// The strategy.
    ///
    /// # Errors
    /// As [`validate`](Self::validate).
    pub fn build(self) -> Result<MeanReversionStrategy> {
        self.validate()?;
        Ok(MeanReversionStrategy {
            params: self,
            zscore: RollingZScore::new(self.window)?,
        })
    }
}

/// Rolling z-score mean reversion on the close.
///
/// `z = (close - mean) / std` over the last `window` closes (sample std, the
/// streaming [`RollingZScore`] of [`features`](crate::features)). Then:
///
/// | position | rule |
/// |---|---|
/// | flat | `z < -entry_z`: [`enter_long`](Decision::enter_long); with `allow_short`, `z > entry_z`: [`enter_short`](Decision::enter_short) |
/// | long | `z >= -exit_z` (back near the mean): [`close`](Decision::close) |
/// | short | `z <= exit_z`: close |
///
/// While the window warms up, and when it is constant (z undefined), it holds.
/// One symbol per instance; see [`PerSymbol`](crate::backtest::PerSymbol).
///
/// ```
/// use quantcore::backtest::MeanReversionStrategy;
/// let strategy = MeanReversionStrategy::new(20, 2.0, 0.0)?;
/// assert_eq!(strategy.params().window, 20);
/// # Ok::<(), quantcore::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct MeanReversionStrategy {
    params: MeanReversionParams,
    zscore: RollingZScore,
}

impl MeanReversionStrategy {
    /// A long-only strategy.
    ///
    /// # Errors
    /// As [`MeanReversionParams::validate`].
    pub fn new(window: usize, entry_z: f64, exit_z: f64) -> Result<Self> {
        MeanReversionParams::new(window, entry_z, exit_z).build()
    }

    /// Also trades the mirror rule on the short side.
    pub fn with_short(mut self, allow_short: bool) -> Self {
        self.params.allow_short = allow_short;
        self
    }

    /// The parameters.
    pub fn params(&self) -> &MeanReversionParams {
        &self.params
    }
}

impl MeanReversionStrategy {
    /// The decision for a bar closing at `close` with `held` units: the one rule of
    /// both [`on_bar`](Strategy::on_bar) and [`fast_forward`](Strategy::fast_forward).
    #[inline(always)]
    fn decide(&mut self, close: f64, held: f64) -> Decision {
        let Some(z) = self.zscore.update(close) else {
            return Decision::hold();
        };
        let MeanReversionParams {
            entry_z,
            exit_z,
            allow_short,
            ..
        } = self.params;
        if held > 0.0 {
            if z >= -exit_z {
                return Decision::close();
            }
        } else if held < 0.0 {
            if z <= exit_z {
                return Decision::close();
            }
        } else if z < -entry_z {
            return Decision::enter_long();
        } else if allow_short && z > entry_z {
            return Decision::enter_short();
        }
        Decision::hold()
    }
}

impl Strategy for MeanReversionStrategy {
    #[inline]
    fn on_bar(&mut self, ctx: &Context<'_>) -> Decision {
        self.decide(ctx.close(), ctx.position().quantity)
    }

    /// The z-score and the position decide, never the marks: runs the shared rule over
    /// the bars ahead with the current position.
    #[inline]
    fn fast_forward(&mut self, ctx: &Context<'_>, ahead: Ahead<'_>) -> FastForward {
        let held = ctx.position().quantity;
        ahead.until_decision(|history| self.decide(history.current_close(), held))
    }

    fn start(&mut self, symbols: usize) -> Result<()> {
        super::one_symbol(symbols)?;
        self.zscore.reset();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backtest::strategy::History;
    use crate::data::BarSeries;
    use crate::execution::Fill;
    use crate::order::{Instrument, Side};
    use crate::portfolio::Portfolio;

    fn run(strategy: &mut MeanReversionStrategy, close: &[f64], held: &[f64]) -> Vec<Decision> {
        let n = close.len();
        let s = BarSeries::new(
            (0..n as i64).collect(),
            close.to_vec(),
            close.to_vec(),
            close.to_vec(),
            close.to_vec(),
            vec![0.0; n],
        )
        .unwrap();
        strategy.start(1).unwrap();
        (0..n)
            .map(|i| {
                let mut p = Portfolio::new(1e9).unwrap().with_short_selling(true);
                let x = p.register(Instrument::new("X")).unwrap();
                if held[i] != 0.0 {
                    p.apply_fill(&Fill {
                        order_id: 1,
                        symbol: x,
                        side: if held[i] > 0.0 { Side::Buy } else { Side::Sell },
                        quantity: held[i].abs(),
                        price: 1.0,
                        commission: 0.0,
                        timestamp: 0,
                    })
                    .unwrap();
                }
                strategy.on_bar(&Context::new(History::new(&s, i), &p, x))
            })
            .collect()
    }

    #[test]
    fn rules_by_hand() {
        // window 3, entry 1.0, exit 0.0.
        // bar 2: [10, 10, 7]: mean 9, std sqrt((1+1+4)/2) = sqrt(3) = 1.732,
        //        z = (7 - 9) / 1.732 = -1.155 < -1 -> enter long.
        // bar 3: [10, 7, 8]: mean 8.333, std sqrt((2.778+1.778+0.111)/2) = 1.528,
        //        z = (8 - 8.333) / 1.528 = -0.218 < 0: still long -> hold.
        // bar 4: [7, 8, 10]: mean 8.333, z = (10 - 8.333) / 1.528 = 1.091 >= 0 -> close.
        let close = [10.0, 10.0, 7.0, 8.0, 10.0];
        let held = [0.0, 0.0, 0.0, 4.0, 4.0];
        let got = run(
            &mut MeanReversionStrategy::new(3, 1.0, 0.0).unwrap(),
            &close,
            &held,
        );
        assert_eq!(
            got,
            vec![
                Decision::hold(),
                Decision::hold(),
                Decision::enter_long(),
                Decision::hold(),
                Decision::close()
            ]
        );
        // Flat at bar 4 with shorts: z = 1.091 > 1 -> enter short; a short at
        // bar 3 (z = -0.218 <= 0) is closed.
        let held = [0.0, 0.0, 0.0, -4.0, 0.0];
        let got = run(
            &mut MeanReversionStrategy::new(3, 1.0, 0.0)
                .unwrap()
                .with_short(true),
            &close,
            &held,
        );
        assert_eq!(got[3], Decision::close());
        assert_eq!(got[4], Decision::enter_short());
    }

    #[test]
    fn constant_window_holds() {
        let close = [5.0, 5.0, 5.0, 5.0];
        let got = run(
            &mut MeanReversionStrategy::new(2, 1.0, 0.0).unwrap(),
            &close,
            &[3.0; 4],
        );
        assert!(got.iter().all(Decision::is_hold));
    }

    #[test]
    fn parameters_are_checked() {
        let name = |p: MeanReversionParams| match p.validate() {
            Err(Error::InvalidParameter { name, .. }) => name,
            other => panic!("{other:?}"),
        };
        assert_eq!(name(MeanReversionParams::new(1, 2.0, 0.0)), "window");
        assert_eq!(name(MeanReversionParams::new(5, 0.0, -1.0)), "entry_z");
        assert_eq!(name(MeanReversionParams::new(5, f64::NAN, 0.0)), "entry_z");
        assert_eq!(name(MeanReversionParams::new(5, 2.0, 2.0)), "exit_z");
        assert_eq!(
            name(MeanReversionParams::new(5, 2.0, f64::INFINITY)),
            "exit_z"
        );
        MeanReversionParams::new(5, 2.0, -0.5).validate().unwrap();
    }
}
