//! The return statistics of an equity curve without storing its returns.
//!
//! [`Metrics::compute`](super::Metrics::compute) needs the moments of the period returns
//! `r_i = E_{i+1} / E_i - 1` and three of their percentiles. Over a backtest of a million
//! bars, storing the returns first costs 8 MB of fresh memory (page faults) and a pass;
//! selecting percentiles in them costs two more passes. [`curve_statistics`] instead
//! derives each return from the curve where it is needed, in two passes:
//!
//! 0. **Sample.** An evenly spaced sample of [`SAMPLE`] returns is sorted. It gives a
//!    shift `K` (its mean) and, for the wanted ranks, value brackets a few binomial
//!    standard deviations wide.
//! 1. **Sums** (branch-free, so the compiler vectorizes it): the power sums of
//!    `d = r - K` up to the fourth, the downside squares, best and worst, and for each
//!    bracket how many returns lie below it (and their sum, for the CVaR).
//! 2. **Brackets:** the returns inside a bracket (a few percent of them) are kept; those
//!    equal to a bound are only counted, so a bracket around a value most returns share
//!    (the zeros of a strategy that is mostly flat) stays small.
//!
//! The central moments follow from the shifted sums (`M2 = S2 - S1^2 / n`, and so on):
//! with `K` within a fraction of a standard deviation of the mean there is no
//! cancellation to speak of, and the results agree with the two-pass
//! [`Moments::of`](super::returns::Moments::of) to about 1e-13 (tested). The percentiles
//! are exact (numpy's linear interpolation): when a bracket misses its ranks, which an
//! unrepresentative sample could cause, this copies the returns and selects in them.
//! Below [`MIN_LEN`] returns it does that anyway.
//!
//! Hand-written because no crate offers selection over a computed sequence.

use super::returns::{Moments, Tails, lerp, tail_ratio_from, total_order};

/// Accumulator lanes of pass 1: two, as SSE2 holds two f64 and pass 1 has ten sums.
const LANES: usize = 2;

/// Below this many returns, [`curve_statistics`] copies them and uses the slice kernels.
pub(crate) const MIN_LEN: usize = 1 << 15;
/// Evenly spaced returns sorted for the shift and the brackets.
pub(crate) const SAMPLE: usize = 4096;
/// Half-width of a bracket, in standard deviations of a sample rank.
const SIGMAS: f64 = 5.0;

/// The order statistics behind numpy's percentile at `q` of `n` values.
#[derive(Debug, Clone, Copy)]
struct Rank {
    lower: usize,
    fraction: f64,
}

impl Rank {
    fn of(n: usize, q: f64) -> Rank {
        let position = (n - 1) as f64 * q;
        let lower = (position.floor() as usize).min(n - 1);
        Rank {
            lower,
            fraction: position - lower as f64,
        }
    }

    /// The highest order statistic needed (the upper neighbour when interpolating).
    fn upper(self, n: usize) -> usize {
        if self.fraction > 0.0 {
            (self.lower + 1).min(n - 1)
        } else {
            self.lower
        }
    }
}

/// `[lo, hi]`: a value range expected to hold the order statistics of some ranks.
#[derive(Debug, Clone, Copy)]
struct Bracket {
    lo: f64,
    hi: f64,
}

impl Bracket {
    /// From the sorted sample: the sample values [`SIGMAS`] binomial standard deviations
    /// below the lowest and above the highest wanted rank (unbounded when that runs off
    /// the sample).
    fn around(sample: &[f64], n: usize, lowest: usize, highest: usize) -> Bracket {
        let m = sample.len() as f64;
        let sample_rank = |rank: usize| rank as f64 / n as f64 * m;
        let margin = |rank: usize| {
            let p = (rank as f64 / n as f64).clamp(0.0, 1.0);
            SIGMAS * (m * p * (1.0 - p)).sqrt() + 2.0
        };
        let lo_index = sample_rank(lowest) - margin(lowest);
        let hi_index = sample_rank(highest) + margin(highest);
        Bracket {
            lo: if lo_index < 0.0 {
                f64::NEG_INFINITY
            } else {
                sample[lo_index as usize]
            },
            hi: if hi_index >= m - 1.0 {
                f64::INFINITY
            } else {
                sample[hi_index.ceil() as usize]
            },
        }
    }
}

/// The returns of one bracket: how many lie below it, on its bounds, and (kept)
/// strictly inside it.
#[derive(Debug)]
struct Bucket {
    bracket: Bracket,
    below: usize,
    on_lo: usize,
    inside: Vec<f64>,
    on_hi: usize,
}

impl Bucket {
    fn new(bracket: Bracket, below: usize) -> Bucket {
        Bucket {
            bracket,
            below,
            on_lo: 0,
            inside: Vec::new(),
            on_hi: 0,
        }
    }

    /// Counts or keeps `r`, which is not below the bracket; nothing above it.
    #[inline(always)]
    fn offer(&mut self, r: f64) {
        let Bracket { lo, hi } = self.bracket;
        if r >= lo && r <= hi {
            if r == lo {
                self.on_lo += 1;
            } else if r == hi {
                self.on_hi += 1;
            } else {
                self.inside.push(r);
            }
        }
    }

    /// True when every rank in `lowest..=highest` falls in the bracket.
    fn holds(&self, lowest: usize, highest: usize) -> bool {
        self.below <= lowest && highest < self.below + self.on_lo + self.inside.len() + self.on_hi
    }

    /// The value of global rank `k` (in the bracket); reorders the inside values so
    /// that those of lower rank come first.
    fn order_statistic(&mut self, k: usize) -> f64 {
        let k = k - self.below;
        if k < self.on_lo {
            return self.bracket.lo;
        }
        let k = k - self.on_lo;
        if k >= self.inside.len() {
            return self.bracket.hi;
        }
        let (_, &mut value, _) = self.inside.select_nth_unstable_by(k, total_order);
        value
    }

    /// numpy's percentile at `rank` of `n` values.
    fn percentile(&mut self, rank: Rank, n: usize) -> f64 {
        let low = self.order_statistic(rank.lower);
        if rank.fraction == 0.0 || rank.lower + 1 >= n {
            return low;
        }
        let high = self.order_statistic(rank.lower + 1);
        lerp(low, high, rank.fraction)
    }

    /// The sum of the returns of rank `below..=k`: call
    /// [`order_statistic`](Self::order_statistic)`(k)` first, which orders them.
    fn sum_up_to(&self, k: usize) -> f64 {
        let count = k + 1 - self.below;
        let from_lo = count.min(self.on_lo);
        let from_inside = (count - from_lo).min(self.inside.len());
        let from_hi = count - from_lo - from_inside;
        self.bracket.lo * from_lo as f64
            + self.inside[..from_inside].iter().sum::<f64>()
            + if from_hi > 0 {
                self.bracket.hi * from_hi as f64
            } else {
                0.0
            }
    }
}

/// Per-lane accumulators of pass 1.
#[derive(Debug, Clone, Copy)]
struct Sums {
    powers: [[f64; LANES]; 4],
    downside: [f64; LANES],
    best: [f64; LANES],
    worst: [f64; LANES],
    below_low: [f64; LANES],
    below_high: [f64; LANES],
    sum_below_low: [f64; LANES],
}

/// [`Moments`] (with `target` for the downside) and [`Tails`] (VaR and CVaR at
/// `cutoff`, tail ratio) of the period returns of `equity`: finite, positive values,
/// at least two of them (as [`Metrics::compute`](super::Metrics::compute) has checked).
/// See the [module docs](self).
pub(crate) fn curve_statistics(equity: &[f64], target: f64, cutoff: f64) -> (Moments, Tails) {
    let n = equity.len() - 1;
    if n >= MIN_LEN
        && let Some(statistics) = sampled(equity, target, cutoff)
    {
        return statistics;
    }
    let mut returns: Vec<f64> = equity.windows(2).map(|w| w[1] / w[0] - 1.0).collect();
    let moments = Moments::of(&returns, target);
    (moments, Tails::of(&mut returns, cutoff))
}

#[inline(always)]
fn sampled(equity: &[f64], target: f64, cutoff: f64) -> Option<(Moments, Tails)> {
    let n = equity.len() - 1;
    let (before, after) = (&equity[..n], &equity[1..]);
    let var = Rank::of(n, cutoff);
    let p5 = Rank::of(n, 0.05);
    let p95 = Rank::of(n, 0.95);
    let low_ranks = (var.lower.min(p5.lower), var.upper(n).max(p5.upper(n)));
    let high_ranks = (p95.lower, p95.upper(n));

    let mut sample: Vec<f64> = (0..SAMPLE)
        .map(|j| j * n / SAMPLE)
        .map(|i| after[i] / before[i] - 1.0)
        .collect();
    let shift = sample.iter().sum::<f64>() / SAMPLE as f64;
    sample.sort_unstable_by(total_order);
    let low = Bracket::around(&sample, n, low_ranks.0, low_ranks.1);
    let high = Bracket::around(&sample, n, high_ranks.0, high_ranks.1);

    // Pass 1: sums, branch-free.
    let mut sums = Sums {
        powers: [[0.0; LANES]; 4],
        downside: [0.0; LANES],
        best: [f64::NEG_INFINITY; LANES],
        worst: [f64::INFINITY; LANES],
        below_low: [0.0; LANES],
        below_high: [0.0; LANES],
        sum_below_low: [0.0; LANES],
    };
    let mut accumulate = |lane: usize, r: f64| {
        let d = r - shift;
        let d2 = d * d;
        sums.powers[0][lane] += d;
        sums.powers[1][lane] += d2;
        sums.powers[2][lane] += d2 * d;
        sums.powers[3][lane] += d2 * d2;
        let below = if r < target { r - target } else { 0.0 };
        sums.downside[lane] += below * below;
        sums.best[lane] = if r > sums.best[lane] {
            r
        } else {
            sums.best[lane]
        };
        sums.worst[lane] = if r < sums.worst[lane] {
            r
        } else {
            sums.worst[lane]
        };
        let under_low = r < low.lo;
        sums.below_low[lane] += if under_low { 1.0 } else { 0.0 };
        sums.sum_below_low[lane] += if under_low { r } else { 0.0 };
        sums.below_high[lane] += if r < high.lo { 1.0 } else { 0.0 };
    };
    let (before_chunks, after_chunks) = (before.chunks_exact(LANES), after.chunks_exact(LANES));
    let tail = n - before_chunks.remainder().len()..n;
    for (b, a) in before_chunks.zip(after_chunks) {
        for lane in 0..LANES {
            accumulate(lane, a[lane] / b[lane] - 1.0);
        }
    }
    for i in tail {
        accumulate(0, after[i] / before[i] - 1.0);
    }
    let total = |lanes: [f64; LANES]| lanes.iter().sum::<f64>();

    // Pass 2: the brackets' contents.
    let mut low_bucket = Bucket::new(low, total(sums.below_low) as usize);
    let mut high_bucket = Bucket::new(high, total(sums.below_high) as usize);
    for (b, a) in before.iter().zip(after) {
        let r = a / b - 1.0;
        low_bucket.offer(r);
        high_bucket.offer(r);
    }
    if !(low_bucket.holds(low_ranks.0, low_ranks.1)
        && high_bucket.holds(high_ranks.0, high_ranks.1))
    {
        return None;
    }

    // Central sums from the shifted ones, with delta = mean - shift.
    let count = n as f64;
    let [s1, s2, s3, s4] = sums.powers.map(total);
    let delta = s1 / count;
    let m2 = (s2 - s1 * delta).max(0.0);
    let m3 = s3 - 3.0 * delta * s2 + 2.0 * count * delta.powi(3);
    let m4 = s4 - 4.0 * delta * s3 + 6.0 * delta * delta * s2 - 3.0 * count * delta.powi(4);
    let moments = Moments {
        n,
        mean: shift + delta,
        m2,
        m3,
        m4,
        downside_squares: total(sums.downside),
        best: sums.best.into_iter().fold(f64::NEG_INFINITY, f64::max),
        worst: sums.worst.into_iter().fold(f64::INFINITY, f64::min),
    };

    let value_at_risk = low_bucket.percentile(var, n);
    // The lowest `var.lower + 1` returns: those below the bracket, then the bracket's
    // from the bottom, which selecting `var.lower` has put first.
    low_bucket.order_statistic(var.lower);
    let lowest_sum = total(sums.sum_below_low) + low_bucket.sum_up_to(var.lower);
    let conditional_value_at_risk = lowest_sum / (var.lower + 1) as f64;
    let p5 = if cutoff == 0.05 {
        value_at_risk
    } else {
        low_bucket.percentile(p5, n)
    };
    let p95 = high_bucket.percentile(p95, n);
    let tails = Tails {
        value_at_risk: Ok(value_at_risk),
        conditional_value_at_risk: Ok(conditional_value_at_risk),
        tail_ratio: tail_ratio_from(p5, p95),
    };
    Some((moments, tails))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::returns::tests::sorted_percentile;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    fn relative(a: f64, b: f64) -> f64 {
        (a - b).abs() / b.abs().max(1e-300)
    }

    /// Curves of `n + 1` points whose returns have shapes chosen to break a sample:
    /// heavy ties, mostly zeros (a flat strategy), all equal, rising and falling
    /// returns, and a pattern aligned with the sampling stride.
    fn shapes(n: usize) -> Vec<(&'static str, Vec<f64>)> {
        let mut rng = StdRng::seed_from_u64(5);
        let stride = n / SAMPLE;
        let returns: Vec<(&str, Vec<f64>)> = vec![
            (
                "uniform",
                (0..n).map(|_| rng.gen_range(-0.05..0.05)).collect(),
            ),
            (
                "grid",
                (0..n)
                    .map(|_| rng.gen_range(-20..=20) as f64 / 1e3)
                    .collect(),
            ),
            (
                "mostly zeros",
                (0..n)
                    .map(|_| {
                        if rng.gen_bool(0.08) {
                            rng.gen_range(-0.03..0.03)
                        } else {
                            0.0
                        }
                    })
                    .collect(),
            ),
            ("all equal", vec![0.001; n]),
            // (small enough that the compounded curve stays finite)
            (
                "rising",
                (0..n).map(|i| (i as f64 / n as f64 - 0.5) * 0.01).collect(),
            ),
            (
                "falling",
                (0..n).map(|i| (0.5 - i as f64 / n as f64) * 0.01).collect(),
            ),
            (
                "stride-aligned",
                (0..n)
                    .map(|i| {
                        if i % stride == 0 {
                            0.0
                        } else {
                            ((i % 7) as f64 - 3.0) / 100.0
                        }
                    })
                    .collect(),
            ),
        ];
        returns
    }

    fn curve(returns: &[f64]) -> Vec<f64> {
        let mut equity = vec![100.0];
        for r in returns {
            equity.push(equity[equity.len() - 1] * (1.0 + r));
        }
        assert!(equity.iter().all(|e| e.is_finite() && *e > 0.0));
        equity
    }

    /// The sampled path against full sorting (percentiles, exactly) and the two-pass
    /// slice kernel (moments), on returns recomputed from the curve as it does.
    #[test]
    fn sampled_statistics_match_sorting_and_two_passes() {
        let n = MIN_LEN * 3 + 7;
        for (name, shape) in shapes(n) {
            let equity = curve(&shape);
            let returns: Vec<f64> = equity.windows(2).map(|w| w[1] / w[0] - 1.0).collect();
            let mut sorted = returns.clone();
            sorted.sort_by(f64::total_cmp);
            for cutoff in [0.05, 0.01, 0.2] {
                // The sample path answered (no fallback); where the sample cannot see
                // the data it may fall back, and the result must be exact either way.
                let answered = sampled(&equity, 0.0, cutoff).is_some();
                assert!(answered || name == "stride-aligned", "{name} {cutoff}");

                let (moments, tails) = curve_statistics(&equity, 0.0, cutoff);
                let var = sorted_percentile(&returns, cutoff);
                assert_eq!(tails.value_at_risk, Ok(var), "{name} {cutoff}");
                let count = ((n - 1) as f64 * cutoff) as usize + 1;
                let cvar = sorted[..count].iter().sum::<f64>() / count as f64;
                let got = tails.conditional_value_at_risk.unwrap();
                assert!(relative(got, cvar) < 1e-12, "{name}: {got} vs {cvar}");
                let ratio = tail_ratio_from(
                    sorted_percentile(&returns, 0.05),
                    sorted_percentile(&returns, 0.95),
                );
                assert_eq!(tails.tail_ratio, ratio, "{name} {cutoff}");

                let reference = Moments::of(&returns, 0.0);
                assert_eq!(moments.n, reference.n);
                assert_eq!(
                    (moments.best, moments.worst),
                    (reference.best, reference.worst)
                );
                // The mean against the spread (it may be 0 up to rounding).
                let std = (reference.m2 / n as f64).sqrt();
                let tolerance = 1e-12 * (reference.mean.abs() + std);
                assert!(
                    (moments.mean - reference.mean).abs() <= tolerance,
                    "{name} mean"
                );
                // Central sums: error against the spread's scale, with a floor at
                // rounding noise (the "all equal" curve's returns differ in the last
                // bits only; both must call that zero variance).
                let noise = n as f64 * (8.0 * f64::EPSILON * (1.0 + reference.mean.abs())).powi(2);
                let allowed2 = 1e-10 * reference.m2 + noise;
                assert!((moments.m2 - reference.m2).abs() <= allowed2, "{name} m2");
                let root_n = (n as f64).sqrt();
                let allowed3 = (1e-9 * reference.m2.powf(1.5) + noise.powf(1.5)) / root_n;
                assert!((moments.m3 - reference.m3).abs() <= allowed3, "{name} m3");
                let allowed4 = 1e-10 * reference.m4 + noise * noise / n as f64;
                assert!((moments.m4 - reference.m4).abs() <= allowed4, "{name} m4");
                assert_eq!(
                    moments.sample_std().is_ok(),
                    reference.sample_std().is_ok(),
                    "{name}"
                );
                assert!(
                    relative(moments.downside_squares, reference.downside_squares) < 1e-12
                        || reference.downside_squares == 0.0 && moments.downside_squares == 0.0,
                    "{name} downside"
                );
            }
        }
    }

    /// Short curves take the slice kernels: identical to them, bit for bit.
    #[test]
    fn short_curves_use_the_slice_kernels() {
        let equity = curve(&shapes(SAMPLE * 2)[0].1[..1000]);
        let returns: Vec<f64> = equity.windows(2).map(|w| w[1] / w[0] - 1.0).collect();
        let (moments, tails) = curve_statistics(&equity, 0.001, 0.05);
        let reference = Moments::of(&returns, 0.001);
        assert_eq!(moments.m2.to_bits(), reference.m2.to_bits());
        assert_eq!(moments.mean.to_bits(), reference.mean.to_bits());
        let exact = Tails::of(&mut returns.clone(), 0.05);
        assert_eq!(tails.value_at_risk, exact.value_at_risk);
        assert_eq!(
            tails.conditional_value_at_risk,
            exact.conditional_value_at_risk
        );
    }
}
