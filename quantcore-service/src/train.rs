//! Model training: LSTM predictors fitted on stored bars and saved where the ml role loads
//! them.
//!
//! # Where models live
//! A model of `SYMBOL` is the folder `<ml.model_dir>/<SYMBOL>/` written by
//! [`LstmPredictor::save`] (`model.safetensors` and `model.json`): exactly what the ml role's
//! loader reads (see [`crate::roles`], *Prediction*). A new model replaces the old one with
//! two renames (written to a hidden sibling folder first), so the loader never reads half a
//! model; the ml role notices a replaced model within seconds.
//!
//! # Parameters
//! [`TrainParams`] lists the accepted settings; each is optional and defaults to the core's
//! [`LstmConfig`] default, except `window`, which defaults to `ml.window - 1`: the ml role
//! hands the model its last `ml.window` bars and the LSTM needs `window + 1` of them, so a
//! larger window is refused ([`TrainError::WindowTooLarge`]).
//!
//! # Running
//! Training is CPU-bound: it runs on `tokio::task::spawn_blocking`. `quantcore-service
//! train` trains synchronously; `POST /models/{symbol}/train` starts a [`TrainingJobs`] job
//! and answers 202 with its id, and `GET /training-jobs/{id}` reports its progress (epochs
//! done) and result. One job per symbol runs at a time.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use quantcore::ml::lstm::{LstmConfig, LstmPredictor, TrainingHistory};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::store::{Store, StoreError};

/// Bars read from the store for training by default (the most recent ones).
pub const DEFAULT_TRAINING_BARS: usize = 10_000;
/// The most bars a training run may read.
pub const MAX_TRAINING_BARS: usize = 100_000;

/// Why a model could not be trained or listed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A parameter is out of range (names the field and value).
    #[error("invalid training parameter: {0}")]
    InvalidParameter(String),
    /// The window does not fit the ml role's window.
    #[error(
        "`window` must be at most {max} (ml.window - 1: the ml role predicts from its last ml.window bars), was {window}"
    )]
    WindowTooLarge { window: usize, max: usize },
    /// The store holds too few bars of the symbol.
    #[error(
        "{symbol}: {actual} bars stored, training needs at least {required} (ingest first: `quantcore-service ingest`, or `run`)"
    )]
    NotEnoughBars {
        symbol: String,
        required: usize,
        actual: usize,
    },
    /// A training job of the symbol is running.
    #[error("a training job for {symbol} is already running ({job})")]
    AlreadyRunning { symbol: String, job: Uuid },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The core refused the bars or training failed.
    #[error("training failed: {0}")]
    Core(#[from] quantcore::Error),
    /// A model file could not be written or read.
    #[error("model folder {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The training task panicked or was cancelled.
    #[error("the training task did not finish")]
    Task,
}

/// Training parameters; every field is optional (see the [module docs](self#parameters)).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TrainParams {
    /// Maximum passes over the training samples (core default 50).
    pub epochs: Option<usize>,
    /// Width of each LSTM layer (core default 64).
    pub hidden_size: Option<usize>,
    /// Stacked LSTM layers (core default 1).
    pub num_layers: Option<usize>,
    /// Feature rows per input (default `ml.window - 1`).
    pub window: Option<usize>,
    /// Samples per optimizer step (core default 64).
    pub batch_size: Option<usize>,
    /// AdamW learning rate (core default 0.001).
    pub learning_rate: Option<f64>,
    /// Held-out fraction for early stopping, in `[0, 1)` (core default 0.2).
    pub validation_fraction: Option<f64>,
    /// Epochs without improvement before stopping (core default 5).
    pub patience: Option<usize>,
    /// Seed of the initialisation and shuffling (core default 42).
    pub seed: Option<u64>,
    /// Most recent stored bars to train on (default 10,000, at most 100,000).
    pub bars: Option<usize>,
}

impl TrainParams {
    /// The core config these parameters ask for, checked with [`LstmConfig::validate`] and
    /// against `ml_window`.
    ///
    /// # Errors
    /// [`TrainError::InvalidParameter`] naming the field, or [`TrainError::WindowTooLarge`].
    pub fn lstm_config(&self, ml_window: usize) -> Result<LstmConfig, TrainError> {
        let base = LstmConfig::default();
        let max_window = ml_window.saturating_sub(1);
        let config = LstmConfig {
            epochs: self.epochs.unwrap_or(base.epochs),
            hidden_size: self.hidden_size.unwrap_or(base.hidden_size),
            num_layers: self.num_layers.unwrap_or(base.num_layers),
            window: self.window.unwrap_or(max_window),
            batch_size: self.batch_size.unwrap_or(base.batch_size),
            learning_rate: self.learning_rate.unwrap_or(base.learning_rate),
            validation_fraction: self.validation_fraction.unwrap_or(base.validation_fraction),
            patience: self.patience.or(base.patience),
            seed: self.seed.unwrap_or(base.seed),
            ..base
        };
        config
            .validate()
            .map_err(|error| TrainError::InvalidParameter(error.to_string()))?;
        if config.window > max_window {
            return Err(TrainError::WindowTooLarge {
                window: config.window,
                max: max_window,
            });
        }
        Ok(config)
    }

    /// The number of bars to read.
    ///
    /// # Errors
    /// [`TrainError::InvalidParameter`] outside `[1, MAX_TRAINING_BARS]`.
    pub fn bar_limit(&self) -> Result<usize, TrainError> {
        match self.bars {
            None => Ok(DEFAULT_TRAINING_BARS),
            Some(n) if (1..=MAX_TRAINING_BARS).contains(&n) => Ok(n),
            Some(n) => Err(TrainError::InvalidParameter(format!(
                "`bars` must be in [1, {MAX_TRAINING_BARS}], was {n}"
            ))),
        }
    }
}

/// Where models are saved and what the ml role reads.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingSettings {
    /// `ml.model_dir`.
    pub model_dir: PathBuf,
    /// `ml.window`: bars the ml role hands a model.
    pub ml_window: usize,
}

/// A saved model, as listed by `GET /models`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ModelInfo {
    pub symbol: String,
    /// When `model.json` was written.
    pub trained_at: DateTime<Utc>,
    /// The core's `LstmConfig`.
    #[schema(value_type = Object)]
    pub config: LstmConfig,
    /// The core's `TrainingHistory` (losses per epoch, best epoch, stop reason), when saved.
    #[schema(value_type = Option<Object>)]
    pub history: Option<TrainingHistory>,
}

/// The part of `model.json` a listing shows.
#[derive(Deserialize)]
struct SavedMetadata {
    config: LstmConfig,
    #[serde(default)]
    history: Option<TrainingHistory>,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The model of `symbol` in `model_dir`, or `None` when there is none.
///
/// # Errors
/// An unreadable `model.json`.
pub fn model_info(model_dir: &Path, symbol: &str) -> Result<Option<ModelInfo>, TrainError> {
    let path = model_dir
        .join(symbol)
        .join(quantcore::ml::lstm::METADATA_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(io_error(&path)(error)),
    };
    let metadata: SavedMetadata = serde_json::from_str(&text).map_err(|error| TrainError::Io {
        path: path.clone(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, error),
    })?;
    let modified = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .map_err(io_error(&path))?;
    Ok(Some(ModelInfo {
        symbol: symbol.to_owned(),
        trained_at: modified.into(),
        config: metadata.config,
        history: metadata.history,
    }))
}

/// Every model in `model_dir`, by symbol (an absent folder has none).
///
/// # Errors
/// An unreadable folder or `model.json`.
pub fn list_models(model_dir: &Path) -> Result<Vec<ModelInfo>, TrainError> {
    let entries = match std::fs::read_dir(model_dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(io_error(model_dir)(error)),
    };
    let mut models = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_error(model_dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !entry.path().is_dir() {
            continue;
        }
        if let Some(info) = model_info(model_dir, &name)? {
            models.push(info);
        }
    }
    models.sort_by(|a, b| a.symbol.cmp(&b.symbol));
    Ok(models)
}

/// Saves `model` as `model_dir/symbol`, replacing any older model with renames.
fn save_model(model: &LstmPredictor, model_dir: &Path, symbol: &str) -> Result<(), TrainError> {
    std::fs::create_dir_all(model_dir).map_err(io_error(model_dir))?;
    let nonce = Uuid::new_v4().simple();
    let fresh = model_dir.join(format!(".{symbol}.new-{nonce}"));
    model.save(&fresh)?;
    let target = model_dir.join(symbol);
    let old = model_dir.join(format!(".{symbol}.old-{nonce}"));
    let had_old = match std::fs::rename(&target, &old) {
        Ok(()) => true,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => false,
        Err(error) => return Err(io_error(&target)(error)),
    };
    std::fs::rename(&fresh, &target).map_err(io_error(&target))?;
    if had_old {
        std::fs::remove_dir_all(&old).map_err(io_error(&old))?;
    }
    Ok(())
}

/// Reads the bars of `symbol` and checks the parameters; the part of a run that answers
/// before the CPU work.
async fn prepare(
    store: &dyn Store,
    settings: &TrainingSettings,
    symbol: &str,
    params: &TrainParams,
) -> Result<(LstmConfig, Vec<quantcore::Bar>), TrainError> {
    let config = params.lstm_config(settings.ml_window)?;
    let bars = store.last_bars(symbol, params.bar_limit()?).await?;
    // One training and one validation sample at least (the core's rule).
    let required = config.window
        + if config.validation_fraction > 0.0 {
            3
        } else {
            2
        };
    if bars.len() < required {
        return Err(TrainError::NotEnoughBars {
            symbol: symbol.to_owned(),
            required,
            actual: bars.len(),
        });
    }
    Ok((config, bars))
}

/// Trains on `bars` off the async threads, calling `on_epoch` with each finished epoch, and
/// saves the model.
async fn fit_and_save(
    settings: &TrainingSettings,
    symbol: &str,
    config: LstmConfig,
    bars: Vec<quantcore::Bar>,
    on_epoch: impl FnMut(usize) + Send + 'static,
) -> Result<ModelInfo, TrainError> {
    let model_dir = settings.model_dir.clone();
    let owned_symbol = symbol.to_owned();
    let mut on_epoch = on_epoch;
    tokio::task::spawn_blocking(move || -> Result<(), TrainError> {
        let series = quantcore::BarSeries::from_bars(&bars)?.with_symbol(owned_symbol.clone());
        let started = std::time::Instant::now();
        let model = LstmPredictor::train(&series, &config, |progress| {
            on_epoch(progress.epoch);
            tracing::debug!(symbol = %owned_symbol, epoch = progress.epoch, train_loss = progress.train_loss, val_loss = ?progress.val_loss, "epoch");
        })?;
        save_model(&model, &model_dir, &owned_symbol)?;
        tracing::info!(
            symbol = %owned_symbol, bars = bars.len(), seconds = format_args!("{:.1}", started.elapsed().as_secs_f64()),
            best_epoch = model.history().map(|h| h.best_epoch), "model trained"
        );
        Ok(())
    })
    .await
    .map_err(|_| TrainError::Task)??;
    model_info(&settings.model_dir, symbol)?.ok_or_else(|| TrainError::Io {
        path: settings.model_dir.join(symbol),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "saved model is missing"),
    })
}

/// Trains a model of `symbol` on its stored bars and saves it (the CLI's path).
///
/// # Errors
/// See [`TrainError`].
pub async fn train_symbol(
    store: &dyn Store,
    settings: &TrainingSettings,
    symbol: &str,
    params: &TrainParams,
) -> Result<ModelInfo, TrainError> {
    let (config, bars) = prepare(store, settings, symbol, params).await?;
    fit_and_save(settings, symbol, config, bars, |_| {}).await
}

/// State of a training job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Running,
    Succeeded,
    Failed,
}

/// A training job, as `GET /training-jobs/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TrainingJob {
    pub id: Uuid,
    pub symbol: String,
    pub state: JobState,
    /// Epochs finished so far.
    pub epochs_done: usize,
    /// The configured maximum.
    pub epochs: usize,
    /// Bars trained on.
    pub bars: usize,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Why it failed.
    pub error: Option<String>,
    /// The saved model, once succeeded.
    pub model: Option<ModelInfo>,
}

/// The training jobs of this process (kept in memory; listed models survive restarts).
pub struct TrainingJobs {
    settings: TrainingSettings,
    jobs: Mutex<HashMap<Uuid, TrainingJob>>,
    on_success: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl std::fmt::Debug for TrainingJobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrainingJobs")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl TrainingJobs {
    /// No jobs yet; models go to `settings.model_dir`.
    pub fn new(settings: TrainingSettings) -> Self {
        Self {
            settings,
            jobs: Mutex::default(),
            on_success: None,
        }
    }

    /// Calls `hook` after each successful job (the metrics count them).
    pub fn with_success_hook(mut self, hook: impl Fn() + Send + Sync + 'static) -> Self {
        self.on_success = Some(Arc::new(hook));
        self
    }

    /// Where models are saved.
    pub fn settings(&self) -> &TrainingSettings {
        &self.settings
    }

    /// A job by id.
    pub fn job(&self, id: Uuid) -> Option<TrainingJob> {
        self.lock().get(&id).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, TrainingJob>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks the parameters, reads the bars and starts training `symbol` in the
    /// background; returns the running job.
    ///
    /// # Errors
    /// Bad parameters, too few bars, a store error, or a job of `symbol` still running.
    pub async fn start(
        self: &Arc<Self>,
        store: &dyn Store,
        symbol: &str,
        params: &TrainParams,
    ) -> Result<TrainingJob, TrainError> {
        let (config, bars) = prepare(store, &self.settings, symbol, params).await?;
        let job = TrainingJob {
            id: Uuid::now_v7(),
            symbol: symbol.to_owned(),
            state: JobState::Running,
            epochs_done: 0,
            epochs: config.epochs,
            bars: bars.len(),
            started_at: Utc::now(),
            finished_at: None,
            error: None,
            model: None,
        };
        {
            let mut jobs = self.lock();
            if let Some(running) = jobs
                .values()
                .find(|j| j.symbol == symbol && j.state == JobState::Running)
            {
                return Err(TrainError::AlreadyRunning {
                    symbol: symbol.to_owned(),
                    job: running.id,
                });
            }
            jobs.insert(job.id, job.clone());
        }
        let jobs = Arc::clone(self);
        let (id, symbol) = (job.id, symbol.to_owned());
        tokio::spawn(async move {
            let progress = Arc::clone(&jobs);
            let result = fit_and_save(&jobs.settings, &symbol, config, bars, move |epoch| {
                if let Some(job) = progress.lock().get_mut(&id) {
                    job.epochs_done = epoch;
                }
            })
            .await;
            if result.is_ok()
                && let Some(hook) = &jobs.on_success
            {
                hook();
            }
            let mut all = jobs.lock();
            let Some(job) = all.get_mut(&id) else { return };
            job.finished_at = Some(Utc::now());
            match result {
                Ok(model) => {
                    job.state = JobState::Succeeded;
                    job.model = Some(model);
                }
                Err(error) => {
                    tracing::error!(symbol = %job.symbol, %error, "training failed");
                    job.state = JobState::Failed;
                    job.error = Some(error.to_string());
                }
            }
        });
        Ok(job)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_default_to_the_core_and_the_ml_window() {
        let config = TrainParams::default().lstm_config(30).unwrap();
        assert_eq!(config.window, 29);
        assert_eq!(config.hidden_size, LstmConfig::default().hidden_size);
        let params = TrainParams {
            window: Some(30),
            ..TrainParams::default()
        };
        assert!(matches!(
            params.lstm_config(30),
            Err(TrainError::WindowTooLarge {
                window: 30,
                max: 29
            })
        ));
        let params = TrainParams {
            hidden_size: Some(0),
            ..TrainParams::default()
        };
        let error = params.lstm_config(30).unwrap_err().to_string();
        assert!(error.contains("hidden_size"), "{error}");
        let params = TrainParams {
            bars: Some(0),
            ..TrainParams::default()
        };
        assert!(
            params
                .bar_limit()
                .unwrap_err()
                .to_string()
                .contains("`bars`")
        );
    }
}
