//! `bench`: throughput and latency of the whole pipeline (ingest -> ml -> trade).
//!
//! # What is measured
//! The bundled daily sample (3 symbols) is copied under `symbols` names (`ACME_0`,
//! `GLOBEX_0`, …, each copy with the same bars) and replayed through the roles, each on its
//! own store handle (connection pool) and bus client, as in the distributed deployment:
//! one ingest task per symbol ([`roles::ingest_bars`]: unpaced, chunks of
//! [`roles::INGEST_CHUNK`] bars per upsert and batch publish, as `replay` does; paced, one
//! bar per call), `ml_workers` ml roles in one consumer group, one trade role.
//!
//! - **Throughput**: bars ingested divided by the time from the first publish until the ml
//!   role has analysed every bar and the trade role has handled every signal.
//! - **Bar-to-order latency**: for every filled order, the order's `created_at` (taken by
//!   the trade role just before its fill transaction) minus the moment the ingest role's
//!   publish of the bar that caused it returned (unpaced: of its chunk). p50, p99 and max
//!   over all orders.
//!
//! Unpaced (`rate = 0`) the ingest runs as fast as it can, so queues build up and the
//! latency measures the backlog; with `rate` set, bars are published at that rate and the
//! latency is the pipeline's own.
//!
//! The clock starts after a warm-up (`BENCH_WARMUP_MS`; default 0 embedded, 10 s on Kafka):
//! Kafka consumers join their groups in the background, and the second ml worker's join
//! rebalances the group; bars published meanwhile wait seconds, which is start-up, not
//! the pipeline's latency.
//!
//! # Figures (2-core shared machine, release build, default sizes: 12 symbols x 1,565 bars)
//! | setup | before batching | after |
//! |---|---|---|
//! | embedded, unpaced, anomaly scoring on | 623 bars/s | 4,100-5,200 bars/s |
//! | embedded, unpaced, `BENCH_ANOMALY_HISTORY=0` | ~1,175 bars/s | 5,300-6,100 bars/s |
//! | PostgreSQL + Kafka mock, unpaced | 341 bars/s (group join inside the clock) | 3,460-3,870 bars/s (5 s warm-up) |
//! | embedded, paced: p50 / p99 bar-to-order | - | 1,000 bars/s: 4.9 / 29 ms; 1,500 bars/s: 727 / 1,341 ms |
//! | PostgreSQL + Kafka mock, paced (400 bars/symbol) | - | 1,000 bars/s: 29 / 46 ms; 1,500 bars/s: 44 / 112 ms |
//! | 2026-11-25, embedded, unpaced (6 runs alternating with the previous build, quiet machine) | - | 19,100-22,700 bars/s, median 20,700 (previous build 16,000-18,800, median 17,200) |
//! | 2026-11-25, embedded, paced 1,000 bars/s, 400 bars/symbol: p50 / p99 (3 runs each) | - | 4.6-4.8 / 13.0-14.7 ms (previous build 4.6-5.7 / 13.2-17.8 ms) |
//!
//! After multi-row SQLite batch writes (analyses and markers: one statement per table and
//! batch instead of four per bar), risk-refused signals marked with the trade role's batch
//! and the trade role's portfolio kept across a batch's fills (same machine, quieter):
//! embedded unpaced 12,400-12,900 bars/s; PostgreSQL + Kafka mock unpaced 7,400-7,800
//! bars/s; paced 1,000 bars/s p50 / p99: embedded 5-10 / 17-72 ms (noisy), PostgreSQL +
//! mock 27 / 42-46 ms. What bounds the unpaced run now is the trade role's serial fills
//! (one per order, 9 round trips each to the SQLite connection's worker thread, about 40 %
//! of the CPU time in the kernel's thread switches) and the anomaly forest (about 15 %);
//! the two cores are about 60 % busy.
//!
//! After fewer round trips per fill (SQLite 9 -> 5: the marker's `INSERT … RETURNING` reads
//! cash and position, one `fill_writes` statement writes order, cash and position; the
//! SQLite pools no longer ping a connection before handing it out; PostgreSQL 11 -> 6 with
//! data-modifying `WITH`), runs interleaved with the previous build on the same, busier
//! machine: embedded unpaced 13,300-16,100 bars/s (previous build 12,800-13,400);
//! PostgreSQL + Kafka mock unpaced 7,300-8,200 (previous 5,900-6,700); paced 1,000 bars/s
//! p99: embedded 19-22 ms (previous 27-36 ms interleaved, 10-14 ms when the machine was
//! idle), PostgreSQL + mock 39-58 ms (previous 45-71 ms; one run of the
//! new build fell behind to 617 bars/s, p50 4.7 s, not seen again); PostgreSQL + tansu
//! (in-memory, a fresh broker per run) 6 symbols 3,800-3,900 (previous 3,540-3,870), 12
//! symbols 5,740 (previous 5,680-5,910). The report's `ml done` line shows what bounds
//! a run: embedded, the ml role finishes at 0.8-1.0 s and the trade role's fills take the
//! rest; on a real broker the ml role itself takes most of the run.
//!
//! After the trade role's fills of a batch share one SQLite write transaction
//! ([`crate::store::FillBatch`]) and the ml role's small forests are grown and scored on
//! its own thread (session 5; idle machine, alternating with the previous build, three
//! runs each): embedded unpaced 12,200-14,700 bars/s (previous build 10,800-11,300 in the
//! same runs); the trade role now ends 0.15-0.25 s after the ml role instead of
//! 0.55-0.65 s, so the ml role (its forests are about a fifth of the CPU time) bounds the
//! run. Paced 1,000 bars/s p50 / p99: 7.4 / 39.5 ms (previous 7.4 / 35.1 ms).
//!
//! With the consumers' `fetch.wait.max.ms` at 10 ms (librdkafka's 500 ms before; tansu
//! holds each fetch for the whole wait, adding it to every hop), PostgreSQL + tansu, one
//! fresh broker per run: unpaced 12 symbols 5,970 bars/s (5,840 before); paced p50 / p99
//! 1,000 bars/s 68 / 437 ms (before: the pipeline fell behind, 808 bars/s, p50 955 ms),
//! 500 bars/s 45 / 102 ms (before 884 / 1,301 ms).
//!
//! 2026-11-25 (session 6; the last two rows of the table): the ml role's analyses run
//! through `block_in_place` (the trade role's task, which may hold the write lock, no
//! longer queues behind a batch's forests), a bar between refits computes the anomaly
//! features of its own row only (bit-identical), and the SQLite writes send no `RETURNING`
//! row per item (markers: one `SELECT` of the keys already there, then a plain `INSERT`;
//! ids from `last_insert_rowid` on the `AUTOINCREMENT` tables; a fill's trade goes with
//! its `fill_writes` in one round trip). The 20,000 bars/s target is reached in 4 of the
//! 6 final runs (an earlier set of 7 pairs on a busier machine, without the fill change:
//! 16,500-21,200, median 18,500, against 15,300-20,100, median 17,700). CPU time per run
//! 1.41 s instead of 1.49 s, context switches 32 k instead of 45 k (`perf stat`). What
//! bounds it (runs instrumented with timers, not kept): the one SQLite write lock is held
//! for 80-90 % of the run (trade fill batches 370-580 ms, ml analysis writes 340-390 ms,
//! down from 500-560, ingest 60-90 ms), so the roles mostly wait for each other's
//! transactions while the two cores are only ~65 % busy; the ml role's own CPU is mostly
//! the forest refits (450 of 590 ms, about half of that the core scoring the training
//! rows for the contamination threshold). Capping the trade batch at 64 signals (to let
//! the ml writes in sooner) made no difference beyond the noise.
//!
//! 2026-11-25, later (session 6, this build, a quiet machine): embedded unpaced
//! 22,300-23,800 bars/s in 6 of 6 runs; paced 1,000 bars/s p50 / p99 5.7-6.0 / 15.8-16.3
//! ms. PostgreSQL + tansu (in memory, a fresh broker per run): unpaced 8,050-8,480 bars/s
//! (before 5,840-5,970).
//!
//! Kafka latency on tansu. One hop (a producer with `acks=all`, a consumer, 500 msg/s,
//! measured with librdkafka 2.16 from Python) takes p50 21 / p99 28 ms with librdkafka's
//! defaults (`linger.ms` 5, the service's `fetch.wait.max.ms` 10: tansu holds every fetch
//! for its whole wait) and 3.4 / 6 ms with `linger.ms=0,fetch.wait.max.ms=1`
//! (`bus.kafka_properties`, here `BENCH_KAFKA_PROPERTIES`). A producer's first messages
//! waited about 500 ms (its idempotent producer id), so the ingest clients are now made
//! before the warm-up. With the 5 s warm-up the second ml worker's partitions were still
//! unassigned when the clock started on tansu: their first bars waited 200-800 ms, which
//! made the whole p99 (none of it with one ml worker or a 10 s warm-up, now the default).
//! The report's `after 1 s` line leaves out the orders of bars published in the first
//! second. Paced, 400 bars per symbol, p50 / p99 (max):
//! | rate | librdkafka defaults | `linger.ms=0,fetch.wait.max.ms=1` |
//! |---|---|---|
//! | 500 bars/s, 10 s warm-up | 39 / 68 ms (76) | 15.8-16.3 / 36.6-40.1 ms (46-52), 3 runs |
//! | 1,000 bars/s, 10 s warm-up | - | 35 / 104 ms (108) |
//! | 500 bars/s, 5 s warm-up | 40 / 355 ms; after 1 s 39 / 64 ms | 14-16 / 276-400 ms; after 1 s 37-42 ms |
//! | 1,000 bars/s, 5 s warm-up | 58 / 798 ms; after 1 s 199 ms | 33-52 / 796-863 ms; after 1 s 163-269 ms |
//!
//! At 1,000 bars/s the two cores run PostgreSQL, tansu and every role and fall behind
//! (926-951 bars/s published).
//!
//! Paced runs do not batch (a bar is alone when it arrives), so each bar pays its own
//! store round trips: the highest paced rate with p99 under 50 ms is about 1,000 bars/s on
//! both setups, well below the unpaced throughput. The figures vary by 10-20 % from run
//! to run with the other processes on the machine.
//!
//! # Backends
//! A `postgres://` URL runs on PostgreSQL (tables in a fresh schema `bench_<id>`) and Kafka:
//! the brokers given, or librdkafka's in-process mock cluster when none are (the report says
//! which). Anything else runs the embedded default in a temporary folder: SQLite and the
//! in-process bus.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use quantcore::Bar;
use tokio::task::JoinSet;

use crate::bus::{Bus, BusError, KafkaBus, KafkaSettings, MemoryBus};
use crate::messages::topics;
use crate::roles::{self, MlSettings, RoleError, Stats, TradeSettings};
use crate::store::{self, PgStore, Store, StoreError};

/// What to run.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchConfig {
    /// `postgres://…` for PostgreSQL + Kafka; anything else (or `None`): embedded.
    pub database_url: Option<String>,
    /// Kafka bootstrap servers; `None` with PostgreSQL: the in-process mock cluster.
    pub kafka_brokers: Option<String>,
    /// Symbols replayed (copies of the 3 sample symbols). Default 12.
    pub symbols: usize,
    /// Bars per symbol, at most the sample's length. Default all.
    pub bars_per_symbol: usize,
    /// Bars per second over all symbols; 0: as fast as possible. Default 0.
    pub rate: f64,
    /// ml roles in the consumer group. Default 2.
    pub ml_workers: usize,
    /// The ml role's anomaly history (0: no anomaly scoring). Default 120, the service's.
    pub anomaly_history: usize,
    /// Connections per role's pool. Default 4.
    pub max_connections: u32,
    /// Milliseconds between starting the roles and the first publish; `None`: 0 embedded,
    /// [`DISTRIBUTED_WARMUP_MS`] on Kafka.
    pub warmup_ms: Option<u64>,
    /// Extra librdkafka properties of every Kafka client (as the service's
    /// `bus.kafka_properties`). Default none.
    pub kafka_properties: Vec<(String, String)>,
}

/// The default warm-up on Kafka: the consumer groups' joins and the rebalance when the
/// second ml worker joins take a few seconds, during which nothing is consumed. 5 s was
/// too short on tansu: the second worker's partitions were still unassigned when the
/// clock started, and their first bars waited 200-800 ms (all of the p99 at 500 bars/s;
/// none with one ml worker or a 10 s warm-up).
pub const DISTRIBUTED_WARMUP_MS: u64 = 10_000;

impl Default for BenchConfig {
    fn default() -> Self {
        Self {
            database_url: None,
            kafka_brokers: None,
            symbols: 12,
            bars_per_symbol: usize::MAX,
            rate: 0.0,
            ml_workers: 2,
            anomaly_history: MlSettings::default().anomaly_history,
            max_connections: 4,
            warmup_ms: None,
            kafka_properties: Vec::new(),
        }
    }
}

impl BenchConfig {
    /// Reads (not `QUANTCORE_*`: the config refuses unknown ones) `BENCH_SYMBOLS`, `BENCH_BARS` (per symbol),
    /// `BENCH_RATE`, `BENCH_ML_WORKERS`, `BENCH_ANOMALY_HISTORY`, `BENCH_WARMUP_MS` and
    /// `BENCH_KAFKA_PROPERTIES` (`key=value,key=value`) over the defaults.
    ///
    /// # Errors
    /// [`BenchError::Setting`] for a variable that does not parse.
    pub fn with_env(mut self) -> Result<Self, BenchError> {
        fn read<T: std::str::FromStr>(name: &'static str, into: &mut T) -> Result<(), BenchError> {
            if let Ok(text) = std::env::var(name) {
                *into = text
                    .trim()
                    .parse()
                    .map_err(|_| BenchError::Setting { name, value: text })?;
            }
            Ok(())
        }
        read("BENCH_SYMBOLS", &mut self.symbols)?;
        read("BENCH_BARS", &mut self.bars_per_symbol)?;
        read("BENCH_RATE", &mut self.rate)?;
        read("BENCH_ML_WORKERS", &mut self.ml_workers)?;
        read("BENCH_ANOMALY_HISTORY", &mut self.anomaly_history)?;
        if std::env::var_os("BENCH_WARMUP_MS").is_some() {
            let mut warmup = 0;
            read("BENCH_WARMUP_MS", &mut warmup)?;
            self.warmup_ms = Some(warmup);
        }
        if let Ok(text) = std::env::var("BENCH_KAFKA_PROPERTIES") {
            self.kafka_properties = parse_properties(&text).ok_or(BenchError::Setting {
                name: "BENCH_KAFKA_PROPERTIES",
                value: text.clone(),
            })?;
        }
        Ok(self)
    }
}

/// `key=value,key=value` (empty: none); `None` when an item has no `=` or an empty key.
fn parse_properties(text: &str) -> Option<Vec<(String, String)>> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            let (key, value) = item.split_once('=')?;
            let key = key.trim();
            (!key.is_empty()).then(|| (key.to_owned(), value.trim().to_owned()))
        })
        .collect()
}

/// Orders whose bar was published at least this long after the clock started make the
/// steady-state latency: the first second holds the start-up (first queries on fresh
/// connections, the first signals of every symbol at once).
pub const STEADY_AFTER: Duration = Duration::from_secs(1);

/// The figures of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchReport {
    /// The store and bus used (and whether Kafka was the mock cluster).
    pub setup: String,
    pub bars: u64,
    pub seconds: f64,
    pub bars_per_second: f64,
    /// Seconds from the first publish until the ml role had analysed every bar (the rest
    /// of `seconds` is the trade role finishing the signals behind it).
    pub ml_seconds: f64,
    /// Signals published by the ml role.
    pub signals: u64,
    /// Orders filled.
    pub orders: u64,
    /// Bar-to-order latency, milliseconds (`None` without orders).
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub latency_max_ms: Option<f64>,
    /// The same over the orders of bars published [`STEADY_AFTER`] the start or later.
    pub steady_p50_ms: Option<f64>,
    pub steady_p99_ms: Option<f64>,
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.2} ms"));
        writeln!(f, "setup:        {}", self.setup)?;
        writeln!(
            f,
            "bars:         {} in {:.3} s = {:.0} bars/s",
            self.bars, self.seconds, self.bars_per_second
        )?;
        writeln!(f, "ml done:      after {:.3} s", self.ml_seconds)?;
        writeln!(
            f,
            "signals:      {}, orders filled: {}",
            self.signals, self.orders
        )?;
        writeln!(
            f,
            "bar-to-order: p50 {}, p99 {}, max {}",
            ms(self.latency_p50_ms),
            ms(self.latency_p99_ms),
            ms(self.latency_max_ms)
        )?;
        write!(
            f,
            "after {} s:    p50 {}, p99 {}",
            STEADY_AFTER.as_secs(),
            ms(self.steady_p50_ms),
            ms(self.steady_p99_ms)
        )
    }
}

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error(transparent)]
    Core(#[from] quantcore::Error),
    #[error("a role stopped: {0}")]
    Role(String),
    #[error("cannot create the temporary folder: {0}")]
    TempDir(std::io::Error),
    #[error("`{name}` must be a number, was {value:?}")]
    Setting { name: &'static str, value: String },
}

enum Backend {
    Embedded {
        url: String,
        bus: Arc<MemoryBus>,
        _dir: TempDir,
    },
    Distributed {
        url: String,
        schema: String,
        brokers: String,
        // Owns the mock cluster when there is one.
        _mock: Option<rdkafka::producer::BaseProducer>,
    },
}

/// A temporary folder, removed on drop (no extra dependency for it).
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Backend {
    async fn store(&self, max_connections: u32) -> Result<Arc<dyn Store>, StoreError> {
        Ok(match self {
            Self::Embedded { url, .. } => store::open(url, max_connections).await?,
            Self::Distributed { url, schema, .. } => {
                let store = PgStore::connect_in_schema(url, schema, max_connections).await?;
                store.migrate().await?;
                Arc::new(store)
            }
        })
    }

    /// A bus client; on Kafka with the extra librdkafka `properties`.
    fn bus(&self, properties: &[(String, String)]) -> Result<Arc<dyn Bus>, BusError> {
        Ok(match self {
            Self::Embedded { bus, .. } => bus.clone(),
            Self::Distributed { brokers, _mock, .. } => {
                let mut settings = KafkaSettings::new(brokers.clone());
                if _mock.is_some() {
                    // The mock broker holds every fetch for fetch.wait.max.ms.
                    settings = settings.with("fetch.wait.max.ms", "5");
                }
                for (key, value) in properties {
                    settings = settings.with(key, value);
                }
                Arc::new(KafkaBus::new(settings)?)
            }
        })
    }
}

fn topic_names() -> Vec<String> {
    [
        topics::MARKET_DATA,
        topics::TRADING_SIGNALS,
        topics::ANOMALIES,
    ]
    .into_iter()
    .flat_map(|topic| [topic.to_owned(), topics::dead_letter(topic)])
    .collect()
}

async fn backend(config: &BenchConfig) -> Result<(Backend, String), BenchError> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    match config.database_url.as_deref() {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            let schema = format!("bench_{run}");
            let (brokers, mock, kind) = match &config.kafka_brokers {
                Some(brokers) => (brokers.clone(), None, format!("Kafka at {brokers}")),
                None => {
                    use rdkafka::producer::Producer;
                    let owner: rdkafka::producer::BaseProducer = rdkafka::ClientConfig::new()
                        .set("test.mock.num.brokers", "1")
                        .create()
                        .map_err(|source| BusError::Kafka {
                            operation: "create mock cluster",
                            source,
                        })?;
                    let cluster = owner
                        .client()
                        .mock_cluster()
                        .expect("a client created with test.mock.num.brokers has one");
                    for topic in topic_names() {
                        cluster
                            .create_topic(&topic, 4, 1)
                            .map_err(|source| BusError::Kafka {
                                operation: "create topic",
                                source,
                            })?;
                    }
                    let brokers = cluster.bootstrap_servers();
                    drop(cluster);
                    (
                        brokers,
                        Some(owner),
                        "Kafka: librdkafka's in-process MOCK cluster (no --kafka-brokers given)"
                            .to_owned(),
                    )
                }
            };
            if mock.is_none() {
                let admin = KafkaBus::new(KafkaSettings::new(brokers.clone()))?;
                let names = topic_names();
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                admin.ensure_topics(&names, 4, 1).await?;
            }
            Ok((
                Backend::Distributed {
                    url: url.to_owned(),
                    schema: schema.clone(),
                    brokers,
                    _mock: mock,
                },
                format!("PostgreSQL (schema {schema}) + {kind}"),
            ))
        }
        _ => {
            let dir = std::env::temp_dir().join(format!("quantcore-bench-{run}"));
            std::fs::create_dir_all(&dir).map_err(BenchError::TempDir)?;
            let url = format!("sqlite://{}", dir.join("bench.db").display());
            Ok((
                Backend::Embedded {
                    url,
                    bus: Arc::new(MemoryBus::with_retention(4, usize::MAX)),
                    _dir: TempDir(dir),
                },
                "embedded: SQLite (temporary file) + in-process bus".to_owned(),
            ))
        }
    }
}

/// When the publish of a bar (symbol, bar time) returned.
type Published = ((String, i64), DateTime<Utc>);

/// The `q` quantile (0..=1) of sorted `samples`, nearest rank.
fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// Runs the benchmark; see the [module docs](self).
///
/// # Errors
/// A store or bus that cannot be opened, or a role that stops.
pub async fn run(config: &BenchConfig) -> Result<BenchReport, BenchError> {
    let (backend, setup) = backend(config).await?;
    let sample = quantcore::sample::daily()?;
    let mut feeds: Vec<(String, Vec<Bar>)> = Vec::new();
    for copy in 0..config.symbols.div_ceil(sample.len()).max(1) {
        for (symbol, series) in &sample {
            if feeds.len() < config.symbols.max(1) {
                let bars = series.iter().take(config.bars_per_symbol).collect();
                feeds.push((format!("{symbol}_{copy}"), bars));
            }
        }
    }
    let total: u64 = feeds.iter().map(|(_, bars)| bars.len() as u64).sum();

    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let ml_stats = Arc::new(Stats::default());
    let trade_stats = Arc::new(Stats::default());
    let ingest_stats = Arc::new(Stats::default());
    let model_dir = std::env::temp_dir().join(format!("quantcore-bench-models-{run_id}"));
    let mut roles: JoinSet<Result<(), RoleError>> = JoinSet::new();
    let trade_store = backend.store(config.max_connections).await?;
    let settings = TradeSettings {
        group: format!("bench-{run_id}-trade"),
        ..TradeSettings::default()
    };
    trade_store
        .ensure_account(settings.initial_cash, Utc::now())
        .await?;
    for _ in 0..config.ml_workers.max(1) {
        roles.spawn(roles::ml_role(
            backend.store(config.max_connections).await?,
            backend.bus(&config.kafka_properties)?,
            MlSettings {
                model_dir: model_dir.clone(),
                group: format!("bench-{run_id}-ml"),
                anomaly_history: config.anomaly_history,
                ..MlSettings::default()
            },
            ml_stats.clone(),
        ));
    }
    roles.spawn(roles::trade_role(
        trade_store.clone(),
        backend.bus(&config.kafka_properties)?,
        settings,
        trade_stats.clone(),
    ));

    // The ingest tasks' clients, made before the warm-up: a Kafka producer's start-up
    // (its idempotent producer id) delayed its first messages by about 500 ms on tansu.
    let mut ingest_clients = Vec::with_capacity(feeds.len());
    for _ in &feeds {
        ingest_clients.push((
            backend.store(config.max_connections).await?,
            backend.bus(&config.kafka_properties)?,
        ));
    }
    // Let the consumers join their groups before the clock starts (see the module docs).
    let warmup = config.warmup_ms.unwrap_or(match backend {
        Backend::Embedded { .. } => 0,
        Backend::Distributed { .. } => DISTRIBUTED_WARMUP_MS,
    });
    tokio::time::sleep(Duration::from_millis(warmup)).await;
    let started = Instant::now();
    let per_symbol_interval = if config.rate > 0.0 {
        Duration::from_secs_f64(feeds.len() as f64 / config.rate)
    } else {
        Duration::ZERO
    };
    let mut ingest: JoinSet<Result<Vec<Published>, RoleError>> = JoinSet::new();
    for ((symbol, bars), (store, bus)) in feeds.into_iter().zip(ingest_clients) {
        let stats = ingest_stats.clone();
        ingest.spawn(async move {
            let mut published = Vec::with_capacity(bars.len());
            let mut next = tokio::time::Instant::now();
            let chunk = if per_symbol_interval.is_zero() {
                roles::INGEST_CHUNK
            } else {
                1
            };
            for bars in bars.chunks(chunk) {
                let at =
                    roles::ingest_bars(store.as_ref(), bus.as_ref(), &symbol, bars, &stats).await?;
                published.extend(bars.iter().map(|bar| ((symbol.clone(), bar.timestamp), at)));
                if !per_symbol_interval.is_zero() {
                    next += per_symbol_interval;
                    tokio::time::sleep_until(next).await;
                }
            }
            Ok(published)
        });
    }
    let mut published_at: HashMap<(String, i64), DateTime<Utc>> = HashMap::new();
    while let Some(done) = ingest.join_next().await {
        let times = done
            .map_err(|error| BenchError::Role(error.to_string()))?
            .map_err(|error| BenchError::Role(error.to_string()))?;
        published_at.extend(times);
    }
    let mut ml_seconds = None;
    loop {
        if let Some(done) = roles.try_join_next() {
            return Err(BenchError::Role(format!("{done:?}")));
        }
        let analysed = Stats::get(&ml_stats.bars_analysed);
        if analysed >= total && ml_seconds.is_none() {
            ml_seconds = Some(started.elapsed().as_secs_f64());
        }
        if analysed >= total
            && Stats::get(&trade_stats.signals_handled) >= Stats::get(&ml_stats.signals_published)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let ml_seconds = ml_seconds.unwrap_or(seconds);
    roles.abort_all();

    let steady_from = Utc::now()
        - chrono::Duration::from_std(started.elapsed()).unwrap_or_default()
        + chrono::Duration::from_std(STEADY_AFTER).unwrap_or_default();
    let mut latencies = Vec::new();
    let mut steady = Vec::new();
    for trade in trade_store.trades(usize::MAX).await? {
        let Some(order) = trade_store.order(trade.order_id).await? else {
            continue;
        };
        let key = (trade.symbol.clone(), trade.executed_at.timestamp());
        if let Some(published) = published_at.get(&key) {
            let latency = (order.created_at - *published)
                .num_microseconds()
                .unwrap_or(0);
            latencies.push(latency as f64 / 1_000.0);
            if *published >= steady_from {
                steady.push(latency as f64 / 1_000.0);
            }
        }
    }
    latencies.sort_by(f64::total_cmp);
    steady.sort_by(f64::total_cmp);
    let _ = std::fs::remove_dir_all(&model_dir);
    Ok(BenchReport {
        setup,
        bars: total,
        seconds,
        bars_per_second: total as f64 / seconds,
        ml_seconds,
        signals: Stats::get(&ml_stats.signals_published),
        orders: Stats::get(&trade_stats.orders_filled),
        latency_p50_ms: quantile(&latencies, 0.5),
        latency_p99_ms: quantile(&latencies, 0.99),
        latency_max_ms: latencies.last().copied(),
        steady_p50_ms: quantile(&steady, 0.5),
        steady_p99_ms: quantile(&steady, 0.99),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&samples, 0.5), Some(50.0));
        assert_eq!(quantile(&samples, 0.99), Some(99.0));
        assert_eq!(quantile(&samples, 1.0), Some(100.0));
        assert_eq!(quantile(&[7.0], 0.99), Some(7.0));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn kafka_properties_parse_as_key_value_pairs() {
        let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        assert_eq!(
            parse_properties(" linger.ms=0, fetch.wait.max.ms = 1 ,"),
            Some(vec![pair("linger.ms", "0"), pair("fetch.wait.max.ms", "1")])
        );
        assert_eq!(parse_properties(""), Some(vec![]));
        assert_eq!(parse_properties("a=b=c"), Some(vec![pair("a", "b=c")]));
        assert_eq!(parse_properties("linger.ms"), None, "no value");
        assert_eq!(parse_properties("=1"), None, "no key");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_small_embedded_run_reports_every_bar_and_order() {
        let config = BenchConfig {
            symbols: 2,
            bars_per_symbol: 80,
            anomaly_history: 0,
            ..BenchConfig::default()
        };
        let report = run(&config).await.unwrap();
        assert_eq!(report.bars, 160);
        assert!(report.setup.starts_with("embedded"));
        assert!(report.orders > 0, "{report}");
        assert!(report.latency_p50_ms.is_some() && report.latency_p99_ms >= report.latency_p50_ms);
    }
}
