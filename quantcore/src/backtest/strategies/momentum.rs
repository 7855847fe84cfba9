//! Moving-average crossover: long while the fast SMA is above the slow one.

use serde::{Deserialize, Serialize};

use crate::backtest::strategy::{
    Ahead, Context, Decision, FastForward, History, PREFETCH_BARS, Strategy, prefetch_open,
};
use crate::error::{Error, Result};
use crate::features::{resum_every, window_sum};

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
/// bit for bit (a running sum, re-added from the window every few hundred bars),
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
/// after the `period`-th close and every [`resum_every`]`(period)` closes after it,
/// exactly when [`Sma`](crate::features::Sma) re-adds its ring, so the values are the
/// same bit for bit (the closes of a series are finite, so `Sma`'s extra re-adds of a
/// non-finite sum do not come up).
#[derive(Debug, Clone, Copy)]
struct WindowSma {
    period: usize,
    inverse_period: f64,
    sum: f64,
    /// Closes seen: the history's length after the last update.
    seen: usize,
    /// Updates after warm-up left until the sum is re-added from the window.
    until_resum: usize,
    /// [`resum_every`]`(period)`.
    resum_every: usize,
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
            resum_every: resum_every(period),
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
            self.until_resum = self.resum_every;
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
            until_resum: resum_every(period),
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
        rule(fast, slow, held, self.params.allow_short)
    }
}

impl MomentumStrategy {
    /// [`fast_forward`](Strategy::fast_forward)'s scan: the bars ahead through the
    /// per-bar [`decide`](Self::decide) until both averages are warmed up and in step
    /// with the history, then through [`steady`](Self::steady), specialized for the
    /// comparisons that stop the scan with `held` units.
    #[inline(always)]
    fn scan(&mut self, mut ahead: Ahead<'_>, held: f64) -> FastForward {
        let first = loop {
            let Some(history) = ahead.next() else {
                return FastForward::HoldsToEnd;
            };
            let closes = history.close();
            if self.is_steady(closes.len()) {
                break history;
            }
            let decision = self.decide(closes, held);
            if !decision.is_hold() {
                return FastForward::DecidesAt {
                    index: history.index(),
                    decision,
                };
            }
        };
        // Which comparisons of the averages make the rule act, from the rule itself.
        let allow_short = self.params.allow_short;
        let stops = |fast: f64, slow: f64| !rule(fast, slow, held, allow_short).is_hold();
        match (stops(1.0, 0.0), stops(0.0, 1.0), stops(0.0, 0.0)) {
            (false, false, false) => self.steady::<false, false, false>(first, held),
            (false, false, true) => self.steady::<false, false, true>(first, held),
            (false, true, false) => self.steady::<false, true, false>(first, held),
            (false, true, true) => self.steady::<false, true, true>(first, held),
            (true, false, false) => self.steady::<true, false, false>(first, held),
            (true, false, true) => self.steady::<true, false, true>(first, held),
            (true, true, false) => self.steady::<true, true, false>(first, held),
            (true, true, true) => self.steady::<true, true, true>(first, held),
        }
    }

    /// True when the next update, with a history of `n` closes, is the next bar of
    /// both averages and both are past their warm-up: the case [`steady`](Self::steady)
    /// handles.
    #[inline(always)]
    fn is_steady(&self, n: usize) -> bool {
        n == self.fast.seen + 1 && n == self.slow.seen + 1 && n > self.slow.period
    }

    /// [`WindowSma::update`] of both averages and the rule, on bars where
    /// [`is_steady`](Self::is_steady) holds (it then holds on every later bar): the
    /// running sums and countdowns in locals, and the rule reduced to the comparisons
    /// that stop the scan (`ABOVE` for `fast > slow`, `BELOW` for `fast < slow`,
    /// `NEITHER` otherwise). The same operations in the same order as `update`, so
    /// the same bits. Not inlined: each of the eight loops gets the registers to itself
    /// (inlined into `fast_forward`, they spilled).
    #[inline(never)]
    fn steady<const ABOVE: bool, const BELOW: bool, const NEITHER: bool>(
        &mut self,
        first: History<'_>,
        held: f64,
    ) -> FastForward {
        let (fast_period, slow_period) = (self.fast.period, self.slow.period);
        let (fast_inverse, slow_inverse) = (self.fast.inverse_period, self.slow.inverse_period);
        let (mut fast_sum, mut slow_sum) = (self.fast.sum, self.slow.sum);
        let (mut fast_until, mut slow_until) = (self.fast.until_resum, self.slow.until_resum);
        let (fast_every, slow_every) = (self.fast.resum_every, self.slow.resum_every);
        // The bars from `first` on, walked over the close column rather than through
        // `Ahead` (no `History` per bar, no bounds checks): at bar `i` the loop reads
        // the closes at `i`, `i - fast_period` and `i - slow_period` (and the windows
        // ending at `i` when it re-adds), as the history at `i` would show them. The
        // three columns are one length, so the zip has no bounds to check; the opens
        // are prefetched as `Ahead` does, once per cache line.
        let series = first.series();
        let closes = series.close();
        let start = first.index();
        debug_assert!(start >= slow_period && slow_period > fast_period);
        let end = closes.len();
        let current = &closes[start..];
        let fast_leaving = &closes[start - fast_period..end - fast_period];
        let slow_leaving = &closes[start - slow_period..end - slow_period];
        let mut last = start;
        let mut answer = FastForward::HoldsToEnd;
        for (i, ((&x, &fast_out), &slow_out)) in
            (start..).zip(current.iter().zip(fast_leaving).zip(slow_leaving))
        {
            last = i;
            if i % 8 == 0 {
                prefetch_open(series, i + PREFETCH_BARS);
            }
            fast_until -= 1;
            fast_sum = if fast_until == 0 {
                fast_until = fast_every;
                resum(closes, i, fast_period)
            } else {
                fast_sum + (x - fast_out)
            };
            slow_until -= 1;
            slow_sum = if slow_until == 0 {
                slow_until = slow_every;
                resum(closes, i, slow_period)
            } else {
                slow_sum + (x - slow_out)
            };
            let (fast, slow) = (fast_sum * fast_inverse, slow_sum * slow_inverse);
            let stop = if fast > slow {
                ABOVE
            } else if fast < slow {
                BELOW
            } else {
                NEITHER
            };
            if stop {
                answer = FastForward::DecidesAt {
                    index: i,
                    decision: rule(fast, slow, held, self.params.allow_short),
                };
                break;
            }
        }
        let seen = last + 1;
        self.fast = WindowSma {
            sum: fast_sum,
            seen,
            until_resum: fast_until,
            ..self.fast
        };
        self.slow = WindowSma {
            sum: slow_sum,
            seen,
            until_resum: slow_until,
            ..self.slow
        };
        answer
    }
}

/// The re-added sum of the `period` closes through bar `i`: out of [`steady`]'s loop
/// (it comes once every few hundred bars), which keeps its registers for the bar's work.
///
/// [`steady`]: MomentumStrategy::steady
#[cold]
#[inline(never)]
fn resum(closes: &[f64], i: usize, period: usize) -> f64 {
    window_sum(&closes[i + 1 - period..=i])
}

/// The crossover rule on warmed-up averages with `held` units.
#[inline(always)]
fn rule(fast: f64, slow: f64, held: f64, allow_short: bool) -> Decision {
    if fast > slow {
        if held > 0.0 {
            Decision::hold()
        } else {
            Decision::enter_long()
        }
    } else if fast < slow && allow_short {
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

impl Strategy for MomentumStrategy {
    #[inline]
    fn on_bar(&mut self, ctx: &Context<'_>) -> Decision {
        self.decide(ctx.history().close(), ctx.position().quantity)
    }

    /// The averages and the position decide, never the marks: runs the shared rule
    /// over the bars ahead with the current position, through
    /// [`scan`](MomentumStrategy::scan).
    #[inline(never)]
    fn fast_forward(&mut self, ctx: &Context<'_>, ahead: Ahead<'_>) -> FastForward {
        let held = ctx.position().quantity;
        // The scan runs on a local copy, written back once: the running sums then stay
        // in registers instead of a store and reload per bar on their dependency chain.
        let mut scan = self.clone();
        let answer = scan.scan(ahead, held);
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
    use crate::backtest::strategy::Action;
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

    /// The state of both averages, bit for bit.
    fn state_bits(m: &MomentumStrategy) -> [u64; 6] {
        let [f, s] = [m.fast, m.slow];
        [f.sum.to_bits(), f.seen as u64, f.until_resum as u64]
            .into_iter()
            .chain([s.sum.to_bits(), s.seen as u64, s.until_resum as u64])
            .collect::<Vec<_>>()
            .try_into()
            .unwrap()
    }

    /// A portfolio holding `held` units of its one symbol.
    fn holding(held: f64) -> (Portfolio, crate::order::SymbolId) {
        let mut p = Portfolio::new(1e9).unwrap().with_short_selling(true);
        let x = p.register(Instrument::new("X")).unwrap();
        if held != 0.0 {
            let side = if held > 0.0 { Side::Buy } else { Side::Sell };
            p.apply_fill(&Fill {
                order_id: 1,
                symbol: x,
                side,
                quantity: held.abs(),
                price: 1.0,
                commission: 0.0,
                timestamp: 0,
            })
            .unwrap();
        }
        (p, x)
    }

    /// Closes of one of three kinds: a random walk, small integers (exact sums and
    /// many equal averages) or runs of one price (equal averages).
    fn random_closes(rng: &mut rand::rngs::StdRng, len: usize, kind: usize) -> Vec<f64> {
        use rand::Rng;
        let mut price = 100.0;
        (0..len)
            .map(|_| match kind {
                0 => {
                    price *= 1.0 + rng.gen_range(-0.02..0.02);
                    price
                }
                1 => f64::from(rng.gen_range(1..4)),
                _ => {
                    if rng.gen_bool(0.1) {
                        price = f64::from(rng.gen_range(90..110)) * 0.1;
                    }
                    price
                }
            })
            .collect()
    }

    #[test]
    fn fast_forward_matches_the_per_bar_rule_bit_for_bit() {
        use rand::{Rng, SeedableRng, rngs::StdRng};
        let mut rng = StdRng::seed_from_u64(17);
        let fixed = [
            (1, 2),
            (1, 5),
            (2, 3),
            (3, 7),
            (10, 11),
            (10, 50),
            (49, 50),
            (5, 200),
            (199, 200),
        ];
        let mut decisions = [0usize; 3];
        for case in 0..600 {
            let (fast, slow) = match fixed.get(case % 12) {
                Some(&pair) => pair,
                None => {
                    let fast = rng.gen_range(1..40);
                    (fast, fast + rng.gen_range(1..60))
                }
            };
            let len = rng.gen_range(1..=3 * slow + 40);
            let closes = random_closes(&mut rng, len, case % 3);
            let s = series(&closes);
            let allow_short = rng.gen_bool(0.5);
            let mut fast_path = MomentumStrategy::new(fast, slow)
                .unwrap()
                .with_short(allow_short);
            // A history before the scan: `on_bar` over the first bars.
            let warm = rng.gen_range(0..=len);
            for i in 0..warm {
                fast_path.decide(&closes[..=i], 0.0);
            }
            let mut reference = fast_path.clone();
            // Start right after that history, or anywhere (a resync).
            let mut row = if rng.gen_bool(0.7) {
                warm
            } else {
                rng.gen_range(0..len)
            };
            let mut held = [-2.0, 0.0, 3.0][rng.gen_range(0..3)];
            let mut calls = 0;
            while row < len && calls < 200 {
                calls += 1;
                let at = format!(
                    "case {case} ({fast}, {slow}) short {allow_short} row {row} held {held}"
                );
                let (p, x) = holding(held);
                let ctx = Context::new(History::new(&s, row), &p, x);
                let got = fast_path.fast_forward(&ctx, Ahead::new(&s, row));
                let expected =
                    Ahead::new(&s, row).until_decision(|h| reference.decide(h.close(), held));
                assert_eq!(got, expected, "{at}");
                assert_eq!(state_bits(&fast_path), state_bits(&reference), "{at}");
                let FastForward::DecidesAt { index, decision } = got else {
                    assert_eq!(got, FastForward::HoldsToEnd, "{at}");
                    assert_eq!(fast_path.fast.seen, len, "{at}");
                    break;
                };
                held = match decision.action {
                    Action::Enter { side: Side::Buy } => 3.0,
                    Action::Enter { side: Side::Sell } => -2.0,
                    _ => 0.0,
                };
                decisions[usize::from(held > 0.0) + usize::from(held >= 0.0)] += 1;
                row = match rng.gen_range(0..5) {
                    // The engine's pattern: `on_bar` on the next bar (an order waits
                    // for its open), then the fast path.
                    0 | 1 if index + 1 < len => {
                        let next = &closes[..=index + 1];
                        assert_eq!(fast_path.decide(next, held), reference.decide(next, held));
                        index + 2
                    }
                    2 => index + 1,
                    3 => index + 3,
                    _ => rng.gen_range(0..len),
                };
            }
        }
        // Every kind of decision was reached many times.
        assert!(decisions.iter().all(|&count| count > 100), "{decisions:?}");
        // A position of -0 and a NaN one (never in a portfolio, but the rule has an
        // answer for them).
        for held in [-0.0, f64::NAN] {
            let closes = random_closes(&mut rng, 300, 2);
            let s = series(&closes);
            for short in [false, true] {
                let mut fast_path = MomentumStrategy::new(3, 8).unwrap().with_short(short);
                let mut reference = fast_path.clone();
                for row in [0, 5, 20, 100] {
                    let got = fast_path.scan(Ahead::new(&s, row), held);
                    let expected =
                        Ahead::new(&s, row).until_decision(|h| reference.decide(h.close(), held));
                    assert_eq!(got, expected);
                    assert_eq!(state_bits(&fast_path), state_bits(&reference));
                }
            }
        }
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
