//! Market-data sources of the ingest role: the replay of bundled or CSV bars, and two HTTP
//! APIs polled on a schedule, the Yahoo Finance chart API ([`YahooClient`]) and Alpaca's
//! market data API v2 ([`AlpacaClient`]).
//!
//! # Layers
//! - [`HttpFetcher`]: one GET with a per-request timeout, retried with exponential backoff
//!   and jitter on connect errors, timeouts and 5xx; 429 honours `Retry-After`; other 4xx
//!   fail at once with a typed [`SourceError`] naming the symbol and the status (see
//!   [`http`] for the table).
//! - [`YahooClient`], [`AlpacaClient`]: build the URLs, follow Alpaca's pages, and hand every
//!   body to the core's parsers ([`quantcore::normalize::yahoo`],
//!   [`quantcore::normalize::alpaca`]); they hold no parsing of their own.
//! - [`BarSource`]: what the scheduler needs of a live source, `fetch(symbol, since)`.
//! - [`Source`]: the ingest role's choice from the `[source]` settings, and
//!   [`Source::spawn`], which starts one task per symbol: [`crate::roles::replay_symbol`] for
//!   the replay, [`poll_symbol`] for the live sources.
//!
//! # The schedule
//! Every `interval` (default 60 s) per symbol, [`ingest_once`] fetches the recent bars,
//! drops those not after the last stored bar of the symbol (so redelivered history is not
//! published twice), upserts the rest and publishes each on `market_data`, as the replay
//! does. The first poll is immediate. A failed poll is logged, counted in
//! [`Stats::fetches_failed`](crate::roles::Stats::fetches_failed), and the next one waits
//! `interval * 2^(failures - 1)`, at most `max(interval, 15 min)`; a poll never ends the
//! task.

pub mod alpaca;
pub mod http;
pub mod yahoo;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use quantcore::Bar;
use tokio::task::JoinSet;

pub use alpaca::{AlpacaClient, AlpacaKeys, AlpacaSettings};
pub use http::{HttpFetcher, RetryPolicy, parse_retry_after};
pub use yahoo::YahooClient;

use crate::bus::{self, Bus};
use crate::config::{Config, SourceKind};
use crate::messages::{Envelope, MarketDataMessage, topics};
use crate::roles::{self, RoleError, Stats};
use crate::service::ServiceError;
use crate::store::Store;

/// Why a fetch from a live source failed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {message}")]
    Client { message: String },
    /// A configured base URL is not an http(s) URL.
    #[error("base URL {url:?} {reason}")]
    InvalidUrl { url: String, reason: String },
    /// Alpaca needs both keys.
    #[error("Alpaca API keys missing: {reason}")]
    MissingKeys { reason: &'static str },
    /// HTTP 401 or 403: not retried.
    #[error(
        "{source_name} refused {symbol} with HTTP {status}: the API keys are wrong or missing ({message})"
    )]
    Unauthorized {
        source_name: &'static str,
        symbol: String,
        status: u16,
        message: String,
    },
    /// Another 4xx (not 429): not retried.
    #[error("{source_name} refused {symbol} with HTTP {status}: {message}")]
    Rejected {
        source_name: &'static str,
        symbol: String,
        status: u16,
        message: String,
    },
    /// A 429 asked to wait longer than `max_retry_after_secs`.
    #[error(
        "{source_name} rate-limits {symbol} and asks to wait {retry_after:?}, more than allowed"
    )]
    RateLimited {
        source_name: &'static str,
        symbol: String,
        retry_after: Duration,
    },
    /// Every attempt failed with a retryable error; `last` is the last one.
    #[error("{source_name}: {symbol} failed after {attempts} attempts; last: {last}")]
    Exhausted {
        source_name: &'static str,
        symbol: String,
        attempts: u32,
        last: String,
    },
    /// The body is not what the core's parser accepts (broken JSON, an error object, an
    /// invalid bar).
    #[error("{source_name}: cannot parse the response for {symbol}: {source}")]
    Parse {
        source_name: &'static str,
        symbol: String,
        source: Box<quantcore::Error>,
    },
    /// Alpaca's pages do not end.
    #[error("alpaca: pagination for {symbol} does not end: {reason}")]
    Pagination { symbol: String, reason: String },
}

impl SourceError {
    /// The HTTP status behind the error, when there is one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Unauthorized { status, .. } | Self::Rejected { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Checks a base URL: http(s), with a host, able to take path segments.
pub(crate) fn parse_base_url(text: &str) -> Result<reqwest::Url, SourceError> {
    let invalid = |reason: &str| SourceError::InvalidUrl {
        url: text.to_owned(),
        reason: reason.to_owned(),
    };
    let url =
        reqwest::Url::parse(text).map_err(|error| invalid(&format!("is invalid: {error}")))?;
    if !matches!(url.scheme(), "http" | "https") || !url.has_host() || url.cannot_be_a_base() {
        return Err(invalid("must be an http(s) URL with a host"));
    }
    Ok(url)
}

/// A live source the scheduler polls.
#[async_trait]
pub trait BarSource: Send + Sync + 'static {
    /// Short name for logs and errors (`yahoo`, `alpaca`).
    fn name(&self) -> &'static str;

    /// The recent complete bars of `symbol`, oldest first. `since` (Unix seconds) is the
    /// last stored bar's time, a hint: a source may return older bars too.
    async fn fetch(&self, symbol: &str, since: Option<i64>) -> Result<Vec<Bar>, SourceError>;
}

/// The ingest role's source, chosen by `[source] kind`.
pub enum Source {
    /// Replays bars once, `pace` apart ([`roles::replay_symbol`]).
    Replay {
        bars: BTreeMap<String, Vec<Bar>>,
        pace: Duration,
    },
    /// Polls `client` every `interval` for each of `symbols` ([`poll_symbol`]).
    Poll {
        client: Arc<dyn BarSource>,
        symbols: Vec<String>,
        interval: Duration,
    },
}

impl Source {
    /// The source of `config`: the replay bars ([`crate::service::replay_bars`]), or a
    /// Yahoo or Alpaca client.
    ///
    /// # Errors
    /// The replay's errors, or a [`SourceError`] building a client.
    pub fn from_config(config: &Config) -> Result<Self, ServiceError> {
        let source = &config.source;
        let client: Arc<dyn BarSource> = match source.kind {
            SourceKind::Replay => {
                return Ok(Self::Replay {
                    bars: crate::service::replay_bars(config)?,
                    pace: Duration::from_millis(source.replay_interval_ms),
                });
            }
            SourceKind::Yahoo => Arc::new(YahooClient::from_config(source)?),
            SourceKind::Alpaca => Arc::new(AlpacaClient::from_config(source)?),
        };
        Ok(Self::Poll {
            client,
            symbols: source.symbols.clone(),
            interval: Duration::from_secs(source.interval_secs.max(1)),
        })
    }

    /// Spawns one ingest task per symbol on `tasks`.
    pub fn spawn(
        self,
        tasks: &mut JoinSet<Result<(), RoleError>>,
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
        stats: Arc<Stats>,
    ) {
        match self {
            Self::Replay { bars, pace } => {
                for (symbol, bars) in bars {
                    let (store, bus, stats) = (store.clone(), bus.clone(), stats.clone());
                    tasks.spawn(async move {
                        roles::replay_symbol(store, bus, symbol, bars, pace, stats)
                            .await
                            .map(|_| ())
                    });
                }
            }
            Self::Poll {
                client,
                symbols,
                interval,
            } => {
                tracing::info!(
                    source = client.name(),
                    ?symbols,
                    interval_secs = interval.as_secs(),
                    "polling"
                );
                for symbol in symbols {
                    let (store, bus, stats, client) =
                        (store.clone(), bus.clone(), stats.clone(), client.clone());
                    tasks.spawn(async move {
                        poll_symbol(store, bus, client, symbol, interval, stats).await;
                        Ok(())
                    });
                }
            }
        }
    }
}

/// Why one poll failed.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Role(#[from] RoleError),
}

/// One poll of `symbol`: fetches, keeps the bars after the last stored one, upserts them
/// and publishes each on `market_data`. Returns the number of new bars.
///
/// # Errors
/// The source's error (nothing stored), or a store or bus error.
pub async fn ingest_once(
    store: &dyn Store,
    bus: &dyn Bus,
    source: &dyn BarSource,
    symbol: &str,
    stats: &Stats,
) -> Result<usize, PollError> {
    let last = store
        .last_bars(symbol, 1)
        .await
        .map_err(RoleError::from)?
        .pop()
        .map(|bar| bar.timestamp);
    let mut bars = source.fetch(symbol, last).await?;
    bars.retain(|bar| last.is_none_or(|last| bar.timestamp > last));
    if bars.is_empty() {
        return Ok(0);
    }
    store
        .upsert_bars(symbol, &bars)
        .await
        .map_err(RoleError::from)?;
    for bar in &bars {
        let message = Envelope::new(MarketDataMessage::from_bar(symbol.to_owned(), bar));
        bus::publish(bus, topics::MARKET_DATA, &message)
            .await
            .map_err(RoleError::from)?;
        stats.bars_ingested.fetch_add(1, Ordering::Relaxed);
    }
    Ok(bars.len())
}

/// Polls `symbol` from `source` every `interval`, forever; see [the schedule](self#the-schedule).
pub async fn poll_symbol(
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    source: Arc<dyn BarSource>,
    symbol: String,
    interval: Duration,
    stats: Arc<Stats>,
) {
    let ceiling = interval.max(Duration::from_secs(15 * 60));
    let mut failures: u32 = 0;
    loop {
        let wait = match ingest_once(
            store.as_ref(),
            bus.as_ref(),
            source.as_ref(),
            &symbol,
            &stats,
        )
        .await
        {
            Ok(new) => {
                failures = 0;
                tracing::info!(source = source.name(), %symbol, new, "poll");
                interval
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                stats.fetches_failed.fetch_add(1, Ordering::Relaxed);
                let wait = interval
                    .saturating_mul(2u32.saturating_pow(failures - 1))
                    .min(ceiling);
                tracing::error!(
                    source = source.name(), %symbol, %error, failures,
                    next_poll_secs = wait.as_secs(), "poll failed"
                );
                wait
            }
        };
        tokio::time::sleep(wait).await;
    }
}
