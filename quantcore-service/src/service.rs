//! `run`: every role and the HTTP API as tokio tasks of one process.
//!
//! With no configuration this is the embedded default: the SQLite file
//! `./data/quantcore.db`, the in-process bus, the replay of the bundled daily sample bars
//! ([`quantcore::sample::daily`]) for every sample symbol, and the API on `127.0.0.1:8000`.

use std::collections::BTreeMap;
use std::sync::Arc;

use quantcore::Bar;
use tokio::task::JoinSet;

use crate::api::{self, AppState};
use crate::bus::{Bus, KafkaBus, KafkaSettings, MemoryBus};
use crate::config::{BusKind, Config, SourceKind};
use crate::roles::{self, MlSettings, RoleError, Stats, TradeSettings};
use crate::store::{self, Store};

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
        BusKind::Kafka => Arc::new(KafkaBus::new(KafkaSettings::new(
            config.bus.brokers.clone(),
        ))?),
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

/// Runs `roles` until Ctrl-C: opens the store and the bus of `config`, spawns the roles and
/// serves the API. Replay tasks end when their bars are done; the rest keep running.
///
/// # Errors
/// A start-up error; a role failing is logged.
pub async fn run(config: &Config, roles: Roles) -> Result<(), ServiceError> {
    let store = store::open(&config.database.url, config.database.max_connections).await?;
    let cash = store
        .ensure_account(config.trading.initial_cash, chrono::Utc::now())
        .await?;
    tracing::info!(backend = ?store.backend(), cash, "store ready");
    let bus = open_bus(config)?;
    let stats = Arc::new(Stats::default());
    let mut tasks = JoinSet::new();
    spawn_roles(&mut tasks, store.clone(), bus, config, roles, stats.clone())?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let api_task = if roles.api {
        let state = AppState {
            store: store.clone(),
            trade: trade_settings(config),
            token: config.api.token.clone(),
            body_limit: usize::try_from(config.api.body_limit_bytes).unwrap_or(usize::MAX),
        };
        let mut stop = stop_rx.clone();
        let bind = config.api.bind;
        Some(tokio::spawn(async move {
            api::serve(state, bind, async move {
                let _ = stop.changed().await;
            })
            .await
        }))
    } else {
        None
    };
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = &mut ctrl_c => {
                tracing::info!("Ctrl-C: stopping");
                break;
            }
            Some(done) = tasks.join_next() => {
                match done {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => tracing::error!(%error, "a role stopped"),
                    Err(error) => tracing::error!(%error, "a role panicked"),
                }
            }
        }
    }
    tasks.abort_all();
    let _ = stop_tx.send(true);
    if let Some(task) = api_task
        && let Ok(Err(error)) = task.await
    {
        return Err(ServiceError::Api(error));
    }
    if let Ok((cash, value)) = roles::portfolio_value(store.as_ref()).await {
        tracing::info!(cash, portfolio_value = value, "stopped");
    }
    Ok(())
}
