//! Centered moments of the returns accumulated block by block, inside the one pass
//! over the curve (see `curve.rs`), while each block's returns are still in the L1
//! cache.
//!
//! Each block of returns gets its own two-pass moments: its mean, then the sums of
//! `(r - block mean)^k` for k = 2, 3, 4. Blocks are then merged into the running
//! totals with the exact pairwise update of Chan, Golub and LeVeque (1979) for the
//! second moment and its extension to the third and fourth by Pébay (2008): for sets
//! `a` and `b` of `n_a` and `n_b` values, `n = n_a + n_b`, `delta = mean_b - mean_a`,
//!
//! | moment | merged |
//! |---|---|
//! | mean | `mean_a + delta * n_b / n` |
//! | `M2` | `M2_a + M2_b + delta^2 * n_a * n_b / n` |
//! | `M3` | `M3_a + M3_b + delta^3 * n_a * n_b * (n_a - n_b) / n^2 + 3 * delta * (n_a * M2_b - n_b * M2_a) / n` |
//! | `M4` | `M4_a + M4_b + delta^4 * n_a * n_b * (n_a^2 - n_a * n_b + n_b^2) / n^3 + 6 * delta^2 * (n_a^2 * M2_b + n_b^2 * M2_a) / n^2 + 4 * delta * (n_a * M3_b - n_b * M3_a) / n` |
//!
//! where `Mk = sum (r - mean)^k`. The identities are exact; in floating point the
//! scheme is as stable as the two-pass formula: every deviation is taken from a mean
//! of nearby values (a block's), so a series with a tiny spread around a large mean
//! (constant growth plus noise) loses no precision, unlike the one-pass
//! `sum r^2 - n * mean^2`. It replaces a second pass over the 8 MB of returns
//! ([`Moments::after`](super::returns::Moments::after), which stays the kernel of the
//! free functions); its rounding differs from that pass by a few ulps of the sums of
//! the magnitudes of the terms (the tests bound it).
//!
//! The downside squares `sum min(r - target, 0)^2` need no centering and are simply
//! summed, by lanes.

use super::returns::Moments;

/// Independent accumulators per sum, so that the compiler can vectorize (two SSE2
/// registers each).
const LANES: usize = 4;

/// The running moments of the returns seen so far.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunningMoments {
    n: usize,
    /// The mean is `mean + mean_low`: a double-double, see `merge`.
    mean: f64,
    mean_low: f64,
    m2: f64,
    m3: f64,
    m4: f64,
    downside_squares: f64,
    best: f64,
    worst: f64,
}

impl RunningMoments {
    /// No returns yet.
    pub(crate) fn new() -> RunningMoments {
        RunningMoments {
            n: 0,
            mean: 0.0,
            mean_low: 0.0,
            m2: 0.0,
            m3: 0.0,
            m4: 0.0,
            downside_squares: 0.0,
            best: f64::NEG_INFINITY,
            worst: f64::INFINITY,
        }
    }

    /// Adds a block of returns (any length; the curve's pass gives whole blocks of a
    /// fixed length, which the compiler unrolls and vectorizes, then one shorter).
    ///
    /// Two loops over the block: the sum, the extremes and the downside, then the
    /// centered powers; each keeps its accumulators in registers (SSE2 has sixteen).
    #[inline(always)]
    pub(crate) fn add_block(&mut self, returns: &[f64], target: f64) {
        if returns.is_empty() {
            return;
        }
        let (chunks, rest) = returns.as_chunks::<LANES>();
        let mut sum = [0.0; LANES];
        let mut best = [self.best; LANES];
        let mut worst = [self.worst; LANES];
        let mut downside = [0.0; LANES];
        for chunk in chunks {
            for k in 0..LANES {
                let r = chunk[k];
                sum[k] += r;
                best[k] = if r > best[k] { r } else { best[k] };
                worst[k] = if r < worst[k] { r } else { worst[k] };
                let below = if r < target { r - target } else { 0.0 };
                downside[k] += below * below;
            }
        }
        for &r in rest {
            sum[0] += r;
            best[0] = if r > best[0] { r } else { best[0] };
            worst[0] = if r < worst[0] { r } else { worst[0] };
            let below = if r < target { r - target } else { 0.0 };
            downside[0] += below * below;
        }
        let total = |lanes: [f64; LANES]| lanes.iter().sum::<f64>();
        self.best = best
            .iter()
            .fold(self.best, |a, &b| if b > a { b } else { a });
        self.worst = worst
            .iter()
            .fold(self.worst, |a, &b| if b < a { b } else { a });
        self.downside_squares += total(downside);

        let count = returns.len();
        let mean = total(sum) / count as f64;
        let (mut m1, mut m2) = ([0.0; LANES], [0.0; LANES]);
        let (mut m3, mut m4) = ([0.0; LANES], [0.0; LANES]);
        // The sum of the deviations in a loop of its own: with the powers, the
        // compiler stops vectorizing by lanes.
        for chunk in chunks {
            for k in 0..LANES {
                m1[k] += chunk[k] - mean;
            }
        }
        for chunk in chunks {
            let d: [f64; LANES] = std::array::from_fn(|k| chunk[k] - mean);
            let d2: [f64; LANES] = std::array::from_fn(|k| d[k] * d[k]);
            for k in 0..LANES {
                m2[k] += d2[k];
            }
            for k in 0..LANES {
                m3[k] += d2[k] * d[k];
            }
            for k in 0..LANES {
                m4[k] += d2[k] * d2[k];
            }
        }
        for &r in rest {
            let d = r - mean;
            let d2 = d * d;
            m1[0] += d;
            m2[0] += d2;
            m3[0] += d2 * d;
            m4[0] += d2 * d2;
        }
        // `mean` is the block's mean rounded; `offset` the rest of it: the sums of
        // `d` (each exact when the block's returns are within a factor 2 of their
        // mean, by Sterbenz's lemma) are those about `mean`, and move to the exact
        // mean `mean + offset` by the binomial shift. Without it the rounding of each
        // block's mean (a few ulps of the mean) would enter the merged M2 at first
        // order, `delta` being a difference of rounded means: a relative error of
        // about `eps * |mean| / std`, 1e-11 for returns of 5e-4 +- 1e-9.
        let (m2, m3, m4) = (total(m2), total(m3), total(m4));
        let offset = total(m1) / count as f64;
        let n = count as f64;
        let finite = m2.is_finite() & m3.is_finite() & m4.is_finite();
        let (m2, m3, m4) = if offset == 0.0 || !(offset.is_finite() & finite) {
            (m2, m3, m4)
        } else {
            let c2 = offset * offset;
            (
                m2 - n * c2,
                m3 - 3.0 * offset * m2 + 2.0 * n * c2 * offset,
                m4 - 4.0 * offset * m3 + 6.0 * c2 * m2 - 3.0 * n * c2 * c2,
            )
        };
        self.merge(count, mean, offset, m2, m3, m4);
    }

    /// False when the returns so far may hold a non-finite value or one at or below
    /// -1 (NaN and infinities make the mean non-finite for good); a sum that
    /// overflows makes it false too.
    pub(crate) fn finite_above_minus_one(&self) -> bool {
        self.n == 0 || (self.mean.is_finite() & (self.worst > -1.0))
    }

    /// Merges the moments of `count` more values of mean `mean + mean_low` (see the
    /// module docs). The running mean is kept as a double-double (`mean` plus the
    /// small `mean_low`): `delta`, a difference of nearly equal means, is then exact
    /// to a few ulps of itself rather than of the means.
    fn merge(&mut self, count: usize, mean: f64, mean_low: f64, m2: f64, m3: f64, m4: f64) {
        if self.n == 0 {
            (self.n, self.mean, self.mean_low) = (count, mean, mean_low);
            (self.m2, self.m3, self.m4) = (m2, m3, m4);
            return;
        }
        let (na, nb) = (self.n as f64, count as f64);
        let n = na + nb;
        let delta = (mean - self.mean) + (mean_low - self.mean_low);
        let delta2 = delta * delta;
        let (m2a, m3a, m4a) = (self.m2, self.m3, self.m4);
        self.m4 = m4a
            + m4
            + delta2 * delta2 * na * nb * (na * na - na * nb + nb * nb) / (n * n * n)
            + 6.0 * delta2 * (na * na * m2 + nb * nb * m2a) / (n * n)
            + 4.0 * delta * (na * m3 - nb * m3a) / n;
        self.m3 = m3a
            + m3
            + delta2 * delta * na * nb * (na - nb) / (n * n)
            + 3.0 * delta * (na * m2 - nb * m2a) / n;
        self.m2 = m2a + m2 + delta2 * na * nb / n;
        // mean += delta * nb / n, with the rounding error of the sum kept (Fast2Sum:
        // the increment is the smaller term but for the first blocks; then TwoSum)
        let increment = delta * nb / n;
        let sum = self.mean + increment;
        let error = if self.mean.abs() >= increment.abs() {
            (self.mean - sum) + increment
        } else {
            (increment - sum) + self.mean
        };
        self.mean = sum;
        self.mean_low += error;
        self.n += count;
    }

    /// The [`Moments`] of every return added.
    pub(crate) fn finish(self) -> Moments {
        Moments {
            n: self.n,
            mean: if self.n == 0 {
                f64::NAN
            } else {
                self.mean + self.mean_low
            },
            m2: self.m2,
            m3: self.m3,
            m4: self.m4,
            downside_squares: self.downside_squares,
            best: self.best,
            worst: self.worst,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::returns::reference_moments;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    fn blocked(returns: &[f64], block: usize, target: f64) -> Moments {
        let mut running = RunningMoments::new();
        for chunk in returns.chunks(block) {
            running.add_block(chunk, target);
        }
        running.finish()
    }

    #[test]
    fn merged_blocks_by_hand() {
        // (0, 0, 0, 0.04) in blocks of two: a = (0, 0), b = (0, 0.04)
        // mean_a 0, M2_a = M3_a = M4_a = 0; mean_b 0.02, deviations -0.02, 0.02:
        // M2_b = 8e-4, M3_b = 0, M4_b = 2 * 1.6e-7 = 3.2e-7; delta 0.02, n_a = n_b = 2
        // M2 = 8e-4 + 4e-4 * 4 / 4 = 1.2e-3
        // M3 = 0 + 8e-6 * 4 * 0 / 16 + 3 * 0.02 * (2 * 8e-4 - 0) / 4 = 2.4e-5
        // M4 = 3.2e-7 + 1.6e-7 * 4 * 4 / 64 + 6 * 4e-4 * (4 * 8e-4) / 16 + 0 = 8.4e-7
        // (the direct sums about the mean 0.01: 1.2e-3, 2.4e-5, 8.4e-7)
        let m = blocked(&[0.0, 0.0, 0.0, 0.04], 2, 0.0);
        assert_eq!(m.n, 4);
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-15 * b.abs();
        assert!(close(m.mean, 0.01), "{}", m.mean);
        assert!(close(m.m2, 1.2e-3), "{}", m.m2);
        assert!(close(m.m3, 2.4e-5), "{}", m.m3);
        assert!(close(m.m4, 8.4e-7), "{}", m.m4);
        assert_eq!(m.downside_squares, 0.0);
        // downside with target 0.01: (0 - 0.01)^2 * 3 = 3e-4
        let m = blocked(&[0.0, 0.0, 0.0, 0.04], 2, 0.01);
        assert!(close(m.downside_squares, 3e-4));
        assert!(blocked(&[], 2, 0.0).mean.is_nan());
    }

    /// Against the old two-pass code, for every block length and series length
    /// around the lanes and blocks.
    ///
    /// Tolerance: `1e-12` times the sum of the magnitudes of the terms (`sum |d|^k`
    /// for the centered sums, `max |r|` for the mean). That is the natural scale of
    /// a sum's rounding error (its condition number): both codes add the same terms
    /// in different orders and about different means, each off by at most a few
    /// ulps times the number of terms (n ≤ 3,000 here: about `1e-13` of that scale),
    /// so a mistake in a merge formula (a wrong coefficient moves a sum by about its
    /// own size) fails by ten orders of magnitude. `M3` cancels (skewness near 0),
    /// hence the absolute scale rather than a relative one.
    #[test]
    fn matches_the_two_pass_moments() {
        let mut rng = StdRng::seed_from_u64(43);
        for n in (1..=40).chain([255, 256, 257, 1_000, 3_000]) {
            for block in [1, 3, 4, 8, 256] {
                let target = [0.0, 0.01, -0.02][n % 3];
                let r: Vec<f64> = (0..n)
                    .map(|_| match rng.gen_range(0..4) {
                        0 => 0.0,
                        1 => 0.002 + rng.gen_range(-0.05..0.05),
                        _ => rng.gen_range(-0.05..0.05),
                    })
                    .collect();
                let old = reference_moments(&r, target);
                let new = blocked(&r, block, target);
                let scale = |k: i32| r.iter().map(|x| (x - old.mean).abs().powi(k)).sum::<f64>();
                let largest = r.iter().fold(0.0_f64, |a, x| a.max(x.abs()));
                let within = |a: f64, b: f64, scale: f64| (a - b).abs() <= 1e-12 * scale;
                assert_eq!(new.n, n);
                assert!(within(new.mean, old.mean, largest), "{n} {block}");
                assert!(within(new.m2, old.m2, scale(2)), "{n} {block}");
                assert!(within(new.m3, old.m3, scale(3)), "{n} {block}");
                assert!(within(new.m4, old.m4, scale(4)), "{n} {block}");
                let squares: f64 = r.iter().map(|x| (x - target).min(0.0).powi(2)).sum();
                assert!(within(new.downside_squares, old.downside_squares, squares));
            }
        }
    }

    /// Constant growth of 0.05% a period plus noise of 1e-9: a spread a million times
    /// smaller than the mean. The one-pass formula `sum r^2 - n mean^2` would lose
    /// about twelve of the sixteen digits here; the merged blocks must keep them
    /// (to `1e-12` of `M2`, `M4` and `sum |d|^3`). The reference is independent: the
    /// corrected two-pass algorithm with Neumaier-compensated sums (the deviations
    /// `r - mean` are exact by Sterbenz's lemma, as every `r` is within a factor 2 of
    /// the mean, and the sums about the rounded mean are shifted to the exact one).
    /// Without the merge's care for the rounding of the block means, `M2` was off by
    /// 4e-12 here and `M3` by 6e-11 of its scale.
    #[test]
    fn tiny_spread_around_a_large_mean_keeps_its_precision() {
        let mut rng = StdRng::seed_from_u64(47);
        let n = 5_000;
        let r: Vec<f64> = (0..n)
            .map(|_| 5e-4 + 1e-9 * rng.gen_range(-1.0..1.0))
            .collect();
        let compensated = |values: &mut dyn Iterator<Item = f64>| {
            let (mut sum, mut carry) = (0.0_f64, 0.0_f64);
            for v in values {
                let t = sum + v;
                carry += if sum.abs() >= v.abs() {
                    (sum - t) + v
                } else {
                    (v - t) + sum
                };
                sum = t;
            }
            sum + carry
        };
        let mean = compensated(&mut r.iter().copied()) / n as f64;
        // about the rounded mean, then shifted to the exact one (`offset`, the mean
        // of the exact deviations): the corrected two-pass algorithm
        let sum = |k: i32| compensated(&mut r.iter().map(|x| (x - mean).powi(k)));
        let (s2, s3, s4) = (sum(2), sum(3), sum(4));
        let c = sum(1) / n as f64;
        let count = n as f64;
        let m2 = s2 - count * c * c;
        let m3 = s3 - 3.0 * c * s2 + 2.0 * count * c * c * c;
        let m4 = s4 - 4.0 * c * s3 + 6.0 * c * c * s2 - 3.0 * count * c * c * c * c;
        let mean = mean + c;
        let scale3: f64 = r.iter().map(|x| (x - mean).abs().powi(3)).sum();
        let new = blocked(&r, 256, 0.0);
        assert!((new.mean - mean).abs() <= 1e-15 * mean, "{}", new.mean);
        assert!((new.m2 - m2).abs() <= 1e-12 * m2, "{} vs {m2}", new.m2);
        assert!((new.m3 - m3).abs() <= 1e-12 * scale3, "{} vs {m3}", new.m3);
        assert!((new.m4 - m4).abs() <= 1e-12 * m4, "{} vs {m4}", new.m4);
        // and the sample variance is the noise's: (2e-9)^2 / 12 for a uniform
        let variance = new.m2 / (n - 1) as f64;
        assert!((variance / (4e-18 / 12.0) - 1.0).abs() < 0.05, "{variance}");
        // the naive one-pass formula would not be near: the test is meaningful
        let naive = r.iter().map(|x| x * x).sum::<f64>() - n as f64 * mean * mean;
        assert!((naive - m2).abs() > 1e-6 * m2, "{naive} vs {m2}");
    }
}
