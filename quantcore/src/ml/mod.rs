//! Machine learning: the LSTM next-price predictor and the Isolation Forest anomaly
//! detector.

pub mod iforest;
#[cfg(feature = "lstm")]
pub mod lstm;
