//! [`LstmPredictor`]: training, prediction and persistence of the next-close model.

use std::ops::ControlFlow;
use std::path::Path;

use candle_core::{Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::config::LstmConfig;
use super::network::{LstmNetwork, Training, backend};
use super::scaler::Scaler;
use crate::data::BarSeries;
use crate::error::{Error, Result};
use crate::features::windows::bar_features;

/// Name of the weights file inside a saved model directory.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// Name of the metadata file (config, scaler, history) inside a saved model directory.
pub const METADATA_FILE: &str = "model.json";
/// The `format` tag of [`METADATA_FILE`].
pub const FORMAT_NAME: &str = "quantcore.lstm";
/// The metadata format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// What the progress callback of [`LstmPredictor::train`] sees after each epoch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpochProgress {
    /// The epoch just finished, from 1.
    pub epoch: usize,
    /// The configured maximum number of epochs.
    pub epochs: usize,
    /// Mean squared error on the training samples, averaged over the epoch's batches
    /// (weighted by batch size) while the weights were changing, in standardised
    /// target units (1.0 = the variance of the training targets).
    pub train_loss: f64,
    /// Mean squared error on the validation samples after the epoch, same units;
    /// `None` without a validation part.
    pub val_loss: Option<f64>,
    /// The epoch with the lowest validation loss so far (the current one without a
    /// validation part).
    pub best_epoch: usize,
    /// The lowest validation loss so far.
    pub best_val_loss: Option<f64>,
}

/// What a progress callback returns: `()` to go on, or a [`ControlFlow`] whose
/// `Break` stops training after the current epoch (the best weights are restored).
pub trait ProgressControl {
    /// True when training should stop.
    fn should_stop(&self) -> bool;
}

impl ProgressControl for () {
    fn should_stop(&self) -> bool {
        false
    }
}

impl<B> ProgressControl for ControlFlow<B> {
    fn should_stop(&self) -> bool {
        self.is_break()
    }
}

/// Why training ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// All configured epochs ran.
    Completed,
    /// `patience` epochs passed without a better validation loss.
    EarlyStopped,
    /// The progress callback returned `Break`.
    Interrupted,
}

/// The record of a training run, saved with the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingHistory {
    /// Training loss of each epoch run (see [`EpochProgress::train_loss`]).
    pub train_loss: Vec<f64>,
    /// Validation loss of each epoch run; empty without a validation part.
    pub val_loss: Vec<f64>,
    /// The epoch (from 1) whose weights the model holds.
    pub best_epoch: usize,
    /// Why training ended.
    pub stop_reason: StopReason,
    /// Number of training samples (windows with a known next close).
    pub train_samples: usize,
    /// Number of validation samples, the chronologically last ones.
    pub validation_samples: usize,
}

/// The JSON metadata written next to the weights.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Metadata {
    format: String,
    format_version: u32,
    config: LstmConfig,
    scaler: Scaler,
    #[serde(default)]
    history: Option<TrainingHistory>,
}

/// The training data of one series: standardised feature rows and targets.
struct Samples {
    /// Standardised feature rows, `(n_bars - 1) x input_size`, row `r` is bar `r + 1`.
    features: Vec<f32>,
    /// Standardised next log return of each sample; sample `k` is the window of rows
    /// `k .. k + window`, whose last bar is `k + window`.
    targets: Vec<f32>,
    train: usize,
}

/// An LSTM that predicts the next bar's close from the last `window` bars.
///
/// # Model
/// - **Inputs**: the configured per-bar features ([`BarFeature`](crate::features::windows::BarFeature),
///   default all five) of the last `window` bars, each standardised by the [`Scaler`].
///   Each feature compares a bar with the previous one, so a prediction needs
///   `window + 1` bars.
/// - **Target**: the next bar's log return `ln(close[t+1] / close[t])`, standardised.
///   A prediction turns the network's output `y` back into a price:
///   `close[t] * exp(target_mean + target_scale * y)`. Predicting a stationary return
///   rather than a price level keeps the model valid when prices drift out of the
///   training range.
/// - **Network**: stacked LSTM layers and a linear head ([`LstmNetwork`], PyTorch's
///   equations and tensor names).
///
/// # Training
/// Sample `k` is the window ending at bar `t = k + window` with target bar `t + 1`.
/// The last `validation_fraction` of the samples (chronologically; at least one when
/// the fraction is positive) is the validation part; the scaler is fitted on the
/// feature rows and targets of the training part only, so nothing from the validation
/// period leaks into the inputs' scaling. Each epoch shuffles the training samples
/// with a generator seeded from `seed`, takes AdamW steps on the mean squared error of
/// mini-batches, then measures the validation loss. Training stops after `epochs`, after
/// `patience` epochs without improvement, or when the callback says so; the weights of
/// the best validation epoch are restored. There is no gradient clipping. The same
/// config and series give bit-identical weights: the initialisation, the shuffling and
/// the dropout masks all come from `seed`, and candle's CPU kernels are deterministic.
///
/// ```
/// use quantcore::ml::lstm::{LstmConfig, LstmPredictor};
/// # use quantcore::BarSeries;
/// # let n = 120;
/// # let close: Vec<f64> = (0..n).map(|i| 100.0 + (i as f64 * 0.3).sin()).collect();
/// # let series = BarSeries::new((0..n as i64).collect(), close.clone(),
/// #     close.iter().map(|c| c * 1.01).collect(), close.iter().map(|c| c * 0.99).collect(),
/// #     close.clone(), vec![1000.0; n])?;
/// let config = LstmConfig { window: 10, hidden_size: 8, epochs: 3, ..LstmConfig::default() };
/// let mut losses = Vec::new();
/// let model = LstmPredictor::train(&series, &config, |p| losses.push(p.train_loss))?;
/// assert_eq!(losses.len(), 3);
/// let next_close = model.predict(&series)?;
/// assert!(next_close > 90.0 && next_close < 110.0);
/// let all = model.predict_batch(&series)?; // one prediction per bar from bar 10 on
/// assert_eq!(all.len(), n - 10);
/// assert_eq!(all[all.len() - 1], next_close);
/// # Ok::<(), quantcore::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct LstmPredictor {
    config: LstmConfig,
    scaler: Scaler,
    network: LstmNetwork,
    history: Option<TrainingHistory>,
}

impl LstmPredictor {
    /// Trains a predictor on `series`; `progress` is called after every epoch and may
    /// stop training by returning `ControlFlow::Break(())` (or return `()`).
    ///
    /// # Errors
    /// As [`LstmConfig::validate`]; [`Error::NotEnoughData`] when the series has fewer
    /// than `window + 2` bars (`window + 3` with a validation part: one training and one
    /// validation sample); [`Error::TrainingDiverged`] when a loss becomes non-finite;
    /// [`Error::Backend`] if candle fails.
    pub fn train<R: ProgressControl>(
        series: &BarSeries,
        config: &LstmConfig,
        mut progress: impl FnMut(EpochProgress) -> R,
    ) -> Result<Self> {
        config.validate()?;
        let (samples, scaler) = prepare(series, config)?;
        let mut network = LstmNetwork::new_seeded(
            config.input_size(),
            config.hidden_size,
            config.num_layers,
            config.seed,
        )?;
        let mut optimizer = AdamW::new(
            network.vars(),
            ParamsAdamW {
                lr: config.learning_rate,
                weight_decay: config.weight_decay,
                ..ParamsAdamW::default()
            },
        )
        .map_err(backend("creating the optimizer"))?;
        // A stream apart from the initialisation's, so that changing the data size does
        // not change the initial weights.
        let mut rng = StdRng::seed_from_u64(config.seed ^ 0x9E37_79B9_7F4A_7C15);
        let row = config.window * config.input_size();
        let mut order: Vec<usize> = (0..samples.train).collect();
        let mut batch_inputs = Vec::with_capacity(config.batch_size * row);
        let mut batch_targets = Vec::with_capacity(config.batch_size);
        let validation_samples = samples.targets.len() - samples.train;

        let mut history = TrainingHistory {
            train_loss: Vec::new(),
            val_loss: Vec::new(),
            best_epoch: 0,
            stop_reason: StopReason::Completed,
            train_samples: samples.train,
            validation_samples,
        };
        let mut best: Option<(f64, Vec<Tensor>)> = None;
        for epoch in 1..=config.epochs {
            order.shuffle(&mut rng);
            let mut loss_sum = 0.0;
            for chunk in order.chunks(config.batch_size) {
                gather(
                    &samples,
                    config,
                    chunk,
                    &mut batch_inputs,
                    &mut batch_targets,
                );
                let inputs = Tensor::from_slice(
                    &batch_inputs,
                    (chunk.len(), config.window, config.input_size()),
                    &Device::Cpu,
                )
                .map_err(backend("building a training batch"))?;
                let targets = Tensor::from_slice(&batch_targets, chunk.len(), &Device::Cpu)
                    .map_err(backend("building a training batch"))?;
                let training = Training {
                    rng: &mut rng,
                    dropout: config.dropout,
                };
                let loss = network
                    .forward_tensor(&inputs, Some(training))
                    .and_then(|out| candle_nn::loss::mse(&out, &targets))
                    .map_err(backend("lstm training forward"))?;
                optimizer
                    .backward_step(&loss)
                    .map_err(backend("lstm training backward"))?;
                let loss = loss
                    .to_scalar::<f32>()
                    .map_err(backend("reading the loss"))?;
                loss_sum += f64::from(loss) * chunk.len() as f64;
            }
            let train_loss = loss_sum / samples.train as f64;
            if !train_loss.is_finite() {
                return Err(Error::TrainingDiverged {
                    epoch,
                    loss: train_loss,
                });
            }
            history.train_loss.push(train_loss);
            let val_loss = if validation_samples == 0 {
                history.best_epoch = epoch;
                None
            } else {
                let loss = evaluate(&mut network, &samples, config)?;
                if !loss.is_finite() {
                    return Err(Error::TrainingDiverged { epoch, loss });
                }
                history.val_loss.push(loss);
                if best.as_ref().is_none_or(|(b, _)| loss < *b) {
                    best = Some((loss, network.snapshot()?));
                    history.best_epoch = epoch;
                }
                Some(loss)
            };
            let report = EpochProgress {
                epoch,
                epochs: config.epochs,
                train_loss,
                val_loss,
                best_epoch: history.best_epoch,
                best_val_loss: best.as_ref().map(|(b, _)| *b),
            };
            if progress(report).should_stop() {
                history.stop_reason = StopReason::Interrupted;
                break;
            }
            if let Some(patience) = config.patience
                && val_loss.is_some()
                && epoch - history.best_epoch >= patience
                && epoch < config.epochs
            {
                history.stop_reason = StopReason::EarlyStopped;
                break;
            }
        }
        match best {
            Some((_, weights)) => network.restore(&weights)?,
            None => network.refresh_fused()?,
        }
        Ok(LstmPredictor {
            config: config.clone(),
            scaler,
            network,
            history: Some(history),
        })
    }

    /// Assembles a predictor from a network trained elsewhere (for example in PyTorch,
    /// loaded with [`LstmNetwork::load_safetensors`]) and the scaler used for its inputs.
    ///
    /// # Errors
    /// As [`LstmConfig::validate`] and [`Scaler::validate`]; [`Error::InvalidParameter`]
    /// when the network's sizes differ from the config's.
    pub fn from_parts(config: LstmConfig, scaler: Scaler, network: LstmNetwork) -> Result<Self> {
        config.validate()?;
        scaler.validate(config.input_size())?;
        for (name, config_value, network_value) in [
            ("input_size", config.input_size(), network.input_size()),
            ("hidden_size", config.hidden_size, network.hidden_size()),
            ("num_layers", config.num_layers, network.num_layers()),
        ] {
            if config_value != network_value {
                return Err(Error::invalid_parameter(
                    name,
                    network_value,
                    "of the network must equal the config's",
                ));
            }
        }
        Ok(LstmPredictor {
            config,
            scaler,
            network,
            history: None,
        })
    }

    /// The next bar's predicted close from the last `window + 1` bars of `series`.
    ///
    /// # Errors
    /// [`Error::NotEnoughData`] when the series has fewer than `window + 1` bars.
    pub fn predict(&self, series: &BarSeries) -> Result<f64> {
        let window = self.config.window;
        let n = series.len();
        if n < window + 1 {
            return Err(Error::NotEnoughData {
                what: "an lstm prediction (bars: window + 1)",
                required: window + 1,
                actual: n,
            });
        }
        let width = self.config.input_size();
        let mut inputs = vec![0.0f32; window * width];
        for (t, row) in inputs.chunks_exact_mut(width).enumerate() {
            let bar = n - window + t;
            let values = self.config.features.iter().map(|f| f.value(series, bar));
            self.scaler.transform_row_into(values, row);
        }
        let output = self.network.forward_window(&inputs)?;
        Ok(self.to_price(output, series.close()[n - 1]))
    }

    /// Predicted next closes for every bar that has `window` bars of history: element
    /// `i` is the prediction made at the close of bar `window + i` for bar
    /// `window + i + 1`, so the last element is [`LstmPredictor::predict`]'s. The
    /// windows run through [`LstmNetwork::forward_sliding`] (the fused pass, in
    /// parallel, windows read in place), so each element equals `predict` on the
    /// series cut after its bar, bit for bit.
    ///
    /// # Errors
    /// [`Error::NotEnoughData`] when the series has fewer than `window + 1` bars.
    pub fn predict_batch(&self, series: &BarSeries) -> Result<Vec<f64>> {
        let window = self.config.window;
        if series.len() < window + 1 {
            return Err(Error::NotEnoughData {
                what: "an lstm prediction (bars: window + 1)",
                required: window + 1,
                actual: series.len(),
            });
        }
        let features = scaled_features(series, &self.config, &self.scaler)?;
        let outputs = self.network.forward_sliding(&features, window)?;
        let close = series.close();
        Ok(outputs
            .into_iter()
            .enumerate()
            .map(|(k, output)| self.to_price(output, close[k + window]))
            .collect())
    }

    /// The price for a network output, from the close it is relative to.
    fn to_price(&self, output: f32, last_close: f64) -> f64 {
        last_close * self.scaler.unscale_target(f64::from(output)).exp()
    }

    /// Writes `dir/model.safetensors` (weights, PyTorch names) and `dir/model.json`
    /// (format tag and version, config, scaler, training history), creating `dir`.
    ///
    /// The weights reload bit for bit. The JSON floats are written in their shortest
    /// round-trip form, but serde_json without its `float_roundtrip` feature may parse
    /// one back a unit in the last place away, so a reloaded model's predictions agree
    /// to about 1e-15 relative rather than bit for bit.
    ///
    /// # Errors
    /// [`Error::Io`] when a file cannot be written.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |err: std::io::Error| Error::Io {
                path,
                message: err.to_string(),
            }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        self.network.save_safetensors(dir.join(WEIGHTS_FILE))?;
        let metadata = Metadata {
            format: FORMAT_NAME.to_string(),
            format_version: FORMAT_VERSION,
            config: self.config.clone(),
            scaler: self.scaler.clone(),
            history: self.history.clone(),
        };
        let json = serde_json::to_string_pretty(&metadata).map_err(|err| Error::Io {
            path: dir.join(METADATA_FILE).display().to_string(),
            message: err.to_string(),
        })?;
        let path = dir.join(METADATA_FILE);
        std::fs::write(&path, json).map_err(io(&path))
    }

    /// Reads a model written by [`LstmPredictor::save`], or a PyTorch state dict saved
    /// as `model.safetensors` next to a hand-written `model.json`.
    ///
    /// ```
    /// # use quantcore::ml::lstm::{LstmConfig, LstmPredictor};
    /// # use quantcore::BarSeries;
    /// # let n = 60;
    /// # let close: Vec<f64> = (0..n).map(|i| 50.0 + (i as f64 * 0.5).cos()).collect();
    /// # let series = BarSeries::new((0..n as i64).collect(), close.clone(), close.clone(),
    /// #     close.clone(), close.clone(), vec![10.0; n])?;
    /// # let config = LstmConfig { window: 5, hidden_size: 4, epochs: 1, ..LstmConfig::default() };
    /// let model = LstmPredictor::train(&series, &config, |_| ())?;
    /// let dir = std::env::temp_dir().join(format!("quantcore-doc-lstm-{}", std::process::id()));
    /// model.save(&dir)?;
    /// let loaded = LstmPredictor::load(&dir)?;
    /// let (a, b) = (loaded.predict(&series)?, model.predict(&series)?);
    /// assert!((a - b).abs() < 1e-12 * b); // JSON floats parse back to within an ulp
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), quantcore::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] when a file cannot be read; [`Error::ModelFormat`] for bad JSON, a
    /// foreign format tag or an unsupported version; [`Error::InvalidParameter`] for an
    /// invalid config or scaler; [`Error::MissingTensor`], [`Error::TensorShape`],
    /// [`Error::UnexpectedTensor`] when the weights do not match the config.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let path = dir.join(METADATA_FILE);
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|err| Error::Io {
            path: origin.clone(),
            message: err.to_string(),
        })?;
        let metadata: Metadata = serde_json::from_str(&text).map_err(|err| Error::ModelFormat {
            path: origin.clone(),
            message: err.to_string(),
        })?;
        if metadata.format != FORMAT_NAME {
            return Err(Error::ModelFormat {
                path: origin,
                message: format!("format is `{}`, expected `{FORMAT_NAME}`", metadata.format),
            });
        }
        if metadata.format_version != FORMAT_VERSION {
            return Err(Error::ModelFormat {
                path: origin,
                message: format!(
                    "format version {} is not supported, this build reads {FORMAT_VERSION}",
                    metadata.format_version
                ),
            });
        }
        let config = metadata.config;
        config.validate()?;
        let network = LstmNetwork::load_safetensors(
            dir.join(WEIGHTS_FILE),
            config.input_size(),
            config.hidden_size,
            config.num_layers,
        )?;
        let mut predictor = LstmPredictor::from_parts(config, metadata.scaler, network)?;
        predictor.history = metadata.history;
        Ok(predictor)
    }

    /// The configuration.
    pub fn config(&self) -> &LstmConfig {
        &self.config
    }

    /// The input and target scaler.
    pub fn scaler(&self) -> &Scaler {
        &self.scaler
    }

    /// The network.
    pub fn network(&self) -> &LstmNetwork {
        &self.network
    }

    /// The training record, when the model was trained (or saved after training).
    pub fn history(&self) -> Option<&TrainingHistory> {
        self.history.as_ref()
    }
}

/// Standardised `f32` feature rows of the whole series.
fn scaled_features(series: &BarSeries, config: &LstmConfig, scaler: &Scaler) -> Result<Vec<f32>> {
    let raw = bar_features(series, &config.features)?;
    let width = config.input_size();
    let mut out = vec![0.0f32; raw.nrows() * width];
    for (row, slot) in raw.rows().into_iter().zip(out.chunks_exact_mut(width)) {
        scaler.transform_row_into(row.iter().copied(), slot);
    }
    Ok(out)
}

/// Features, targets, chronological split and the scaler fitted on the training part.
fn prepare(series: &BarSeries, config: &LstmConfig) -> Result<(Samples, Scaler)> {
    let window = config.window;
    let min_samples = if config.validation_fraction > 0.0 {
        2
    } else {
        1
    };
    let n = series.len();
    if n < window + 1 + min_samples {
        return Err(Error::NotEnoughData {
            what: "lstm training (bars: window + 2, + 1 with a validation part)",
            required: window + 1 + min_samples,
            actual: n,
        });
    }
    let count = n - 1 - window;
    let validation = if config.validation_fraction > 0.0 {
        ((count as f64 * config.validation_fraction).round() as usize).clamp(1, count - 1)
    } else {
        0
    };
    let train = count - validation;
    let close = series.close();
    let raw_targets: Vec<f64> = (0..count)
        .map(|k| (close[k + window + 1] / close[k + window]).ln())
        .collect();
    let raw = bar_features(series, &config.features)?;
    // Training windows cover feature rows 0 .. train - 1 + window.
    let train_rows = raw.slice(ndarray::s![..train - 1 + window, ..]);
    let scaler = Scaler::fit(train_rows, &raw_targets[..train])?;
    let width = config.input_size();
    let mut features = vec![0.0f32; raw.nrows() * width];
    for (row, slot) in raw.rows().into_iter().zip(features.chunks_exact_mut(width)) {
        scaler.transform_row_into(row.iter().copied(), slot);
    }
    let targets = raw_targets
        .iter()
        .map(|&t| scaler.scale_target(t) as f32)
        .collect();
    Ok((
        Samples {
            features,
            targets,
            train,
        },
        scaler,
    ))
}

/// Copies the windows and targets of `indices` into the batch buffers.
fn gather(
    samples: &Samples,
    config: &LstmConfig,
    indices: &[usize],
    inputs: &mut Vec<f32>,
    targets: &mut Vec<f32>,
) {
    let width = config.input_size();
    let row = config.window * width;
    inputs.clear();
    targets.clear();
    for &k in indices {
        inputs.extend_from_slice(&samples.features[k * width..k * width + row]);
        targets.push(samples.targets[k]);
    }
}

/// Mean squared error (standardised units) of the network on the validation samples
/// (from `samples.train` on), by the fused pass (the network's copies are refreshed
/// first: training changed the variables).
fn evaluate(network: &mut LstmNetwork, samples: &Samples, config: &LstmConfig) -> Result<f64> {
    network.refresh_fused()?;
    let width = config.input_size();
    let first = samples.train;
    let last = samples.targets.len() - 1;
    let rows = &samples.features[first * width..(last + config.window) * width];
    let outputs = network.forward_sliding(rows, config.window)?;
    let sum: f64 = outputs
        .iter()
        .zip(&samples.targets[first..])
        .map(|(o, t)| (f64::from(*o) - f64::from(*t)).powi(2))
        .sum();
    Ok(sum / outputs.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::windows::BarFeature;
    use crate::ml::lstm::network::tests::{random_state_dict, temp_dir, write_safetensors};
    use rand::Rng;
    use rand_distr::{Distribution, Normal};

    /// Bars whose log returns follow an AR(1): `r_t = phi r_{t-1} + e_t`, `e ~ N(0, sigma)`.
    fn ar1_series(n: usize, phi: f64, sigma: f64, seed: u64) -> BarSeries {
        let mut rng = StdRng::seed_from_u64(seed);
        let noise = Normal::new(0.0, sigma).unwrap();
        let mut close = Vec::with_capacity(n);
        let (mut price, mut r) = (100.0f64, 0.0f64);
        for _ in 0..n {
            r = phi * r + noise.sample(&mut rng);
            price *= r.exp();
            close.push(price);
        }
        let open: Vec<f64> = std::iter::once(100.0)
            .chain(close[..n - 1].iter().copied())
            .collect();
        let wiggle: Vec<f64> = (0..n).map(|_| rng.gen_range(0.0..0.004)).collect();
        let high = (0..n)
            .map(|i| open[i].max(close[i]) * (1.0 + wiggle[i]))
            .collect();
        let low = (0..n)
            .map(|i| open[i].min(close[i]) * (1.0 - wiggle[i]))
            .collect();
        let volume = (0..n).map(|_| rng.gen_range(900.0..1100.0)).collect();
        BarSeries::new(
            (0..n as i64).map(|i| i * 60).collect(),
            open,
            high,
            low,
            close,
            volume,
        )
        .unwrap()
    }

    fn small_config() -> LstmConfig {
        LstmConfig {
            window: 10,
            hidden_size: 12,
            epochs: 4,
            batch_size: 32,
            learning_rate: 5e-3,
            ..LstmConfig::default()
        }
    }

    #[test]
    fn learns_an_ar1_signal_better_than_the_last_value() {
        let series = ar1_series(1500, 0.6, 0.01, 11);
        let config = LstmConfig {
            window: 10,
            hidden_size: 16,
            epochs: 25,
            batch_size: 32,
            learning_rate: 5e-3,
            weight_decay: 0.0,
            validation_fraction: 0.25,
            patience: Some(6),
            ..LstmConfig::default()
        };
        let model = LstmPredictor::train(&series, &config, |_| ()).unwrap();
        let history = model.history().unwrap();
        // Validation samples are the last ones; sample k predicts bar k + window + 1.
        let predictions = model.predict_batch(&series).unwrap();
        let close = series.close();
        let samples = series.len() - 1 - config.window;
        let first_val = samples - history.validation_samples;
        let (mut model_se, mut naive_se) = (0.0, 0.0);
        for (k, prediction) in predictions.iter().enumerate().take(samples).skip(first_val) {
            let t = k + config.window;
            let actual = (close[t + 1] / close[t]).ln();
            let predicted = (prediction / close[t]).ln();
            model_se += (predicted - actual).powi(2);
            naive_se += actual.powi(2); // last value: a zero return
        }
        let n_val = (samples - first_val) as f64;
        let (model_mse, naive_mse) = (model_se / n_val, naive_se / n_val);
        let ratio = model_mse / naive_mse;
        println!(
            "AR(1) phi=0.6: validation MSE of the next log return: model {model_mse:.3e}, \
             last value {naive_mse:.3e}, ratio {ratio:.3} (theory at best 1 - phi^2 = 0.64); \
             {} epochs, best {}",
            history.train_loss.len(),
            history.best_epoch
        );
        assert!(ratio < 0.8, "ratio {ratio}");
    }

    #[test]
    fn same_seed_gives_bit_identical_models() {
        let series = ar1_series(300, 0.3, 0.01, 5);
        let config = LstmConfig {
            num_layers: 2,
            dropout: 0.2,
            ..small_config()
        };
        let a = LstmPredictor::train(&series, &config, |_| ()).unwrap();
        let b = LstmPredictor::train(&series, &config, |_| ()).unwrap();
        assert_eq!(a.history(), b.history());
        assert_eq!(
            a.predict(&series).unwrap().to_bits(),
            b.predict(&series).unwrap().to_bits()
        );
        let (pa, pb) = (
            a.predict_batch(&series).unwrap(),
            b.predict_batch(&series).unwrap(),
        );
        assert!(pa.iter().zip(&pb).all(|(x, y)| x.to_bits() == y.to_bits()));
        let other = LstmConfig {
            seed: config.seed + 1,
            ..config
        };
        let c = LstmPredictor::train(&series, &other, |_| ()).unwrap();
        assert_ne!(c.predict(&series).unwrap(), a.predict(&series).unwrap());
    }

    #[test]
    fn predict_agrees_with_predict_batch_and_history_slices() {
        let series = ar1_series(200, 0.3, 0.01, 8);
        let model = LstmPredictor::train(&series, &small_config(), |_| ()).unwrap();
        let window = 10;
        let all = model.predict_batch(&series).unwrap();
        assert_eq!(all.len(), series.len() - window);
        for i in [0, 57, all.len() - 1] {
            let prefix = series.slice(0..window + i + 1);
            let one = model.predict(&prefix).unwrap();
            assert_eq!(one.to_bits(), all[i].to_bits(), "{i}: {one} vs {}", all[i]);
        }
        // Only the last window + 1 bars matter.
        let tail = series.slice(series.len() - window - 1..series.len());
        assert_eq!(
            model.predict(&tail).unwrap(),
            model.predict(&series).unwrap()
        );
        let short = series.slice(0..window);
        assert_eq!(
            model.predict(&short).unwrap_err(),
            Error::NotEnoughData {
                what: "an lstm prediction (bars: window + 1)",
                required: 11,
                actual: 10
            }
        );
        assert!(model.predict_batch(&short).is_err());
    }

    #[test]
    fn scaler_is_fitted_on_the_training_part_only() {
        // Volume jumps tenfold in the last quarter: the scaler must not see it.
        let base = ar1_series(200, 0.0, 0.01, 3);
        let mut volume = base.volume().to_vec();
        for v in &mut volume[150..] {
            *v *= 10.0;
        }
        let series = BarSeries::new(
            base.timestamps().to_vec(),
            base.open().to_vec(),
            base.high().to_vec(),
            base.low().to_vec(),
            base.close().to_vec(),
            volume,
        )
        .unwrap();
        let config = LstmConfig {
            epochs: 1,
            validation_fraction: 0.25,
            features: vec![BarFeature::Range, BarFeature::LogVolumeChange],
            ..small_config()
        };
        let model = LstmPredictor::train(&series, &config, |_| ()).unwrap();
        let history = model.history().unwrap();
        // 200 bars, window 10: 189 samples, round(189 * 0.25) = 47 for validation.
        assert_eq!(
            (history.train_samples, history.validation_samples),
            (142, 47)
        );
        // Training windows use bars 1 ..= 142 + 10 - 1 + 1 = 151; targets bars 11 ..= 152.
        let (h, l, c, v) = (series.high(), series.low(), series.close(), series.volume());
        let bars = 1..=151;
        let count = bars.clone().count() as f64;
        let range_mean = bars.clone().map(|t| (h[t] - l[t]) / c[t]).sum::<f64>() / count;
        let volume_mean = bars
            .map(|t| ((v[t] + 1.0) / (v[t - 1] + 1.0)).ln())
            .sum::<f64>()
            / count;
        let target_mean = (11..=152).map(|t| (c[t] / c[t - 1]).ln()).sum::<f64>() / 142.0;
        let scaler = model.scaler();
        assert!((scaler.feature_mean[0] - range_mean).abs() < 1e-12);
        assert!((scaler.feature_mean[1] - volume_mean).abs() < 1e-12);
        assert!((scaler.target_mean - target_mean).abs() < 1e-12);
        // The jump at bar 150 (ln 10 = 2.3) is inside; the whole series' mean would differ
        // only slightly, but its scale would include nothing new after bar 151 either:
        // check against a fit that wrongly includes every bar.
        let all_mean = (1..200)
            .map(|t| ((v[t] + 1.0) / (v[t - 1] + 1.0)).ln())
            .sum::<f64>()
            / 199.0;
        assert!((scaler.feature_mean[1] - all_mean).abs() > 1e-4);
    }

    #[test]
    fn early_stopping_restores_the_best_epoch() {
        // Pure noise: nothing to learn, so the validation loss soon stops improving.
        let series = ar1_series(400, 0.0, 0.01, 21);
        let config = LstmConfig {
            epochs: 40,
            patience: Some(2),
            learning_rate: 2e-2,
            ..small_config()
        };
        let mut seen = Vec::new();
        let model = LstmPredictor::train(&series, &config, |p| seen.push(p)).unwrap();
        let history = model.history().unwrap().clone();
        assert_eq!(history.stop_reason, StopReason::EarlyStopped);
        let epochs_run = history.train_loss.len();
        assert_eq!(epochs_run, history.best_epoch + 2);
        assert_eq!(seen.len(), epochs_run);
        let best = history
            .val_loss
            .iter()
            .cloned()
            .fold(f64::INFINITY, f64::min);
        assert_eq!(history.val_loss[history.best_epoch - 1], best);
        assert_eq!(seen.last().unwrap().best_val_loss, Some(best));
        // The kept weights are the best epoch's: recompute the validation MSE from
        // predictions, in standardised units.
        let predictions = model.predict_batch(&series).unwrap();
        let close = series.close();
        let scaler = model.scaler();
        let samples = series.len() - 1 - config.window;
        let first_val = samples - history.validation_samples;
        let mse = (first_val..samples)
            .map(|k| {
                let t = k + config.window;
                let predicted = scaler.scale_target((predictions[k] / close[t]).ln());
                let actual = scaler.scale_target((close[t + 1] / close[t]).ln());
                (predicted - actual).powi(2)
            })
            .sum::<f64>()
            / history.validation_samples as f64;
        assert!((mse - best).abs() < 1e-4 * best, "{mse} vs {best}");
    }

    #[test]
    fn callback_can_stop_training() {
        let series = ar1_series(200, 0.3, 0.01, 2);
        let config = LstmConfig {
            epochs: 10,
            ..small_config()
        };
        let model = LstmPredictor::train(&series, &config, |p| {
            if p.epoch == 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
        let history = model.history().unwrap();
        assert_eq!(history.stop_reason, StopReason::Interrupted);
        assert_eq!(history.train_loss.len(), 2);
        assert_eq!(history.val_loss.len(), 2);
    }

    #[test]
    fn without_validation_every_epoch_runs() {
        let series = ar1_series(150, 0.3, 0.01, 4);
        let config = LstmConfig {
            validation_fraction: 0.0,
            epochs: 3,
            ..small_config()
        };
        let mut val_losses = Vec::new();
        let model =
            LstmPredictor::train(&series, &config, |p| val_losses.push(p.val_loss)).unwrap();
        let history = model.history().unwrap();
        assert_eq!(val_losses, vec![None, None, None]);
        assert_eq!((history.best_epoch, history.validation_samples), (3, 0));
        assert_eq!(history.train_samples, 150 - 1 - 10);
    }

    #[test]
    fn too_little_data_is_rejected() {
        let series = ar1_series(12, 0.0, 0.01, 1);
        // window 10: 12 bars give one sample, two are needed with a validation part.
        let err = LstmPredictor::train(&series, &small_config(), |_| ()).unwrap_err();
        assert!(
            matches!(
                err,
                Error::NotEnoughData {
                    required: 13,
                    actual: 12,
                    ..
                }
            ),
            "{err}"
        );
        let no_val = LstmConfig {
            validation_fraction: 0.0,
            epochs: 1,
            ..small_config()
        };
        LstmPredictor::train(&series, &no_val, |_| ()).unwrap();
        let bad = LstmConfig {
            window: 0,
            ..small_config()
        };
        assert!(matches!(
            LstmPredictor::train(&series, &bad, |_| ()).unwrap_err(),
            Error::InvalidParameter { name: "window", .. }
        ));
    }

    #[test]
    fn save_and_load_round_trip() {
        let series = ar1_series(200, 0.3, 0.01, 6);
        let model = LstmPredictor::train(&series, &small_config(), |_| ()).unwrap();
        let dir = temp_dir("roundtrip");
        model.save(&dir).unwrap();
        let loaded = LstmPredictor::load(&dir).unwrap();
        assert_eq!(loaded.config(), model.config());
        let (ls, ms) = (loaded.scaler(), model.scaler());
        for (a, b) in ls.feature_mean.iter().zip(&ms.feature_mean) {
            assert!((a - b).abs() <= 1e-15 * b.abs());
        }
        assert!((ls.target_scale - ms.target_scale).abs() <= 1e-15 * ms.target_scale);
        // serde_json (without its `float_roundtrip` feature) may parse a float one unit
        // in the last place away from the one written, hence the tolerances.
        let (h, g) = (loaded.history().unwrap(), model.history().unwrap());
        assert_eq!((h.best_epoch, h.stop_reason), (g.best_epoch, g.stop_reason));
        for (a, b) in h.train_loss.iter().zip(&g.train_loss) {
            assert!((a - b).abs() <= 1e-15 * b.abs());
        }
        let (a, b) = (
            loaded.predict(&series).unwrap(),
            model.predict(&series).unwrap(),
        );
        assert!((a - b).abs() <= 1e-12 * b, "{a} vs {b}");
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(METADATA_FILE)).unwrap())
                .unwrap();
        assert_eq!(json["format"], FORMAT_NAME);
        assert_eq!(json["format_version"], 1);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn loading_bad_directories_gives_typed_errors() {
        let series = ar1_series(200, 0.3, 0.01, 6);
        let model = LstmPredictor::train(&series, &small_config(), |_| ()).unwrap();
        let dir = temp_dir("badload");
        model.save(&dir).unwrap();
        let metadata_path = dir.join(METADATA_FILE);
        let metadata = std::fs::read_to_string(&metadata_path).unwrap();

        // A config that disagrees with the weights' shapes.
        let wider = metadata.replace("\"hidden_size\": 12", "\"hidden_size\": 13");
        std::fs::write(&metadata_path, wider).unwrap();
        assert!(matches!(
            LstmPredictor::load(&dir).unwrap_err(),
            Error::TensorShape { name, .. } if name == "lstm.weight_ih_l0"
        ));

        // An unknown format version.
        let future = metadata.replace("\"format_version\": 1", "\"format_version\": 2");
        std::fs::write(&metadata_path, future).unwrap();
        let err = LstmPredictor::load(&dir).unwrap_err();
        assert!(
            matches!(&err, Error::ModelFormat { message, .. } if message.contains("version 2")),
            "{err}"
        );

        // Broken JSON.
        std::fs::write(&metadata_path, "{").unwrap();
        assert!(matches!(
            LstmPredictor::load(&dir).unwrap_err(),
            Error::ModelFormat { .. }
        ));

        // Weights without the head's bias.
        std::fs::write(&metadata_path, &metadata).unwrap();
        let dict: Vec<_> = random_state_dict(5, 12, 1, 0, false)
            .into_iter()
            .filter(|t| t.0 != "linear.bias")
            .collect();
        write_safetensors(&dir.join(WEIGHTS_FILE), &dict, "F32");
        assert!(matches!(
            LstmPredictor::load(&dir).unwrap_err(),
            Error::MissingTensor { name, .. } if name == "linear.bias"
        ));

        // No weights file at all.
        std::fs::remove_file(dir.join(WEIGHTS_FILE)).unwrap();
        assert!(matches!(
            LstmPredictor::load(&dir).unwrap_err(),
            Error::Io { .. }
        ));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_pytorch_model_loads_as_a_predictor() {
        // A PyTorch state dict (bare nn.LSTM names) with a hand-written model.json.
        let (input, hidden) = (5, 6);
        let dict = random_state_dict(input, hidden, 1, 77, true);
        let dir = temp_dir("torchmodel");
        write_safetensors(&dir.join(WEIGHTS_FILE), &dict, "F32");
        let metadata = serde_json::json!({
            "format": FORMAT_NAME,
            "format_version": 1,
            "config": { "window": 8, "hidden_size": hidden },
            "scaler": {
                "feature_mean": [0.0, 0.01, 0.0, 0.0, 0.0],
                "feature_scale": [0.01, 0.005, 0.1, 0.01, 0.001],
                "target_mean": 0.0005,
                "target_scale": 0.01
            }
        });
        std::fs::write(dir.join(METADATA_FILE), metadata.to_string()).unwrap();
        let model = LstmPredictor::load(&dir).unwrap();
        assert!(model.history().is_none());
        let series = ar1_series(40, 0.3, 0.01, 1);
        // Expected: the oracle on the standardised features of the last 8 bars.
        let raw = bar_features(&series, &BarFeature::ALL).unwrap();
        let scaler = model.scaler();
        let window: Vec<f64> = raw
            .rows()
            .into_iter()
            .skip(raw.nrows() - 8)
            .flat_map(|row| {
                row.iter()
                    .enumerate()
                    .map(|(j, x)| {
                        f64::from(((x - scaler.feature_mean[j]) / scaler.feature_scale[j]) as f32)
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        let output = crate::ml::lstm::network::tests::oracle(&dict, &window, input, hidden, 1);
        let last = *series.close().last().unwrap();
        let expected = last * (0.0005 + 0.01 * output).exp();
        let predicted = model.predict(&series).unwrap();
        assert!(
            (predicted - expected).abs() < 1e-5 * last,
            "{predicted} vs {expected}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn predictor_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<LstmPredictor>();
    }
}
