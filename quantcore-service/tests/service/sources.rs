//! The live sources over real HTTP on loopback: an axum server on `127.0.0.1:0` serves the
//! core's Yahoo and Alpaca fixtures (`quantcore/fixtures/`) and scripted failures, and
//! records when each request arrived. Nothing reaches the internet.
//!
//! Checked: the clients give the core parsers' bars; 5xx is retried; 429 waits for
//! `Retry-After` (measured on the server's clock); 401 fails at once with a typed error;
//! a broken body is a typed parse error; Alpaca's pages are followed; the scheduler stores
//! and publishes only bars after the last stored one; a failing poll does not stop the
//! poller.

use crate::stores::sqlite;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::HeaderMap;
use axum::response::Response;
use quantcore::Bar;
use quantcore::normalize::{ParseOptions, alpaca, yahoo};
use quantcore_service::bus::{Bus, MemoryBus};
use quantcore_service::roles::Stats;
use quantcore_service::sources::{
    self, AlpacaClient, AlpacaKeys, AlpacaSettings, BarSource, RetryPolicy, SourceError,
    YahooClient,
};

fn fixture(path: &str) -> Vec<u8> {
    let path = format!(
        "{}/../quantcore/fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    at: Instant,
    uri: String,
    headers: HeaderMap,
}

/// A scripted answer: status, extra headers, body.
struct Answer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

fn ok(body: Vec<u8>) -> Answer {
    Answer {
        status: 200,
        headers: vec![("content-type", "application/json".into())],
        body,
    }
}

fn status(status: u16, body: &str) -> Answer {
    Answer {
        status,
        headers: Vec::new(),
        body: body.as_bytes().to_vec(),
    }
}

type Script = dyn Fn(usize, &str) -> Answer + Send + Sync;

struct Server {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    /// Serves `script(request_index, uri)` for every request on a fresh loopback port.
    async fn start(script: impl Fn(usize, &str) -> Answer + Send + Sync + 'static) -> Self {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let script: Arc<Script> = Arc::new(script);
        let log = seen.clone();
        let app = Router::new().fallback(move |request: Request| {
            let (log, script) = (log.clone(), script.clone());
            async move {
                let uri = request.uri().to_string();
                let index = {
                    let mut log = log.lock().unwrap();
                    log.push(Seen {
                        at: Instant::now(),
                        uri: uri.clone(),
                        headers: request.headers().clone(),
                    });
                    log.len() - 1
                };
                let answer = script(index, &uri);
                let mut response = Response::builder().status(answer.status);
                for (name, value) in answer.headers {
                    response = response.header(name, value);
                }
                response.body(Body::from(answer.body)).unwrap()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Server { base, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Fast retries: 3 attempts, 10-40 ms backoff, 5 s timeout, `Retry-After` up to 5 s.
fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        timeout: Duration::from_secs(5),
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        max_retry_after: Duration::from_secs(5),
    }
}

fn yahoo_client(server: &Server) -> YahooClient {
    YahooClient::new(&server.base, "1d", "5d", policy()).unwrap()
}

fn alpaca_client(server: &Server) -> AlpacaClient {
    AlpacaClient::new(
        &AlpacaKeys {
            key_id: "AKTEST".into(),
            secret_key: "secret".into(),
        },
        AlpacaSettings {
            base_url: server.base.clone(),
            timeframe: "1Min".into(),
            feed: Some("iex".into()),
            lookback_secs: 86_400,
        },
        policy(),
    )
    .unwrap()
}

/// What the core's parser makes of a Yahoo body, with the client's options.
fn core_yahoo_bars(body: &[u8]) -> Vec<Bar> {
    let options = ParseOptions::default()
        .drop_partial_bar(true)
        .as_of(chrono::Utc::now().timestamp());
    yahoo::parse_chart(body, &options)
        .unwrap()
        .series
        .iter()
        .collect()
}

fn core_alpaca_bars(body: &[u8]) -> Vec<Bar> {
    alpaca::parse_bars(body, &ParseOptions::default())
        .unwrap()
        .bars
        .series
        .iter()
        .collect()
}

#[tokio::test]
async fn yahoo_response_gives_the_core_parsers_bars() {
    for name in [
        "yahoo/daily_adjclose.json",
        "yahoo/intraday_nulls.json",
        "yahoo/intraday_partial.json",
    ] {
        let body = fixture(name);
        let served = body.clone();
        let server = Server::start(move |_, _| ok(served.clone())).await;
        let bars = yahoo_client(&server).fetch_chart("AAPL").await.unwrap();
        let expected = core_yahoo_bars(&body);
        assert!(!expected.is_empty(), "{name}");
        assert_eq!(bars, expected, "{name}");
        let seen = server.seen();
        assert_eq!(seen.len(), 1);
        assert!(
            seen[0]
                .uri
                .starts_with("/v8/finance/chart/AAPL?interval=1d&range=5d"),
            "{}",
            seen[0].uri
        );
    }
}

#[tokio::test]
async fn a_symbol_is_one_encoded_path_segment() {
    let body = fixture("yahoo/daily_adjclose.json");
    let server = Server::start(move |_, _| ok(body.clone())).await;
    let client = yahoo_client(&server);
    // The slash inside the symbol is escaped: one segment, not two.
    let path = client.chart_url("^GSPC/x").path().to_owned();
    assert!(
        path.starts_with("/v8/finance/chart/") && path.ends_with("GSPC%2Fx"),
        "{path}"
    );
    client.fetch_chart("^GSPC/x").await.unwrap();
    assert!(server.seen()[0].uri.starts_with(&format!("{path}?")));
}

#[tokio::test]
async fn a_server_error_is_retried_then_succeeds() {
    let body = fixture("yahoo/daily_adjclose.json");
    let expected = core_yahoo_bars(&body);
    let server = Server::start(move |index, _| {
        if index == 0 {
            status(500, "upstream broke")
        } else {
            ok(body.clone())
        }
    })
    .await;
    let bars = yahoo_client(&server).fetch_chart("AAPL").await.unwrap();
    assert_eq!(bars, expected);
    assert_eq!(server.seen().len(), 2, "one failure, one retry");
}

#[tokio::test]
async fn server_errors_exhaust_the_attempts() {
    let server = Server::start(|_, _| status(503, "down")).await;
    let error = yahoo_client(&server).fetch_chart("AAPL").await.unwrap_err();
    match &error {
        SourceError::Exhausted {
            symbol,
            attempts,
            last,
            ..
        } => {
            assert_eq!((symbol.as_str(), *attempts), ("AAPL", 3));
            assert!(last.contains("HTTP 503"), "{last}");
        }
        other => panic!("expected Exhausted, was {other:?}"),
    }
    assert_eq!(server.seen().len(), 3);
}

#[tokio::test]
async fn too_many_requests_waits_for_retry_after() {
    let body = fixture("yahoo/daily_adjclose.json");
    let server = Server::start(move |index, _| {
        if index == 0 {
            Answer {
                status: 429,
                headers: vec![("retry-after", "1".into())],
                body: b"Too Many Requests".to_vec(),
            }
        } else {
            ok(body.clone())
        }
    })
    .await;
    yahoo_client(&server).fetch_chart("AAPL").await.unwrap();
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    // The backoff alone is at most 40 ms: a gap near 1 s is the Retry-After.
    let gap = seen[1].at - seen[0].at;
    assert!(
        gap >= Duration::from_millis(950),
        "second request after {gap:?}"
    );
}

#[tokio::test]
async fn a_retry_after_longer_than_allowed_fails() {
    let server = Server::start(|_, _| Answer {
        status: 429,
        headers: vec![("retry-after", "3600".into())],
        body: Vec::new(),
    })
    .await;
    let error = yahoo_client(&server).fetch_chart("AAPL").await.unwrap_err();
    assert!(
        matches!(&error, SourceError::RateLimited { retry_after, .. } if *retry_after == Duration::from_secs(3600)),
        "{error:?}"
    );
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn unauthorized_fails_at_once_naming_symbol_and_status() {
    let server = Server::start(|_, _| {
        status(
            401,
            r#"{"code": 40110000, "message": "request is not authorized"}"#,
        )
    })
    .await;
    let error = alpaca_client(&server)
        .fetch_bars("AAPL", Some(1_705_415_400))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, SourceError::Unauthorized { symbol, status: 401, .. } if symbol == "AAPL"),
        "{error:?}"
    );
    assert_eq!(error.status(), Some(401));
    let text = error.to_string();
    assert!(text.contains("keys are wrong or missing"), "{text}");
    assert!(text.contains("request is not authorized"), "{text}");
    assert_eq!(server.seen().len(), 1, "no retry");
}

#[tokio::test]
async fn other_client_errors_are_not_retried() {
    let body = fixture("yahoo/error_not_found.json");
    let server = Server::start(move |_, _| Answer {
        status: 404,
        headers: Vec::new(),
        body: body.clone(),
    })
    .await;
    let error = yahoo_client(&server).fetch_chart("NOPE").await.unwrap_err();
    match &error {
        SourceError::Rejected {
            symbol,
            status,
            message,
            ..
        } => {
            assert_eq!((symbol.as_str(), *status), ("NOPE", 404));
            assert!(message.contains("delisted"), "{message}");
        }
        other => panic!("expected Rejected, was {other:?}"),
    }
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn malformed_json_is_a_typed_parse_error() {
    let body = fixture("alpaca/truncated.json");
    let server = Server::start(move |_, _| ok(body.clone())).await;
    let error = alpaca_client(&server)
        .fetch_bars("AAPL", None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &error,
            SourceError::Parse { symbol, source, .. }
                if symbol == "AAPL" && matches!(**source, quantcore::Error::Malformed { .. })
        ),
        "{error:?}"
    );
    // A Yahoo error object sent with HTTP 200 is the core's SourceError.
    let body = fixture("yahoo/error_not_found.json");
    let server = Server::start(move |_, _| ok(body.clone())).await;
    let error = yahoo_client(&server).fetch_chart("AAPL").await.unwrap_err();
    assert!(
        matches!(
            &error,
            SourceError::Parse { source, .. } if matches!(**source, quantcore::Error::SourceError { .. })
        ),
        "{error:?}"
    );
}

const PAGE_2: &str = r#"{"bars": [
  {"t": "2024-01-16T14:33:00Z", "o": 183.9, "h": 184.05, "l": 183.8, "c": 184.02, "v": 28811, "n": 390, "vw": 183.95},
  {"t": "2024-01-16T14:34:00Z", "o": 184.0, "h": 184.1, "l": 183.9, "c": 184.05, "v": 1500, "n": 100, "vw": 184.01}
 ], "symbol": "AAPL", "next_page_token": null}"#;

#[tokio::test]
async fn alpaca_follows_the_next_page_token() {
    let page_1 = fixture("alpaca/single_page.json");
    let served = page_1.clone();
    let server = Server::start(move |_, uri| {
        if uri.contains("page_token=") {
            ok(PAGE_2.as_bytes().to_vec())
        } else {
            ok(served.clone())
        }
    })
    .await;
    let bars = alpaca_client(&server)
        .fetch_bars("AAPL", Some(1_705_415_400))
        .await
        .unwrap();
    let mut expected = core_alpaca_bars(&page_1);
    expected.extend(core_alpaca_bars(PAGE_2.as_bytes()));
    assert_eq!(expected.len(), 5);
    assert_eq!(bars, expected);
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert!(
        seen[0]
            .uri
            .starts_with("/v2/stocks/AAPL/bars?timeframe=1Min&start=2024-01-16T14%3A30%3A00Z"),
        "{}",
        seen[0].uri
    );
    assert!(seen[0].uri.contains("feed=iex"));
    assert!(!seen[0].uri.contains("page_token"));
    assert!(
        seen[1]
            .uri
            .contains("page_token=QUFQTHxNfDIwMjQtMDEtMTZUMTQ6MzM6MDAuMDAwMDAwMDAwWg%3D%3D"),
        "{}",
        seen[1].uri
    );
    for request in &seen {
        assert_eq!(request.headers["apca-api-key-id"], "AKTEST");
        assert_eq!(request.headers["apca-api-secret-key"], "secret");
    }
}

#[tokio::test]
async fn alpaca_multi_symbol_pages_are_merged_by_symbol() {
    let body = fixture("alpaca/multi_page.json");
    let expected = alpaca::parse_multi_bars(&body, &ParseOptions::default())
        .unwrap()
        .into_series();
    let server = Server::start(move |_, _| ok(body.clone())).await;
    let symbols = ["AAPL".to_owned(), "MSFT".to_owned(), "TSLA".to_owned()];
    let bars = alpaca_client(&server)
        .fetch_many(&symbols, Some(1_705_415_400))
        .await
        .unwrap();
    assert_eq!(bars.len(), 3);
    for (symbol, series) in expected {
        assert_eq!(bars[&symbol], series.iter().collect::<Vec<_>>(), "{symbol}");
    }
    assert!(bars["TSLA"].is_empty());
    let uri = &server.seen()[0].uri;
    assert!(uri.starts_with("/v2/stocks/bars?"), "{uri}");
    assert!(uri.contains("symbols=AAPL%2CMSFT%2CTSLA"), "{uri}");
}

fn alpaca_page(bars: &[(&str, f64)]) -> Vec<u8> {
    let bars: Vec<String> = bars
        .iter()
        .map(|(t, c)| {
            format!(
                r#"{{"t": "{t}", "o": {c}, "h": {h}, "l": {l}, "c": {c}, "v": 100}}"#,
                h = c + 1.0,
                l = c - 1.0
            )
        })
        .collect();
    format!(
        r#"{{"bars": [{}], "symbol": "AAPL", "next_page_token": null}}"#,
        bars.join(",")
    )
    .into_bytes()
}

#[tokio::test]
async fn the_scheduler_stores_and_publishes_only_new_bars() {
    let first = alpaca_page(&[
        ("2024-01-16T14:30:00Z", 100.0),
        ("2024-01-16T14:31:00Z", 101.0),
        ("2024-01-16T14:32:00Z", 102.0),
    ]);
    // The second poll overlaps the first by two bars and brings two new ones.
    let second = alpaca_page(&[
        ("2024-01-16T14:31:00Z", 101.0),
        ("2024-01-16T14:32:00Z", 102.0),
        ("2024-01-16T14:33:00Z", 103.0),
        ("2024-01-16T14:34:00Z", 104.0),
    ]);
    let server = Server::start(move |index, _| {
        if index == 0 {
            ok(first.clone())
        } else {
            ok(second.clone())
        }
    })
    .await;
    let (store, _dir) = sqlite().await;
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new(1));
    let mut consumer = quantcore_service::bus::MessageConsumer::<
        quantcore_service::messages::MarketDataMessage,
    >::subscribe(bus.clone(), "market_data", "test")
    .await
    .unwrap();
    let stats = Stats::default();
    let client = alpaca_client(&server);

    let new = sources::ingest_once(store.as_ref(), bus.as_ref(), &client, "AAPL", &stats)
        .await
        .unwrap();
    assert_eq!(new, 3);
    let new = sources::ingest_once(store.as_ref(), bus.as_ref(), &client, "AAPL", &stats)
        .await
        .unwrap();
    assert_eq!(new, 2, "only the bars after 14:32 are new");

    let stored = store.last_bars("AAPL", 100).await.unwrap();
    let closes: Vec<f64> = stored.iter().map(|bar| bar.close).collect();
    assert_eq!(closes, [100.0, 101.0, 102.0, 103.0, 104.0]);
    assert_eq!(Stats::get(&stats.bars_ingested), 5);
    let mut published = Vec::new();
    for _ in 0..5 {
        let received = tokio::time::timeout(Duration::from_secs(5), consumer.next())
            .await
            .expect("a published bar")
            .unwrap();
        published.push(received.message.payload.close);
    }
    assert_eq!(published, closes, "each bar published once, in order");
    // The second poll asked from the last stored bar on.
    let seen = server.seen();
    assert!(seen[0].uri.contains("start="), "{}", seen[0].uri);
    assert!(
        seen[1].uri.contains("start=2024-01-16T14%3A32%3A00Z"),
        "{}",
        seen[1].uri
    );
}

#[tokio::test]
async fn a_failing_poll_is_counted_and_the_poller_keeps_going() {
    let good = alpaca_page(&[
        ("2024-01-16T14:30:00Z", 100.0),
        ("2024-01-16T14:31:00Z", 101.0),
    ]);
    // Three attempts per poll: the first poll fails (3 x 500), the second succeeds.
    let server = Server::start(move |index, _| {
        if index < 3 {
            status(500, "down")
        } else {
            ok(good.clone())
        }
    })
    .await;
    let (store, _dir) = sqlite().await;
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new(1));
    let stats = Arc::new(Stats::default());
    let client: Arc<dyn BarSource> = Arc::new(alpaca_client(&server));
    let poller = tokio::spawn(sources::poll_symbol(
        store.clone(),
        bus,
        client,
        "AAPL".into(),
        Duration::from_millis(50),
        stats.clone(),
    ));
    let deadline = Instant::now() + Duration::from_secs(20);
    while Stats::get(&stats.bars_ingested) < 2 {
        assert!(Instant::now() < deadline, "the poller never recovered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!poller.is_finished());
    poller.abort();
    assert_eq!(Stats::get(&stats.fetches_failed), 1);
    assert_eq!(store.last_bars("AAPL", 10).await.unwrap().len(), 2);
}
