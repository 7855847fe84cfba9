//! Moving-average crossover: long while the fast SMA is above the slow one.

use serde::{Deserialize, Serialize};

use crate::backtest::strategy::{Ahead, Context, Decision, FastForward, Strategy};
use crate::error::{Error, Result};
use crate::features::window_sum;

/// The checked parameters of a [`MomentumStrategy`].
///
/// ```
/// use quantcore::backtest::MomentumParams;
/// let params: MomentumParams = serde_json::from_str(r#"{"fast": 10, "slow": 50}"#)?;
/// assert!(!params.allow_short);
/// let strategy = params.build()?;
/// assert_eq!((strategy.params().fast, strategy.params().slow), (10, 50));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MomentumParams {
    /// Bars of the fast simple moving average, `>= 1`.
    pub fast: usize,
    /// Bars of the slow simple moving average, `> fast`.
    pub slow: usize,
    /// Go short while the fast average is below the slow one (default false: flat).
    #[serde(default)]
    pub allow_short: bool,
}

impl MomentumParams {
    /// Long-only parameters.
    pub fn new(fast: usize, slow: usize) -> Self {
        MomentumParams {
            fast,
            slow,
            allow_short: false,
        }
    }

    /// Checks the periods.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for `fast == 0` (name `fast`) or `slow <= fast`
    /// (name `slow`).
    pub fn validate(&self) -> Result<()> {
        if self.fast == 0 {
            return Err(Error::invalid_parameter(
                "fast",
                self.fast,
                "must be at least 1",
            ));
        }
        if self.slow <= self.fast {
            return Err(Error::invalid_parameter(
                "slow",
                self.slow,
                "must be greater than `fast`",
            ));
        }
        Ok(())
    }

    /// The strategy.
    ///
    /// # Errors
    /// As [`validate`](Self::validate).
    pub fn build(self) -> Result<MomentumStrategy> {
        self.validate()?;
        Ok(MomentumStrategy {
            params: self,
            fast: WindowSma::new(self.fast),
            slow: WindowSma::new(self.slow),
        })
    }
}

/// Fast/slow simple-moving-average crossover on the close.
///
/// Once both averages are warmed up (from the `slow`-th bar on), the wanted
/// position is long while `fast > slow`; while `fast < slow` it is short when
/// `allow_short`, else flat; at `fast == slow` it is flat. The strategy enters with
/// [`Decision::enter_long`] / [`Decision::enter_short`] (sized by the configuration,
/// closing an opposite position in the same order) and exits with
/// [`Decision::close`]; when the position already matches it holds.
///
/// The averages are those of the streaming [`Sma`](crate::features::Sma) of [`features`](crate::features),
/// bit for bit (a running sum, re-added from the window once every `period` bars),
/// but the window is read from the history instead of copied into a ring: O(1) per
/// bar, no allocation. The strategy expects the bars of its series in order, as the
/// backtester feeds them; fed anything else, it re-adds its window from the history. The strategy follows one symbol; wrap
/// one per symbol in [`PerSymbol`](crate::backtest::PerSymbol) for several.
///
/// ```
/// use quantcore::backtest::{Backtester, BacktestConfig, MomentumStrategy};
/// use quantcore::BarSeries;
/// let close: Vec<f64> = (0..40).map(|i| 100.0 + (i as f64 / 4.0).sin() * 10.0).collect();
/// let series = BarSeries::new((0..40).collect(), close.clone(), close.clone(), close.clone(), close, vec![0.0; 40])?;
/// let result = Backtester::new(BacktestConfig::default())?.run(&series, &mut MomentumStrategy::new(2, 5)?)?;
/// assert!(!result.fills.is_empty());
/// assert!(MomentumStrategy::new(5, 5).is_err()); // slow must exceed fast
/// # Ok::<(), quantcore::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct MomentumStrategy {
    params: MomentumParams,
    fast: WindowSma,
    slow: WindowSma,
}

/// [`Sma`](crate::features::Sma)'s arithmetic over the closes of a history: the running sum gains the new
/// close and loses the one `period` bars back, and is re-added from the window right
/// after the `period`-th close and every `period` closes after it, exactly when
/// [`Sma`](crate::features::Sma) re-adds its ring, so the values are the same bit for bit.
#[derive(Debug, Clone, Copy)]
struct WindowSma {
    period: usize,
    inverse_period: f64,
    sum: f64,
    /// Closes seen: the history's length after the last update.
    seen: usize,
    /// Updates after warm-up left until the sum is re-added from the window.
    until_resum: usize,
}

impl WindowSma {
    fn new(period: usize) -> Self {
        WindowSma {
            period,
            inverse_period: 1.0 / period as f64,
            sum: 0.0,
            seen: 0,
            // The first re-add comes with the `period`-th close.
            until_resum: 1,
        }
    }

    fn reset(&mut self) {
        *self = WindowSma::new(self.period);
    }

    /// Takes the last close of `closes` (the history up to the current bar); the
    /// average once `period` closes were seen.
    #[inline(always)]
    fn update(&mut self, closes: &[f64]) -> Option<f64> {
        let n = closes.len();
        if n != self.seen + 1 {
            *self = Self::resynced(self.period, closes);
            return (n >= self.period).then_some(self.sum * self.inverse_period);
        }
        self.seen = n;
        let x = closes[n - 1];
        if n <= self.period {
            self.sum += x;
            if n < self.period {
                return None;
            }
        } else {
            self.sum += x - closes[n - 1 - self.period];
        }
        self.until_resum -= 1;
        if self.until_resum == 0 {
            self.sum = window_sum(&closes[n - self.period..]);
            self.until_resum = self.period;
        }
        Some(self.sum * self.inverse_period)
    }

    /// The state after a history that is not the next bar of the last: restarts from
    /// its window. By value, not through `&mut self`: the state does not escape into a
    /// call, so that the hot path can keep it in registers.
    #[cold]
    #[inline(never)]
    fn resynced(period: usize, closes: &[f64]) -> Self {
        let n = closes.len();
        WindowSma {
            seen: n,
            until_resum: period,
            sum: window_sum(&closes[n.saturating_sub(period)..]),
            ..WindowSma::new(period)
        }
    }
}

impl MomentumStrategy {
    /// A long-only crossover of a `fast`- and a `slow`-bar average.
    ///
    /// # Errors
    /// As [`MomentumParams::validate`].
    pub fn new(fast: usize, slow: usize) -> Result<Self> {
        MomentumParams::new(fast, slow).build()
    }

    /// Also goes short while the fast average is below the slow one (the risk limits
    /// must allow shorts, or those orders are rejected).
    pub fn with_short(mut self, allow_short: bool) -> Self {
        self.params.allow_short = allow_short;
        self
    }

    /// The parameters.
    pub fn params(&self) -> &MomentumParams {
        &self.params
    }
}

impl MomentumStrategy {
    /// The decision for the last bar of `closes` with `held` units: the one rule of
    /// both [`on_bar`](Strategy::on_bar) and [`fast_forward`](Strategy::fast_forward).
    #[inline(always)]
    fn decide(&mut self, closes: &[f64], held: f64) -> Decision {
        let fast = self.fast.update(closes);
        let slow = self.slow.update(closes);
        let (Some(fast), Some(slow)) = (fast, slow) else {
            return Decision::hold();
        };
        if fast > slow {
            if held > 0.0 {
                Decision::hold()
            } else {
                Decision::enter_long()
            }
        } else if fast < slow && self.params.allow_short {
            if held < 0.0 {
                Decision::hold()
            } else {
                Decision::enter_short()
            }
        } else if held != 0.0 {
            Decision::close()
        } else {
            Decision::hold()
        }
    }
}

impl Strategy for MomentumStrategy {
    #[inline]
    fn on_bar(&mut self, ctx: &Context<'_>) -> Decision {
        self.decide(ctx.history().close(), ctx.position().quantity)
    }

    /// The averages and the position decide, never the marks: runs the shared rule
    /// over the bars ahead with the current position.
    #[inline(never)]
    fn fast_forward(&mut self, ctx: &Context<'_>, ahead: Ahead<'_>) -> FastForward {
        let held = ctx.position().quantity;
        // The scan runs on a local copy, written back once, in a function of its own:
        // the running sums then stay in registers instead of a store and reload per bar
        // on their dependency chain.
        let mut scan = self.clone();
        let answer = ahead.until_decision(|history| scan.decide(history.close(), held));
        *self = scan;
        answer
    }

    fn start(&mut self, symbols: usize) -> Result<()> {
        super::one_symbol(symbols)?;
        self.fast.reset();
        self.slow.reset();
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

    fn series(close: &[f64]) -> BarSeries {
        let n = close.len();
        BarSeries::new(
            (0..n as i64).collect(),
            close.to_vec(),
            close.to_vec(),
            close.to_vec(),
            close.to_vec(),
            vec![0.0; n],
        )
        .unwrap()
    }

    /// Decisions over `close` with the position given per bar by `held`.
    fn decisions(strategy: &mut MomentumStrategy, close: &[f64], held: &[f64]) -> Vec<Decision> {
        let s = series(close);
        strategy.start(1).unwrap();
        (0..close.len())
            .map(|i| {
                let mut p = Portfolio::new(1e9).unwrap().with_short_selling(true);
                let x = p.register(Instrument::new("X")).unwrap();
                if held[i] != 0.0 {
                    let side = if held[i] > 0.0 { Side::Buy } else { Side::Sell };
                    p.apply_fill(&Fill {
                        order_id: 1,
                        symbol: x,
                        side,
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
    fn crossover_decisions_by_hand() {
        // fast = SMA(2), slow = SMA(3):
        // bar 2: fast (2+3)/2 = 2.5, slow (1+2+3)/3 = 2    -> fast > slow, flat: enter long
        // bar 3: fast (3+3)/2 = 3,   slow (2+3+3)/3 = 2.67 -> long already: hold
        // bar 4: fast (3+1)/2 = 2,   slow (3+3+1)/3 = 2.33 -> fast < slow, long: close
        // bar 5: fast (1+1)/2 = 1,   slow (3+1+1)/3 = 1.67 -> flat: hold
        let close = [1.0, 2.0, 3.0, 3.0, 1.0, 1.0];
        let held = [0.0, 0.0, 0.0, 5.0, 5.0, 0.0];
        let mut m = MomentumStrategy::new(2, 3).unwrap();
        let got = decisions(&mut m, &close, &held);
        assert_eq!(
            got,
            vec![
                Decision::hold(),
                Decision::hold(),
                Decision::enter_long(),
                Decision::hold(),
                Decision::close(),
                Decision::hold()
            ]
        );
        // With shorts: bar 4 enters short instead of closing; bar 5 holds the short.
        let held = [0.0, 0.0, 0.0, 5.0, 5.0, -5.0];
        let mut m = MomentumStrategy::new(2, 3).unwrap().with_short(true);
        let got = decisions(&mut m, &close, &held);
        assert_eq!(got[4], Decision::enter_short());
        assert_eq!(got[5], Decision::hold());
    }

    #[test]
    fn equal_averages_mean_flat() {
        // A constant price: fast == slow from bar 2 on; a long is closed.
        let close = [5.0; 4];
        let held = [0.0, 0.0, 3.0, 0.0];
        let got = decisions(&mut MomentumStrategy::new(1, 3).unwrap(), &close, &held);
        assert_eq!(got[2], Decision::close());
        assert_eq!(got[3], Decision::hold());
    }

    #[test]
    fn parameters_are_checked() {
        assert!(matches!(
            MomentumStrategy::new(0, 3),
            Err(Error::InvalidParameter { name: "fast", .. })
        ));
        assert!(matches!(
            MomentumStrategy::new(4, 4),
            Err(Error::InvalidParameter { name: "slow", .. })
        ));
        assert!(serde_json::from_str::<MomentumParams>(r#"{"fast":1,"slow":2,"fats":3}"#).is_err());
        let mut m = MomentumStrategy::new(1, 2).unwrap();
        assert!(matches!(
            m.start(2),
            Err(Error::InvalidParameter {
                name: "symbols",
                ..
            })
        ));
    }

    #[test]
    fn window_averages_equal_the_streaming_sma_bit_for_bit() {
        use crate::features::Sma;
        use rand::{Rng, SeedableRng, rngs::StdRng};
        let mut rng = StdRng::seed_from_u64(3);
        let closes: Vec<f64> = (0..2_000).map(|_| rng.gen_range(1.0..1_000.0)).collect();
        for period in [1, 2, 3, 7, 50] {
            let (mut sma, mut window) = (Sma::new(period).unwrap(), WindowSma::new(period));
            for n in 1..=closes.len() {
                let expected = sma.update(closes[n - 1]);
                assert_eq!(
                    window.update(&closes[..n]),
                    expected,
                    "period {period}, bar {n}"
                );
            }
        }
        // Fed a history that skips bars, it re-adds the window.
        let mut window = WindowSma::new(3);
        assert_eq!(window.update(&closes[..1]), None);
        let skipped = window.update(&closes[..10]).unwrap();
        let mean = closes[7..10].iter().sum::<f64>() / 3.0;
        assert!((skipped - mean).abs() < 1e-9 * mean);
        assert_eq!(window.update(&closes[..2]), None); // back to a short history
    }

    #[test]
    fn start_resets_the_averages() {
        let close = [1.0, 2.0, 3.0];
        let held = [0.0; 3];
        let mut m = MomentumStrategy::new(1, 2).unwrap();
        let first = decisions(&mut m, &close, &held);
        let second = decisions(&mut m, &close, &held);
        assert_eq!(first, second);
        assert_eq!(first[0], Decision::hold()); // warm-up again after start
    }
}
