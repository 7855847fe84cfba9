//! The binary's command line: `migrate` works, `run` runs the embedded default until
//! Ctrl-C or SIGTERM and leaves a consistent database, `backtest` is the library's engine,
//! `train` saves a model the ml role loads, configuration errors stop it with a message.

use std::process::Command;

fn service() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_quantcore-service"));
    // Only the variables a test sets: no QUANTCORE_* from the caller's shell.
    for (name, _) in std::env::vars() {
        if name.starts_with("QUANTCORE_") {
            command.env_remove(name);
        }
    }
    command.env("QUANTCORE_LOG_LEVEL", "warn");
    command
}

#[test]
fn migrate_creates_the_default_sqlite_database() {
    let dir = tempfile::tempdir().unwrap();
    let output = service()
        .arg("migrate")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(dir.path().join("data/quantcore.db").is_file());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "database schema is up to date (Sqlite)"
    );
    // Idempotent.
    let again = service()
        .arg("migrate")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(again.status.success());
}

#[test]
fn migrate_follows_the_database_flag_over_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let output = service()
        .args(["--database-url", "sqlite://flag.db", "migrate"])
        .env("QUANTCORE_DATABASE_URL", "sqlite://env.db")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(dir.path().join("flag.db").is_file());
    assert!(!dir.path().join("env.db").exists());
}

#[test]
fn configuration_errors_stop_with_a_message() {
    let output = service()
        .arg("migrate")
        .env("QUANTCORE_BUS_PARTITIONS", "many")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr).trim(),
        "error: environment variable QUANTCORE_BUS_PARTITIONS: expected a non-negative integer, was \"many\""
    );
    let output = service().arg("fly").output().unwrap();
    assert_eq!(output.status.code(), Some(2), "clap usage error");
}

/// Sends a GET over a plain TCP connection; returns the response text.
fn http_get(address: &str, path: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    Ok(text)
}

#[test]
fn run_serves_the_embedded_default_and_stops_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    let mut child = service()
        .args(["run", "--replay-interval-ms", "0", "--symbols", "ACME"])
        .args(["--api-bind", &address])
        .env("QUANTCORE_LOG_LEVEL", "info")
        .current_dir(dir.path())
        // A file, not a pipe: a full pipe would block the service's logging.
        .stderr(std::fs::File::create(dir.path().join("run.log")).unwrap())
        .spawn()
        .unwrap();
    // The replay of 1,565 bars at full speed; wait for the API and some trades.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut trades = String::new();
    while std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
        if let Ok(text) = http_get(&address, "/trades")
            && text.contains("\"order_id\"")
        {
            trades = text;
            break;
        }
    }
    assert!(trades.starts_with("HTTP/1.1 200"), "no trades: {trades}");
    let health = http_get(&address, "/health").unwrap();
    assert!(health.contains(r#"{"status":"ok"}"#), "{health}");
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    let log = std::fs::read_to_string(dir.path().join("run.log")).unwrap();
    assert!(exit.success(), "{log}");
    for line in [
        "bars ingested",
        "signal",
        "order filled",
        "Ctrl-C: stopping",
        "stopped",
    ] {
        assert!(log.contains(line), "no {line:?} in the log:\n{log}");
    }
    assert!(dir.path().join("data/quantcore.db").is_file());
}

/// The value after `final_equity: ` in the backtest's output.
fn final_equity(stdout: &[u8]) -> f64 {
    let text = String::from_utf8_lossy(stdout);
    text.lines()
        .find_map(|line| line.strip_prefix("final_equity: "))
        .unwrap_or_else(|| panic!("no final_equity line in:\n{text}"))
        .parse()
        .unwrap()
}

fn direct_backtest(
    bars: &quantcore::BarSeries,
    spec: quantcore::backtest::StrategySpec,
) -> quantcore::backtest::BacktestResult {
    let mut strategy = spec.build().unwrap();
    quantcore::Backtester::new(quantcore::BacktestConfig::default())
        .unwrap()
        .run(bars, &mut strategy)
        .unwrap()
}

#[test]
fn backtest_prints_the_final_equity_of_the_library_engine() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("report.html");
    let output = service()
        .args(["backtest", "--symbol", "GLOBEX", "--strategy", "momentum"])
        .args(["--fast", "5", "--slow", "20", "--html"])
        .arg(&html)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let sample = quantcore::sample::daily().unwrap();
    let direct = direct_backtest(
        &sample["GLOBEX"],
        quantcore::backtest::StrategySpec::Momentum(quantcore::backtest::MomentumParams::new(
            5, 20,
        )),
    );
    assert_eq!(final_equity(&output.stdout), *direct.equity.last().unwrap());
    assert!(!direct.trades.is_empty());
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<svg"));

    // A CSV file of one symbol, mean reversion.
    let csv = dir.path().join("acme.csv");
    let mut text = String::from("symbol,timestamp,open,high,low,close,volume\n");
    let bars: Vec<_> = sample["ACME"].iter().take(400).collect();
    for bar in &bars {
        text.push_str(&format!(
            "ACME,{},{},{},{},{},{}\n",
            bar.timestamp, bar.open, bar.high, bar.low, bar.close, bar.volume
        ));
    }
    std::fs::write(&csv, text).unwrap();
    let output = service()
        .args(["backtest", "--strategy", "mean-reversion", "--window", "15"])
        .args(["--entry-z", "1.5", "--exit-z", "0.2", "--csv"])
        .arg(&csv)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let params: quantcore::backtest::StrategySpec = serde_json::from_str(
        r#"{"strategy": "mean_reversion", "window": 15, "entry_z": 1.5, "exit_z": 0.2}"#,
    )
    .unwrap();
    let series = quantcore::BarSeries::from_bars(&bars).unwrap();
    let direct = direct_backtest(&series, params);
    assert_eq!(final_equity(&output.stdout), *direct.equity.last().unwrap());

    // Bad parameters: the core's message, exit 1.
    let output = service()
        .args(["backtest", "--symbol", "ACME", "--fast", "0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("fast"));
    let output = service().args(["backtest"]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("give --symbol"));
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn train_saves_a_model_the_ml_role_can_load() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("train.db").display());
    runtime().block_on(async {
        let store = quantcore_service::store::open(&url, 2).await.unwrap();
        let bars: Vec<_> = quantcore::sample::daily().unwrap()["ACME"]
            .iter()
            .take(200)
            .collect();
        store.upsert_bars("ACME", &bars).await.unwrap();
    });
    let output = service()
        .args(["--database-url", &url, "train", "--symbol", "ACME"])
        .args(["--epochs", "2", "--hidden-size", "4", "--window", "8"])
        .env("QUANTCORE_ML_MODEL_DIR", dir.path().join("models"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.starts_with("ACME: trained 2 epochs"), "{stdout}");
    let model = quantcore::ml::lstm::LstmPredictor::load(dir.path().join("models/ACME")).unwrap();
    assert_eq!(model.config().hidden_size, 4);
    assert_eq!(model.config().window, 8);

    // A window the ml role cannot feed, and a symbol without bars.
    let output = service()
        .args([
            "--database-url",
            &url,
            "train",
            "--symbol",
            "ACME",
            "--window",
            "30",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("`window` must be at most 29"));
    let output = service()
        .args(["--database-url", &url, "train", "--symbol", "NOPE"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("NOPE: 0 bars stored"));
}

#[test]
fn sigterm_drains_and_leaves_a_consistent_database() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    // A slow replay (2 ms a bar) over two symbols: work is in flight when the signal comes.
    let mut child = service()
        .args([
            "run",
            "--replay-interval-ms",
            "2",
            "--symbols",
            "ACME,GLOBEX",
        ])
        .args(["--api-bind", &address])
        .env("QUANTCORE_LOG_LEVEL", "info")
        .env("QUANTCORE_SHUTDOWN_DRAIN_TIMEOUT_SECS", "20")
        .current_dir(dir.path())
        .stderr(std::fs::File::create(dir.path().join("run.log")).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut filled = false;
    while std::time::Instant::now() < deadline && !filled {
        std::thread::sleep(std::time::Duration::from_millis(100));
        filled = http_get(&address, "/metrics").is_ok_and(|text| {
            text.lines()
                .filter_map(|line| line.strip_prefix("quantcore_orders_filled_total "))
                .any(|n| n.trim().parse::<u64>().is_ok_and(|n| n >= 3))
        });
    }
    assert!(filled, "no filled orders within 60 s");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("still running 60 s after SIGTERM");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let log = std::fs::read_to_string(dir.path().join("run.log")).unwrap();
    assert_eq!(exit.code(), Some(0), "{log}");
    for line in ["SIGTERM: stopping", "stopped"] {
        assert!(log.contains(line), "no {line:?} in the log:\n{log}");
    }
    assert!(!log.contains("drain timeout"), "{log}");
    // The API is gone.
    assert!(http_get(&address, "/health").is_err());

    // Reopen the store: every filled order has its trade and the books balance.
    let url = format!(
        "sqlite://{}",
        dir.path().join("data/quantcore.db").display()
    );
    runtime().block_on(async {
        let store = quantcore_service::store::open(&url, 2).await.unwrap();
        let trades = store.trades(10_000).await.unwrap();
        assert!(trades.len() >= 3);
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let orphans: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM orders o WHERE o.status = 'FILLED' \
             AND NOT EXISTS (SELECT 1 FROM trades t WHERE t.order_id = o.id)",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(orphans, 0, "filled orders without a trade");
        let filled: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE status = 'FILLED'")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(filled as usize, trades.len());
        for trade in &trades {
            let order = store.order(trade.order_id).await.unwrap().unwrap();
            assert_eq!(order.filled_price, Some(trade.price));
            assert_eq!(order.quantity, trade.quantity);
        }
        // Cash = initial - buys + sells - commissions, from the trades alone.
        let mut expected_cash = 100_000.0;
        let mut commissions = 0.0;
        let mut realized = 0.0;
        let mut held = std::collections::BTreeMap::<String, f64>::new();
        for trade in &trades {
            let notional = trade.quantity * trade.price;
            match trade.side {
                quantcore_service::store::Side::Buy => {
                    expected_cash -= notional;
                    *held.entry(trade.symbol.clone()).or_default() += trade.quantity;
                }
                quantcore_service::store::Side::Sell => {
                    expected_cash += notional;
                    *held.entry(trade.symbol.clone()).or_default() -= trade.quantity;
                }
            }
            expected_cash -= trade.commission;
            commissions += trade.commission;
            realized += trade.realized_pnl;
        }
        let cash = store.cash().await.unwrap();
        assert!(
            (cash - expected_cash).abs() < 1e-6,
            "{cash} vs {expected_cash}"
        );
        let positions = store.positions().await.unwrap();
        let mut cost = 0.0;
        for position in &positions {
            let quantity = held.get(&position.symbol).copied().unwrap_or(0.0);
            assert!((position.quantity - quantity).abs() < 1e-9, "{position:?}");
            cost += position.quantity * position.average_price;
        }
        // Cash plus the positions at cost is the start less commissions plus realized PnL
        // (the core's PnL is before fees).
        let books = cash + cost;
        let expected = 100_000.0 - commissions + realized;
        assert!((books - expected).abs() < 1e-6, "{books} vs {expected}");
    });
}
