//! Service configuration: defaults < TOML file < `QUANTCORE_*` environment < flags.
//!
//! # Layers
//! 1. **Defaults** ([`Config::default`]): the embedded setup that needs nothing installed —
//!    SQLite file `./data/quantcore.db`, in-process bus, replay of the bundled sample data,
//!    HTTP API on `127.0.0.1:8000`.
//! 2. **File**: a TOML file named by `--config PATH` or `QUANTCORE_CONFIG`. Every table and
//!    key is optional; unknown keys are errors (`deny_unknown_fields`), reported with their
//!    line. No file is read unless one is named.
//! 3. **Environment**: the variables of [`ENV_VARS`], one per key, `QUANTCORE_<TABLE>_<KEY>`
//!    (`QUANTCORE_DATABASE_URL`, `QUANTCORE_BUS_KIND`, …). Lists are comma-separated. An empty
//!    value clears an optional key. Any other `QUANTCORE_*` variable is an error (a typo must
//!    not be ignored), except `QUANTCORE_CONFIG` and the test switches `QUANTCORE_TEST_*` and
//!    `QUANTCORE_SKIP_*`.
//! 4. **Flags** ([`ConfigFlags`]): the few settings one changes per run.
//!
//! After merging, [`Config::validate`] reports every invalid field at once.
//!
//! ```
//! use quantcore_service::config::{BusKind, Config, ConfigFlags};
//! let env = [("QUANTCORE_BUS_KIND".to_string(), "kafka".to_string())];
//! let flags = ConfigFlags { api_bind: Some("0.0.0.0:9000".parse()?), ..ConfigFlags::default() };
//! let config = Config::load(None, env, &flags)?;
//! assert_eq!(config.bus.kind, BusKind::Kafka);
//! assert_eq!(config.api.bind.port(), 9000);
//! assert_eq!(config.database.url, "sqlite://./data/quantcore.db");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The named file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not valid TOML or has an unknown or mistyped key.
    #[error("config file {path}: {message}")]
    File { path: PathBuf, message: String },
    /// An environment variable has a value of the wrong type.
    #[error("environment variable {name}: {message}, was {value:?}")]
    Env {
        name: String,
        value: String,
        message: String,
    },
    /// A `QUANTCORE_*` variable that is no setting.
    #[error(
        "unknown environment variable {name} (settings are listed in quantcore_service::config::ENV_VARS)"
    )]
    UnknownEnv { name: String },
    /// The merged layers do not form a configuration (a bad enum value, say).
    #[error("configuration: {0}")]
    Merge(String),
    /// Fields with invalid values; every one is listed.
    #[error("invalid configuration: {}", .0.join("; "))]
    Invalid(Vec<String>),
}

/// The whole configuration; see the [module docs](self) for the layers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub database: DatabaseConfig,
    pub bus: BusConfig,
    pub source: SourceConfig,
    pub api: ApiConfig,
    pub trading: TradingConfig,
    pub ml: MlConfig,
    pub log: LogConfig,
    pub shutdown: ShutdownConfig,
}

/// `[database]`: which store to open.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` (created when missing, with its folder) or `postgres://…`.
    /// Default `sqlite://./data/quantcore.db`.
    pub url: String,
    /// Connection pool size. Default 8.
    pub max_connections: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://./data/quantcore.db".into(),
            max_connections: 8,
        }
    }
}

/// Which bus implementation to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BusKind {
    /// In-process bus (embedded default).
    Memory,
    /// Apache Kafka (or a Kafka-compatible broker) via librdkafka.
    Kafka,
}

/// `[bus]`: messaging.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BusConfig {
    /// Default `memory`.
    pub kind: BusKind,
    /// Kafka bootstrap servers, comma-separated. Default `127.0.0.1:9092`.
    pub brokers: String,
    /// Partitions per topic (memory bus; topics the service creates on Kafka). Default 4.
    pub partitions: u32,
    /// Prefix of the consumer group names (`<prefix>-ml`, `<prefix>-trade`). Default `quantcore`.
    pub group_prefix: String,
    /// Extra librdkafka properties for every Kafka client, over the service's own
    /// (TOML only: `[bus.kafka_properties]`, e.g. `"security.protocol" = "ssl"`). On a
    /// broker that holds every fetch for its whole wait (tansu), `"linger.ms" = "0"` and
    /// `"fetch.wait.max.ms" = "1"` cut a hop from about 21 ms to about 3 ms (see `bench`).
    /// Default none.
    pub kafka_properties: BTreeMap<String, String>,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            kind: BusKind::Memory,
            brokers: "127.0.0.1:9092".into(),
            partitions: 4,
            group_prefix: "quantcore".into(),
            kafka_properties: BTreeMap::new(),
        }
    }
}

/// Where bars come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// Replay a CSV file (default: the bundled sample data).
    Replay,
    /// Yahoo Finance chart API.
    Yahoo,
    /// Alpaca market data API (keys from `APCA_API_KEY_ID` / `APCA_API_SECRET_KEY`).
    Alpaca,
}

/// `[source]`: the ingest role's market data source.
///
/// `replay` (the default) needs no network. `yahoo` and `alpaca` poll their HTTP API every
/// `interval_secs` per symbol (see [`crate::sources`]); they need `symbols`. Alpaca's keys
/// come from `alpaca_key_id` / `alpaca_secret_key`, else from the environment variables
/// `APCA_API_KEY_ID` / `APCA_API_SECRET_KEY` (Alpaca's own names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SourceConfig {
    /// Default `replay`.
    pub kind: SourceKind,
    /// Symbols to ingest; empty means every symbol of the replay file (live sources need
    /// at least one). Default empty.
    pub symbols: Vec<String>,
    /// Polling interval per symbol for live sources, seconds. Default 60.
    pub interval_secs: u64,
    /// CSV file to replay; `None` means the bundled sample data. Default `None`.
    pub replay_path: Option<PathBuf>,
    /// Pause between replayed bars, milliseconds (0: as fast as the pipeline goes). Default 100.
    pub replay_interval_ms: u64,
    /// Yahoo chart API base URL. Default `https://query1.finance.yahoo.com`.
    pub yahoo_url: String,
    /// Yahoo bar interval (`interval=`): `1m`, `5m`, `1h`, `1d`, … Default `1m`.
    pub yahoo_interval: String,
    /// Yahoo range fetched per poll (`range=`): `1d`, `5d`, … Default `1d`.
    pub yahoo_range: String,
    /// Alpaca market data base URL. Default `https://data.alpaca.markets`.
    pub alpaca_url: String,
    /// Alpaca bar timeframe: `1Min`, `5Min`, `1Hour`, `1Day`, … Default `1Min`.
    pub alpaca_timeframe: String,
    /// Alpaca data feed (`iex` is free, `sip` needs a subscription); `None` lets Alpaca
    /// choose. Default `iex`.
    pub alpaca_feed: Option<String>,
    /// Alpaca key id; `None`: `APCA_API_KEY_ID`. Default `None`.
    pub alpaca_key_id: Option<String>,
    /// Alpaca secret key; `None`: `APCA_API_SECRET_KEY`. Default `None`.
    pub alpaca_secret_key: Option<String>,
    /// How far back the first Alpaca poll of a symbol with no stored bars reaches, seconds.
    /// Default 86,400 (one day).
    pub lookback_secs: u64,
    /// Timeout of one HTTP request (connect to last byte), milliseconds. Default 10,000.
    pub timeout_ms: u64,
    /// Attempts per request, the first included (connect errors, timeouts, 5xx and 429
    /// are retried). Default 5.
    pub max_attempts: u32,
    /// Backoff before the first retry, milliseconds; doubles per retry, with jitter.
    /// Default 500.
    pub backoff_initial_ms: u64,
    /// Upper bound of one backoff, milliseconds. Default 30,000.
    pub backoff_max_ms: u64,
    /// Longest `Retry-After` a 429 may ask for, seconds; a longer one fails the request
    /// instead of stalling the poller. Default 300.
    pub max_retry_after_secs: u64,
}

impl Default for SourceConfig {
    fn default() -> Self {
        Self {
            kind: SourceKind::Replay,
            symbols: Vec::new(),
            interval_secs: 60,
            replay_path: None,
            replay_interval_ms: 100,
            yahoo_url: "https://query1.finance.yahoo.com".into(),
            yahoo_interval: "1m".into(),
            yahoo_range: "1d".into(),
            alpaca_url: "https://data.alpaca.markets".into(),
            alpaca_timeframe: "1Min".into(),
            alpaca_feed: Some("iex".into()),
            alpaca_key_id: None,
            alpaca_secret_key: None,
            lookback_secs: 86_400,
            timeout_ms: 10_000,
            max_attempts: 5,
            backoff_initial_ms: 500,
            backoff_max_ms: 30_000,
            max_retry_after_secs: 300,
        }
    }
}

/// `[api]`: the HTTP API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Listen address. Default `127.0.0.1:8000`.
    pub bind: SocketAddr,
    /// Bearer token required by mutating endpoints; `None` leaves them open. Default `None`.
    pub token: Option<String>,
    /// Largest accepted request body, bytes. Default 1 MiB.
    pub body_limit_bytes: u64,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8000)),
            token: None,
            body_limit_bytes: 1 << 20,
        }
    }
}

/// `[trading]`: the trade role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TradingConfig {
    /// Cash of a new account. Default 100,000.
    pub initial_cash: f64,
}

impl Default for TradingConfig {
    fn default() -> Self {
        Self {
            initial_cash: 100_000.0,
        }
    }
}

/// `[ml]`: the ml role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MlConfig {
    /// Bars per prediction window. Default 30.
    pub window: u32,
    /// Folder of trained models. Default `./data/models`.
    pub model_dir: PathBuf,
}

impl Default for MlConfig {
    fn default() -> Self {
        Self {
            window: 30,
            model_dir: PathBuf::from("./data/models"),
        }
    }
}

/// `[log]`: tracing output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// An `EnvFilter` directive (`info`, `quantcore_service=debug,sqlx=warn`). Default `info`.
    pub level: String,
    /// One JSON object per line instead of text. Default `false`.
    pub json: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            json: false,
        }
    }
}

// --- [shutdown] (graceful shutdown; added with the API/ops work) ---------------------

/// `[shutdown]`: graceful shutdown on SIGTERM or Ctrl-C.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownConfig {
    /// How long in-flight messages and HTTP requests may take to finish before the rest is
    /// aborted, seconds. Default 10.
    pub drain_timeout_secs: u64,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self {
            drain_timeout_secs: 10,
        }
    }
}

// --- end of [shutdown] --------------------------------------------------------------

/// The flags that override every other layer (flattened into the binary's clap parser).
#[derive(Debug, Clone, Default, PartialEq, clap::Args)]
pub struct ConfigFlags {
    /// TOML configuration file (else `QUANTCORE_CONFIG`, else none).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Database URL: `sqlite://PATH` or `postgres://…`.
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Bus implementation.
    #[arg(long, global = true, value_enum)]
    pub bus: Option<BusKind>,
    /// Kafka bootstrap servers.
    #[arg(long, global = true, value_name = "HOSTS")]
    pub kafka_brokers: Option<String>,
    /// HTTP listen address.
    #[arg(long, global = true, value_name = "ADDR")]
    pub api_bind: Option<SocketAddr>,
    /// Symbols to ingest, comma-separated.
    #[arg(long, global = true, value_delimiter = ',', value_name = "LIST")]
    pub symbols: Option<Vec<String>>,
    /// Log filter directive.
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Pause between replayed bars, milliseconds (0: as fast as the pipeline goes).
    #[arg(long, global = true, value_name = "MS")]
    pub replay_interval_ms: Option<u64>,
}

/// How an environment variable's text becomes a TOML value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvKind {
    /// Taken as is.
    Text,
    /// Taken as is; empty clears the key.
    OptionalText,
    /// A non-negative integer.
    Integer,
    /// A float.
    Float,
    /// `true`/`false`/`1`/`0`.
    Bool,
    /// Comma-separated strings, blanks trimmed, empty items dropped.
    List,
}

/// One environment variable: its name, the key it sets, how it is parsed.
#[derive(Debug, Clone, Copy)]
pub struct EnvVar {
    pub name: &'static str,
    pub path: [&'static str; 2],
    pub kind: EnvKind,
}

/// Every setting's environment variable.
pub const ENV_VARS: &[EnvVar] = &[
    env_var("QUANTCORE_DATABASE_URL", "database", "url", EnvKind::Text),
    env_var(
        "QUANTCORE_DATABASE_MAX_CONNECTIONS",
        "database",
        "max_connections",
        EnvKind::Integer,
    ),
    env_var("QUANTCORE_BUS_KIND", "bus", "kind", EnvKind::Text),
    env_var("QUANTCORE_BUS_BROKERS", "bus", "brokers", EnvKind::Text),
    env_var(
        "QUANTCORE_BUS_PARTITIONS",
        "bus",
        "partitions",
        EnvKind::Integer,
    ),
    env_var(
        "QUANTCORE_BUS_GROUP_PREFIX",
        "bus",
        "group_prefix",
        EnvKind::Text,
    ),
    env_var("QUANTCORE_SOURCE_KIND", "source", "kind", EnvKind::Text),
    env_var(
        "QUANTCORE_SOURCE_SYMBOLS",
        "source",
        "symbols",
        EnvKind::List,
    ),
    env_var(
        "QUANTCORE_SOURCE_INTERVAL_SECS",
        "source",
        "interval_secs",
        EnvKind::Integer,
    ),
    env_var(
        "QUANTCORE_SOURCE_REPLAY_PATH",
        "source",
        "replay_path",
        EnvKind::OptionalText,
    ),
    env_var(
        "QUANTCORE_SOURCE_REPLAY_INTERVAL_MS",
        "source",
        "replay_interval_ms",
        EnvKind::Integer,
    ),
    env_var(
        "QUANTCORE_SOURCE_YAHOO_URL",
        "source",
        "yahoo_url",
        EnvKind::Text,
    ),
    env_var(
        "QUANTCORE_SOURCE_YAHOO_INTERVAL",
        "source",
        "yahoo_interval",
        EnvKind::Text,
    ),
    env_var(
        "QUANTCORE_SOURCE_YAHOO_RANGE",
        "source",
        "yahoo_range",
        EnvKind::Text,
    ),
    env_var(
        "QUANTCORE_SOURCE_ALPACA_URL",
        "source",
        "alpaca_url",
        EnvKind::Text,
    ),
    env_var(
        "QUANTCORE_SOURCE_ALPACA_TIMEFRAME",
        "source",
        "alpaca_timeframe",
        EnvKind::Text,
    ),
    env_var(
        "QUANTCORE_SOURCE_ALPACA_FEED",
        "source",
        "alpaca_feed",
        EnvKind::OptionalText,
    ),
    env_var(
        "QUANTCORE_SOURCE_ALPACA_KEY_ID",
        "source",
        "alpaca_key_id",
        EnvKind::OptionalText,
    ),
    env_var(
        "QUANTCORE_SOURCE_ALPACA_SECRET_KEY",
        "source",
        "alpaca_secret_key",
        EnvKind::OptionalText,
    ),
    env_var(
        "QUANTCORE_SOURCE_LOOKBACK_SECS",
        "source",
        "lookback_secs",
        EnvKind::Integer,
    ),
    env_var(
        "QUANTCORE_SOURCE_TIMEOUT_MS",
        "source",
        "timeout_ms",
        EnvKind::Integer,
    ),
    env_var(
        "QUANTCORE_SOURCE_MAX_ATTEMPTS",
        "source",
        "max_attempts",
        EnvKind::Integer,
    ),
    env_var(
        "QUANTCORE_SOURCE_BACKOFF_INITIAL_MS",
        "source",
        "backoff_initial_ms",
        EnvKind::Integer,
    ),
    env_var(
        "QUANTCORE_SOURCE_BACKOFF_MAX_MS",
        "source",
        "backoff_max_ms",
        EnvKind::Integer,
    ),
    env_var(
        "QUANTCORE_SOURCE_MAX_RETRY_AFTER_SECS",
        "source",
        "max_retry_after_secs",
        EnvKind::Integer,
    ),
    env_var("QUANTCORE_API_BIND", "api", "bind", EnvKind::Text),
    env_var("QUANTCORE_API_TOKEN", "api", "token", EnvKind::OptionalText),
    env_var(
        "QUANTCORE_API_BODY_LIMIT_BYTES",
        "api",
        "body_limit_bytes",
        EnvKind::Integer,
    ),
    env_var(
        "QUANTCORE_TRADING_INITIAL_CASH",
        "trading",
        "initial_cash",
        EnvKind::Float,
    ),
    env_var("QUANTCORE_ML_WINDOW", "ml", "window", EnvKind::Integer),
    env_var("QUANTCORE_ML_MODEL_DIR", "ml", "model_dir", EnvKind::Text),
    env_var("QUANTCORE_LOG_LEVEL", "log", "level", EnvKind::Text),
    env_var("QUANTCORE_LOG_JSON", "log", "json", EnvKind::Bool),
    env_var(
        "QUANTCORE_SHUTDOWN_DRAIN_TIMEOUT_SECS",
        "shutdown",
        "drain_timeout_secs",
        EnvKind::Integer,
    ),
];

const fn env_var(
    name: &'static str,
    table: &'static str,
    key: &'static str,
    kind: EnvKind,
) -> EnvVar {
    EnvVar {
        name,
        path: [table, key],
        kind,
    }
}

/// Alpaca's own key variables and the `[source]` keys they fill (below the
/// `QUANTCORE_SOURCE_ALPACA_*` variables).
pub const ALPACA_KEY_ENV: [(&str, &str); 2] = [
    ("APCA_API_KEY_ID", "alpaca_key_id"),
    ("APCA_API_SECRET_KEY", "alpaca_secret_key"),
];

/// The variable naming the config file when `--config` is absent.
pub const CONFIG_FILE_ENV: &str = "QUANTCORE_CONFIG";

fn is_reserved_env(name: &str) -> bool {
    name == CONFIG_FILE_ENV
        || name.starts_with("QUANTCORE_TEST_")
        || name.starts_with("QUANTCORE_SKIP_")
}

impl Config {
    /// Loads the layers: defaults, then `file` (if any), then the `QUANTCORE_*` entries of
    /// `env`, then `flags` (whose `config` field is ignored here: pass the file as `file`).
    ///
    /// # Errors
    /// The first layer that cannot be read or parsed, or [`ConfigError::Invalid`] listing
    /// every invalid field of the result.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        flags: &ConfigFlags,
    ) -> Result<Self, ConfigError> {
        let mut merged = toml::Table::try_from(Config::default())
            .map_err(|error| ConfigError::Merge(error.to_string()))?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?;
            // Parse into the typed struct first: unknown or mistyped keys get an error with
            // their line, which the merged table would lose.
            toml::from_str::<Config>(&text).map_err(|error| ConfigError::File {
                path: path.to_owned(),
                message: error.to_string(),
            })?;
            let table: toml::Table = toml::from_str(&text).map_err(|error| ConfigError::File {
                path: path.to_owned(),
                message: error.to_string(),
            })?;
            merge_tables(&mut merged, table);
        }
        apply_env(&mut merged, env)?;
        apply_flags(&mut merged, flags);
        let config: Config = toml::Value::Table(merged)
            .try_into()
            .map_err(|error: toml::de::Error| ConfigError::Merge(error.message().to_owned()))?;
        config.validate()?;
        Ok(config)
    }

    /// Loads with the process environment; the file is `flags.config`, else the file named
    /// by `QUANTCORE_CONFIG`, else none.
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn load_from_process(flags: &ConfigFlags) -> Result<Self, ConfigError> {
        let file = flags
            .config
            .clone()
            .or_else(|| std::env::var_os(CONFIG_FILE_ENV).map(PathBuf::from));
        Self::load(file.as_deref(), std::env::vars(), flags)
    }

    /// Checks every field and lists all problems.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] with one entry per invalid field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let url = &self.database.url;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            problems.push(format!(
                "database.url must start with sqlite:, postgres:// or postgresql://, was {url:?}"
            ));
        }
        if self.database.max_connections == 0 {
            problems.push("database.max_connections must be at least 1, was 0".into());
        }
        if self.bus.kind == BusKind::Kafka && self.bus.brokers.trim().is_empty() {
            problems
                .push("bus.brokers must name at least one broker when bus.kind is kafka".into());
        }
        if self.bus.partitions == 0 {
            problems.push("bus.partitions must be at least 1, was 0".into());
        }
        if self.bus.group_prefix.trim().is_empty() {
            problems.push("bus.group_prefix must not be empty".into());
        }
        if self
            .bus
            .kafka_properties
            .keys()
            .any(|key| key.trim().is_empty())
        {
            problems.push("bus.kafka_properties must not have an empty key".into());
        }
        if self.source.interval_secs == 0 {
            problems.push("source.interval_secs must be at least 1, was 0".into());
        }
        self.source.validate_into(&mut problems);
        if let Some(symbol) = self.source.symbols.iter().find(|s| s.trim().is_empty()) {
            problems.push(format!(
                "source.symbols must not contain blank names, was {symbol:?}"
            ));
        }
        if matches!(self.api.token.as_deref(), Some(token) if token.is_empty()) {
            problems.push("api.token must not be empty when set".into());
        }
        if self.api.body_limit_bytes == 0 {
            problems.push("api.body_limit_bytes must be at least 1, was 0".into());
        }
        let cash = self.trading.initial_cash;
        if !(cash.is_finite() && cash > 0.0) {
            problems.push(format!(
                "trading.initial_cash must be finite and positive, was {cash}"
            ));
        }
        if self.ml.window < 2 {
            problems.push(format!(
                "ml.window must be at least 2, was {}",
                self.ml.window
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }
}

impl SourceConfig {
    /// Appends the problems of the live-source settings to `problems`.
    fn validate_into(&self, problems: &mut Vec<String>) {
        let live = self.kind != SourceKind::Replay;
        if live && self.symbols.is_empty() {
            problems.push(format!(
                "source.symbols must name at least one symbol when source.kind is {}",
                self.kind.as_str()
            ));
        }
        for (field, url) in [
            ("source.yahoo_url", &self.yahoo_url),
            ("source.alpaca_url", &self.alpaca_url),
        ] {
            let valid = reqwest::Url::parse(url)
                .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.has_host());
            if !valid {
                problems.push(format!("{field} must be an http(s) URL, was {url:?}"));
            }
        }
        for (field, value) in [
            ("source.yahoo_interval", &self.yahoo_interval),
            ("source.yahoo_range", &self.yahoo_range),
            ("source.alpaca_timeframe", &self.alpaca_timeframe),
        ] {
            if value.trim().is_empty() {
                problems.push(format!("{field} must not be empty"));
            }
        }
        for (field, value) in [
            ("source.timeout_ms", self.timeout_ms),
            ("source.max_attempts", u64::from(self.max_attempts)),
            ("source.lookback_secs", self.lookback_secs),
        ] {
            if value == 0 {
                problems.push(format!("{field} must be at least 1, was 0"));
            }
        }
        if self.backoff_max_ms < self.backoff_initial_ms {
            problems.push(format!(
                "source.backoff_max_ms must be at least source.backoff_initial_ms ({}), was {}",
                self.backoff_initial_ms, self.backoff_max_ms
            ));
        }
    }
}

impl SourceKind {
    /// The configuration spelling: `replay`, `yahoo`, `alpaca`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Replay => "replay",
            Self::Yahoo => "yahoo",
            Self::Alpaca => "alpaca",
        }
    }
}

fn merge_tables(base: &mut toml::Table, overlay: toml::Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(base_table)), toml::Value::Table(overlay_table)) => {
                merge_tables(base_table, overlay_table);
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

fn set_path(root: &mut toml::Table, path: [&str; 2], value: Option<toml::Value>) {
    let table = root
        .entry(path[0])
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if let toml::Value::Table(table) = table {
        match value {
            Some(value) => {
                table.insert(path[1].to_owned(), value);
            }
            None => {
                table.remove(path[1]);
            }
        }
    }
}

fn apply_env(
    merged: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    let mut vars: Vec<(String, String)> = Vec::new();
    for (name, text) in env {
        if name.starts_with("QUANTCORE_") {
            vars.push((name, text));
        } else if let Some(key) = ALPACA_KEY_ENV
            .iter()
            .find_map(|(var, key)| (*var == name && !text.is_empty()).then_some(*key))
        {
            // Alpaca's own variables fill the keys; `QUANTCORE_SOURCE_ALPACA_*` (applied
            // after) and flags still override them.
            set_path(merged, ["source", key], Some(toml::Value::String(text)));
        }
    }
    vars.sort();
    for (name, text) in vars {
        let Some(var) = ENV_VARS.iter().find(|var| var.name == name) else {
            if is_reserved_env(&name) {
                continue;
            }
            return Err(ConfigError::UnknownEnv { name });
        };
        let bad = |message: &str| ConfigError::Env {
            name: name.clone(),
            value: text.clone(),
            message: message.to_owned(),
        };
        let value = match var.kind {
            EnvKind::Text => Some(toml::Value::String(text.clone())),
            EnvKind::OptionalText if text.is_empty() => None,
            EnvKind::OptionalText => Some(toml::Value::String(text.clone())),
            EnvKind::Integer => {
                let number: u64 = text
                    .trim()
                    .parse()
                    .map_err(|_| bad("expected a non-negative integer"))?;
                let number = i64::try_from(number).map_err(|_| bad("integer too large"))?;
                Some(toml::Value::Integer(number))
            }
            EnvKind::Float => {
                let number: f64 = text.trim().parse().map_err(|_| bad("expected a number"))?;
                Some(toml::Value::Float(number))
            }
            EnvKind::Bool => match text.trim() {
                "true" | "1" => Some(toml::Value::Boolean(true)),
                "false" | "0" => Some(toml::Value::Boolean(false)),
                _ => return Err(bad("expected true, false, 1 or 0")),
            },
            EnvKind::List => Some(toml::Value::Array(
                text.split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(|item| toml::Value::String(item.to_owned()))
                    .collect(),
            )),
        };
        set_path(merged, var.path, value);
    }
    Ok(())
}

fn apply_flags(merged: &mut toml::Table, flags: &ConfigFlags) {
    let text = |value: &str| Some(toml::Value::String(value.to_owned()));
    if let Some(url) = &flags.database_url {
        set_path(merged, ["database", "url"], text(url));
    }
    if let Some(kind) = flags.bus {
        let name = match kind {
            BusKind::Memory => "memory",
            BusKind::Kafka => "kafka",
        };
        set_path(merged, ["bus", "kind"], text(name));
    }
    if let Some(brokers) = &flags.kafka_brokers {
        set_path(merged, ["bus", "brokers"], text(brokers));
    }
    if let Some(bind) = flags.api_bind {
        set_path(merged, ["api", "bind"], text(&bind.to_string()));
    }
    if let Some(symbols) = &flags.symbols {
        let list = symbols
            .iter()
            .map(|symbol| toml::Value::String(symbol.trim().to_owned()))
            .collect();
        set_path(
            merged,
            ["source", "symbols"],
            Some(toml::Value::Array(list)),
        );
    }
    if let Some(level) = &flags.log_level {
        set_path(merged, ["log", "level"], text(level));
    }
    if let Some(ms) = flags.replay_interval_ms {
        let ms = i64::try_from(ms).unwrap_or(i64::MAX);
        set_path(
            merged,
            ["source", "replay_interval_ms"],
            Some(toml::Value::Integer(ms)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        file
    }

    #[test]
    fn no_configuration_is_the_embedded_default() {
        let config = Config::load(None, env(&[]), &ConfigFlags::default()).unwrap();
        assert_eq!(config.database.url, "sqlite://./data/quantcore.db");
        assert_eq!(config.bus.kind, BusKind::Memory);
        assert_eq!(config.source.kind, SourceKind::Replay);
        assert_eq!(config.source.replay_path, None);
        assert_eq!(config.api.bind, "127.0.0.1:8000".parse().unwrap());
        assert_eq!(config.api.token, None);
        assert_eq!(config, Config::default());
    }

    #[test]
    fn kafka_properties_come_from_the_file_and_empty_keys_are_refused() {
        let toml = file(
            "[bus]\nkind = \"kafka\"\n\
             [bus.kafka_properties]\n\"linger.ms\" = \"0\"\n\"fetch.wait.max.ms\" = \"1\"\n",
        );
        let config = Config::load(Some(toml.path()), env(&[]), &ConfigFlags::default()).unwrap();
        let properties: Vec<_> = config
            .bus
            .kafka_properties
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(properties, [("fetch.wait.max.ms", "1"), ("linger.ms", "0")]);
        assert!(Config::default().bus.kafka_properties.is_empty());

        let bad = file("[bus.kafka_properties]\n\" \" = \"1\"\n");
        let error = Config::load(Some(bad.path()), env(&[]), &ConfigFlags::default()).unwrap_err();
        assert!(
            error.to_string().contains("bus.kafka_properties"),
            "{error}"
        );
    }

    #[test]
    fn each_layer_overrides_the_one_below() {
        let toml = file(
            "[database]\nurl = \"postgres://file/db\"\nmax_connections = 3\n\
             [bus]\nkind = \"kafka\"\nbrokers = \"file:9092\"\n\
             [api]\nbind = \"127.0.0.1:7000\"\ntoken = \"from-file\"\n",
        );
        // File over defaults.
        let config = Config::load(Some(toml.path()), env(&[]), &ConfigFlags::default()).unwrap();
        assert_eq!(config.database.url, "postgres://file/db");
        assert_eq!(config.database.max_connections, 3);
        assert_eq!(config.bus.brokers, "file:9092");
        assert_eq!(config.api.token.as_deref(), Some("from-file"));
        assert_eq!(
            config.source.interval_secs, 60,
            "untouched keys keep defaults"
        );

        // Environment over the file.
        let vars = env(&[
            ("QUANTCORE_DATABASE_URL", "postgres://env/db"),
            ("QUANTCORE_BUS_BROKERS", "env:9092"),
            ("QUANTCORE_API_TOKEN", ""),
            ("PATH", "/usr/bin"),
        ]);
        let config =
            Config::load(Some(toml.path()), vars.clone(), &ConfigFlags::default()).unwrap();
        assert_eq!(config.database.url, "postgres://env/db");
        assert_eq!(config.database.max_connections, 3, "file value kept");
        assert_eq!(config.bus.brokers, "env:9092");
        assert_eq!(config.api.token, None, "an empty variable clears an option");
        assert_eq!(config.api.bind.port(), 7000);

        // Flags over the environment.
        let flags = ConfigFlags {
            database_url: Some("sqlite://flag.db".into()),
            bus: Some(BusKind::Memory),
            api_bind: Some("127.0.0.1:6000".parse().unwrap()),
            replay_interval_ms: Some(0),
            ..ConfigFlags::default()
        };
        let config = Config::load(Some(toml.path()), vars, &flags).unwrap();
        assert_eq!(config.source.replay_interval_ms, 0);
        assert_eq!(config.database.url, "sqlite://flag.db");
        assert_eq!(config.bus.kind, BusKind::Memory);
        assert_eq!(config.bus.brokers, "env:9092", "no flag: env value kept");
        assert_eq!(config.api.bind.port(), 6000);
    }

    #[test]
    fn environment_values_are_typed() {
        let vars = env(&[
            ("QUANTCORE_SOURCE_SYMBOLS", " ACME, GLOBEX ,,INITECH"),
            ("QUANTCORE_SOURCE_INTERVAL_SECS", "5"),
            ("QUANTCORE_TRADING_INITIAL_CASH", "2500.5"),
            ("QUANTCORE_LOG_JSON", "1"),
            ("QUANTCORE_SOURCE_KIND", "yahoo"),
            ("QUANTCORE_SKIP_POSTGRES", "1"),
            ("QUANTCORE_TEST_DATABASE_URL", "postgres://x"),
        ]);
        let config = Config::load(None, vars, &ConfigFlags::default()).unwrap();
        assert_eq!(config.source.symbols, ["ACME", "GLOBEX", "INITECH"]);
        assert_eq!(config.source.interval_secs, 5);
        assert_eq!(config.trading.initial_cash, 2500.5);
        assert!(config.log.json);
        assert_eq!(config.source.kind, SourceKind::Yahoo);
    }

    #[test]
    fn every_env_var_names_a_real_key() {
        let defaults = toml::Table::try_from(Config::default()).unwrap();
        for var in ENV_VARS {
            let expected = format!(
                "QUANTCORE_{}_{}",
                var.path[0].to_uppercase(),
                var.path[1].to_uppercase()
            );
            assert_eq!(var.name, expected);
            let table = defaults[var.path[0]].as_table().unwrap();
            // Optional keys are absent from the serialized defaults.
            assert!(
                table.contains_key(var.path[1]) || var.kind == EnvKind::OptionalText,
                "{}",
                var.name
            );
        }
    }

    #[test]
    fn bad_environment_values_name_the_variable() {
        let error = Config::load(
            None,
            env(&[("QUANTCORE_SOURCE_INTERVAL_SECS", "soon")]),
            &ConfigFlags::default(),
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "environment variable QUANTCORE_SOURCE_INTERVAL_SECS: expected a non-negative integer, was \"soon\""
        );
        let error = Config::load(
            None,
            env(&[("QUANTCORE_DATABSE_URL", "sqlite://typo.db")]),
            &ConfigFlags::default(),
        )
        .unwrap_err();
        assert!(
            matches!(error, ConfigError::UnknownEnv { ref name } if name == "QUANTCORE_DATABSE_URL")
        );
        let error = Config::load(
            None,
            env(&[("QUANTCORE_BUS_KIND", "rabbit")]),
            &ConfigFlags::default(),
        )
        .unwrap_err();
        assert!(error.to_string().contains("rabbit"), "{error}");
    }

    #[test]
    fn unknown_file_keys_are_errors_with_their_line() {
        let toml = file("[database]\nurl = \"sqlite://x.db\"\npool = 4\n");
        let error = Config::load(Some(toml.path()), env(&[]), &ConfigFlags::default()).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("unknown field `pool`"), "{text}");
        assert!(text.contains("line 3"), "{text}");
        let toml = file("[databse]\nurl = \"sqlite://x.db\"\n");
        let error = Config::load(Some(toml.path()), env(&[]), &ConfigFlags::default()).unwrap_err();
        assert!(
            error.to_string().contains("unknown field `databse`"),
            "{error}"
        );
    }

    #[test]
    fn validation_lists_every_problem() {
        let vars = env(&[
            ("QUANTCORE_DATABASE_URL", "mysql://x"),
            ("QUANTCORE_BUS_PARTITIONS", "0"),
            ("QUANTCORE_TRADING_INITIAL_CASH", "-5"),
            ("QUANTCORE_ML_WINDOW", "1"),
        ]);
        let ConfigError::Invalid(problems) =
            Config::load(None, vars, &ConfigFlags::default()).unwrap_err()
        else {
            panic!("expected Invalid");
        };
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].starts_with("database.url"));
        assert!(
            problems
                .iter()
                .any(|p| p == "trading.initial_cash must be finite and positive, was -5")
        );
    }

    #[test]
    fn live_sources_read_their_settings_and_alpaca_keys() {
        let vars = env(&[
            ("QUANTCORE_SOURCE_KIND", "alpaca"),
            ("QUANTCORE_SOURCE_SYMBOLS", "AAPL"),
            ("QUANTCORE_SOURCE_ALPACA_URL", "http://127.0.0.1:9"),
            ("QUANTCORE_SOURCE_MAX_ATTEMPTS", "3"),
            ("APCA_API_KEY_ID", "id-from-alpaca-env"),
            ("APCA_API_SECRET_KEY", "secret-from-alpaca-env"),
            (
                "QUANTCORE_SOURCE_ALPACA_SECRET_KEY",
                "secret-from-quantcore-env",
            ),
        ]);
        let config = Config::load(None, vars, &ConfigFlags::default()).unwrap();
        let source = &config.source;
        assert_eq!(source.kind, SourceKind::Alpaca);
        assert_eq!(source.alpaca_url, "http://127.0.0.1:9");
        assert_eq!(source.max_attempts, 3);
        assert_eq!(source.alpaca_key_id.as_deref(), Some("id-from-alpaca-env"));
        assert_eq!(
            source.alpaca_secret_key.as_deref(),
            Some("secret-from-quantcore-env"),
            "QUANTCORE_SOURCE_* overrides Alpaca's own variable"
        );
        assert_eq!(source.alpaca_feed.as_deref(), Some("iex"));
    }

    #[test]
    fn live_source_settings_are_validated() {
        let vars = env(&[
            ("QUANTCORE_SOURCE_KIND", "yahoo"),
            ("QUANTCORE_SOURCE_YAHOO_URL", "query1.finance.yahoo.com"),
            ("QUANTCORE_SOURCE_MAX_ATTEMPTS", "0"),
            ("QUANTCORE_SOURCE_BACKOFF_MAX_MS", "10"),
        ]);
        let ConfigError::Invalid(problems) =
            Config::load(None, vars, &ConfigFlags::default()).unwrap_err()
        else {
            panic!("expected Invalid");
        };
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].starts_with("source.symbols must name at least one symbol"));
        assert!(problems.iter().any(|p| p.starts_with("source.yahoo_url")));
        assert!(
            problems
                .iter()
                .any(|p| p == "source.max_attempts must be at least 1, was 0")
        );
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("source.backoff_max_ms"))
        );
    }

    #[test]
    fn flags_parse_with_clap() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            flags: ConfigFlags,
        }
        let cli = Cli::try_parse_from([
            "x",
            "--bus",
            "kafka",
            "--kafka-brokers",
            "b:9092",
            "--symbols",
            "ACME,GLOBEX",
        ])
        .unwrap();
        let config = Config::load(None, env(&[]), &cli.flags).unwrap();
        assert_eq!(config.bus.kind, BusKind::Kafka);
        assert_eq!(config.bus.brokers, "b:9092");
        assert_eq!(config.source.symbols, ["ACME", "GLOBEX"]);
    }
}
