//! The binary's command line: `migrate` works, the other commands say they are not built
//! yet, configuration errors stop it with a message.

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
