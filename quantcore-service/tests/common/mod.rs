//! Fixtures of the HTTP tests: a SQLite store with sample bars, a real server on loopback
//! and a minimal HTTP/1.1 client over a TCP socket.

#![allow(dead_code)] // each test file uses a part of the fixtures

use std::net::SocketAddr;
use std::sync::Arc;

use quantcore_service::api::{AppState, app};
use quantcore_service::store::{self, Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A migrated SQLite store in a temp folder holding the first `bars` sample bars of ACME.
pub async fn sqlite_with_acme(bars: usize) -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("test.db").display());
    let store = store::open(&url, 4).await.unwrap();
    let acme: Vec<_> = quantcore::sample::daily().unwrap()["ACME"]
        .iter()
        .take(bars)
        .collect();
    store.upsert_bars("ACME", &acme).await.unwrap();
    (store, dir)
}

/// Serves `app(state)` on an ephemeral loopback port until the test ends.
pub async fn serve(state: AppState) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app(state)).await.unwrap() });
    address
}

/// A response: status, headers (lower-case names) and body text.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|_| panic!("not JSON ({}): {}", self.status, self.body))
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one request over a fresh connection (`Connection: close`) and reads the answer.
pub async fn request(
    address: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
    token: Option<&str>,
) -> Answer {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    if let Some(token) = token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    let body = body.unwrap_or("");
    if method != "GET" {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("a header block");
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    assert!(
        !headers
            .iter()
            .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked")),
        "the test client reads Content-Length bodies only"
    );
    Answer {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// `GET path`.
pub async fn get(address: SocketAddr, path: &str) -> Answer {
    request(address, "GET", path, None, None).await
}

/// The samples of a Prometheus text exposition: `name{labels}` -> value.
pub fn samples(text: &str) -> std::collections::HashMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (key, value) = line.rsplit_once(' ').expect("name value");
            (key.to_owned(), value.parse().expect("a number"))
        })
        .collect()
}
