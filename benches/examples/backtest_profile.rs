//! The `backtest/momentum` bench's run (a million bars, `MomentumStrategy { 10, 50 }`,
//! the bench's configuration) repeated outside criterion, for profilers and for
//! comparing builds on a noisy machine: prints the final equity (a change that should
//! keep the results must keep it) and the best, quartile and median times of the runs,
//! wall clock and the calling thread's CPU time (Linux; the simulation's thread).
//!
//! ```sh
//! cargo run --profile bench -p quantcore-benches --example backtest_profile -- 200
//! # instructions of one run, deterministic (the metrics' thread in its own file):
//! valgrind --tool=callgrind --separate-threads=yes \
//!   --toggle-collect='quantcore::backtest::engine::Backtester::run*' \
//!   target/release/examples/backtest_profile 1
//! ```

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use quantcore::backtest::{Backtester, MomentumStrategy};
use quantcore_benches::{backtest_config, drifting_walk};

/// The CPU time of this thread so far, in ms, where the kernel says it.
fn thread_cpu_ms() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos: f64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(nanos / 1e6)
}

/// `(min, first quartile, median)` of `values`.
fn summary(values: &mut [f64]) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    (values[0], values[n / 4], values[n / 2])
}

fn main() {
    let runs: usize = match std::env::args().nth(1) {
        Some(arg) => arg.parse().expect("the number of runs"),
        None => 100,
    };
    assert!(runs > 0, "at least one run");
    let series = drifting_walk(1_000_000, 42, "WALK");
    let backtester = Backtester::new(backtest_config()).expect("valid config");
    let (mut wall, mut cpu) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    let mut final_equity = 0.0;
    for _ in 0..runs {
        let (start, cpu_start) = (Instant::now(), thread_cpu_ms());
        let mut strategy = MomentumStrategy::new(10, 50).expect("valid periods");
        let result = backtester
            .run(std::hint::black_box(&series), &mut strategy)
            .expect("the run succeeds");
        if let (Some(end), Some(start)) = (thread_cpu_ms(), cpu_start) {
            cpu.push(end - start);
        }
        final_equity = result.equity[result.equity.len() - 1];
        drop(result);
        wall.push(start.elapsed().as_secs_f64() * 1e3);
    }
    println!("final equity {final_equity:.6} after {runs} runs");
    let (best, quartile, median) = summary(&mut wall);
    println!("wall ms: best {best:.2}, quartile {quartile:.2}, median {median:.2}");
    if cpu.len() == runs {
        let (best, quartile, median) = summary(&mut cpu);
        println!("thread cpu ms: best {best:.2}, quartile {quartile:.2}, median {median:.2}");
    }
}
