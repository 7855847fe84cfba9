//! Shared harness of the end-to-end and fault tests (`tests/e2e.rs`, `tests/faults.rs`):
//! a deployment (store and bus), the pipeline roles started on it, and a lock-step feed.
//!
//! # Deployments
//! - **Embedded**: one SQLite file and one in-process bus, shared by the roles (one process).
//! - **Distributed**: PostgreSQL (a schema of its own on `QUANTCORE_TEST_DATABASE_URL`) and
//!   Kafka (librdkafka's in-process mock cluster, or the broker of `KAFKA_BROKERS`). Each
//!   role gets its own store handle (its own connection pool) and its own Kafka client, in
//!   its own consumer group, as separate processes would.
//!
//! # Lock-step feed
//! [`Pipeline::feed`] ingests one bar with the ingest role's own function
//! ([`roles::replay_symbol`]) and then waits until the pipeline is idle: the ml role has
//! analysed every ingested bar and the trade role has handled every published signal. The
//! trade role's decisions depend on the portfolio left by the previous ones, so this fixes
//! the order in which signals of different symbols reach it (bar time, then symbol) and
//! makes a run reproducible — on every backend, and in the direct core computation the
//! tests compare with. It is what a live feed does when the pipeline keeps up: a bar every
//! interval, all work done before the next.
//!
//! The mark-to-market role is not started: it marks positions concurrently with the
//! trade role's sizing, so whether a signal is sized on the previous or the new close of
//! another symbol depends on task timing (`tests/pipeline.rs` covers marking).

#![allow(dead_code)] // Each test binary uses a part of the harness.

use std::sync::Arc;
use std::time::Duration;

use quantcore::Bar;
use quantcore_service::bus::{Bus, KafkaBus, KafkaSettings, MemoryBus};
use quantcore_service::messages::topics;
use quantcore_service::roles::{self, MlSettings, RoleError, Stats, TradeSettings};
use quantcore_service::store::{self, PgStore, Store};
use rdkafka::ClientConfig;
use rdkafka::bindings;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::{Offset, TopicPartitionList};
use tokio::task::JoinSet;

/// Partitions of every topic.
pub const PARTITIONS: i32 = 4;
/// How long the pipeline may take to settle after one bar (a database restart included).
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Which store.
pub enum StoreKind {
    /// A SQLite file in a temporary folder.
    Sqlite {
        url: String,
        _dir: tempfile::TempDir,
    },
    /// A PostgreSQL schema of its own.
    Postgres { url: String, schema: String },
}

/// Which bus.
pub enum BusKind {
    /// The in-process bus (one for the process).
    Memory(Arc<MemoryBus>),
    /// Kafka: the mock cluster owned by `_owner`, or a real broker.
    Kafka {
        brokers: String,
        mock: bool,
        _owner: Option<BaseProducer>,
    },
}

/// A store and a bus to run the pipeline on.
pub struct Deployment {
    pub name: &'static str,
    pub store: StoreKind,
    pub bus: BusKind,
    /// Consumer group suffix, unique per deployment (real brokers outlive tests).
    pub run_id: String,
}

pub use crate::stores::postgres_url;

fn run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

impl Deployment {
    /// SQLite and the in-process bus: the embedded default.
    pub fn embedded() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("quantcore.db").display());
        Self {
            name: "embedded (sqlite + in-process bus)",
            store: StoreKind::Sqlite { url, _dir: dir },
            bus: BusKind::Memory(Arc::new(MemoryBus::new(PARTITIONS as usize))),
            run_id: run_id(),
        }
    }

    /// PostgreSQL at `url` and Kafka on a fresh mock cluster.
    pub fn postgres_kafka_mock(url: String) -> Self {
        Self::kafka_mock(
            "distributed (postgres + kafka mock cluster)",
            StoreKind::Postgres {
                url,
                schema: format!("e2e_{}", run_id()),
            },
        )
    }

    /// SQLite and Kafka on a fresh mock cluster (no PostgreSQL needed).
    pub fn sqlite_kafka_mock() -> Self {
        let Self { store, .. } = Self::embedded();
        Self::kafka_mock("sqlite + kafka mock cluster", store)
    }

    fn kafka_mock(name: &'static str, store: StoreKind) -> Self {
        let owner: BaseProducer = ClientConfig::new()
            .set("test.mock.num.brokers", "1")
            .create()
            .expect("mock cluster");
        // SAFETY: the handle is a live client created above, and the cluster it returns is
        // owned by that client, which outlives this call. (No rebalance delay: Kafka's
        // 3 s default would hold every new group.)
        unsafe {
            let cluster = bindings::rd_kafka_handle_mock_cluster(owner.client().native_ptr());
            assert!(!cluster.is_null(), "client has a mock cluster");
            bindings::rd_kafka_mock_group_initial_rebalance_delay_ms(cluster, 0);
        }
        let cluster = owner.client().mock_cluster().expect("mock cluster");
        for topic in all_topics() {
            cluster.create_topic(&topic, PARTITIONS, 1).unwrap();
        }
        let brokers = cluster.bootstrap_servers();
        drop(cluster);
        Self {
            name,
            store,
            bus: BusKind::Kafka {
                brokers,
                mock: true,
                _owner: Some(owner),
            },
            run_id: run_id(),
        }
    }

    /// PostgreSQL at `url` and the Kafka broker of `KAFKA_BROKERS`, or `None` (said on
    /// stderr) when that is unset.
    pub async fn postgres_kafka_broker(url: String) -> Option<Self> {
        let Ok(brokers) = std::env::var("KAFKA_BROKERS") else {
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                b"SKIPPED: real-broker test (set KAFKA_BROKERS to run it)\n",
            );
            return None;
        };
        let admin = KafkaBus::new(KafkaSettings::new(brokers.clone())).unwrap();
        let names = all_topics();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        admin.ensure_topics(&names, PARTITIONS, 1).await.unwrap();
        Some(Self {
            name: "distributed (postgres + kafka broker)",
            store: StoreKind::Postgres {
                url,
                schema: format!("e2e_{}", run_id()),
            },
            bus: BusKind::Kafka {
                brokers,
                mock: false,
                _owner: None,
            },
            run_id: run_id(),
        })
    }

    /// A new store handle (its own pool), migrated.
    pub async fn open_store(&self) -> Arc<dyn Store> {
        match &self.store {
            StoreKind::Sqlite { url, .. } => store::open(url, 4).await.unwrap(),
            StoreKind::Postgres { url, schema } => {
                let store = PgStore::connect_in_schema(url, schema, 4).await.unwrap();
                store.migrate().await.unwrap();
                Arc::new(store)
            }
        }
    }

    /// A bus handle: the shared in-process bus, or a new Kafka client.
    pub fn open_bus(&self) -> Arc<dyn Bus> {
        match &self.bus {
            BusKind::Memory(bus) => bus.clone(),
            BusKind::Kafka { brokers, mock, .. } => {
                let mut settings = KafkaSettings {
                    // The mock cluster accepts a short session (quicker group joins); real
                    // brokers refuse one under 6 s.
                    session_timeout: Duration::from_secs(if *mock { 3 } else { 6 }),
                    ..KafkaSettings::new(brokers.clone())
                }
                .with("topic.metadata.refresh.interval.ms", "500");
                if *mock {
                    // The mock broker answers a fetch only when `fetch.wait.max.ms` (500 ms)
                    // has passed, even with data waiting; a real broker answers at once.
                    // (librdkafka warns that the producer ignores this consumer property.)
                    settings = settings.with("fetch.wait.max.ms", "5");
                }
                Arc::new(KafkaBus::new(settings).unwrap())
            }
        }
    }

    /// The consumer group of `role` in this run.
    pub fn group(&self, role: &str) -> String {
        format!("e2e-{}-{role}", self.run_id)
    }

    /// On a real broker, starts `group` at the end of `topic`: the topics outlive test runs,
    /// and a new group would otherwise begin with the messages of earlier runs.
    pub fn start_group_at_end(&self, topic: &str, group: &str) {
        let BusKind::Kafka {
            brokers,
            mock: false,
            ..
        } = &self.bus
        else {
            return;
        };
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let timeout = Duration::from_secs(10);
        let metadata = consumer.fetch_metadata(Some(topic), timeout).unwrap();
        let mut offsets = TopicPartitionList::new();
        for partition in metadata.topics()[0].partitions() {
            let (_, high) = consumer
                .fetch_watermarks(topic, partition.id(), timeout)
                .unwrap();
            offsets
                .add_partition_offset(topic, partition.id(), Offset::Offset(high))
                .unwrap();
        }
        consumer.commit(&offsets, CommitMode::Sync).unwrap();
    }
}

fn all_topics() -> Vec<String> {
    [
        topics::MARKET_DATA,
        topics::TRADING_SIGNALS,
        topics::ANOMALIES,
    ]
    .into_iter()
    .flat_map(|topic| [topic.to_owned(), topics::dead_letter(topic)])
    .collect()
}

/// The ml settings of the tests: no trained model (the sma-trend forecast), anomaly
/// scoring on, the run's consumer group.
pub fn ml_settings(deployment: &Deployment, model_dir: &std::path::Path) -> MlSettings {
    MlSettings {
        model_dir: model_dir.to_owned(),
        group: deployment.group(roles::groups::ML),
        ..MlSettings::default()
    }
}

/// The trade settings of the tests: the defaults, the run's consumer group.
pub fn trade_settings(deployment: &Deployment) -> TradeSettings {
    TradeSettings {
        group: deployment.group(roles::groups::TRADE),
        ..TradeSettings::default()
    }
}

/// The ingest, ml and trade roles running on a deployment.
pub struct Pipeline {
    /// The ingest role's store and bus.
    pub ingest_store: Arc<dyn Store>,
    pub ingest_bus: Arc<dyn Bus>,
    /// Each role's counters.
    pub ingest: Arc<Stats>,
    pub ml: Arc<Stats>,
    pub trade: Arc<Stats>,
    tasks: JoinSet<Result<(), RoleError>>,
    _models: tempfile::TempDir,
}

fn count(counter: &std::sync::atomic::AtomicU64) -> u64 {
    Stats::get(counter)
}

impl Pipeline {
    /// Starts the ml and trade roles, each on its own store and bus handles.
    pub async fn start(deployment: &Deployment) -> Self {
        // The roles' logs, filtered by RUST_LOG (default: warnings), in the test output.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
            )
            .with_test_writer()
            .try_init();
        let models = tempfile::tempdir().unwrap();
        let ml_settings = ml_settings(deployment, models.path());
        let trade_settings = trade_settings(deployment);
        deployment.start_group_at_end(topics::MARKET_DATA, &ml_settings.group);
        deployment.start_group_at_end(topics::TRADING_SIGNALS, &trade_settings.group);
        let (ingest, ml, trade) = (
            Arc::new(Stats::default()),
            Arc::new(Stats::default()),
            Arc::new(Stats::default()),
        );
        let mut tasks = JoinSet::new();
        tasks.spawn(roles::ml_role(
            deployment.open_store().await,
            deployment.open_bus(),
            ml_settings,
            ml.clone(),
        ));
        tasks.spawn(roles::trade_role(
            deployment.open_store().await,
            deployment.open_bus(),
            trade_settings,
            trade.clone(),
        ));
        Self {
            ingest_store: deployment.open_store().await,
            ingest_bus: deployment.open_bus(),
            ingest,
            ml,
            trade,
            tasks,
            _models: models,
        }
    }

    /// Ingests `bar` of `symbol` with the ingest role and waits until the pipeline is idle.
    pub async fn feed(&mut self, symbol: &str, bar: Bar) {
        roles::replay_symbol(
            self.ingest_store.clone(),
            self.ingest_bus.clone(),
            symbol.to_owned(),
            vec![bar],
            Duration::ZERO,
            self.ingest.clone(),
        )
        .await
        .expect("ingest");
        self.settle().await;
    }

    /// Waits until every ingested bar is analysed and every published signal handled.
    ///
    /// # Panics
    /// When a role stops, or after [`SETTLE_TIMEOUT`].
    pub async fn settle(&mut self) {
        let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT;
        loop {
            if let Some(done) = self.tasks.try_join_next() {
                panic!("a role stopped: {done:?}");
            }
            let analysed = count(&self.ml.bars_analysed);
            let published = count(&self.ml.signals_published);
            if analysed >= count(&self.ingest.bars_ingested)
                && count(&self.trade.signals_handled) >= published
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the pipeline did not settle: {} ingested, {analysed} analysed, {published} \
                 signals published, {} handled",
                count(&self.ingest.bars_ingested),
                count(&self.trade.signals_handled)
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Stops the roles.
    pub async fn stop(mut self) {
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }
}

/// The first `bars` bars of each of `symbols` from the bundled daily sample, in feed order:
/// by bar time, then symbol.
pub fn sample_feed(symbols: &[&str], bars: usize) -> Vec<(String, Bar)> {
    let daily = quantcore::sample::daily().unwrap();
    let mut feed: Vec<(String, Bar)> = symbols
        .iter()
        .flat_map(|symbol| {
            daily[*symbol]
                .iter()
                .take(bars)
                .map(move |bar| ((*symbol).to_owned(), bar))
        })
        .collect();
    feed.sort_by(|a, b| (a.1.timestamp, &a.0).cmp(&(b.1.timestamp, &b.0)));
    feed
}
