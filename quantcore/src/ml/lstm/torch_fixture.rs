//! Compatibility with real PyTorch: weights and outputs produced by PyTorch itself.
//!
//! `fixtures/torch/make_fixture.py` builds `nn.LSTM(5, 16, batch_first=True)` and
//! `nn.Linear(16, 1)` (attributes `lstm` and `linear`) with `torch.manual_seed(0)`,
//! saves the `state_dict()` with `safetensors.torch.save_file` as
//! `lstm_5x16.safetensors` (PyTorch's own tensor names), and writes three seeded input
//! windows of 30 steps and PyTorch's outputs for them to `lstm_5x16.json`. The tests
//! load the weights through the crate's loader and require both forward passes to
//! reproduce PyTorch's numbers to 1e-5; as a third opinion, the plain `f64` oracle of
//! the network tests, run on the same stored weights, must agree with PyTorch too.

use std::path::PathBuf;

use candle_core::Device;
use serde::Deserialize;

use super::network::LstmNetwork;
use super::network::tests::{NamedValues, oracle};

/// The JSON half of the fixture.
#[derive(Debug, Deserialize)]
struct Fixture {
    torch_version: String,
    input_size: usize,
    hidden_size: usize,
    num_layers: usize,
    tensor_names: Vec<String>,
    /// `[window][step][feature]`.
    inputs: Vec<Vec<Vec<f64>>>,
    outputs: Vec<f64>,
}

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/torch")
        .join(name)
}

fn read_fixture() -> Fixture {
    let text = std::fs::read_to_string(fixture_path("lstm_5x16.json")).unwrap();
    let fixture: Fixture = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (fixture.input_size, fixture.hidden_size, fixture.num_layers),
        (5, 16, 1)
    );
    assert_eq!(fixture.inputs.len(), 3);
    assert_eq!(fixture.outputs.len(), 3);
    for window in &fixture.inputs {
        assert_eq!(window.len(), 30);
        assert!(window.iter().all(|step| step.len() == 5));
    }
    fixture
}

/// The windows as the network reads them: time-major `f32` rows, back to back.
fn flat_windows(fixture: &Fixture) -> Vec<f32> {
    fixture
        .inputs
        .iter()
        .flatten()
        .flatten()
        .map(|&v| v as f32)
        .collect()
}

#[test]
fn pytorch_weights_reproduce_pytorch_outputs() {
    let fixture = read_fixture();
    let net = LstmNetwork::load_safetensors(
        fixture_path("lstm_5x16.safetensors"),
        fixture.input_size,
        fixture.hidden_size,
        fixture.num_layers,
    )
    .unwrap();
    let windows = flat_windows(&fixture);
    let span = 30 * fixture.input_size;
    let batched = net.forward_batch(&windows, fixture.inputs.len()).unwrap();
    let mut worst: f64 = 0.0;
    for (k, &expected) in fixture.outputs.iter().enumerate() {
        let fused = f64::from(
            net.forward_window(&windows[k * span..(k + 1) * span])
                .unwrap(),
        );
        let candle = f64::from(batched[k]);
        assert!(
            (fused - expected).abs() < 1e-5,
            "window {k}: fused {fused}, torch {expected}"
        );
        assert!(
            (candle - expected).abs() < 1e-5,
            "window {k}: candle {candle}, torch {expected}"
        );
        worst = worst
            .max((fused - expected).abs())
            .max((candle - expected).abs());
    }
    println!(
        "torch {}: worst |quantcore - torch| = {worst:.2e}",
        fixture.torch_version
    );
    // The three outputs differ from each other far more than the tolerance, so a
    // network that ignored its input could not pass.
    assert!((fixture.outputs[0] - fixture.outputs[1]).abs() > 1e-2);
}

#[test]
fn fixture_holds_pytorch_names_and_the_oracle_agrees() {
    let fixture = read_fixture();
    let stored =
        candle_core::safetensors::load(fixture_path("lstm_5x16.safetensors"), &Device::Cpu)
            .unwrap();
    let mut names: Vec<&str> = stored.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "linear.bias",
            "linear.weight",
            "lstm.bias_hh_l0",
            "lstm.bias_ih_l0",
            "lstm.weight_hh_l0",
            "lstm.weight_ih_l0"
        ]
    );
    assert_eq!(fixture.tensor_names, names);
    assert_eq!(stored["lstm.weight_ih_l0"].dims(), &[64, 5]);
    assert_eq!(stored["lstm.weight_hh_l0"].dims(), &[64, 16]);
    let dict: Vec<NamedValues> = stored
        .iter()
        .map(|(name, tensor)| {
            let values = tensor
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
                .into_iter()
                .map(f64::from)
                .collect();
            (name.clone(), tensor.dims().to_vec(), values)
        })
        .collect();
    for (window, &expected) in fixture.inputs.iter().zip(&fixture.outputs) {
        let flat: Vec<f64> = window.iter().flatten().copied().collect();
        let output = oracle(&dict, &flat, 5, 16, 1);
        assert!(
            (output - expected).abs() < 1e-5,
            "oracle {output}, torch {expected}"
        );
    }
}
