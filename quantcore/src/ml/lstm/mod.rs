//! LSTM predictor (TODO).
