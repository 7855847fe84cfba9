//! `run`: every role and the HTTP API as tokio tasks of one process.
//!
//! With no configuration this is the embedded default: the SQLite file
//! `./data/quantcore.db`, the in-process bus, the replay of the bundled daily sample bars
//! ([`quantcore::sample::daily`]) for every sample symbol, and the API on `127.0.0.1:8000`.
//!
//! [`run`] stops gracefully on SIGTERM or Ctrl-C (see its *Shutdown* section).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use quantcore::Bar;
use tokio::task::JoinSet;

use crate::api::{self, AppState};
use crate::bus::{Bus, KafkaBus, KafkaSettings, MemoryBus};
use crate::config::{BusKind, Config, SourceKind};
use crate::roles::{self, MlSettings, RoleError, Stats, TradeSettings};
use crate::shutdown::{DrainingBus, Shutdown};
use crate::store::{self, Store};
use crate::telemetry::{InstrumentedBus, Telemetry};
use crate::train::TrainingSettings;

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Bus(#[from] crate::bus::BusError),
    #[error(transparent)]
    Core(#[from] quantcore::Error),
    #[error("replay bars asked for, but source.kind is {0:?}")]
    UnsupportedSource(SourceKind),
    #[error("no bars to replay for symbol {0:?}")]
    UnknownSymbol(String),
    #[error("cannot read the replay file: {0}")]
    ReplayFile(std::io::Error),
    #[error(transparent)]
    Source(#[from] crate::sources::SourceError),
    #[error("HTTP API: {0}")]
    Api(std::io::Error),
}

/// The ml settings of `config`.
pub fn ml_settings(config: &Config) -> MlSettings {
    MlSettings {
        window: config.ml.window as usize,
        model_dir: config.ml.model_dir.clone(),
        group: group(config, roles::groups::ML),
        ..MlSettings::default()
    }
}

/// The trade settings of `config`.
pub fn trade_settings(config: &Config) -> TradeSettings {
    TradeSettings {
        initial_cash: config.trading.initial_cash,
        group: group(config, roles::groups::TRADE),
        ..TradeSettings::default()
    }
}

/// The consumer group `<bus.group_prefix>.<role>`.
pub fn group(config: &Config, role: &str) -> String {
    format!("{}.{role}", config.bus.group_prefix)
}

/// Opens the bus of `config`.
///
/// # Errors
/// The Kafka client's error.
pub fn open_bus(config: &Config) -> Result<Arc<dyn Bus>, ServiceError> {
    Ok(match config.bus.kind {
        BusKind::Memory => Arc::new(MemoryBus::new(config.bus.partitions.max(1) as usize)),
        BusKind::Kafka => {
            let mut settings = KafkaSettings::new(config.bus.brokers.clone());
            for (key, value) in &config.bus.kafka_properties {
                settings = settings.with(key, value);
            }
            Arc::new(KafkaBus::new(settings)?)
        }
    })
}

/// The bars to replay by symbol: the replay file (or the bundled daily sample), filtered to
/// the configured symbols.
///
/// # Errors
/// An unreadable file, a parse error, or a configured symbol without bars.
pub fn replay_bars(config: &Config) -> Result<BTreeMap<String, Vec<Bar>>, ServiceError> {
    if config.source.kind != SourceKind::Replay {
        return Err(ServiceError::UnsupportedSource(config.source.kind));
    }
    let series = match &config.source.replay_path {
        None => quantcore::sample::daily()?,
        Some(path) => {
            let bytes = std::fs::read(path).map_err(ServiceError::ReplayFile)?;
            quantcore::normalize::csv::parse_bars_by_symbol(
                &bytes[..],
                &quantcore::normalize::ParseOptions::default(),
            )?
            .series
        }
    };
    let mut bars: BTreeMap<String, Vec<Bar>> = series
        .into_iter()
        .map(|(symbol, series)| (symbol, series.iter().collect()))
        .collect();
    if !config.source.symbols.is_empty() {
        for symbol in &config.source.symbols {
            if !bars.contains_key(symbol) {
                return Err(ServiceError::UnknownSymbol(symbol.clone()));
            }
        }
        bars.retain(|symbol, _| config.source.symbols.contains(symbol));
    }
    Ok(bars)
}

/// Which roles a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    pub ingest: bool,
    pub ml: bool,
    pub trade: bool,
    pub api: bool,
}

impl Roles {
    /// Every role.
    pub const ALL: Roles = Roles {
        ingest: true,
        ml: true,
        trade: true,
        api: true,
    };
}

/// Spawns the pipeline roles of `roles` (not the API) on `tasks`.
///
/// # Errors
/// Reading the replay bars.
pub fn spawn_roles(
    tasks: &mut JoinSet<Result<(), RoleError>>,
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    config: &Config,
    roles: Roles,
    stats: Arc<Stats>,
) -> Result<(), ServiceError> {
    if roles.ml {
        tasks.spawn(roles::ml_role(
            store.clone(),
            bus.clone(),
            ml_settings(config),
            stats.clone(),
        ));
    }
    if roles.trade {
        tasks.spawn(roles::trade_role(
            store.clone(),
            bus.clone(),
            trade_settings(config),
            stats.clone(),
        ));
        tasks.spawn(roles::mark_role(
            store.clone(),
            bus.clone(),
            group(config, roles::groups::MARK),
            trade_settings(config),
            stats.clone(),
        ));
    }
    if roles.ingest {
        crate::sources::Source::from_config(config)?.spawn(tasks, store, bus, stats);
    }
    Ok(())
}

/// The API state of `config` over `store`, counting into `telemetry`.
pub fn app_state(config: &Config, store: Arc<dyn Store>, telemetry: Arc<Telemetry>) -> AppState {
    let mut state = AppState::with_telemetry(
        store,
        trade_settings(config),
        training_settings(config),
        telemetry,
    );
    state.token = config.api.token.clone();
    state.body_limit = usize::try_from(config.api.body_limit_bytes).unwrap_or(usize::MAX);
    state
}

/// Where `config` keeps models, and the ml window they must fit.
pub fn training_settings(config: &Config) -> TrainingSettings {
    TrainingSettings {
        model_dir: config.ml.model_dir.clone(),
        ml_window: config.ml.window as usize,
    }
}

/// Resolves on SIGTERM or Ctrl-C (SIGINT) and names which.
async fn stop_signal() -> &'static str {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => "Ctrl-C",
        () = terminate => "SIGTERM",
    }
}

fn log_role_end(done: Result<Result<(), RoleError>, tokio::task::JoinError>, stopping: bool) {
    match done {
        Ok(Ok(())) => {}
        // After the stop signal, consumers end with `Closed`: the expected way out.
        Ok(Err(RoleError::Bus(crate::bus::BusError::Closed))) if stopping => {}
        Ok(Err(error)) => tracing::error!(%error, "a role stopped"),
        Err(error) if error.is_cancelled() => {}
        Err(error) => tracing::error!(%error, "a role panicked"),
    }
}

/// Runs `roles` until SIGTERM or Ctrl-C: opens the store and the bus of `config`, spawns
/// the roles and serves the API. Replay tasks end when their bars are done; the rest keep
/// running.
///
/// # Shutdown
/// On the signal: ingestion stops at once (its tasks are aborted between or inside bars;
/// a bar is re-fetched or replayed at the next start), the consumers stop taking messages
/// ([`DrainingBus`]) while the message each one holds is finished and committed, and the
/// API stops accepting connections and finishes its requests (axum's graceful shutdown).
/// All of it within `shutdown.drain_timeout_secs`; what is still running then is aborted
/// (its messages are delivered again at the next start: processing is idempotent). The
/// final portfolio is logged.
///
/// # Errors
/// A start-up error; a role failing is logged.
pub async fn run(config: &Config, roles: Roles) -> Result<(), ServiceError> {
    let store = store::open(&config.database.url, config.database.max_connections).await?;
    let cash = store
        .ensure_account(config.trading.initial_cash, chrono::Utc::now())
        .await?;
    tracing::info!(backend = ?store.backend(), cash, "store ready");
    let stats = Arc::new(Stats::default());
    let telemetry = Arc::new(Telemetry::new(stats.clone()));
    let shutdown = Shutdown::new();
    let bus: Arc<dyn Bus> = Arc::new(InstrumentedBus::new(open_bus(config)?, telemetry.clone()));
    let bus: Arc<dyn Bus> = Arc::new(DrainingBus::new(bus, shutdown.clone()));
    // Ingestion apart from the consumers: it is stopped first, the consumers drain.
    let mut ingest = JoinSet::new();
    let mut consumers = JoinSet::new();
    let only_ingest = Roles {
        ingest: roles.ingest,
        ml: false,
        trade: false,
        api: false,
    };
    let without_ingest = Roles {
        ingest: false,
        ..roles
    };
    spawn_roles(
        &mut ingest,
        store.clone(),
        bus.clone(),
        config,
        only_ingest,
        stats.clone(),
    )?;
    spawn_roles(
        &mut consumers,
        store.clone(),
        bus,
        config,
        without_ingest,
        stats,
    )?;
    let api_task = if roles.api {
        let state = app_state(config, store.clone(), telemetry);
        let bind = config.api.bind;
        let stop = shutdown.triggered();
        Some(tokio::spawn(
            async move { api::serve(state, bind, stop).await },
        ))
    } else {
        None
    };
    let signal = stop_signal();
    tokio::pin!(signal);
    let signal = loop {
        tokio::select! {
            signal = &mut signal => break signal,
            Some(done) = ingest.join_next() => log_role_end(done, false),
            Some(done) = consumers.join_next() => log_role_end(done, false),
        }
    };
    let drain = Duration::from_secs(config.shutdown.drain_timeout_secs);
    tracing::info!(
        signal,
        drain_timeout_secs = drain.as_secs(),
        "{signal}: stopping"
    );
    ingest.abort_all();
    shutdown.trigger();
    let drained = tokio::time::timeout(drain, async {
        while let Some(done) = ingest.join_next().await {
            log_role_end(done, true);
        }
        while let Some(done) = consumers.join_next().await {
            log_role_end(done, true);
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            remaining = consumers.len(),
            "drain timeout: aborting the roles still working (their messages are redelivered)"
        );
        consumers.abort_all();
    }
    if let Some(task) = api_task {
        match tokio::time::timeout(drain, task).await {
            Ok(Ok(Err(error))) => return Err(ServiceError::Api(error)),
            Ok(_) => {}
            Err(_) => tracing::warn!("drain timeout: HTTP requests still open are dropped"),
        }
    }
    match roles::portfolio_value(store.as_ref()).await {
        Ok((cash, value)) => tracing::info!(
            cash = format_args!("{cash:.2}"),
            portfolio_value = format_args!("{value:.2}"),
            "stopped"
        ),
        Err(error) => tracing::warn!(%error, "stopped; cannot read the final portfolio"),
    }
    Ok(())
}
