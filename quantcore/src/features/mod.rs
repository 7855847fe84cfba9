//! Rolling indicators in streaming form (TODO), LSTM input windows and anomaly
//! feature vectors.

pub mod anomaly;
pub mod windows;
