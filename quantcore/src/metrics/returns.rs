//! Statistics of a slice of period returns: the free functions.
//!
//! Each function checks its input (every return finite, parameters in range) and
//! returns a [`Metric`]. [`Metrics::compute`](super::Metrics::compute) shares the
//! kernels below but checks once and scans the returns only a few times for the whole set.

use super::undefined::{Metric, Parameter, Undefined};

/// A standard deviation at or below `ZERO_STD_FLOOR * (1 + |mean|)` is rounding noise:
/// equity growing by a constant 1% per period gives returns that differ in the last
/// bits only, and a Sharpe ratio of 1e15 from them would be a made-up number.
const ZERO_STD_FLOOR: f64 = 8.0 * f64::EPSILON;

/// One- and two-pass summary of a return series.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Moments {
    pub(crate) n: usize,
    pub(crate) mean: f64,
    /// Sums of centered powers: `sum (r - mean)^k` for k = 2, 3, 4.
    pub(crate) m2: f64,
    pub(crate) m3: f64,
    pub(crate) m4: f64,
    /// `sum min(r - target, 0)^2`.
    pub(crate) downside_squares: f64,
    pub(crate) best: f64,
    pub(crate) worst: f64,
}

/// Independent accumulators per pass: the sums then run in parallel instead of waiting
/// on one another (about 2.5x faster on 1M returns), and rounding error grows slower.
const LANES: usize = 4;

/// The first pass of [`Moments`]: per-lane sums and the extremes.
///
/// Lane `i % LANES` holds `returns[i]` for `i` below the last whole chunk of `LANES`,
/// lane 0 the remainder; each lane adds its values in index order. The mean is the
/// sum of the lanes (in lane order) over `n`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FirstPass {
    sum: [f64; LANES],
    best: f64,
    worst: f64,
}

impl FirstPass {
    /// The first pass over every return.
    fn of(returns: &[f64]) -> FirstPass {
        let chunks = returns.chunks_exact(LANES);
        let tail = chunks.remainder();
        let mut sum = [0.0; LANES];
        let mut best = [f64::NEG_INFINITY; LANES];
        let mut worst = [f64::INFINITY; LANES];
        for chunk in chunks {
            for lane in 0..LANES {
                let r = chunk[lane];
                sum[lane] += r;
                best[lane] = if r > best[lane] { r } else { best[lane] };
                worst[lane] = if r < worst[lane] { r } else { worst[lane] };
            }
        }
        for &r in tail {
            sum[0] += r;
            best[0] = best[0].max(r);
            worst[0] = worst[0].min(r);
        }
        FirstPass {
            sum,
            best: best.into_iter().fold(f64::NEG_INFINITY, f64::max),
            worst: worst.into_iter().fold(f64::INFINITY, f64::min),
        }
    }
}

impl Moments {
    /// Two passes over finite returns: the mean, then centered powers and the downside.
    pub(crate) fn of(returns: &[f64], target: f64) -> Moments {
        Moments::after(FirstPass::of(returns), returns, target)
    }

    /// The second pass, given the first: centered powers and the downside.
    pub(crate) fn after(first: FirstPass, returns: &[f64], target: f64) -> Moments {
        let n = returns.len();
        let mean = if n == 0 {
            f64::NAN
        } else {
            first.sum.iter().sum::<f64>() / n as f64
        };
        let tail = returns.chunks_exact(LANES).remainder();
        let mut powers = [[0.0; LANES]; 4];
        let mut accumulate = |lane: usize, r: f64| {
            let d = r - mean;
            let d2 = d * d;
            powers[0][lane] += d2;
            powers[1][lane] += d2 * d;
            powers[2][lane] += d2 * d2;
            let below = if r < target { r - target } else { 0.0 };
            powers[3][lane] += below * below;
        };
        for chunk in returns.chunks_exact(LANES) {
            for (lane, &r) in chunk.iter().enumerate() {
                accumulate(lane, r);
            }
        }
        for &r in tail {
            accumulate(0, r);
        }
        let [m2, m3, m4, downside_squares] = powers.map(|lanes| lanes.iter().sum::<f64>());
        Moments {
            n,
            mean,
            m2,
            m3,
            m4,
            downside_squares,
            best: first.best,
            worst: first.worst,
        }
    }

    fn require(&self, required: usize) -> Result<(), Undefined> {
        if self.n < required {
            return Err(Undefined::TooFewPeriods {
                required,
                actual: self.n,
            });
        }
        Ok(())
    }

    /// Sample standard deviation (ddof = 1); needs two periods and some variance.
    pub(crate) fn sample_std(&self) -> Metric {
        self.require(2)?;
        let std = (self.m2 / (self.n - 1) as f64).sqrt();
        if std <= ZERO_STD_FLOOR * (1.0 + self.mean.abs()) {
            return Err(Undefined::ZeroVariance);
        }
        Ok(std)
    }

    pub(crate) fn annual_volatility(&self, periods_per_year: f64) -> Metric {
        match self.sample_std() {
            Err(Undefined::ZeroVariance) => Ok(0.0),
            std => Ok(std? * periods_per_year.sqrt()),
        }
    }

    pub(crate) fn annualized_mean_return(&self, periods_per_year: f64) -> Metric {
        self.require(1)?;
        Ok(self.mean * periods_per_year)
    }

    pub(crate) fn sharpe_ratio(&self, risk_free_rate: f64, periods_per_year: f64) -> Metric {
        let std = self.sample_std()?;
        finite((self.mean - risk_free_rate) / std * periods_per_year.sqrt())
    }

    /// Annualized downside deviation `sqrt(mean(min(r - target, 0)^2)) * sqrt(ppy)`.
    pub(crate) fn downside_deviation(&self, periods_per_year: f64) -> Metric {
        self.require(1)?;
        Ok((self.downside_squares / self.n as f64).sqrt() * periods_per_year.sqrt())
    }

    /// empyrical's Sortino: `mean(r - target) * ppy / downside_deviation`.
    pub(crate) fn sortino_ratio(&self, target: f64, periods_per_year: f64) -> Metric {
        self.require(2)?;
        let downside = self.downside_deviation(periods_per_year)?;
        if downside <= ZERO_STD_FLOOR * periods_per_year.sqrt() {
            return Err(Undefined::NoDownside);
        }
        finite((self.mean - target) * periods_per_year / downside)
    }

    /// Population skewness `(m3 / n) / (m2 / n)^1.5` (scipy's default, `bias=True`).
    pub(crate) fn skewness(&self) -> Metric {
        self.require(3)?;
        self.sample_std()?;
        let n = self.n as f64;
        finite((self.m3 / n) / (self.m2 / n).powf(1.5))
    }

    /// Population excess kurtosis `(m4 / n) / (m2 / n)^2 - 3` (scipy's default).
    pub(crate) fn excess_kurtosis(&self) -> Metric {
        self.require(4)?;
        self.sample_std()?;
        let n = self.n as f64;
        finite((self.m4 / n) / (self.m2 / n).powi(2) - 3.0)
    }
}

fn finite(value: f64) -> Metric {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(Undefined::Overflow)
    }
}

/// `(growth)^(ppy / n_periods) - 1` for a growth factor `final / initial`.
pub(crate) fn cagr_from_growth(growth: f64, n_periods: usize, periods_per_year: f64) -> Metric {
    if n_periods == 0 {
        return Err(Undefined::TooFewPeriods {
            required: 1,
            actual: 0,
        });
    }
    if growth.is_nan() || growth <= 0.0 {
        return Err(Undefined::EquityNotPositive);
    }
    finite(growth.powf(periods_per_year / n_periods as f64) - 1.0)
}

/// `cagr / |max_drawdown|`, undefined without a drawdown.
pub(crate) fn calmar_from(cagr: Metric, max_drawdown: f64) -> Metric {
    let cagr = cagr?;
    if max_drawdown >= 0.0 {
        return Err(Undefined::NoDrawdown);
    }
    finite(cagr / -max_drawdown)
}

/// numpy's linear interpolation between two neighbours (exact at both ends).
pub(crate) fn lerp(a: f64, b: f64, t: f64) -> f64 {
    if t < 0.5 {
        a + (b - a) * t
    } else {
        b - (b - a) * (1.0 - t)
    }
}

pub(crate) fn total_order(a: &f64, b: &f64) -> std::cmp::Ordering {
    a.total_cmp(b)
}

/// numpy's default percentile (linear interpolation) of `data` at `q` in [0, 1], by
/// selection (O(n), reorders `data`). `cuts` split `data` into blocks that are
/// already in order (every value before a cut is <= every value from it on; any
/// order, 0 or `len` allowed): only the block holding the lower index is selected in.
/// Returns the value and the lower index; `data[..=lower]` then holds the `lower + 1`
/// smallest values, so `lower + 1` is a cut for the next call.
fn quantile(data: &mut [f64], q: f64, cuts: &[usize]) -> (f64, usize) {
    let n = data.len();
    let position = (n - 1) as f64 * q;
    let lower = (position.floor() as usize).min(n - 1);
    let start = cuts
        .iter()
        .copied()
        .filter(|&c| c <= lower)
        .max()
        .unwrap_or(0);
    let end = cuts
        .iter()
        .copied()
        .filter(|&c| c > lower)
        .min()
        .unwrap_or(n)
        .min(n);
    let (_, &mut low, above) = data[start..end].select_nth_unstable_by(lower - start, total_order);
    let fraction = position - lower as f64;
    if fraction == 0.0 || lower + 1 == n {
        return (low, lower);
    }
    let high = if above.is_empty() {
        // The next value is the smallest of the next block.
        let next_end = cuts
            .iter()
            .copied()
            .filter(|&c| c > end)
            .min()
            .unwrap_or(n)
            .min(n);
        smallest(&data[end..next_end])
    } else {
        smallest(above)
    };
    (lerp(low, high, fraction), lower)
}

pub(crate) fn smallest(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::INFINITY, f64::min)
}

/// Fills `out` with the simple returns `equity[t] / equity[t - 1] - 1`, blocked by
/// sign: the negative returns, then the zeros, then the positive ones (each block in
/// no particular order; the moments do not need the order). Returns where the zeros
/// and the positive returns start: the cuts of [`Tails::of_blocks`].
///
/// The 5th percentile of returns is nearly always among the negative ones and the
/// 95th among the positive ones, so each selection works on one block; a strategy that
/// is out of the market half the time has half its returns exactly zero, and those
/// are never touched again. The sign is written without a branch (both ends are
/// written and the sign decides which one is kept), as it is a coin flip per period.
/// Every equity point must be finite and positive (checked before).
///
/// The reference for the tests of the fused pass in `curve`, which
/// [`Metrics::compute`](super::Metrics::compute) uses instead.
#[cfg(test)]
pub(crate) fn returns_by_sign(equity: &[f64], out: &mut Vec<f64>) -> (usize, usize) {
    let n = equity.len().saturating_sub(1);
    out.clear();
    out.resize(n, 0.0);
    let (mut negative_end, mut positive_start) = (0, n);
    for w in equity.windows(2) {
        let r = w[1] / w[0] - 1.0;
        // negative_end < positive_start until the last return is placed.
        out[negative_end] = r;
        out[positive_start - 1] = r;
        negative_end += usize::from(r < 0.0);
        positive_start -= usize::from(r > 0.0);
    }
    out[negative_end..positive_start].fill(0.0);
    (negative_end, positive_start)
}

/// Tail statistics at `cutoff` from one scratch copy of the returns.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tails {
    pub(crate) value_at_risk: Metric,
    pub(crate) conditional_value_at_risk: Metric,
    pub(crate) tail_ratio: Metric,
}

impl Tails {
    /// Reorders `scratch` (the finite returns). `cutoff` in (0, 1).
    pub(crate) fn of(scratch: &mut [f64], cutoff: f64) -> Tails {
        Tails::of_blocks(scratch, cutoff, &[])
    }

    /// [`of`](Self::of) for returns already in ordered blocks (see [`quantile`]), e.g.
    /// from [`returns_by_sign`]. Two selections when `cutoff` is 0.05 (the 5th
    /// percentile is shared with the tail ratio, and the 95th is selected above it),
    /// three otherwise.
    pub(crate) fn of_blocks(scratch: &mut [f64], cutoff: f64, cuts: &[usize]) -> Tails {
        if scratch.is_empty() {
            let none = Err(Undefined::TooFewPeriods {
                required: 1,
                actual: 0,
            });
            return Tails {
                value_at_risk: none,
                conditional_value_at_risk: none,
                tail_ratio: none,
            };
        }
        debug_assert!(cuts.len() <= 2, "at most two cuts");
        let mut known = [0; 4];
        known[..cuts.len().min(2)].copy_from_slice(&cuts[..cuts.len().min(2)]);
        // empyrical's CVaR: the mean of the lowest floor((n - 1) * cutoff) + 1 returns,
        // which selecting the VaR's lower index has placed first.
        let (value_at_risk, lower) = quantile(scratch, cutoff, &known[..2]);
        let count = lower + 1;
        known[2] = count;
        let conditional_value_at_risk = scratch[..count].iter().sum::<f64>() / count as f64;
        let p5 = if cutoff == 0.05 {
            value_at_risk
        } else {
            let (p5, lower) = quantile(scratch, 0.05, &known[..3]);
            known[3] = lower + 1;
            p5
        };
        let (p95, _) = quantile(scratch, 0.95, &known);
        Tails {
            value_at_risk: Ok(value_at_risk),
            conditional_value_at_risk: Ok(conditional_value_at_risk),
            tail_ratio: tail_ratio_from(p5, p95),
        }
    }
}

/// `|p95| / |p5|` (empyrical).
pub(crate) fn tail_ratio_from(p5: f64, p95: f64) -> Metric {
    if p5 == 0.0 {
        return Err(Undefined::ZeroLeftTail);
    }
    finite(p95.abs() / p5.abs())
}

/// Checks that every return is finite.
pub(crate) fn check_returns(returns: &[f64]) -> Result<(), Undefined> {
    match returns.iter().position(|r| !r.is_finite()) {
        Some(index) => Err(Undefined::NonFiniteInput {
            index,
            value: returns[index],
        }),
        None => Ok(()),
    }
}

pub(crate) fn check_periods_per_year(value: f64) -> Result<(), Undefined> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(Undefined::InvalidParameter {
            parameter: Parameter::PeriodsPerYear,
            value,
        })
    }
}

fn check_rate(parameter: Parameter, value: f64) -> Result<(), Undefined> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(Undefined::InvalidParameter { parameter, value })
    }
}

fn check_cutoff(value: f64) -> Result<(), Undefined> {
    if value > 0.0 && value < 1.0 {
        Ok(())
    } else {
        Err(Undefined::InvalidParameter {
            parameter: Parameter::Cutoff,
            value,
        })
    }
}

/// Compounded return `prod(1 + r) - 1`; 0 for no returns.
///
/// ```
/// let total = quantcore::metrics::total_return(&[0.10, -0.10])?; // 1.1 * 0.9 - 1
/// assert!((total + 0.01).abs() < 1e-12);
/// # Ok::<(), quantcore::metrics::Undefined>(())
/// ```
///
/// # Errors
/// [`Undefined::NonFiniteInput`], or [`Undefined::Overflow`] when the product overflows.
pub fn total_return(returns: &[f64]) -> Metric {
    check_returns(returns)?;
    finite(returns.iter().map(|r| 1.0 + r).product::<f64>() - 1.0)
}

/// Compound annual growth rate `prod(1 + r)^(ppy / n) - 1` (empyrical's
/// `annual_return`).
///
/// ```
/// // two half-years of +10% each: 1.21^(2/2) - 1 = 21% a year
/// let growth = quantcore::metrics::cagr(&[0.1, 0.1], 2.0)?;
/// assert!((growth - 0.21).abs() < 1e-12);
/// # Ok::<(), quantcore::metrics::Undefined>(())
/// ```
///
/// # Errors
/// [`Undefined::TooFewPeriods`] for no returns, [`Undefined::EquityNotPositive`] when the
/// compounded equity reaches zero or below, [`Undefined::Overflow`], bad input or
/// `periods_per_year`.
#[doc(alias = "annual_return")]
pub fn cagr(returns: &[f64], periods_per_year: f64) -> Metric {
    check_returns(returns)?;
    check_periods_per_year(periods_per_year)?;
    let growth: f64 = returns.iter().map(|r| 1.0 + r).product();
    cagr_from_growth(growth, returns.len(), periods_per_year)
}

/// Arithmetic annualized return `mean(r) * ppy` (the numerator of the Sharpe ratio).
///
/// # Errors
/// [`Undefined::TooFewPeriods`] for no returns; bad input or `periods_per_year`.
pub fn annualized_mean_return(returns: &[f64], periods_per_year: f64) -> Metric {
    check_returns(returns)?;
    check_periods_per_year(periods_per_year)?;
    Moments::of(returns, 0.0).annualized_mean_return(periods_per_year)
}

/// Annualized volatility `std(r, ddof=1) * sqrt(ppy)`; exactly 0 for constant returns.
///
/// ```
/// // std(0.01, 0.03) = sqrt(2 * 0.01^2 / 1) = 0.01 * sqrt(2); times sqrt(4) = 2
/// let vol = quantcore::metrics::annual_volatility(&[0.01, 0.03], 4.0)?;
/// assert!((vol - 0.02 * 2f64.sqrt()).abs() < 1e-12);
/// # Ok::<(), quantcore::metrics::Undefined>(())
/// ```
///
/// # Errors
/// [`Undefined::TooFewPeriods`] below 2 returns; bad input or `periods_per_year`.
pub fn annual_volatility(returns: &[f64], periods_per_year: f64) -> Metric {
    check_returns(returns)?;
    check_periods_per_year(periods_per_year)?;
    Moments::of(returns, 0.0).annual_volatility(periods_per_year)
}

/// Sharpe ratio `mean(r - rf) / std(r, ddof=1) * sqrt(ppy)`, `rf` per period.
///
/// ```
/// // mean 0.02, std sqrt(((-0.01)^2 + 0.01^2) / 1) = 0.01 * sqrt(2), ppy 1
/// let sharpe = quantcore::metrics::sharpe_ratio(&[0.01, 0.03], 0.0, 1.0)?;
/// assert!((sharpe - 2.0 / 2f64.sqrt()).abs() < 1e-12);
/// # Ok::<(), quantcore::metrics::Undefined>(())
/// ```
///
/// # Errors
/// [`Undefined::TooFewPeriods`] below 2 returns, [`Undefined::ZeroVariance`]; bad input
/// or parameters.
pub fn sharpe_ratio(returns: &[f64], risk_free_rate: f64, periods_per_year: f64) -> Metric {
    check_returns(returns)?;
    check_rate(Parameter::RiskFreeRate, risk_free_rate)?;
    check_periods_per_year(periods_per_year)?;
    Moments::of(returns, 0.0).sharpe_ratio(risk_free_rate, periods_per_year)
}

/// Annualized downside deviation `sqrt(mean(min(r - target, 0)^2)) * sqrt(ppy)`, the
/// mean taken over all periods (empyrical's `downside_risk`).
///
/// # Errors
/// [`Undefined::TooFewPeriods`] for no returns; bad input or parameters.
pub fn downside_deviation(returns: &[f64], target: f64, periods_per_year: f64) -> Metric {
    check_returns(returns)?;
    check_rate(Parameter::Target, target)?;
    check_periods_per_year(periods_per_year)?;
    Moments::of(returns, target).downside_deviation(periods_per_year)
}

/// Sortino ratio as empyrical computes it:
/// `mean(r - target) * ppy / (sqrt(mean(min(r - target, 0)^2)) * sqrt(ppy))`.
///
/// ```
/// // r = (0.02, -0.01), target 0, ppy 1: mean 0.005;
/// // downside sqrt((0 + 0.01^2) / 2) = 0.01 / sqrt(2); ratio 0.005 * sqrt(2) / 0.01
/// let sortino = quantcore::metrics::sortino_ratio(&[0.02, -0.01], 0.0, 1.0)?;
/// assert!((sortino - 0.5 * 2f64.sqrt()).abs() < 1e-12);
/// # Ok::<(), quantcore::metrics::Undefined>(())
/// ```
///
/// # Errors
/// [`Undefined::TooFewPeriods`] below 2 returns, [`Undefined::NoDownside`] when no
/// return is below the target; bad input or parameters.
pub fn sortino_ratio(returns: &[f64], target: f64, periods_per_year: f64) -> Metric {
    check_returns(returns)?;
    check_rate(Parameter::Target, target)?;
    check_periods_per_year(periods_per_year)?;
    Moments::of(returns, target).sortino_ratio(target, periods_per_year)
}

/// Maximum drawdown of the equity compounded from 1 (the starting capital, the first
/// peak): `min_t(E_t / max_{s<=t} E_s - 1)`, a fraction <= 0; 0 for no returns.
///
/// ```
/// // equity 1 -> 1.2 -> 0.9 -> 0.99: worst is 0.9 / 1.2 - 1 = -25%
/// let dd = quantcore::metrics::max_drawdown(&[0.2, -0.25, 0.1])?;
/// assert!((dd + 0.25).abs() < 1e-12);
/// # Ok::<(), quantcore::metrics::Undefined>(())
/// ```
///
/// # Errors
/// [`Undefined::NonFiniteInput`], [`Undefined::Overflow`].
pub fn max_drawdown(returns: &[f64]) -> Metric {
    check_returns(returns)?;
    let (mut equity, mut peak, mut worst) = (1.0_f64, 1.0_f64, 0.0_f64);
    for r in returns {
        equity *= 1.0 + r;
        peak = peak.max(equity);
        worst = worst.min(equity / peak - 1.0);
    }
    finite(worst)
}

/// Calmar ratio `cagr / |max_drawdown|`.
///
/// # Errors
/// As [`cagr`], plus [`Undefined::NoDrawdown`] when the equity never fell.
pub fn calmar_ratio(returns: &[f64], periods_per_year: f64) -> Metric {
    let growth = cagr(returns, periods_per_year);
    calmar_from(growth, max_drawdown(returns)?)
}

/// Population skewness of the returns (scipy's `skew` default, `bias=True`).
///
/// # Errors
/// [`Undefined::TooFewPeriods`] below 3 returns, [`Undefined::ZeroVariance`]; bad input.
pub fn skewness(returns: &[f64]) -> Metric {
    check_returns(returns)?;
    Moments::of(returns, 0.0).skewness()
}

/// Population excess kurtosis of the returns (scipy's `kurtosis` default: Fisher,
/// `bias=True`; 0 for a normal distribution).
///
/// # Errors
/// [`Undefined::TooFewPeriods`] below 4 returns, [`Undefined::ZeroVariance`]; bad input.
pub fn excess_kurtosis(returns: &[f64]) -> Metric {
    check_returns(returns)?;
    Moments::of(returns, 0.0).excess_kurtosis()
}

/// Tail ratio `|p95| / |p5|` of the returns (empyrical), percentiles by numpy's linear
/// interpolation. Copies the returns once; O(n) by selection.
///
/// # Errors
/// [`Undefined::TooFewPeriods`] for no returns, [`Undefined::ZeroLeftTail`]; bad input.
pub fn tail_ratio(returns: &[f64]) -> Metric {
    check_returns(returns)?;
    if returns.is_empty() {
        return Err(Undefined::TooFewPeriods {
            required: 1,
            actual: 0,
        });
    }
    Tails::of(&mut returns.to_vec(), 0.05).tail_ratio
}

/// Historical value at risk: the `cutoff` percentile of the returns (numpy's linear
/// interpolation, as empyrical), usually negative. `cutoff = 0.05` for 95% VaR.
///
/// ```
/// // 11 returns -5%..+5%: the 5th percentile is at position 10 * 0.05 = 0.5,
/// // halfway between -5% and -4%
/// let returns: Vec<f64> = (-5..=5).map(|i| i as f64 / 100.0).collect();
/// let var = quantcore::metrics::value_at_risk(&returns, 0.05)?;
/// assert!((var + 0.045).abs() < 1e-12);
/// # Ok::<(), quantcore::metrics::Undefined>(())
/// ```
///
/// # Errors
/// [`Undefined::TooFewPeriods`] for no returns; bad input or cutoff outside (0, 1).
pub fn value_at_risk(returns: &[f64], cutoff: f64) -> Metric {
    check_returns(returns)?;
    check_cutoff(cutoff)?;
    Tails::of(&mut returns.to_vec(), cutoff).value_at_risk
}

/// Conditional value at risk (expected shortfall) as empyrical computes it: the mean of
/// the lowest `floor((n - 1) * cutoff) + 1` returns.
///
/// # Errors
/// [`Undefined::TooFewPeriods`] for no returns; bad input or cutoff outside (0, 1).
pub fn conditional_value_at_risk(returns: &[f64], cutoff: f64) -> Metric {
    check_returns(returns)?;
    check_cutoff(cutoff)?;
    Tails::of(&mut returns.to_vec(), cutoff).conditional_value_at_risk
}

/// The moments as computed before the passes were split (commit 5e5538c), verbatim:
/// the reference of the bit-for-bit tests.
#[cfg(test)]
pub(crate) fn reference_moments(returns: &[f64], target: f64) -> Moments {
    let n = returns.len();
    let chunks = returns.chunks_exact(LANES);
    let tail = chunks.remainder();
    let mut sum = [0.0; LANES];
    let mut best = [f64::NEG_INFINITY; LANES];
    let mut worst = [f64::INFINITY; LANES];
    for chunk in chunks {
        for lane in 0..LANES {
            let r = chunk[lane];
            sum[lane] += r;
            best[lane] = if r > best[lane] { r } else { best[lane] };
            worst[lane] = if r < worst[lane] { r } else { worst[lane] };
        }
    }
    for &r in tail {
        sum[0] += r;
        best[0] = best[0].max(r);
        worst[0] = worst[0].min(r);
    }
    let mean = if n == 0 {
        f64::NAN
    } else {
        sum.iter().sum::<f64>() / n as f64
    };
    let mut powers = [[0.0; LANES]; 4];
    let mut accumulate = |lane: usize, r: f64| {
        let d = r - mean;
        let d2 = d * d;
        powers[0][lane] += d2;
        powers[1][lane] += d2 * d;
        powers[2][lane] += d2 * d2;
        let below = if r < target { r - target } else { 0.0 };
        powers[3][lane] += below * below;
    };
    for chunk in returns.chunks_exact(LANES) {
        for (lane, &r) in chunk.iter().enumerate() {
            accumulate(lane, r);
        }
    }
    for &r in tail {
        accumulate(0, r);
    }
    let [m2, m3, m4, downside_squares] = powers.map(|lanes| lanes.iter().sum::<f64>());
    Moments {
        n,
        mean,
        m2,
        m3,
        m4,
        downside_squares,
        best: best.into_iter().fold(f64::NEG_INFINITY, f64::max),
        worst: worst.into_iter().fold(f64::INFINITY, f64::min),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PPY: f64 = 252.0;

    fn close(actual: Metric, expected: f64) {
        let actual = actual.unwrap_or_else(|reason| panic!("undefined: {reason}"));
        assert!(
            (actual - expected).abs() <= 1e-12 * expected.abs().max(1.0),
            "{actual} vs {expected}"
        );
    }

    // r = (0.01, -0.02, 0.03, 0.00): mean 0.02 / 4 = 0.005
    // deviations 0.005, -0.025, 0.025, -0.005; squares sum to
    // 2.5e-5 + 6.25e-4 + 6.25e-4 + 2.5e-5 = 1.3e-3; sample variance 1.3e-3 / 3
    const R: [f64; 4] = [0.01, -0.02, 0.03, 0.00];

    #[test]
    fn sharpe_and_volatility_by_hand() {
        let std = (1.3e-3_f64 / 3.0).sqrt();
        close(sharpe_ratio(&R, 0.0, PPY), 0.005 / std * PPY.sqrt());
        // rf 0.001 per period: mean excess 0.004, same std
        close(sharpe_ratio(&R, 0.001, PPY), 0.004 / std * PPY.sqrt());
        close(annual_volatility(&R, PPY), std * PPY.sqrt());
        close(annualized_mean_return(&R, PPY), 0.005 * 252.0);
    }

    #[test]
    fn sortino_by_hand() {
        // target 0: min(r, 0) = (0, -0.02, 0, 0); mean of squares 4e-4 / 4 = 1e-4;
        // downside 0.01 * sqrt(252); Sortino 0.005 * 252 / (0.01 * sqrt(252)) = 0.5 sqrt(252)
        close(downside_deviation(&R, 0.0, PPY), 0.01 * PPY.sqrt());
        close(sortino_ratio(&R, 0.0, PPY), 0.5 * PPY.sqrt());
        // target 0.01: r - t = (0, -0.03, 0.02, -0.01); squares of the negatives
        // 9e-4 + 1e-4 = 1e-3, / 4 = 2.5e-4; mean(r - t) = -0.005
        let downside = 2.5e-4_f64.sqrt() * PPY.sqrt();
        close(downside_deviation(&R, 0.01, PPY), downside);
        close(sortino_ratio(&R, 0.01, PPY), -0.005 * 252.0 / downside);
    }

    #[test]
    fn compounding_statistics_by_hand() {
        // equity 1 -> 1.1 -> 0.55 -> 0.66: total -34%, drawdown 0.55 / 1.1 - 1 = -50%
        // with 3 periods per year the run is one year: CAGR = 0.66 - 1; Calmar -0.34 / 0.5
        let r = [0.1, -0.5, 0.2];
        close(total_return(&r), -0.34);
        close(max_drawdown(&r), -0.5);
        close(cagr(&r, 3.0), -0.34);
        close(calmar_ratio(&r, 3.0), -0.68);
        // over half a year (ppy 6), CAGR = 0.66^2 - 1
        close(cagr(&r, 6.0), 0.66 * 0.66 - 1.0);
        assert_eq!(total_return(&[]), Ok(0.0));
        assert_eq!(max_drawdown(&[]), Ok(0.0));
    }

    #[test]
    fn higher_moments_by_hand() {
        // (0, 0, 0, 0.04): mean 0.01, deviations -0.01 x3, 0.03
        // m2 = 3e-4 + 9e-4 = 1.2e-3, m3 = -3e-6 + 27e-6 = 24e-6, m4 = 3e-8 + 81e-8 = 84e-8
        // skew = (24e-6 / 4) / (1.2e-3 / 4)^1.5 = 2 / sqrt(3)
        // kurtosis = (84e-8 / 4) / (1.2e-3 / 4)^2 - 3 = 21 / 9 - 3 = -2/3
        let r = [0.0, 0.0, 0.0, 0.04];
        close(skewness(&r), 2.0 / 3.0_f64.sqrt());
        close(excess_kurtosis(&r), -2.0 / 3.0);
        close(skewness(&R), 0.0);
    }

    #[test]
    fn tails_by_hand() {
        // 11 returns, shuffled; sorted: -0.10, -0.02, -0.01, 0, 0.01 ... 0.06, 0.20
        // p5 at position 10 * 0.05 = 0.5: (-0.10 + -0.02) / 2 = -0.06
        // p95 at position 9.5: (0.06 + 0.20) / 2 = 0.13; tail ratio 0.13 / 0.06
        // CVaR: floor(10 * 0.05) + 1 = 1 lowest return: -0.10
        let r = [
            0.03, 0.20, -0.01, 0.05, -0.10, 0.0, 0.06, 0.01, -0.02, 0.04, 0.02,
        ];
        close(value_at_risk(&r, 0.05), -0.06);
        close(tail_ratio(&r), 0.13 / 0.06);
        close(conditional_value_at_risk(&r, 0.05), -0.10);
        // cutoff 0.25: position 2.5 -> (-0.01 + 0) / 2; CVaR over floor(2.5) + 1 = 3 lowest
        close(value_at_risk(&r, 0.25), -0.005);
        close(
            conditional_value_at_risk(&r, 0.25),
            (-0.10 - 0.02 - 0.01) / 3.0,
        );
        // a single return is every percentile
        close(value_at_risk(&[0.07], 0.05), 0.07);
    }

    /// numpy's linear-interpolation percentile by full sorting.
    fn sorted_percentile(returns: &[f64], q: f64) -> f64 {
        let mut sorted = returns.to_vec();
        sorted.sort_by(f64::total_cmp);
        let position = (sorted.len() - 1) as f64 * q;
        let lower = position.floor() as usize;
        let upper = (lower + 1).min(sorted.len() - 1);
        sorted[lower] + (sorted[upper] - sorted[lower]) * (position - lower as f64)
    }

    #[test]
    fn selections_match_sorting_on_random_data() {
        use rand::{Rng, SeedableRng, rngs::StdRng};
        let mut rng = StdRng::seed_from_u64(17);
        for n in [1, 2, 3, 5, 20, 21, 99, 1_000, 4_321] {
            // heavy ties: values on a coarse grid
            let r: Vec<f64> = (0..n)
                .map(|_| rng.gen_range(-20..=20) as f64 / 1_000.0)
                .collect();
            for cutoff in [0.01, 0.05, 0.25, 0.5, 0.99] {
                close(value_at_risk(&r, cutoff), sorted_percentile(&r, cutoff));
                let mut sorted = r.clone();
                sorted.sort_by(f64::total_cmp);
                let count = ((n - 1) as f64 * cutoff) as usize + 1;
                let cvar = sorted[..count].iter().sum::<f64>() / count as f64;
                close(conditional_value_at_risk(&r, cutoff), cvar);
                // the tail ratio after a VaR at another cutoff reuses the partition
                let tails = Tails::of(&mut r.clone(), cutoff);
                let p5 = sorted_percentile(&r, 0.05);
                let p95 = sorted_percentile(&r, 0.95);
                if p5 == 0.0 {
                    assert_eq!(tails.tail_ratio, Err(Undefined::ZeroLeftTail));
                } else {
                    close(tails.tail_ratio, p95.abs() / p5.abs());
                }
            }
        }
    }

    #[test]
    fn sign_blocks_give_the_percentiles_of_sorting() {
        use rand::{Rng, SeedableRng, rngs::StdRng};
        let mut rng = StdRng::seed_from_u64(29);
        // Mostly zeros (out of the market), no zeros, one sign only, all zeros, tiny.
        let shapes: [(f64, f64, f64); 6] = [
            (0.5, -0.02, 0.02),
            (0.0, -0.02, 0.02),
            (0.3, -0.02, -0.001),
            (0.3, 0.001, 0.02),
            (1.0, -0.02, 0.02),
            (0.97, -0.02, 0.02),
        ];
        for (zeros, low, high) in shapes {
            for n in [1, 2, 3, 10, 101, 2_000] {
                let r: Vec<f64> = (0..n)
                    .map(|_| {
                        if rng.gen_bool(zeros) {
                            0.0
                        } else {
                            rng.gen_range(low..high)
                        }
                    })
                    .collect();
                let mut equity = vec![100.0];
                for x in &r {
                    equity.push(equity[equity.len() - 1] * (1.0 + x));
                }
                // The returns of the curve, as the metrics see them.
                let exact: Vec<f64> = equity.windows(2).map(|w| w[1] / w[0] - 1.0).collect();
                let mut blocked = Vec::new();
                let (zero_start, positive_start) = returns_by_sign(&equity, &mut blocked);
                assert!(blocked[..zero_start].iter().all(|&x| x < 0.0));
                assert!(
                    blocked[zero_start..positive_start]
                        .iter()
                        .all(|&x| x == 0.0)
                );
                assert!(blocked[positive_start..].iter().all(|&x| x > 0.0));
                let mut sorted = exact.clone();
                sorted.sort_by(f64::total_cmp);
                let mut resorted = blocked.clone();
                resorted.sort_by(f64::total_cmp);
                assert_eq!(resorted, sorted, "the same values");
                for cutoff in [0.01, 0.05, 0.5, 0.99] {
                    let tails = Tails::of_blocks(
                        &mut blocked.clone(),
                        cutoff,
                        &[zero_start, positive_start],
                    );
                    close(tails.value_at_risk, sorted_percentile(&exact, cutoff));
                    let count = ((n - 1) as f64 * cutoff) as usize + 1;
                    let cvar = sorted[..count].iter().sum::<f64>() / count as f64;
                    close(tails.conditional_value_at_risk, cvar);
                    let (p5, p95) = (
                        sorted_percentile(&exact, 0.05),
                        sorted_percentile(&exact, 0.95),
                    );
                    match tails.tail_ratio {
                        Ok(ratio) => close(Ok(ratio), p95.abs() / p5.abs()),
                        Err(reason) => assert_eq!((reason, p5), (Undefined::ZeroLeftTail, 0.0)),
                    }
                }
            }
        }
    }

    #[test]
    fn moments_match_a_naive_two_pass_for_every_length() {
        // lengths around the lane width exercise the remainder handling
        use rand::{Rng, SeedableRng, rngs::StdRng};
        let mut rng = StdRng::seed_from_u64(23);
        for n in 1..=19 {
            let r: Vec<f64> = (0..n).map(|_| rng.gen_range(-0.05..0.05)).collect();
            let m = Moments::of(&r, 0.01);
            let mean = r.iter().sum::<f64>() / n as f64;
            let power = |k: i32| r.iter().map(|x| (x - mean).powi(k)).sum::<f64>();
            let downside: f64 = r.iter().map(|x| (x - 0.01).min(0.0).powi(2)).sum();
            assert!((m.mean - mean).abs() < 1e-15, "n={n}");
            assert!((m.m2 - power(2)).abs() < 1e-15, "n={n}");
            assert!((m.m3 - power(3)).abs() < 1e-15, "n={n}");
            assert!((m.m4 - power(4)).abs() < 1e-15, "n={n}");
            assert!((m.downside_squares - downside).abs() < 1e-15, "n={n}");
            assert_eq!(m.best, r.iter().copied().fold(f64::MIN, f64::max));
            assert_eq!(m.worst, r.iter().copied().fold(f64::MAX, f64::min));
        }
    }

    /// Both passes against the code they replaced: every field bit for bit, for every length around the lanes.
    #[test]
    fn moments_are_the_old_two_passes_bit_for_bit() {
        use rand::{Rng, SeedableRng, rngs::StdRng};
        let mut rng = StdRng::seed_from_u64(37);
        for n in (0..=41).chain([1_000, 1_003]) {
            for target in [0.0, 0.01, -0.02] {
                let r: Vec<f64> = (0..n)
                    .map(|_| match rng.gen_range(0..4) {
                        0 => 0.0,
                        _ => rng.gen_range(-0.05..0.05),
                    })
                    .collect();
                let old = reference_moments(&r, target);
                let new = Moments::of(&r, target);
                let fields = |m: Moments| {
                    [
                        m.mean,
                        m.m2,
                        m.m3,
                        m.m4,
                        m.downside_squares,
                        m.best,
                        m.worst,
                    ]
                    .map(f64::to_bits)
                };
                assert_eq!((new.n, fields(new)), (old.n, fields(old)), "{n} {target}");
            }
        }
    }

    #[test]
    fn undefined_cases() {
        assert_eq!(
            sharpe_ratio(&[0.01], 0.0, PPY),
            Err(Undefined::TooFewPeriods {
                required: 2,
                actual: 1
            })
        );
        assert_eq!(
            cagr(&[], PPY),
            Err(Undefined::TooFewPeriods {
                required: 1,
                actual: 0
            })
        );
        assert_eq!(
            skewness(&[0.01, 0.02]),
            Err(Undefined::TooFewPeriods {
                required: 3,
                actual: 2
            })
        );
        assert_eq!(
            sharpe_ratio(&[0.01; 5], 0.0, PPY),
            Err(Undefined::ZeroVariance)
        );
        assert_eq!(excess_kurtosis(&[0.01; 5]), Err(Undefined::ZeroVariance));
        assert_eq!(annual_volatility(&[0.01; 5], PPY), Ok(0.0));
        assert_eq!(
            sortino_ratio(&[0.01, 0.02], 0.0, PPY),
            Err(Undefined::NoDownside)
        );
        assert_eq!(downside_deviation(&[0.01, 0.02], 0.0, PPY), Ok(0.0));
        assert_eq!(calmar_ratio(&[0.01, 0.02], PPY), Err(Undefined::NoDrawdown));
        assert_eq!(
            tail_ratio(&[0.0, 0.0, 0.0, 0.01]),
            Err(Undefined::ZeroLeftTail)
        );
        assert_eq!(cagr(&[0.5, -1.0], PPY), Err(Undefined::EquityNotPositive));
        assert_eq!(cagr(&[-1.5], PPY), Err(Undefined::EquityNotPositive));
        assert_eq!(cagr(&[0.5], 1e6), Err(Undefined::Overflow));
        assert!(matches!(
            sharpe_ratio(&[0.01, f64::NAN], 0.0, PPY),
            Err(Undefined::NonFiniteInput { index: 1, .. })
        ));
        for bad in [0.0, -252.0, f64::NAN, f64::INFINITY] {
            assert_eq!(
                annual_volatility(&R, bad).unwrap_err().to_string(),
                format!("parameter `periods_per_year` is out of range, was {bad}")
            );
        }
        assert!(matches!(
            sharpe_ratio(&R, f64::NAN, PPY),
            Err(Undefined::InvalidParameter {
                parameter: Parameter::RiskFreeRate,
                ..
            })
        ));
        for bad in [0.0, 1.0, -0.1, f64::NAN] {
            assert!(matches!(
                value_at_risk(&R, bad),
                Err(Undefined::InvalidParameter {
                    parameter: Parameter::Cutoff,
                    ..
                })
            ));
        }
    }

    #[test]
    fn constant_growth_with_rounding_noise_has_zero_variance() {
        // equity 100 * 1.01^t: the returns differ from 0.01 in the last bits only;
        // a Sharpe ratio from that noise would be astronomically large and meaningless
        let equity: Vec<f64> = (0..300).map(|t| 100.0 * 1.01_f64.powi(t)).collect();
        let returns: Vec<f64> = equity.windows(2).map(|w| w[1] / w[0] - 1.0).collect();
        assert!(
            returns.iter().any(|&r| r != returns[0]),
            "expected rounding noise"
        );
        assert_eq!(
            sharpe_ratio(&returns, 0.0, PPY),
            Err(Undefined::ZeroVariance)
        );
    }

    #[test]
    fn undefined_serializes_with_its_reason() {
        let json = serde_json::to_value(Undefined::TooFewPeriods {
            required: 2,
            actual: 1,
        })
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"reason": "too_few_periods", "required": 2, "actual": 1})
        );
        assert_eq!(
            Undefined::TooFewPeriods {
                required: 2,
                actual: 1
            }
            .to_string(),
            "needs at least 2 periods, had 1"
        );
    }
}
