//! Faults on the distributed deployment (PostgreSQL + Kafka over librdkafka's mock cluster,
//! each role with its own pool, client and consumer group):
//!
//! - **Database restarts mid-run**: while bars flow, the PostgreSQL server is restarted
//!   (`pg_ctl restart -m fast`, which ends every session), then stopped and started again
//!   after an outage. The roles retry the failed store calls without committing their
//!   message, the pools reconnect, and the final books equal a run without faults: every
//!   bar stored once, one analysis per bar, at most one order per signal, the same trades,
//!   cash and positions.
//! - **Poison messages**: undecodable messages on `market_data` and `trading_signals` go
//!   to the dead-letter topics and the roles go on (over Kafka; `tests/pipeline.rs` covers
//!   the in-process bus).
//!
//! The restart needs the server's data directory and `pg_ctl`: `scripts/with-postgres.sh`
//! exports `QUANTCORE_TEST_PG_CTL`, `QUANTCORE_TEST_PGDATA`, `QUANTCORE_TEST_PGLOG` and
//! `QUANTCORE_TEST_PG_USER`.

mod stores;
mod support;

use std::collections::{BTreeMap, HashSet};
use std::process::Command;
use std::time::Duration;

use quantcore_service::bus::DeadLetter;
use quantcore_service::messages::topics;
use quantcore_service::roles::{self, Stats};
use quantcore_service::store::Store;
use support::{Deployment, Pipeline, sample_feed};

const SYMBOLS: [&str; 2] = ["ACME", "GLOBEX"];
const BARS: usize = 120;
const WINDOW: usize = 30;

/// How to run `pg_ctl` on the test cluster.
struct PgCtl {
    pg_ctl: String,
    data: String,
    log: String,
    user: String,
}

impl PgCtl {
    /// # Panics
    /// When the variables of `scripts/with-postgres.sh` are missing.
    fn from_env() -> Self {
        let var = |name: &str| {
            std::env::var(name).unwrap_or_else(|_| {
                panic!("{name} is not set: run through scripts/with-postgres.sh")
            })
        };
        Self {
            pg_ctl: var("QUANTCORE_TEST_PG_CTL"),
            data: var("QUANTCORE_TEST_PGDATA"),
            log: var("QUANTCORE_TEST_PGLOG"),
            user: std::env::var("QUANTCORE_TEST_PG_USER").unwrap_or_default(),
        }
    }

    /// Runs `pg_ctl -D DATA -l LOG -w ARGS` as the server's user; panics on failure.
    fn run(&self, args: &[&str]) {
        let mut argv = vec![
            self.pg_ctl.as_str(),
            "-D",
            &self.data,
            "-l",
            &self.log,
            "-w",
            "-t",
            "60",
        ];
        argv.extend_from_slice(args);
        let mut command = if self.user.is_empty() {
            let mut command = Command::new(argv[0]);
            command.args(&argv[1..]);
            command
        } else if std::path::Path::new("/usr/sbin/runuser").exists()
            || Command::new("runuser").arg("--help").output().is_ok()
        {
            let mut command = Command::new("runuser");
            command.args(["-u", &self.user, "--"]).args(&argv);
            command
        } else {
            let quoted: Vec<String> = argv.iter().map(|a| format!("'{a}'")).collect();
            let mut command = Command::new("su");
            command.args(["-s", "/bin/sh", &self.user, "-c", &quoted.join(" ")]);
            command
        };
        let output = command.output().expect("run pg_ctl");
        assert!(
            output.status.success(),
            "pg_ctl {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// The postmaster's process id (changes with every start).
    fn server_pid(&self) -> String {
        let pid_file = std::fs::read_to_string(format!("{}/postmaster.pid", self.data))
            .expect("the server runs");
        pid_file.lines().next().unwrap_or_default().to_owned()
    }
}

/// What a run leaves in the store, for comparing runs.
#[derive(Debug, PartialEq)]
struct Outcome {
    /// Symbol, side, quantity, price, commission and signal time of each trade, in order.
    trades: Vec<(String, &'static str, f64, f64, f64, i64)>,
    cash: f64,
    value: f64,
    /// Quantity, average price and realized PnL by symbol.
    positions: BTreeMap<String, (f64, f64, f64)>,
}

/// Checks the run's invariants (each bar stored once, one analysis per bar, at most one
/// order per signal) and returns its outcome.
async fn outcome(store: &dyn Store, trade: &Stats) -> Outcome {
    for symbol in SYMBOLS {
        let bars = store.last_bars(symbol, 100_000).await.unwrap();
        assert_eq!(bars.len(), BARS, "{symbol}: every bar stored once");
        let predictions = store.predictions(symbol, 100_000).await.unwrap();
        assert_eq!(
            predictions.len(),
            BARS - WINDOW + 1,
            "{symbol}: one prediction per bar after the warm-up, none twice"
        );
        let signals = store.signals(symbol, 100_000).await.unwrap();
        let times: HashSet<i64> = signals.iter().map(|s| s.record.timestamp).collect();
        assert_eq!(times.len(), signals.len(), "{symbol}: one signal per bar");
    }
    let trades = store.trades(100_000).await.unwrap();
    let signals: HashSet<(&str, i64)> = trades
        .iter()
        .map(|t| (t.symbol.as_str(), t.executed_at.timestamp()))
        .collect();
    assert_eq!(signals.len(), trades.len(), "at most one order per signal");
    assert_eq!(Stats::get(&trade.orders_filled), trades.len() as u64);
    let (cash, value) = roles::portfolio_value(store).await.unwrap();
    Outcome {
        trades: trades
            .iter()
            .map(|t| {
                (
                    t.symbol.clone(),
                    t.side.as_str(),
                    t.quantity,
                    t.price,
                    t.commission,
                    t.executed_at.timestamp(),
                )
            })
            .collect(),
        cash,
        value,
        positions: store
            .positions()
            .await
            .unwrap()
            .into_iter()
            .map(|p| (p.symbol, (p.quantity, p.average_price, p.realized_pnl)))
            .collect(),
    }
}

/// Feeds the sample on `deployment`; `fault(n)` runs before the `n`-th bar.
async fn run(deployment: &Deployment, mut fault: impl FnMut(usize)) -> Outcome {
    let mut pipeline = Pipeline::start(deployment).await;
    for (n, (symbol, bar)) in sample_feed(&SYMBOLS, BARS).into_iter().enumerate() {
        fault(n);
        pipeline.feed(&symbol, bar).await;
    }
    let store = deployment.open_store().await;
    let outcome = outcome(store.as_ref(), &pipeline.trade).await;
    pipeline.stop().await;
    outcome
}

/// Waits for the fault threads (off the async worker: the roles keep running).
fn join(faults: &mut Vec<std::thread::JoinHandle<()>>) {
    tokio::task::block_in_place(|| {
        for fault in faults.drain(..) {
            fault.join().expect("pg_ctl");
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_mid_run_loses_nothing_and_doubles_nothing() {
    let Some(url) = support::postgres_url() else {
        return;
    };
    let pg = std::sync::Arc::new(PgCtl::from_env());
    let expected = run(&Deployment::embedded(), |_| {}).await;
    assert!(expected.trades.len() >= 5, "the sample trades");

    let deployment = Deployment::postgres_kafka_mock(url);
    let total = SYMBOLS.len() * BARS;
    let mut faults: Vec<std::thread::JoinHandle<()>> = Vec::new();
    let first_pid = pg.server_pid();
    let actual = run(&deployment, |n| {
        // While bars flow: a restart (sessions killed), then an outage of a second.
        if n == total / 3 {
            let pg = pg.clone();
            faults.push(std::thread::spawn(move || {
                pg.run(&["-m", "fast", "restart"]);
            }));
        }
        if n == 2 * total / 3 {
            join(&mut faults);
            let pg = pg.clone();
            faults.push(std::thread::spawn(move || {
                pg.run(&["-m", "fast", "stop"]);
                std::thread::sleep(Duration::from_secs(1));
                // `restart` of a stopped server starts it with the options of its last
                // start (postmaster.opts: port, socket directory); `start` would not.
                pg.run(&["restart"]);
            }));
        }
        if n == total - 10 {
            join(&mut faults);
        }
    })
    .await;
    assert_ne!(pg.server_pid(), first_pid, "the server was restarted");
    assert_eq!(
        actual, expected,
        "the run with restarts equals the run without"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_messages_on_kafka_are_dead_lettered_and_the_pipeline_goes_on() {
    let deployment = Deployment::sqlite_kafka_mock();
    let bus = deployment.open_bus();
    bus.publish(topics::MARKET_DATA, "ACME", b"{not json")
        .await
        .unwrap();
    bus.publish(topics::TRADING_SIGNALS, "ACME", b"\xff\x00")
        .await
        .unwrap();
    let mut pipeline = Pipeline::start(&deployment).await;
    let feed = sample_feed(&["ACME"], 60);
    for (symbol, bar) in feed {
        pipeline.feed(&symbol, bar).await;
    }
    assert_eq!(
        Stats::get(&pipeline.ml.bars_analysed),
        60,
        "poison not counted"
    );
    assert_eq!(
        Stats::get(&pipeline.trade.signals_handled),
        Stats::get(&pipeline.ml.signals_published)
    );
    let store = deployment.open_store().await;
    assert_eq!(
        store.predictions("ACME", 1000).await.unwrap().len(),
        60 - WINDOW + 1
    );
    for (topic, payload) in [
        (topics::MARKET_DATA, b"{not json".to_vec()),
        (topics::TRADING_SIGNALS, b"\xff\x00".to_vec()),
    ] {
        let mut dlq = bus
            .subscribe(&topics::dead_letter(topic), &deployment.group("ops"))
            .await
            .unwrap();
        let delivery = tokio::time::timeout(Duration::from_secs(60), dlq.next())
            .await
            .expect("a dead letter")
            .unwrap();
        let letter: DeadLetter = serde_json::from_slice(&delivery.payload).unwrap();
        assert_eq!(letter.topic, topic);
        assert_eq!(letter.payload(), payload);
        assert!(letter.error.contains("JSON"), "{}", letter.error);
    }
    pipeline.stop().await;
}
