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
//!   train     train an LSTM per symbol on its stored bars (`--symbol S`, `--epochs N`, ...)
//!   backtest  backtest a built-in strategy on a CSV file or the bundled sample
//! ```
//!
//! `run` and the single roles stop gracefully on SIGTERM or Ctrl-C and exit 0.
//!
//! Configuration layers are described in `quantcore_service::config`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use quantcore_service::api::{BacktestRequest, backtest_json};
use quantcore_service::config::{Config, ConfigFlags};
use quantcore_service::service::{self, Roles};
use quantcore_service::store;
use quantcore_service::train::{self, TrainParams};

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

#[derive(Debug, Clone, PartialEq, Subcommand)]
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
    /// Train an LSTM per symbol on its stored bars and save it where the ml role loads it.
    Train(TrainArgs),
    /// Backtest a built-in strategy on a CSV file or the bundled sample, as `POST /backtest`.
    Backtest(BacktestArgs),
    /// Measure pipeline throughput and bar-to-order latency (embedded, or PostgreSQL + Kafka
    /// with a postgres:// --database-url; Kafka is the in-process mock cluster unless
    /// `--bus kafka --kafka-brokers` are given). Sizes from BENCH_* variables.
    Bench,
}

/// `train` arguments; unset parameters take the defaults of `quantcore_service::train`.
#[derive(Debug, Clone, PartialEq, Args)]
struct TrainArgs {
    /// Symbol to train (repeatable); default: `source.symbols`, else every sample symbol.
    #[arg(long = "symbol", value_name = "SYMBOL")]
    symbols: Vec<String>,
    /// Maximum epochs.
    #[arg(long)]
    epochs: Option<usize>,
    /// LSTM hidden size.
    #[arg(long)]
    hidden_size: Option<usize>,
    /// Stacked LSTM layers.
    #[arg(long)]
    num_layers: Option<usize>,
    /// Feature rows per input (at most ml.window - 1).
    #[arg(long)]
    window: Option<usize>,
    /// Samples per optimizer step.
    #[arg(long)]
    batch_size: Option<usize>,
    /// AdamW learning rate.
    #[arg(long)]
    learning_rate: Option<f64>,
    /// Held-out fraction for early stopping, in [0, 1).
    #[arg(long)]
    validation_fraction: Option<f64>,
    /// Epochs without improvement before stopping.
    #[arg(long)]
    patience: Option<usize>,
    /// Seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Most recent stored bars to train on.
    #[arg(long)]
    bars: Option<usize>,
}

impl TrainArgs {
    fn params(&self) -> TrainParams {
        TrainParams {
            epochs: self.epochs,
            hidden_size: self.hidden_size,
            num_layers: self.num_layers,
            window: self.window,
            batch_size: self.batch_size,
            learning_rate: self.learning_rate,
            validation_fraction: self.validation_fraction,
            patience: self.patience,
            seed: self.seed,
            bars: self.bars,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum StrategyName {
    Momentum,
    MeanReversion,
}

/// `backtest` arguments.
#[derive(Debug, Clone, PartialEq, Args)]
struct BacktestArgs {
    /// Symbol of the CSV file or the sample (needed when the file has several).
    #[arg(long)]
    symbol: Option<String>,
    /// CSV of bars (the core's parser: one or several symbols); default the bundled daily sample.
    #[arg(long, value_name = "PATH")]
    csv: Option<PathBuf>,
    /// The built-in strategy.
    #[arg(long, value_enum, default_value = "momentum")]
    strategy: StrategyName,
    /// Momentum: fast moving-average window, bars.
    #[arg(long, default_value_t = 10)]
    fast: usize,
    /// Momentum: slow moving-average window, bars.
    #[arg(long, default_value_t = 50)]
    slow: usize,
    /// Mean reversion: z-score window, bars.
    #[arg(long, default_value_t = 20)]
    window: usize,
    /// Mean reversion: entry z-score.
    #[arg(long, default_value_t = 2.0)]
    entry_z: f64,
    /// Mean reversion: exit z-score.
    #[arg(long, default_value_t = 0.0)]
    exit_z: f64,
    /// Let the strategy go short.
    #[arg(long)]
    allow_short: bool,
    /// The core's `BacktestConfig` as a JSON file (every field optional).
    #[arg(long, value_name = "PATH")]
    config_json: Option<PathBuf>,
    /// Write the HTML report here.
    #[arg(long, value_name = "PATH")]
    html: Option<PathBuf>,
    /// Print the JSON of `POST /backtest` instead of the text report.
    #[arg(long)]
    json: bool,
}

impl Command {
    fn roles(&self) -> Option<Roles> {
        let roles = |ingest, ml, trade, api| Roles {
            ingest,
            ml,
            trade,
            api,
        };
        Some(match self {
            Self::Run => Roles::ALL,
            Self::Ingest => roles(true, false, false, false),
            Self::Ml => roles(false, true, false, false),
            Self::Trade => roles(false, false, true, false),
            Self::Api => roles(false, false, false, true),
            Self::Migrate | Self::Train(_) | Self::Backtest(_) | Self::Bench => return None,
        })
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

async fn migrate(config: &Config) -> Result<String, String> {
    let store = store::open(&config.database.url, config.database.max_connections)
        .await
        .map_err(|error| error.to_string())?;
    tracing::info!(backend = ?store.backend(), "migrations applied");
    // The URL is not printed: it may hold a password.
    Ok(format!(
        "database schema is up to date ({:?})",
        store.backend()
    ))
}

/// Trains each symbol in turn; prints one line per model.
async fn train_models(config: &Config, args: &TrainArgs) -> Result<String, String> {
    let symbols = if !args.symbols.is_empty() {
        args.symbols.clone()
    } else if !config.source.symbols.is_empty() {
        config.source.symbols.clone()
    } else {
        quantcore::sample::SYMBOLS
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    };
    let store = store::open(&config.database.url, config.database.max_connections)
        .await
        .map_err(|error| error.to_string())?;
    let settings = service::training_settings(config);
    let params = args.params();
    let mut lines = Vec::new();
    for symbol in symbols {
        let model = train::train_symbol(store.as_ref(), &settings, &symbol, &params)
            .await
            .map_err(|error| format!("{symbol}: {error}"))?;
        let (best_epoch, epochs_run) = model
            .history
            .as_ref()
            .map_or((0, 0), |h| (h.best_epoch, h.train_loss.len()));
        lines.push(format!(
            "{symbol}: trained {epochs_run} epochs (best {best_epoch}), window {}, hidden {}, saved to {}",
            model.config.window,
            model.config.hidden_size,
            settings.model_dir.join(&symbol).display()
        ));
    }
    Ok(lines.join("\n"))
}

/// Runs the backtest through [`BacktestRequest::run_on`], the engine of `POST /backtest`.
fn backtest(args: &BacktestArgs) -> Result<String, String> {
    let series = match &args.csv {
        None => quantcore::sample::daily().map_err(|error| error.to_string())?,
        Some(path) => {
            let bytes = std::fs::read(path)
                .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
            quantcore::normalize::csv::parse_bars_by_symbol(
                &bytes[..],
                &quantcore::normalize::ParseOptions::default(),
            )
            .map_err(|error| format!("{}: {error}", path.display()))?
            .series
        }
    };
    let symbol = match (&args.symbol, series.len()) {
        (Some(symbol), _) => symbol.clone(),
        (None, 1) => series.keys().next().cloned().unwrap_or_default(),
        (None, _) => {
            return Err(format!(
                "give --symbol: the data has {}",
                series.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
    };
    let bars: Vec<quantcore::Bar> = series
        .get(&symbol)
        .ok_or_else(|| format!("no bars for {symbol:?}"))?
        .iter()
        .collect();
    let strategy = match args.strategy {
        StrategyName::Momentum => serde_json::json!({
            "strategy": "momentum", "fast": args.fast, "slow": args.slow,
            "allow_short": args.allow_short,
        }),
        StrategyName::MeanReversion => serde_json::json!({
            "strategy": "mean_reversion", "window": args.window, "entry_z": args.entry_z,
            "exit_z": args.exit_z, "allow_short": args.allow_short,
        }),
    };
    let config = match &args.config_json {
        None => serde_json::json!({}),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
            serde_json::from_str(&text).map_err(|error| format!("{}: {error}", path.display()))?
        }
    };
    // The request type of `POST /backtest`, so the CLI parses exactly what the API does.
    let request: BacktestRequest = serde_json::from_value(serde_json::json!({
        "symbol": symbol, "strategy": strategy, "config": config,
    }))
    .map_err(|error| format!("invalid backtest parameters: {error}"))?;
    let result = request
        .run_on(&symbol, &bars)
        .map_err(|error| error.to_string())?;
    if let Some(path) = &args.html {
        let title = format!("{symbol} {:?}", args.strategy);
        result
            .write_report_html(path, &title)
            .map_err(|error| error.to_string())?;
    }
    if args.json {
        return Ok(backtest_json(&result).to_string());
    }
    let final_equity = result.equity.last().copied().unwrap_or(f64::NAN);
    Ok(format!(
        "{symbol}: {} bars, {} trades\n{}\nfinal_equity: {final_equity}",
        bars.len(),
        result.trades.len(),
        result.report_text().trim_end()
    ))
}

/// `bench`: the pipeline benchmark on the configured store and bus.
async fn bench(config: &Config) -> Result<String, String> {
    let bench = quantcore_service::bench::BenchConfig {
        database_url: Some(config.database.url.clone()),
        kafka_brokers: (config.bus.kind == quantcore_service::config::BusKind::Kafka)
            .then(|| config.bus.brokers.clone()),
        kafka_properties: config.bus.kafka_properties.clone().into_iter().collect(),
        ..Default::default()
    }
    .with_env()
    .map_err(|error| error.to_string())?;
    let report = quantcore_service::bench::run(&bench)
        .await
        .map_err(|error| error.to_string())?;
    Ok(report.to_string())
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

/// Prints a command's answer (stdout) or error (stderr) and maps it to the exit code.
fn finish(result: Result<String, String>) -> ExitCode {
    match result {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
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
    if let Command::Backtest(args) = &cli.command {
        return finish(backtest(args));
    }
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let Some(roles) = cli.command.roles() else {
        return finish(runtime.block_on(async {
            match &cli.command {
                Command::Train(args) => train_models(&config, args).await,
                Command::Bench => bench(&config).await,
                _ => migrate(&config).await,
            }
        }));
    };
    match runtime.block_on(service::run(&config, roles)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
