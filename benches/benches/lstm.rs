//! LSTM predictor (5 features, hidden 64, one layer, window 30: the defaults).
//!
//! Measured, each on data built once outside the timed closures:
//! - `lstm_predict/single_window`: [`LstmPredictor::predict`] on a series, the live
//!   path of the service's ml role: the 30 feature rows of the last 31 bars,
//!   standardisation and the fused `f32` forward pass (target under 50 µs);
//! - `lstm_predict/batch`: [`LstmPredictor::predict_batch`] over 256 windows (a
//!   series of 286 bars): features, then the fused pass over the overlapping windows
//!   in parallel on rayon's pool;
//! - `lstm_predict/candle_batch`: the same 256 windows (already standardised and
//!   copied, `f32`) as one candle tensor batch through
//!   [`LstmNetwork::forward_batch`], for comparison with the fused path;
//! - `lstm_train/epoch`: one training epoch over 10,000 windows in batches of 64
//!   (AdamW, no validation part), including the feature preparation and the seeded
//!   initialisation, which are small next to the 157 optimizer steps.
//!
//! The bars follow a seeded geometric random walk; the predict benches use a network
//! with seeded random weights (no training needed to time inference). Throughput is in
//! windows.

/// mimalloc, as in the Python module: the figures are those a notebook gets (see the
/// workspace `Cargo.toml` for why not glibc's malloc).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use quantcore::BarSeries;
use quantcore::features::windows::bar_features;
use quantcore::ml::lstm::{LstmConfig, LstmNetwork, LstmPredictor, Scaler};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// `n` bars of a geometric random walk with 1 % daily moves, from a fixed seed.
fn bars(n: usize, seed: u64) -> BarSeries {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut close = Vec::with_capacity(n);
    let mut price = 100.0f64;
    for _ in 0..n {
        price *= 1.0 + rng.gen_range(-0.02..0.02);
        close.push(price);
    }
    let open: Vec<f64> = std::iter::once(100.0)
        .chain(close[..n - 1].iter().copied())
        .collect();
    let high = (0..n)
        .map(|i| open[i].max(close[i]) * (1.0 + rng.gen_range(0.0..0.01)))
        .collect();
    let low = (0..n)
        .map(|i| open[i].min(close[i]) * (1.0 - rng.gen_range(0.0..0.01)))
        .collect();
    let volume = (0..n).map(|_| rng.gen_range(1e5..2e5)).collect();
    BarSeries::new(
        (0..n as i64).map(|i| i * 86_400).collect(),
        open,
        high,
        low,
        close,
        volume,
    )
    .expect("generated bars are valid")
}

/// A predictor with seeded random weights and a scaler fitted on `series`.
fn untrained_predictor(config: &LstmConfig, series: &BarSeries) -> LstmPredictor {
    let features = bar_features(series, &config.features).expect("enough bars");
    let close = series.close();
    let targets: Vec<f64> = close.windows(2).map(|w| (w[1] / w[0]).ln()).collect();
    let scaler = Scaler::fit(features.view(), &targets).expect("non-empty");
    let network = LstmNetwork::new_seeded(
        config.input_size(),
        config.hidden_size,
        config.num_layers,
        7,
    )
    .expect("valid sizes");
    LstmPredictor::from_parts(config.clone(), scaler, network).expect("consistent parts")
}

fn predict(c: &mut Criterion) {
    let config = LstmConfig::default();
    let batch = 256;
    let series = bars(config.window + batch, 1);
    let predictor = untrained_predictor(&config, &series);
    let shape = "features=5,hidden=64,window=30";

    let mut group = c.benchmark_group("lstm_predict");
    group.throughput(Throughput::Elements(1));
    group.bench_with_input(
        BenchmarkId::new("single_window", shape),
        &series,
        |b, series| b.iter(|| predictor.predict(black_box(series)).expect("enough bars")),
    );
    group.throughput(Throughput::Elements(batch as u64));
    group.bench_with_input(
        BenchmarkId::new("batch", format!("windows={batch},{shape}")),
        &series,
        |b, series| {
            b.iter(|| {
                let out = predictor
                    .predict_batch(black_box(series))
                    .expect("enough bars");
                assert_eq!(out.len(), batch);
                out
            })
        },
    );
    let window_values: Vec<f32> = (0..batch * config.window * config.input_size())
        .map(|i| ((i % 17) as f32 - 8.0) * 0.1)
        .collect();
    group.bench_with_input(
        BenchmarkId::new("candle_batch", format!("windows={batch},{shape}")),
        &window_values,
        |b, values| {
            b.iter(|| {
                predictor
                    .network()
                    .forward_batch(black_box(values), batch)
                    .expect("valid shape")
            })
        },
    );
    group.finish();
}

fn train(c: &mut Criterion) {
    let windows = 10_000;
    let config = LstmConfig {
        epochs: 1,
        batch_size: 64,
        validation_fraction: 0.0,
        ..LstmConfig::default()
    };
    // n bars give n - 1 - window samples.
    let series = bars(windows + config.window + 1, 2);

    let mut group = c.benchmark_group("lstm_train");
    group.throughput(Throughput::Elements(windows as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(30));
    group.bench_with_input(
        BenchmarkId::new("epoch", format!("windows={windows},batch=64,hidden=64")),
        &series,
        |b, series| {
            b.iter(|| LstmPredictor::train(black_box(series), &config, |_| ()).expect("trains"))
        },
    );
    group.finish();
}

criterion_group!(benches, predict, train);
criterion_main!(benches);
