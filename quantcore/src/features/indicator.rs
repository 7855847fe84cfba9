//! The shape shared by every streaming indicator.

use crate::error::{Error, Result};

/// A streaming indicator: fed one input at a time, it returns its newest value.
///
/// Every indicator of this module implements it, so generic code (a strategy holding a
/// list of indicators, the batch functions) can drive any of them. Each type also has
/// inherent methods of the same names, so calling `update` needs no trait import.
///
/// ```
/// use quantcore::features::{Indicator, Sma};
///
/// fn last_value<I: Indicator<Input = f64>>(indicator: &mut I, inputs: &[f64]) -> Option<f64> {
///     inputs.iter().fold(None, |_, &x| indicator.update(x))
/// }
/// let mut sma = Sma::new(2)?;
/// assert_eq!(last_value(&mut sma, &[1.0, 2.0, 4.0]), Some(3.0));
/// # Ok::<(), quantcore::Error>(())
/// ```
pub trait Indicator {
    /// What one update consumes: a price for most, `(high, low, close)` for [`Atr`](super::Atr).
    type Input: Copy;

    /// Feeds one input; returns the new value, or `None` during warm-up (and, for the
    /// indicators that can be undefined, when the value is undefined; see each type).
    fn update(&mut self, input: Self::Input) -> Option<f64>;

    /// The value after the last update, `None` during warm-up.
    fn value(&self) -> Option<f64>;

    /// Forgets every input, as if freshly constructed; keeps the allocation.
    fn reset(&mut self);

    /// How many inputs it takes to get the first value: the first value comes with
    /// the `warm_up()`-th input (`period` for [`Sma`](super::Sma), `lag + 1` for returns).
    fn warm_up(&self) -> usize;
}

/// Checks an indicator period: `Err(InvalidParameter)` below `minimum`.
pub(crate) fn check_period(period: usize, minimum: usize, reason: &'static str) -> Result<()> {
    if period < minimum {
        return Err(Error::invalid_parameter("period", period, reason));
    }
    Ok(())
}

/// Runs `indicator` over `inputs`; one output per input, `NaN` where the indicator has
/// no value. The batch functions are this, so streaming and batch always agree.
pub(crate) fn run<I: Indicator>(
    indicator: &mut I,
    inputs: impl ExactSizeIterator<Item = I::Input>,
) -> Vec<f64> {
    let mut out = Vec::with_capacity(inputs.len());
    out.extend(inputs.map(|input| indicator.update(input).unwrap_or(f64::NAN)));
    out
}
