//! `quantcore-service`: the reference service binary.
//!
//! ```text
//! quantcore-service [FLAGS] <COMMAND>
//!   run       all roles and the HTTP API in one process (embedded default)
//!   ingest    the ingest role alone
//!   ml        the ml role alone
//!   trade     the trade role alone
//!   api       the HTTP API alone
//!   migrate   create or upgrade the database schema
//!   train     train a model
//!   backtest  run a backtest
//! ```
//!
//! Configuration layers are described in `quantcore_service::config`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use quantcore_service::config::{Config, ConfigFlags};
use quantcore_service::service::{self, Roles};
use quantcore_service::store;

/// Exit code of a command that is not built yet.
const EXIT_NOT_IMPLEMENTED: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "quantcore-service",
    version,
    about = "quantcore reference service"
)]
struct Cli {
    #[command(flatten)]
    flags: ConfigFlags,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
enum Command {
    /// Run every role and the HTTP API in one process.
    Run,
    /// Run the ingest role: fetch bars, store them, publish them.
    Ingest,
    /// Run the ml role: predict, signal, score anomalies.
    Ml,
    /// Run the trade role: size, check risk, fill, update the portfolio.
    Trade,
    /// Serve the HTTP API.
    Api,
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Train a model.
    Train,
    /// Run a backtest.
    Backtest,
    /// Measure pipeline throughput and bar-to-order latency (embedded, or PostgreSQL + Kafka
    /// with a postgres:// --database-url; Kafka is the in-process mock cluster unless
    /// `--bus kafka --kafka-brokers` are given). Sizes from BENCH_* variables.
    Bench,
}

impl Command {
    fn name(self) -> &'static str {
        match self {
            Self::Run => "run",
            Self::Ingest => "ingest",
            Self::Ml => "ml",
            Self::Trade => "trade",
            Self::Api => "api",
            Self::Migrate => "migrate",
            Self::Train => "train",
            Self::Backtest => "backtest",
            Self::Bench => "bench",
        }
    }
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if config.log.json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn migrate(config: &Config) -> Result<store::Backend, store::StoreError> {
    let store = store::open(&config.database.url, config.database.max_connections).await?;
    tracing::info!(backend = ?store.backend(), "migrations applied");
    Ok(store.backend())
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| {
            eprintln!("error: cannot start the async runtime: {error}");
            ExitCode::FAILURE
        })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load_from_process(&cli.flags) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    init_logging(&config);
    let roles = |ingest, ml, trade, api| Roles {
        ingest,
        ml,
        trade,
        api,
    };
    let roles = match cli.command {
        Command::Migrate => {
            let runtime = match runtime() {
                Ok(runtime) => runtime,
                Err(code) => return code,
            };
            return match runtime.block_on(migrate(&config)) {
                Ok(backend) => {
                    // The URL is not printed: it may hold a password.
                    println!("database schema is up to date ({backend:?})");
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("error: {error}");
                    ExitCode::FAILURE
                }
            };
        }
        Command::Bench => {
            let runtime = match runtime() {
                Ok(runtime) => runtime,
                Err(code) => return code,
            };
            let bench = quantcore_service::bench::BenchConfig {
                database_url: Some(config.database.url.clone()),
                kafka_brokers: (config.bus.kind == quantcore_service::config::BusKind::Kafka)
                    .then(|| config.bus.brokers.clone()),
                ..Default::default()
            }
            .with_env();
            let report = match bench {
                Ok(bench) => runtime.block_on(quantcore_service::bench::run(&bench)),
                Err(error) => Err(error),
            };
            return match report {
                Ok(report) => {
                    println!("{report}");
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("error: {error}");
                    ExitCode::FAILURE
                }
            };
        }
        Command::Run => Roles::ALL,
        Command::Ingest => roles(true, false, false, false),
        Command::Ml => roles(false, true, false, false),
        Command::Trade => roles(false, false, true, false),
        Command::Api => roles(false, false, false, true),
        command => {
            eprintln!("quantcore-service {}: not yet implemented", command.name());
            return ExitCode::from(EXIT_NOT_IMPLEMENTED);
        }
    };
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    match runtime.block_on(service::run(&config, roles)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
