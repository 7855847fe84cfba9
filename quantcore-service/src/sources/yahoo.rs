//! Yahoo Finance chart API client:
//! `GET {base}/v8/finance/chart/{symbol}?interval=…&range=…` (what yfinance's
//! `Ticker.history()` calls).
//!
//! The client only does HTTP ([`HttpFetcher`]'s retries); the body is parsed by the core's
//! [`quantcore::normalize::yahoo::parse_chart`] with the fetch time as `as_of` and the
//! still-forming last bar **dropped**: the scheduler keeps only bars newer than the last
//! stored one, so a partial bar stored now would never be replaced; dropped, it arrives
//! complete on a later poll.

use async_trait::async_trait;
use quantcore::Bar;
use quantcore::normalize::{ParseOptions, yahoo};
use reqwest::Url;
use reqwest::header::HeaderMap;

use super::{BarSource, HttpFetcher, RetryPolicy, SourceError, parse_base_url};
use crate::config::SourceConfig;

/// The Yahoo chart API client.
#[derive(Debug, Clone)]
pub struct YahooClient {
    http: HttpFetcher,
    base: Url,
    interval: String,
    range: String,
}

impl YahooClient {
    /// A client for `base` (e.g. `https://query1.finance.yahoo.com`) asking for `interval`
    /// bars over `range`.
    ///
    /// # Errors
    /// [`SourceError::InvalidUrl`] or [`SourceError::Client`].
    pub fn new(
        base: &str,
        interval: impl Into<String>,
        range: impl Into<String>,
        policy: RetryPolicy,
    ) -> Result<Self, SourceError> {
        Ok(Self {
            http: HttpFetcher::new("yahoo", policy)?,
            base: parse_base_url(base)?,
            interval: interval.into(),
            range: range.into(),
        })
    }

    /// The client of the `[source]` settings.
    ///
    /// # Errors
    /// As [`YahooClient::new`].
    pub fn from_config(config: &SourceConfig) -> Result<Self, SourceError> {
        Self::new(
            &config.yahoo_url,
            &config.yahoo_interval,
            &config.yahoo_range,
            RetryPolicy::from_config(config),
        )
    }

    /// The request URL for `symbol` (the symbol is percent-encoded as one path segment).
    pub fn chart_url(&self, symbol: &str) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("checked by parse_base_url")
            .pop_if_empty()
            .extend(["v8", "finance", "chart", symbol]);
        url.query_pairs_mut()
            .append_pair("interval", &self.interval)
            .append_pair("range", &self.range)
            .append_pair("includePrePost", "false")
            .append_pair("events", "div,split");
        url
    }

    /// Fetches and parses the chart of `symbol`: its complete bars, oldest first.
    ///
    /// # Errors
    /// The HTTP errors of [`HttpFetcher::get`]; [`SourceError::Parse`] for a body the core
    /// refuses (broken JSON, an error object, an invalid bar).
    pub async fn fetch_chart(&self, symbol: &str) -> Result<Vec<Bar>, SourceError> {
        let url = self.chart_url(symbol);
        let body = self.http.get(symbol, &url, &HeaderMap::new()).await?;
        let options = ParseOptions::default()
            .drop_partial_bar(true)
            .as_of(chrono::Utc::now().timestamp());
        let chart = yahoo::parse_chart(&body, &options).map_err(|source| SourceError::Parse {
            source_name: "yahoo",
            symbol: symbol.to_owned(),
            source: Box::new(source),
        })?;
        if chart.skipped_null_rows > 0 {
            tracing::debug!(%symbol, skipped = chart.skipped_null_rows, "yahoo: rows with nulls skipped");
        }
        Ok(chart.series.iter().collect())
    }
}

#[async_trait]
impl BarSource for YahooClient {
    fn name(&self) -> &'static str {
        "yahoo"
    }

    /// Yahoo returns the configured `range` whatever `since` is; the scheduler drops the
    /// bars already stored.
    async fn fetch(&self, symbol: &str, _since: Option<i64>) -> Result<Vec<Bar>, SourceError> {
        self.fetch_chart(symbol).await
    }
}
