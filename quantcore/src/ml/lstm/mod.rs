//! LSTM next-close predictor on candle (CPU, `f32`), behind the `lstm` feature.
//!
//! | item | owns |
//! |---|---|
//! | [`LstmConfig`] | window, input features, architecture, training schedule, seed |
//! | [`Scaler`] | per-feature standardisation fitted on the training part only |
//! | [`LstmNetwork`] | the stacked LSTM + linear head, PyTorch's equations and tensor names, safetensors |
//! | [`LstmPredictor`] | `train` (chronological split, early stopping, progress callback), `predict`, `predict_batch`, `save`/`load` |
//!
//! The model predicts the next bar's *log return* from standardised per-bar features
//! ([`features::windows`](crate::features::windows)) and converts it into a price:
//! `predicted_close = close[t] * exp(log_return)`. See [`LstmPredictor`] for the
//! training procedure and [`network`] for the equations, the accepted tensor names of a
//! PyTorch `state_dict` and the two forward passes (candle tensors with autograd for
//! training, a fused `f32` loop for prediction, run in parallel over many windows).
//!
//! # Saved model layout
//! A directory with `model.safetensors` (weights under PyTorch's names, `f32`) and
//! `model.json`:
//!
//! ```json
//! { "format": "quantcore.lstm", "format_version": 1,
//!   "config": { "window": 30, "features": ["log_return", "range", ...], ... },
//!   "scaler": { "feature_mean": [...], "feature_scale": [...], "target_mean": 0.0, "target_scale": 0.01 },
//!   "history": { "train_loss": [...], "val_loss": [...], "best_epoch": 12, ... } }
//! ```
//!
//! `history` is optional, so a model trained in PyTorch is loaded by saving its
//! `state_dict` with `safetensors.torch.save_file` as `model.safetensors` and writing
//! the JSON with the config and the scaler statistics used in Python.

mod cell;
mod config;
mod kernel;
mod model;
pub mod network;
mod scaler;
#[cfg(test)]
mod torch_fixture;

pub use config::LstmConfig;
pub use model::{
    EpochProgress, FORMAT_NAME, FORMAT_VERSION, LstmPredictor, METADATA_FILE, ProgressControl,
    StopReason, TrainingHistory, WEIGHTS_FILE,
};
pub use network::{LstmNetwork, tensor_names};
pub use scaler::Scaler;
