//! The binary's command line: `migrate` works, `run` runs the embedded default until
//! Ctrl-C, the unbuilt commands say so, configuration errors stop it with a message.

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
fn unbuilt_commands_exit_with_2() {
    for command in ["train", "backtest"] {
        let output = service().arg(command).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{command}");
        assert_eq!(
            String::from_utf8_lossy(&output.stderr).trim(),
            format!("quantcore-service {command}: not yet implemented")
        );
    }
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
        "bar ingested",
        "signal",
        "order filled",
        "Ctrl-C: stopping",
        "stopped",
    ] {
        assert!(log.contains(line), "no {line:?} in the log:\n{log}");
    }
    assert!(dir.path().join("data/quantcore.db").is_file());
}
