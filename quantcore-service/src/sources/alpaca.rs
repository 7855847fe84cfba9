//! Alpaca market data API v2 bars client: one symbol
//! (`GET {base}/v2/stocks/{symbol}/bars`) and several (`GET {base}/v2/stocks/bars?symbols=…`).
//!
//! Requests carry the `APCA-API-KEY-ID` and `APCA-API-SECRET-KEY` headers and ask for
//! `timeframe`, `start` (RFC 3339), `limit=10000`, `adjustment=raw`, `sort=asc` and the
//! `feed` when one is set. A response with a `next_page_token` is followed by passing the
//! token back as `page_token` until a page has none. A token seen twice, or more than
//! [`MAX_PAGES`] pages, is a [`SourceError::Pagination`] error rather than a loop.
//!
//! The client only does HTTP; each page is parsed by the core's
//! [`quantcore::normalize::alpaca::parse_bars`] / [`parse_multi_bars`](quantcore::normalize::alpaca::parse_multi_bars).

use std::collections::{BTreeMap, HashSet};

use async_trait::async_trait;
use chrono::{SecondsFormat, TimeZone, Utc};
use quantcore::Bar;
use quantcore::normalize::{ParseOptions, alpaca};
use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderValue};

use super::{BarSource, HttpFetcher, RetryPolicy, SourceError, parse_base_url};
use crate::config::SourceConfig;

/// Most pages one fetch follows.
pub const MAX_PAGES: usize = 1_000;

/// Alpaca API keys.
#[derive(Clone, PartialEq, Eq)]
pub struct AlpacaKeys {
    pub key_id: String,
    pub secret_key: String,
}

impl std::fmt::Debug for AlpacaKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlpacaKeys")
            .field("key_id", &self.key_id)
            .field("secret_key", &"<redacted>")
            .finish()
    }
}

/// Request settings of [`AlpacaClient`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlpacaSettings {
    /// Base URL, e.g. `https://data.alpaca.markets`.
    pub base_url: String,
    /// `1Min`, `5Min`, `1Hour`, `1Day`, …
    pub timeframe: String,
    /// `iex`, `sip`, or `None` (Alpaca's default for the account).
    pub feed: Option<String>,
    /// How far back a fetch without `since` starts, seconds.
    pub lookback_secs: u64,
}

/// The Alpaca bars client.
#[derive(Debug, Clone)]
pub struct AlpacaClient {
    http: HttpFetcher,
    base: Url,
    headers: HeaderMap,
    settings: AlpacaSettings,
}

impl AlpacaClient {
    /// A client with `keys` and `settings`.
    ///
    /// # Errors
    /// [`SourceError::InvalidUrl`], [`SourceError::MissingKeys`] (a key that cannot be a
    /// header value) or [`SourceError::Client`].
    pub fn new(
        keys: &AlpacaKeys,
        settings: AlpacaSettings,
        policy: RetryPolicy,
    ) -> Result<Self, SourceError> {
        let header = |value: &str| {
            let mut value = HeaderValue::from_str(value).map_err(|_| SourceError::MissingKeys {
                reason: "an Alpaca key holds characters a header cannot carry",
            })?;
            value.set_sensitive(true);
            Ok::<_, SourceError>(value)
        };
        let mut headers = HeaderMap::new();
        headers.insert("APCA-API-KEY-ID", header(&keys.key_id)?);
        headers.insert("APCA-API-SECRET-KEY", header(&keys.secret_key)?);
        Ok(Self {
            http: HttpFetcher::new("alpaca", policy)?,
            base: parse_base_url(&settings.base_url)?,
            headers,
            settings,
        })
    }

    /// The client of the `[source]` settings; the keys are `alpaca_key_id` /
    /// `alpaca_secret_key` (which `APCA_API_KEY_ID` / `APCA_API_SECRET_KEY` fill).
    ///
    /// # Errors
    /// [`SourceError::MissingKeys`] without both keys; as [`AlpacaClient::new`].
    pub fn from_config(config: &SourceConfig) -> Result<Self, SourceError> {
        let (Some(key_id), Some(secret_key)) = (
            config.alpaca_key_id.clone().filter(|k| !k.is_empty()),
            config.alpaca_secret_key.clone().filter(|k| !k.is_empty()),
        ) else {
            return Err(SourceError::MissingKeys {
                reason: "set APCA_API_KEY_ID and APCA_API_SECRET_KEY (or source.alpaca_key_id and source.alpaca_secret_key)",
            });
        };
        Self::new(
            &AlpacaKeys { key_id, secret_key },
            AlpacaSettings {
                base_url: config.alpaca_url.clone(),
                timeframe: config.alpaca_timeframe.clone(),
                feed: config.alpaca_feed.clone(),
                lookback_secs: config.lookback_secs,
            },
            RetryPolicy::from_config(config),
        )
    }

    fn url(&self, segments: &[&str], start: i64, page_token: Option<&str>) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("checked by parse_base_url")
            .pop_if_empty()
            .extend(segments);
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("timeframe", &self.settings.timeframe)
                .append_pair("start", &rfc3339(start))
                .append_pair("limit", "10000")
                .append_pair("adjustment", "raw")
                .append_pair("sort", "asc");
            if let Some(feed) = &self.settings.feed {
                query.append_pair("feed", feed);
            }
            if let Some(token) = page_token {
                query.append_pair("page_token", token);
            }
        }
        url
    }

    fn start(&self, since: Option<i64>) -> i64 {
        since.unwrap_or_else(|| {
            Utc::now().timestamp() - i64::try_from(self.settings.lookback_secs).unwrap_or(0)
        })
    }

    /// Every bar of `symbol` from `since` (Unix seconds, inclusive; `None`: the lookback),
    /// following the pages, oldest first.
    ///
    /// # Errors
    /// The HTTP errors of [`HttpFetcher::get`]; [`SourceError::Parse`] for a page the core
    /// refuses; [`SourceError::Pagination`].
    pub async fn fetch_bars(
        &self,
        symbol: &str,
        since: Option<i64>,
    ) -> Result<Vec<Bar>, SourceError> {
        let start = self.start(since);
        let mut bars = Vec::new();
        let mut pages = Pages::default();
        loop {
            let url = self.url(
                &["v2", "stocks", symbol, "bars"],
                start,
                pages.token.as_deref(),
            );
            let body = self.http.get(symbol, &url, &self.headers).await?;
            let page = alpaca::parse_bars(&body, &ParseOptions::default())
                .map_err(|source| parse_error(symbol, source))?;
            bars.extend(page.bars.series.iter());
            if !pages.next(symbol, page.next_page_token)? {
                return Ok(bars);
            }
        }
    }

    /// Every bar of each of `symbols` from `since` through the multi-symbol endpoint,
    /// following the pages; each symbol's bars oldest first.
    ///
    /// # Errors
    /// As [`AlpacaClient::fetch_bars`]; errors name the symbols joined by commas.
    pub async fn fetch_many(
        &self,
        symbols: &[String],
        since: Option<i64>,
    ) -> Result<BTreeMap<String, Vec<Bar>>, SourceError> {
        let joined = symbols.join(",");
        let start = self.start(since);
        let mut bars: BTreeMap<String, Vec<Bar>> = BTreeMap::new();
        let mut pages = Pages::default();
        loop {
            let mut url = self.url(&["v2", "stocks", "bars"], start, pages.token.as_deref());
            url.query_pairs_mut().append_pair("symbols", &joined);
            let body = self.http.get(&joined, &url, &self.headers).await?;
            let page = alpaca::parse_multi_bars(&body, &ParseOptions::default())
                .map_err(|source| parse_error(&joined, source))?;
            for (symbol, series) in page.bars {
                bars.entry(symbol).or_default().extend(series.series.iter());
            }
            if !pages.next(&joined, page.next_page_token)? {
                return Ok(bars);
            }
        }
    }
}

/// The page-token bookkeeping shared by both endpoints.
#[derive(Default)]
struct Pages {
    token: Option<String>,
    seen: HashSet<String>,
    count: usize,
}

impl Pages {
    /// Records the next token; `false` when there is no next page.
    fn next(&mut self, symbol: &str, token: Option<String>) -> Result<bool, SourceError> {
        self.count += 1;
        let Some(token) = token else {
            return Ok(false);
        };
        let error = |reason: String| SourceError::Pagination {
            symbol: symbol.to_owned(),
            reason,
        };
        if !self.seen.insert(token.clone()) {
            return Err(error(format!("page token {token:?} came back twice")));
        }
        if self.count >= MAX_PAGES {
            return Err(error(format!("more than {MAX_PAGES} pages")));
        }
        self.token = Some(token);
        Ok(true)
    }
}

fn parse_error(symbol: &str, source: quantcore::Error) -> SourceError {
    SourceError::Parse {
        source_name: "alpaca",
        symbol: symbol.to_owned(),
        source: Box::new(source),
    }
}

fn rfc3339(unix_seconds: i64) -> String {
    Utc.timestamp_opt(unix_seconds, 0)
        .single()
        .unwrap_or_else(Utc::now)
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[async_trait]
impl BarSource for AlpacaClient {
    fn name(&self) -> &'static str {
        "alpaca"
    }

    async fn fetch(&self, symbol: &str, since: Option<i64>) -> Result<Vec<Bar>, SourceError> {
        self.fetch_bars(symbol, since).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_redacted_in_debug_output() {
        let keys = AlpacaKeys {
            key_id: "AK123".into(),
            secret_key: "very-secret".into(),
        };
        let text = format!("{keys:?}");
        assert!(
            text.contains("AK123") && !text.contains("very-secret"),
            "{text}"
        );
    }

    #[test]
    fn a_repeated_page_token_is_an_error() {
        let mut pages = Pages::default();
        assert!(pages.next("X", Some("a".into())).unwrap());
        assert!(pages.next("X", Some("b".into())).unwrap());
        assert!(matches!(
            pages.next("X", Some("a".into())),
            Err(SourceError::Pagination { .. })
        ));
        assert!(!Pages::default().next("X", None).unwrap());
        assert_eq!(rfc3339(1_705_415_400), "2024-01-16T14:30:00Z");
    }
}
