//! Reference service for quantcore: the wiring around the core library.
//!
//! The service runs the roles of the design (ingest, ml, trade, api) over two
//! pluggable pieces of infrastructure, each an object-safe trait with two
//! implementations and one conformance test suite:
//!
//! | piece | trait | implementations |
//! |---|---|---|
//! | storage | [`store::Store`] | [`store::PgStore`] (PostgreSQL, stored procedures and triggers), [`store::SqliteStore`] (embedded default) |
//! | messaging | [`bus::Bus`] | [`bus::KafkaBus`] (rdkafka), [`bus::MemoryBus`] (in-process) |
//!
//! The roles ([`roles`]: ingest from [`sources`] (replay, Yahoo, Alpaca), ml,
//! mark-to-market with stop-loss and take-profit, trade) and the HTTP API
//! ([`api`], axum) run as tokio tasks of one process with [`service::run`] (`quantcore-service
//! run`), or one per process (`ingest`, `ml`, `trade`, `api`). With no configuration, `run`
//! is the embedded default: SQLite under `./data/`, the in-process bus, the replay of the
//! bundled sample bars, the API on `127.0.0.1:8000`.
//!
//! Messages on the bus are JSON [`messages::Envelope`]s carrying a schema version and a
//! unique id for idempotent processing. Configuration ([`config`]) layers defaults, a TOML
//! file, `QUANTCORE_*` environment variables and command-line flags.
//!
//! # Testing
//! Both conformance suites (`tests/service/store_conformance.rs`, `tests/service/bus_conformance.rs`) run
//! every scenario on every implementation. PostgreSQL is real, started by a script:
//!
//! ```text
//! scripts/with-postgres.sh cargo test -p quantcore-service --locked
//! ```
//!
//! Without `QUANTCORE_TEST_DATABASE_URL` (which the script exports) the PostgreSQL tests
//! fail and say why; `QUANTCORE_SKIP_POSTGRES=1` skips them explicitly. Kafka runs on
//! librdkafka's in-process mock cluster; `KAFKA_BROKERS=host:port` adds a real broker.
//!
//! The service holds no trading rule of its own: money rules (sizing, risk, fills,
//! average price, PnL) live in the `quantcore` crate; the store persists what it is
//! given, atomically.

pub mod api;
pub mod bench;
pub mod bus;
pub mod config;
pub mod messages;
pub mod openapi;
pub mod roles;
pub mod service;
pub mod shutdown;
pub mod sources;
pub mod store;
pub mod telemetry;
pub mod train;
