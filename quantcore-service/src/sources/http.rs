//! The HTTP side of the live sources: one GET with a per-request timeout, retried with
//! exponential backoff and jitter.
//!
//! # Retry rules
//! | outcome | what happens |
//! |---|---|
//! | 2xx | the body is returned |
//! | connect error, timeout, broken body, 5xx | retried after a backoff |
//! | 429 | retried after `Retry-After` (seconds or an HTTP date), else after a backoff; a `Retry-After` longer than `max_retry_after` fails with [`SourceError::RateLimited`] |
//! | 401, 403 | [`SourceError::Unauthorized`] at once (the keys are wrong or missing) |
//! | any other 4xx | [`SourceError::Rejected`] at once, with the body's message |
//!
//! The backoff before retry `n` (1-based) is `min(initial * 2^(n-1), max)`, of which a
//! random half is kept ("equal jitter": uniform in `[d/2, d]`), so that pollers that failed
//! together do not retry together. After `max_attempts` attempts the last failure is
//! returned as [`SourceError::Exhausted`].

use std::time::{Duration, SystemTime};

use rand::Rng;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{StatusCode, Url};

use super::SourceError;
use crate::config::SourceConfig;

/// Attempts, timeout and backoff of one request; from the `[source]` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per request, the first included, `>= 1`.
    pub max_attempts: u32,
    /// Timeout of one attempt (connect to last byte).
    pub timeout: Duration,
    /// Backoff before the first retry.
    pub initial_backoff: Duration,
    /// Upper bound of one backoff.
    pub max_backoff: Duration,
    /// Longest `Retry-After` honoured.
    pub max_retry_after: Duration,
}

impl RetryPolicy {
    /// The policy of `config`.
    pub fn from_config(config: &SourceConfig) -> Self {
        Self {
            max_attempts: config.max_attempts.max(1),
            timeout: Duration::from_millis(config.timeout_ms),
            initial_backoff: Duration::from_millis(config.backoff_initial_ms),
            max_backoff: Duration::from_millis(config.backoff_max_ms),
            max_retry_after: Duration::from_secs(config.max_retry_after_secs),
        }
    }

    /// The backoff before retry `retry` (1-based), before jitter.
    ///
    /// ```
    /// use std::time::Duration;
    /// use quantcore_service::sources::RetryPolicy;
    /// let policy = RetryPolicy {
    ///     max_attempts: 5,
    ///     timeout: Duration::from_secs(10),
    ///     initial_backoff: Duration::from_millis(500),
    ///     max_backoff: Duration::from_secs(3),
    ///     max_retry_after: Duration::from_secs(300),
    /// };
    /// assert_eq!(policy.backoff(1), Duration::from_millis(500));
    /// assert_eq!(policy.backoff(3), Duration::from_secs(2));
    /// assert_eq!(policy.backoff(4), Duration::from_secs(3)); // capped
    /// ```
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }

    fn jittered_backoff(&self, retry: u32) -> Duration {
        let full = self.backoff(retry);
        let half = full / 2;
        let spread = u64::try_from((full - half).as_micros()).unwrap_or(u64::MAX);
        half + Duration::from_micros(rand::thread_rng().gen_range(0..=spread))
    }
}

/// Parses a `Retry-After` value: delay seconds, or an HTTP date (a date in the past is no
/// wait). `None` when absent or unreadable.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use quantcore_service::sources::parse_retry_after;
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
/// // 1_700_000_000 is Tue, 14 Nov 2023 22:13:20 GMT.
/// assert_eq!(parse_retry_after("Tue, 14 Nov 2023 22:13:30 GMT", now), Some(Duration::from_secs(10)));
/// assert_eq!(parse_retry_after("Tue, 14 Nov 2023 22:00:00 GMT", now), Some(Duration::ZERO));
/// assert_eq!(parse_retry_after("soon", now), None);
/// ```
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A retrying HTTP GET client shared by the Yahoo and Alpaca clients.
#[derive(Debug, Clone)]
pub struct HttpFetcher {
    client: reqwest::Client,
    policy: RetryPolicy,
    source: &'static str,
}

/// Why one attempt failed, and whether it may be retried.
enum Attempt {
    Retry {
        reason: String,
        retry_after: Option<Duration>,
    },
    Fail(SourceError),
}

impl HttpFetcher {
    /// A client for `source` (`"yahoo"`, `"alpaca"`, named in errors) with `policy`.
    ///
    /// # Errors
    /// [`SourceError::Client`] when the HTTP client cannot be built (no TLS roots).
    pub fn new(source: &'static str, policy: RetryPolicy) -> Result<Self, SourceError> {
        // reqwest is built without a default crypto provider (the default, aws-lc-rs, is
        // slow to build); ring is installed as the process default. An error means one is
        // installed already, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(policy.timeout)
            .connect_timeout(policy.timeout)
            // Yahoo refuses some non-browser agents.
            .user_agent(concat!(
                "Mozilla/5.0 (compatible; quantcore-service/",
                env!("CARGO_PKG_VERSION"),
                ")"
            ))
            .build()
            .map_err(|error| SourceError::Client {
                message: error.to_string(),
            })?;
        Ok(Self {
            client,
            policy,
            source,
        })
    }

    /// The retry policy.
    pub fn policy(&self) -> RetryPolicy {
        self.policy
    }

    /// GETs `url` with `headers` under the [retry rules](self); returns the body of the
    /// first 2xx answer.
    ///
    /// # Errors
    /// [`SourceError::Unauthorized`], [`SourceError::Rejected`],
    /// [`SourceError::RateLimited`] or [`SourceError::Exhausted`], each naming `symbol`.
    pub async fn get(
        &self,
        symbol: &str,
        url: &Url,
        headers: &HeaderMap,
    ) -> Result<Vec<u8>, SourceError> {
        let mut attempt = 1;
        loop {
            let outcome = self.attempt(symbol, url, headers).await;
            let (reason, retry_after) = match outcome {
                Ok(body) => return Ok(body),
                Err(Attempt::Fail(error)) => return Err(error),
                Err(Attempt::Retry {
                    reason,
                    retry_after,
                }) => (reason, retry_after),
            };
            if attempt >= self.policy.max_attempts {
                return Err(SourceError::Exhausted {
                    source_name: self.source,
                    symbol: symbol.to_owned(),
                    attempts: attempt,
                    last: reason,
                });
            }
            let wait = match retry_after {
                Some(wait) if wait > self.policy.max_retry_after => {
                    return Err(SourceError::RateLimited {
                        source_name: self.source,
                        symbol: symbol.to_owned(),
                        retry_after: wait,
                    });
                }
                Some(wait) => wait,
                None => self.policy.jittered_backoff(attempt),
            };
            tracing::warn!(
                source = self.source, %symbol, attempt, %reason,
                wait_ms = wait.as_millis() as u64, "request failed; retrying"
            );
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    async fn attempt(
        &self,
        symbol: &str,
        url: &Url,
        headers: &HeaderMap,
    ) -> Result<Vec<u8>, Attempt> {
        let retry = |reason: String| Attempt::Retry {
            reason,
            retry_after: None,
        };
        let response = self
            .client
            .get(url.clone())
            .headers(headers.clone())
            .send()
            .await
            .map_err(|error| retry(describe(&error)))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, SystemTime::now()));
        let body = response
            .bytes()
            .await
            .map_err(|error| retry(describe(&error)))?;
        if status.is_success() {
            return Ok(body.to_vec());
        }
        let message = body_message(&body);
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Err(Attempt::Retry {
                reason: format!("HTTP 429 (rate limited): {message}"),
                retry_after,
            });
        }
        if status.is_server_error() {
            return Err(retry(format!("HTTP {}: {message}", status.as_u16())));
        }
        let symbol = symbol.to_owned();
        Err(Attempt::Fail(
            if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
                SourceError::Unauthorized {
                    source_name: self.source,
                    symbol,
                    status: status.as_u16(),
                    message,
                }
            } else {
                SourceError::Rejected {
                    source_name: self.source,
                    symbol,
                    status: status.as_u16(),
                    message,
                }
            },
        ))
    }
}

/// reqwest's error with its causes (the top level alone often says just "error sending
/// request").
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connect error"
    } else {
        "transport error"
    };
    let mut text = format!("{kind}: {error}");
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// What an error body says, for messages: Yahoo's `chart.error.description`, Alpaca's
/// `message`, else the start of the body.
fn body_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Alpaca {
        message: String,
    }
    #[derive(serde::Deserialize)]
    struct YahooError {
        description: String,
    }
    #[derive(serde::Deserialize)]
    struct YahooChart {
        error: YahooError,
    }
    #[derive(serde::Deserialize)]
    struct Yahoo {
        chart: YahooChart,
    }
    if let Ok(yahoo) = serde_json::from_slice::<Yahoo>(body) {
        return yahoo.chart.error.description;
    }
    if let Ok(alpaca) = serde_json::from_slice::<Alpaca>(body) {
        return alpaca.message;
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None if text.is_empty() => "(empty body)".to_owned(),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_half_and_full_backoff() {
        let policy = RetryPolicy {
            max_attempts: 5,
            timeout: Duration::from_secs(1),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1_000),
            max_retry_after: Duration::from_secs(1),
        };
        for retry in 1..8 {
            let full = policy.backoff(retry);
            for _ in 0..50 {
                let wait = policy.jittered_backoff(retry);
                assert!(
                    wait >= full / 2 && wait <= full,
                    "{retry}: {wait:?} vs {full:?}"
                );
            }
        }
        assert_eq!(policy.backoff(40), Duration::from_millis(1_000));
    }

    #[test]
    fn error_bodies_give_their_message() {
        assert_eq!(
            body_message(
                br#"{"chart": {"result": null, "error": {"code": "Not Found", "description": "No data found, symbol may be delisted"}}}"#
            ),
            "No data found, symbol may be delisted"
        );
        assert_eq!(
            body_message(br#"{"code": 40110000, "message": "request is not authorized"}"#),
            "request is not authorized"
        );
        assert_eq!(body_message(b"  "), "(empty body)");
        assert_eq!(body_message(&[b'x'; 300]).chars().count(), 201);
    }
}
