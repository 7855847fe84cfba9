//! [`LstmNetwork`]: the stacked LSTM and its linear head on candle, their PyTorch
//! tensor names, seeded initialisation and safetensors input/output.
//!
//! # Equations (PyTorch's `nn.LSTM`, gate order i, f, g, o)
//! For each layer, time step `t`, input `x_t` and previous state `(h, c)`:
//!
//! ```text
//! gates = W_ih x_t + b_ih + W_hh h + b_hh          (4H values: i | f | g | o)
//! i = sigmoid(gates[0..H])     f = sigmoid(gates[H..2H])
//! g = tanh(gates[2H..3H])      o = sigmoid(gates[3H..4H])
//! c' = f * c + i * g           h' = o * tanh(c')
//! ```
//!
//! The state starts at zero; layer `k > 0` reads layer `k - 1`'s `h` at every step. The
//! head is `nn.Linear(H, 1)` on the last layer's final `h`. Weights and arithmetic are
//! `f32`, PyTorch's default.
//!
//! # Tensor names
//! Exactly those of the PyTorch module
//!
//! ```python
//! class Model(nn.Module):
//!     def __init__(self, input_size, hidden_size, num_layers):
//!         super().__init__()
//!         self.lstm = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True)
//!         self.linear = nn.Linear(hidden_size, 1)
//!     def forward(self, x):
//!         out, _ = self.lstm(x)
//!         return self.linear(out[:, -1, :])
//! ```
//!
//! whose `state_dict()` holds, for each layer `k`:
//!
//! | name | shape |
//! |---|---|
//! | `lstm.weight_ih_l{k}` | `(4H, input_size)` for `k = 0`, `(4H, H)` above |
//! | `lstm.weight_hh_l{k}` | `(4H, H)` |
//! | `lstm.bias_ih_l{k}` | `(4H)` |
//! | `lstm.bias_hh_l{k}` | `(4H)` |
//! | `linear.weight` | `(1, H)` |
//! | `linear.bias` | `(1)` |
//!
//! [`LstmNetwork::save_safetensors`] writes these names. Loading also accepts the LSTM
//! names without the `lstm.` prefix (`weight_ih_l0`, ..., the keys of a bare
//! `nn.LSTM`'s state dict merged with the `linear.*` ones); the head must be named
//! `linear.weight` and `linear.bias`. Tensors may be stored as F32, F64, F16 or BF16
//! and are converted to `f32`; a NaN or infinite weight is rejected. A missing tensor,
//! a wrong shape, a duplicate (both spellings of one name) or a tensor the
//! configuration does not use (for example `weight_ih_l1` in a one-layer model) is a
//! typed error naming the tensor.
//!
//! # Two forward passes
//! Training and [`LstmNetwork::forward_batch`] run on candle tensors (autograd,
//! batched matrix products): per step two matrix products, then the bias and the
//! pointwise gate work as two fused custom operations with hand-written gradients
//! (`cell.rs`: `c` and `h`). That is why this module holds its own layer instead of
//! stacking candle-nn's `LSTM`, whose step slices the gates and applies each
//! activation as a separate tensor operation, each slice costing a zero-padded
//! full-width tensor in the backward pass.
//!
//! [`LstmNetwork::forward_window`] and [`LstmNetwork::forward_sliding`] serve
//! prediction. At batch size 1 the per-operation overhead of a tensor library
//! (allocation, shape checks, graph bookkeeping: ~1 µs each, ~10 per step and layer)
//! dominates the arithmetic, so that path is a plain `f32` loop over copies of the same
//! weights (transposed so that the inner loop is a contiguous, vectorisable
//! `out += a * row`; branch-free `exp`, sigmoid and tanh instead of libm calls), with an
//! AVX2/FMA build chosen at run time on x86-64. Many windows run through that same loop
//! in parallel (rayon) rather than as one candle batch: on this project's shared
//! two-core machine 256 windows took 20 to 65 ms as a candle batch (bench
//! `lstm_predict/candle_batch`: per step two small matrix products, each also
//! re-reading the CPU count from `/proc/cpuinfo` inside candle) and 5 to 9 ms through
//! the fused loop (`lstm_predict/batch`), which also reads overlapping windows in place
//! instead of copying them. Both passes compute the same equations; they differ only
//! by `f32` rounding (the tests bound the gap at 1e-5).

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::cell::{CellState, HiddenState};
use super::kernel::{FusedLstm, Scratch};
use crate::error::{Error, Result};

/// Maps a candle error into [`Error::Backend`] for `operation`.
pub(crate) fn backend(operation: &'static str) -> impl FnOnce(candle_core::Error) -> Error {
    move |err| Error::Backend {
        operation,
        message: err.to_string(),
    }
}

/// The four tensors of one LSTM layer, as candle variables (trainable).
#[derive(Debug, Clone)]
struct LayerVars {
    weight_ih: Var,
    weight_hh: Var,
    bias_ih: Var,
    bias_hh: Var,
}

/// The tensors one forward pass reads: the variables themselves while training (so that
/// gradients flow), detached copies for inference.
struct LayerTensors {
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Tensor,
    bias_hh: Tensor,
}

/// Training mode of a forward pass: the random source of the dropout masks and the
/// drop probability between layers.
pub(crate) struct Training<'a> {
    pub(crate) rng: &'a mut StdRng,
    pub(crate) dropout: f64,
}

/// A stacked LSTM with a linear head producing one number per input window; see the
/// [module docs](self) for the equations and tensor names.
///
/// ```
/// use quantcore::ml::lstm::LstmNetwork;
/// let net = LstmNetwork::new_seeded(3, 8, 1, 7)?;
/// let window = vec![0.1f32; 10 * 3]; // 10 time steps of 3 features
/// let one = net.forward_window(&window)?;
/// let batch = net.forward_batch(&[window.clone(), window].concat(), 2)?;
/// assert!((batch[0] - one).abs() < 1e-5 && batch[0] == batch[1]);
/// # Ok::<(), quantcore::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct LstmNetwork {
    input_size: usize,
    hidden_size: usize,
    layers: Vec<LayerVars>,
    head_weight: Var,
    head_bias: Var,
    /// `f32` copies of the weights for [`LstmNetwork::forward_window`]; rebuilt by
    /// [`LstmNetwork::refresh_fused`] whenever the variables change.
    fused: FusedLstm,
}

/// The canonical (saved) names of a network's tensors with their shapes, in a fixed
/// order: layer by layer `weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`, then the head.
pub fn tensor_names(
    input_size: usize,
    hidden_size: usize,
    num_layers: usize,
) -> Vec<(String, Vec<usize>)> {
    let gates = 4 * hidden_size;
    let mut names = Vec::with_capacity(4 * num_layers + 2);
    for k in 0..num_layers {
        let layer_input = if k == 0 { input_size } else { hidden_size };
        names.push((format!("lstm.weight_ih_l{k}"), vec![gates, layer_input]));
        names.push((format!("lstm.weight_hh_l{k}"), vec![gates, hidden_size]));
        names.push((format!("lstm.bias_ih_l{k}"), vec![gates]));
        names.push((format!("lstm.bias_hh_l{k}"), vec![gates]));
    }
    names.push(("linear.weight".to_string(), vec![1, hidden_size]));
    names.push(("linear.bias".to_string(), vec![1]));
    names
}

fn check_sizes(input_size: usize, hidden_size: usize, num_layers: usize) -> Result<()> {
    for (name, value) in [
        ("input_size", input_size),
        ("hidden_size", hidden_size),
        ("num_layers", num_layers),
    ] {
        if value == 0 {
            return Err(Error::invalid_parameter(name, 0, "must be at least 1"));
        }
    }
    Ok(())
}

impl LstmNetwork {
    /// A network with PyTorch's default initialisation drawn from a seeded generator:
    /// every LSTM weight and bias uniform in `±1/sqrt(H)`, the head's weight and bias
    /// uniform in `±1/sqrt(H)` (`nn.Linear`'s bound for `H` inputs). The same seed
    /// gives bit-identical weights.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] when a size is 0.
    pub fn new_seeded(
        input_size: usize,
        hidden_size: usize,
        num_layers: usize,
        seed: u64,
    ) -> Result<Self> {
        check_sizes(input_size, hidden_size, num_layers)?;
        let mut rng = StdRng::seed_from_u64(seed);
        let bound = 1.0 / (hidden_size as f32).sqrt();
        let tensors = tensor_names(input_size, hidden_size, num_layers)
            .into_iter()
            .map(|(name, shape)| {
                let count = shape.iter().product();
                let values: Vec<f32> = (0..count).map(|_| rng.gen_range(-bound..bound)).collect();
                let tensor = Tensor::from_vec(values, shape, &Device::Cpu)
                    .map_err(backend("initialising weights"))?;
                Ok((name, tensor))
            })
            .collect::<Result<HashMap<_, _>>>()?;
        Self::from_named(input_size, hidden_size, num_layers, tensors)
    }

    /// Builds the network from tensors under their canonical names (already checked).
    fn from_named(
        input_size: usize,
        hidden_size: usize,
        num_layers: usize,
        mut tensors: HashMap<String, Tensor>,
    ) -> Result<Self> {
        let mut take = |name: String| -> Result<Var> {
            let tensor = tensors.remove(&name).ok_or_else(|| Error::MissingTensor {
                path: "<memory>".to_string(),
                name: name.clone(),
            })?;
            Var::from_tensor(&tensor).map_err(backend("creating variables"))
        };
        let layers = (0..num_layers)
            .map(|k| {
                Ok(LayerVars {
                    weight_ih: take(format!("lstm.weight_ih_l{k}"))?,
                    weight_hh: take(format!("lstm.weight_hh_l{k}"))?,
                    bias_ih: take(format!("lstm.bias_ih_l{k}"))?,
                    bias_hh: take(format!("lstm.bias_hh_l{k}"))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let head_weight = take("linear.weight".to_string())?;
        let head_bias = take("linear.bias".to_string())?;
        let mut network = LstmNetwork {
            input_size,
            hidden_size,
            layers,
            head_weight,
            head_bias,
            fused: FusedLstm::default(),
        };
        network.refresh_fused()?;
        Ok(network)
    }

    /// Loads a network from a safetensors file with PyTorch's tensor names (see the
    /// [module docs](self) for the accepted names and dtypes).
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read; [`Error::ModelFormat`] when it is not
    /// safetensors or holds a non-float tensor; [`Error::MissingTensor`],
    /// [`Error::TensorShape`], [`Error::UnexpectedTensor`] naming the tensor;
    /// [`Error::InvalidParameter`] when a size is 0.
    pub fn load_safetensors(
        path: impl AsRef<Path>,
        input_size: usize,
        hidden_size: usize,
        num_layers: usize,
    ) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|err| Error::Io {
            path: path.display().to_string(),
            message: err.to_string(),
        })?;
        Self::from_safetensors_bytes(
            &bytes,
            &path.display().to_string(),
            input_size,
            hidden_size,
            num_layers,
        )
    }

    /// As [`LstmNetwork::load_safetensors`] from the bytes of a file; `origin` names the
    /// source in errors.
    ///
    /// # Errors
    /// As [`LstmNetwork::load_safetensors`], without [`Error::Io`].
    pub fn from_safetensors_bytes(
        bytes: &[u8],
        origin: &str,
        input_size: usize,
        hidden_size: usize,
        num_layers: usize,
    ) -> Result<Self> {
        check_sizes(input_size, hidden_size, num_layers)?;
        let format_error = |message: String| Error::ModelFormat {
            path: origin.to_string(),
            message,
        };
        let mut stored = candle_core::safetensors::load_buffer(bytes, &Device::Cpu)
            .map_err(|err| format_error(format!("not a readable safetensors file: {err}")))?;
        let mut named = HashMap::new();
        for (name, shape) in tensor_names(input_size, hidden_size, num_layers) {
            let bare = name.strip_prefix("lstm.").map(str::to_string);
            let tensor = match (stored.remove(&name), bare.and_then(|b| stored.remove(&b))) {
                (Some(_), Some(_)) => {
                    return Err(Error::UnexpectedTensor {
                        path: origin.to_string(),
                        name: name.trim_start_matches("lstm.").to_string(),
                    });
                }
                (Some(tensor), None) | (None, Some(tensor)) => tensor,
                (None, None) => {
                    return Err(Error::MissingTensor {
                        path: origin.to_string(),
                        name,
                    });
                }
            };
            if tensor.dims() != shape.as_slice() {
                return Err(Error::TensorShape {
                    path: origin.to_string(),
                    name,
                    expected: shape,
                    actual: tensor.dims().to_vec(),
                });
            }
            if !tensor.dtype().is_float() {
                return Err(format_error(format!(
                    "tensor `{name}` has dtype {:?}, expected a float type",
                    tensor.dtype()
                )));
            }
            let tensor = tensor
                .to_dtype(DType::F32)
                .map_err(backend("converting weights to f32"))?;
            let values = tensor
                .flatten_all()
                .and_then(|t| t.to_vec1::<f32>())
                .map_err(backend("reading weights"))?;
            if let Some(bad) = values.iter().find(|v| !v.is_finite()) {
                return Err(format_error(format!(
                    "tensor `{name}` holds a non-finite value ({bad})"
                )));
            }
            named.insert(name, tensor);
        }
        if let Some(extra) = stored.keys().min() {
            return Err(Error::UnexpectedTensor {
                path: origin.to_string(),
                name: extra.clone(),
            });
        }
        Self::from_named(input_size, hidden_size, num_layers, named)
    }

    /// Writes the weights as safetensors under their canonical PyTorch names, `f32`.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be written.
    pub fn save_safetensors(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let tensors: HashMap<String, Tensor> = self.named_tensors().into_iter().collect();
        candle_core::safetensors::save(&tensors, path).map_err(|err| Error::Io {
            path: path.display().to_string(),
            message: err.to_string(),
        })
    }

    /// The weights under their canonical names, in [`tensor_names`] order (detached).
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        tensor_names(self.input_size, self.hidden_size, self.num_layers())
            .into_iter()
            .zip(self.vars())
            .map(|((name, _), var)| (name, var.as_detached_tensor()))
            .collect()
    }

    /// Number of input features per time step.
    pub fn input_size(&self) -> usize {
        self.input_size
    }

    /// Width of the hidden state.
    pub fn hidden_size(&self) -> usize {
        self.hidden_size
    }

    /// Number of stacked layers.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// The trainable variables in [`tensor_names`] order.
    pub(crate) fn vars(&self) -> Vec<Var> {
        let mut vars = Vec::with_capacity(4 * self.layers.len() + 2);
        for layer in &self.layers {
            vars.extend([
                layer.weight_ih.clone(),
                layer.weight_hh.clone(),
                layer.bias_ih.clone(),
                layer.bias_hh.clone(),
            ]);
        }
        vars.push(self.head_weight.clone());
        vars.push(self.head_bias.clone());
        vars
    }

    /// Copies of the current weights (for early stopping).
    pub(crate) fn snapshot(&self) -> Result<Vec<Tensor>> {
        self.vars()
            .iter()
            .map(|v| v.as_tensor().copy())
            .collect::<candle_core::Result<Vec<_>>>()
            .map_err(backend("copying weights"))
    }

    /// Sets the weights back to a [`LstmNetwork::snapshot`].
    pub(crate) fn restore(&mut self, snapshot: &[Tensor]) -> Result<()> {
        for (var, saved) in self.vars().iter().zip(snapshot) {
            var.set(saved).map_err(backend("restoring weights"))?;
        }
        self.refresh_fused()
    }

    /// Rebuilds the `f32` copies behind [`LstmNetwork::forward_window`]; called after
    /// every change of the variables (training steps change them in place).
    pub(crate) fn refresh_fused(&mut self) -> Result<()> {
        let read = |var: &Var| -> Result<(Vec<f32>, Vec<usize>)> {
            let tensor = var.as_tensor();
            let values = tensor
                .flatten_all()
                .and_then(|t| t.to_vec1::<f32>())
                .map_err(backend("reading weights"))?;
            Ok((values, tensor.dims().to_vec()))
        };
        let mut fused = FusedLstm::new(self.hidden_size);
        for layer in &self.layers {
            let (w_ih, dims_ih) = read(&layer.weight_ih)?;
            let (w_hh, _) = read(&layer.weight_hh)?;
            let (b_ih, _) = read(&layer.bias_ih)?;
            let (b_hh, _) = read(&layer.bias_hh)?;
            fused.push_layer(dims_ih[1], &w_ih, &w_hh, &b_ih, &b_hh);
        }
        let (head_weight, _) = read(&self.head_weight)?;
        let (head_bias, _) = read(&self.head_bias)?;
        fused.set_head(&head_weight, head_bias[0]);
        self.fused = fused;
        Ok(())
    }

    fn layer_tensors(&self, detached: bool) -> Vec<LayerTensors> {
        let get = |var: &Var| {
            if detached {
                var.as_detached_tensor()
            } else {
                var.as_tensor().clone()
            }
        };
        self.layers
            .iter()
            .map(|layer| LayerTensors {
                weight_ih: get(&layer.weight_ih),
                weight_hh: get(&layer.weight_hh),
                bias_ih: get(&layer.bias_ih),
                bias_hh: get(&layer.bias_hh),
            })
            .collect()
    }

    /// The candle forward pass: `inputs` is `(batch, time, input_size)`, the result
    /// `(batch)`. In training mode the graph tracks gradients into the variables and
    /// dropout applies; otherwise it reads detached weights (no graph kept).
    pub(crate) fn forward_tensor(
        &self,
        inputs: &Tensor,
        mut training: Option<Training<'_>>,
    ) -> candle_core::Result<Tensor> {
        let layers = self.layer_tensors(training.is_none());
        let (head_weight, head_bias) = if training.is_some() {
            (
                self.head_weight.as_tensor().clone(),
                self.head_bias.as_tensor().clone(),
            )
        } else {
            (
                self.head_weight.as_detached_tensor(),
                self.head_bias.as_detached_tensor(),
            )
        };
        let hidden = self.hidden_size;
        let (batch, steps, _) = inputs.dims3()?;
        // Time-major, one contiguous (batch, width) tensor per step. The inputs carry no
        // gradient, so these views cost nothing in the backward pass; later layers read
        // the previous layer's step outputs directly, never a slice of a stacked tensor
        // (whose backward would build a zero-padded copy per step).
        let time_major = inputs.transpose(0, 1)?.contiguous()?;
        let mut sequence = (0..steps)
            .map(|t| time_major.get(t))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let mut last_h = None;
        for (k, layer) in layers.iter().enumerate() {
            let is_last = k + 1 == layers.len();
            let bias = (&layer.bias_ih + &layer.bias_hh)?;
            let w_ih_t = layer.weight_ih.t()?;
            let w_hh_t = layer.weight_hh.t()?;
            let mut h: Option<Tensor> = None;
            let mut c = Tensor::zeros((batch, hidden), DType::F32, inputs.device())?;
            let mut outputs = Vec::with_capacity(if is_last { 0 } else { steps });
            for x in &sequence {
                // The bias is added inside the fused operations.
                let mut gates = x.matmul(&w_ih_t)?;
                if let Some(h) = &h {
                    gates = (gates + h.matmul(&w_hh_t)?)?;
                }
                c = gates.apply_op3(&c, &bias, CellState { hidden })?;
                let next = gates.apply_op3(&c, &bias, HiddenState { hidden })?;
                if !is_last {
                    outputs.push(match training.as_mut() {
                        Some(Training { rng, dropout }) if *dropout > 0.0 => {
                            let keep = 1.0 - *dropout;
                            let scale = (1.0 / keep) as f32;
                            let mask: Vec<f32> = (0..batch * hidden)
                                .map(|_| {
                                    if rng.r#gen::<f64>() < keep {
                                        scale
                                    } else {
                                        0.0
                                    }
                                })
                                .collect();
                            let mask = Tensor::from_vec(mask, (batch, hidden), inputs.device())?;
                            (&next * mask)?
                        }
                        _ => next.clone(),
                    });
                }
                h = Some(next);
            }
            if is_last {
                last_h = h;
            } else {
                sequence = outputs;
            }
        }
        let last_h = last_h.expect("at least one layer and one step (checked by callers)");
        last_h
            .matmul(&head_weight.t()?)?
            .broadcast_add(&head_bias)?
            .squeeze(1)
    }

    /// Network outputs for `batch` windows stored back to back in `windows`
    /// (`batch x time x input_size`, batch-first like `nn.LSTM(batch_first=True)`),
    /// computed as one candle tensor batch.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] when `batch` is 0 or `windows.len()` is not a
    /// positive multiple of `batch * input_size`; [`Error::Backend`] if candle fails.
    pub fn forward_batch(&self, windows: &[f32], batch: usize) -> Result<Vec<f32>> {
        let row = batch * self.input_size;
        if batch == 0 || windows.is_empty() || !windows.len().is_multiple_of(row) {
            return Err(Error::invalid_parameter(
                "windows",
                windows.len(),
                "length must be a positive multiple of batch * input_size",
            ));
        }
        let steps = windows.len() / row;
        let inputs = Tensor::from_slice(windows, (batch, steps, self.input_size), &Device::Cpu)
            .map_err(backend("building the input batch"))?;
        self.forward_tensor(&inputs, None)
            .and_then(|out| out.to_vec1::<f32>())
            .map_err(backend("lstm forward"))
    }

    /// Network outputs for every window of `steps` consecutive rows of `rows`
    /// (`n_rows x input_size`, time-major): output `k` reads rows `k .. k + steps`. The
    /// overlapping windows are not copied; they run through the fused `f32` path (see
    /// the [module docs](self)) in parallel on rayon's pool, each window on its own, so
    /// the result does not depend on the number of threads and output `k` equals
    /// [`LstmNetwork::forward_window`] on that window bit for bit.
    ///
    /// ```
    /// use quantcore::ml::lstm::LstmNetwork;
    /// let net = LstmNetwork::new_seeded(2, 4, 1, 1)?;
    /// let rows: Vec<f32> = (0..10).map(|v| v as f32 * 0.1).collect(); // 5 rows of 2
    /// let outputs = net.forward_sliding(&rows, 3)?; // windows at rows 0, 1, 2
    /// assert_eq!(outputs.len(), 3);
    /// assert_eq!(outputs[1], net.forward_window(&rows[2..8])?);
    /// # Ok::<(), quantcore::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] when `steps` is 0 or `rows.len()` is not a multiple
    /// of `input_size`; [`Error::NotEnoughData`] when there are fewer than `steps` rows.
    pub fn forward_sliding(&self, rows: &[f32], steps: usize) -> Result<Vec<f32>> {
        use rayon::prelude::*;
        if steps == 0 {
            return Err(Error::invalid_parameter("steps", 0, "must be at least 1"));
        }
        if !rows.len().is_multiple_of(self.input_size) {
            return Err(Error::invalid_parameter(
                "rows",
                rows.len(),
                "length must be a multiple of input_size",
            ));
        }
        let n_rows = rows.len() / self.input_size;
        if n_rows < steps {
            return Err(Error::NotEnoughData {
                what: "one window (rows)",
                required: steps,
                actual: n_rows,
            });
        }
        let width = self.input_size;
        let span = steps * width;
        Ok((0..n_rows - steps + 1)
            .into_par_iter()
            .with_min_len(16)
            .map_init(
                || Scratch::new(self.hidden_size),
                |scratch, k| {
                    self.fused
                        .forward_with(scratch, &rows[k * width..k * width + span])
                },
            )
            .collect())
    }

    /// Network output for one window (`time x input_size` values, time-major), by the
    /// fused `f32` path (see the [module docs](self)).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] when `window.len()` is not a positive multiple of
    /// `input_size`.
    pub fn forward_window(&self, window: &[f32]) -> Result<f32> {
        if window.is_empty() || !window.len().is_multiple_of(self.input_size) {
            return Err(Error::invalid_parameter(
                "window",
                window.len(),
                "length must be a positive multiple of input_size",
            ));
        }
        Ok(self.fused.forward(window))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rand::Rng;

    /// One tensor to write: name, shape, row-major values.
    pub(crate) type NamedValues = (String, Vec<usize>, Vec<f64>);

    /// Writes a safetensors file by hand (8-byte little-endian header length, JSON
    /// header, raw little-endian data), independently of candle's writer, as
    /// `safetensors.torch.save_file` lays it out.
    pub(crate) fn write_safetensors(path: &Path, tensors: &[NamedValues], dtype: &str) {
        let size = match dtype {
            "F32" => 4,
            "F64" => 8,
            "I64" => 8,
            _ => panic!("unsupported test dtype {dtype}"),
        };
        let mut header = Vec::new();
        let mut data: Vec<u8> = Vec::new();
        for (name, shape, values) in tensors {
            let start = data.len();
            for &v in values {
                match dtype {
                    "F32" => data.extend_from_slice(&(v as f32).to_le_bytes()),
                    "F64" => data.extend_from_slice(&v.to_le_bytes()),
                    _ => data.extend_from_slice(&(v as i64).to_le_bytes()),
                }
            }
            assert_eq!(data.len() - start, values.len() * size);
            header.push(format!(
                r#""{name}":{{"dtype":"{dtype}","shape":{shape:?},"data_offsets":[{start},{}]}}"#,
                data.len()
            ));
        }
        let mut header = format!("{{{}}}", header.join(","));
        while header.len() % 8 != 0 {
            header.push(' ');
        }
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(&data);
        std::fs::write(path, bytes).unwrap();
    }

    /// Random weights under PyTorch's names; `bare` drops the `lstm.` prefix.
    pub(crate) fn random_state_dict(
        input_size: usize,
        hidden: usize,
        layers: usize,
        seed: u64,
        bare: bool,
    ) -> Vec<NamedValues> {
        let mut rng = StdRng::seed_from_u64(seed);
        tensor_names(input_size, hidden, layers)
            .into_iter()
            .map(|(name, shape)| {
                let count = shape.iter().product();
                // Round through f32 so that the oracle sees the stored values.
                let values = (0..count)
                    .map(|_| f64::from(rng.gen_range(-0.6f32..0.6)))
                    .collect();
                let name = if bare {
                    name.trim_start_matches("lstm.").to_string()
                } else {
                    name
                };
                (name, shape, values)
            })
            .collect()
    }

    /// The oracle: PyTorch's `nn.LSTM` + `nn.Linear` equations in plain `f64` loops,
    /// gates in the order i, f, g, o, state starting at zero.
    pub(crate) fn oracle(
        dict: &[NamedValues],
        window: &[f64],
        input_size: usize,
        hidden: usize,
        layers: usize,
    ) -> f64 {
        let get = |suffix: &str| -> &Vec<f64> {
            &dict
                .iter()
                .find(|(name, _, _)| name.trim_start_matches("lstm.") == suffix)
                .unwrap_or_else(|| panic!("no {suffix}"))
                .2
        };
        let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
        let steps = window.len() / input_size;
        let mut sequence: Vec<Vec<f64>> = window.chunks(input_size).map(<[f64]>::to_vec).collect();
        let mut h = vec![0.0; hidden];
        for k in 0..layers {
            let w_ih = get(&format!("weight_ih_l{k}"));
            let w_hh = get(&format!("weight_hh_l{k}"));
            let b_ih = get(&format!("bias_ih_l{k}"));
            let b_hh = get(&format!("bias_hh_l{k}"));
            let width = sequence[0].len();
            h = vec![0.0; hidden];
            let mut c = vec![0.0; hidden];
            let mut outputs = Vec::with_capacity(steps);
            for x in &sequence {
                let mut gates = vec![0.0; 4 * hidden];
                for (r, gate) in gates.iter_mut().enumerate() {
                    let mut sum = b_ih[r] + b_hh[r];
                    for j in 0..width {
                        sum += w_ih[r * width + j] * x[j];
                    }
                    for j in 0..hidden {
                        sum += w_hh[r * hidden + j] * h[j];
                    }
                    *gate = sum;
                }
                for j in 0..hidden {
                    let i = sigmoid(gates[j]);
                    let f = sigmoid(gates[hidden + j]);
                    let g = gates[2 * hidden + j].tanh();
                    let o = sigmoid(gates[3 * hidden + j]);
                    c[j] = f * c[j] + i * g;
                    h[j] = o * c[j].tanh();
                }
                outputs.push(h.clone());
            }
            sequence = outputs;
        }
        let w = get("linear.weight");
        let b = get("linear.bias");
        b[0] + (0..hidden).map(|j| w[j] * h[j]).sum::<f64>()
    }

    pub(crate) fn temp_dir(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "quantcore-lstm-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn random_windows(count: usize, steps: usize, input_size: usize, seed: u64) -> Vec<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..count * steps * input_size)
            .map(|_| f64::from(rng.gen_range(-2.0f32..2.0)))
            .collect()
    }

    #[test]
    fn pytorch_state_dict_gives_the_oracle_outputs() {
        // (input, hidden, layers, steps, bare names, dtype)
        let cases = [
            (5, 8, 1, 12, false, "F32"),
            (3, 6, 2, 7, true, "F64"),
            (5, 64, 1, 30, false, "F32"),
        ];
        let dir = temp_dir("torch");
        for (case, &(input, hidden, layers, steps, bare, dtype)) in cases.iter().enumerate() {
            let dict = random_state_dict(input, hidden, layers, 100 + case as u64, bare);
            let path = dir.join(format!("case{case}.safetensors"));
            write_safetensors(&path, &dict, dtype);
            let net = LstmNetwork::load_safetensors(&path, input, hidden, layers).unwrap();
            let batch = 4;
            let windows = random_windows(batch, steps, input, 7 + case as u64);
            let windows_f32: Vec<f32> = windows.iter().map(|&v| v as f32).collect();
            let batched = net.forward_batch(&windows_f32, batch).unwrap();
            let mut worst: f64 = 0.0;
            for (b, &candle) in batched.iter().enumerate() {
                let range = b * steps * input..(b + 1) * steps * input;
                let expected = oracle(&dict, &windows[range.clone()], input, hidden, layers);
                let fused = f64::from(net.forward_window(&windows_f32[range]).unwrap());
                let candle = f64::from(candle);
                worst = worst
                    .max((fused - expected).abs())
                    .max((candle - expected).abs());
            }
            println!("case {case}: worst |network - oracle| = {worst:.2e}");
            assert!(worst < 1e-5, "case {case}: {worst}");
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn gradients_match_finite_differences_of_the_oracle() {
        // Two layers so that gradients flow through both fused operations, across
        // steps and across layers; the loss is the batch mean squared error.
        let (input, hidden, layers, steps, batch) = (3, 4, 2, 5, 3);
        let dict = random_state_dict(input, hidden, layers, 31, false);
        let tensors = dict
            .iter()
            .map(|(name, shape, values)| {
                let values: Vec<f32> = values.iter().map(|&v| v as f32).collect();
                let t = Tensor::from_vec(values, shape.as_slice(), &Device::Cpu).unwrap();
                (name.clone(), t)
            })
            .collect();
        let net = LstmNetwork::from_named(input, hidden, layers, tensors).unwrap();
        let windows = random_windows(batch, steps, input, 4);
        let targets = [0.3, -0.2, 0.1];
        let loss_of = |dict: &[NamedValues]| -> f64 {
            (0..batch)
                .map(|b| {
                    let w = &windows[b * steps * input..(b + 1) * steps * input];
                    (oracle(dict, w, input, hidden, layers) - targets[b]).powi(2)
                })
                .sum::<f64>()
                / batch as f64
        };

        let x: Vec<f32> = windows.iter().map(|&v| v as f32).collect();
        let x = Tensor::from_vec(x, (batch, steps, input), &Device::Cpu).unwrap();
        let y: Vec<f32> = targets.iter().map(|&v| v as f32).collect();
        let y = Tensor::from_vec(y, batch, &Device::Cpu).unwrap();
        let mut rng = StdRng::seed_from_u64(0);
        let training = Training {
            rng: &mut rng,
            dropout: 0.0,
        };
        let out = net.forward_tensor(&x, Some(training)).unwrap();
        let loss = candle_nn::loss::mse(&out, &y).unwrap();
        let grads = loss.backward().unwrap();

        let eps = 1e-5;
        let mut checked = 0;
        for (t, var) in net.vars().iter().enumerate() {
            let grad = grads
                .get(var)
                .unwrap_or_else(|| panic!("no gradient for {}", dict[t].0));
            let grad = grad.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            for (e, &g) in grad.iter().enumerate() {
                let mut plus = dict.clone();
                plus[t].2[e] += eps;
                let mut minus = dict.clone();
                minus[t].2[e] -= eps;
                let numeric = (loss_of(&plus) - loss_of(&minus)) / (2.0 * eps);
                let error = (f64::from(g) - numeric).abs();
                assert!(
                    error < 1e-4 + 1e-3 * numeric.abs(),
                    "{}[{e}]: candle {g}, finite difference {numeric}",
                    dict[t].0
                );
                checked += 1;
            }
        }
        // 16x3 + 16x4 + 16 + 16, 16x4 + 16x4 + 16 + 16, 4 + 1
        assert_eq!(checked, 144 + 160 + 5);
    }

    #[test]
    fn sliding_windows_match_single_windows_and_candle() {
        let (input, hidden, steps, rows) = (4, 10, 6, 40);
        let net = LstmNetwork::new_seeded(input, hidden, 2, 5).unwrap();
        let data: Vec<f32> = random_windows(1, rows, input, 3)
            .into_iter()
            .map(|v| v as f32)
            .collect();
        let sliding = net.forward_sliding(&data, steps).unwrap();
        assert_eq!(sliding.len(), rows - steps + 1);
        let mut copied = Vec::new();
        for k in 0..sliding.len() {
            let window = &data[k * input..(k + steps) * input];
            assert_eq!(sliding[k], net.forward_window(window).unwrap());
            copied.extend_from_slice(window);
        }
        let batched = net.forward_batch(&copied, sliding.len()).unwrap();
        for (a, b) in sliding.iter().zip(&batched) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        assert!(net.forward_sliding(&data, 0).is_err());
        assert!(net.forward_sliding(&data[..7], 1).is_err());
        assert!(matches!(
            net.forward_sliding(&data[..8], 3).unwrap_err(),
            Error::NotEnoughData {
                required: 3,
                actual: 2,
                ..
            }
        ));
    }

    #[test]
    fn saved_names_are_pytorch_names_and_round_trip() {
        let net = LstmNetwork::new_seeded(4, 5, 2, 3).unwrap();
        let dir = temp_dir("names");
        let path = dir.join("w.safetensors");
        net.save_safetensors(&path).unwrap();
        let stored = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
        let mut names: Vec<&str> = stored.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            vec![
                "linear.bias",
                "linear.weight",
                "lstm.bias_hh_l0",
                "lstm.bias_hh_l1",
                "lstm.bias_ih_l0",
                "lstm.bias_ih_l1",
                "lstm.weight_hh_l0",
                "lstm.weight_hh_l1",
                "lstm.weight_ih_l0",
                "lstm.weight_ih_l1",
            ]
        );
        assert_eq!(stored["lstm.weight_ih_l0"].dims(), &[20, 4]);
        assert_eq!(stored["lstm.weight_ih_l1"].dims(), &[20, 5]);
        let loaded = LstmNetwork::load_safetensors(&path, 4, 5, 2).unwrap();
        let window = vec![0.3f32; 6 * 4];
        assert_eq!(
            loaded.forward_window(&window).unwrap(),
            net.forward_window(&window).unwrap()
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn seeded_init_is_reproducible_and_bounded() {
        let a = LstmNetwork::new_seeded(5, 16, 1, 9).unwrap();
        let b = LstmNetwork::new_seeded(5, 16, 1, 9).unwrap();
        let c = LstmNetwork::new_seeded(5, 16, 1, 10).unwrap();
        let values = |n: &LstmNetwork| -> Vec<f32> {
            n.named_tensors()
                .into_iter()
                .flat_map(|(_, t)| t.flatten_all().unwrap().to_vec1::<f32>().unwrap())
                .collect()
        };
        assert_eq!(values(&a), values(&b));
        assert_ne!(values(&a), values(&c));
        assert!(values(&a).iter().all(|v| v.abs() <= 0.25)); // 1/sqrt(16)
    }

    #[test]
    fn bad_files_are_typed_errors() {
        let dir = temp_dir("bad");
        let path = dir.join("w.safetensors");
        let load = |dict: &[NamedValues], dtype: &str| {
            write_safetensors(&path, dict, dtype);
            LstmNetwork::load_safetensors(&path, 3, 4, 1).unwrap_err()
        };
        let good = random_state_dict(3, 4, 1, 1, false);

        let missing: Vec<_> = good
            .iter()
            .filter(|t| t.0 != "linear.bias")
            .cloned()
            .collect();
        assert!(matches!(load(&missing, "F32"),
            Error::MissingTensor { name, .. } if name == "linear.bias"));

        let mut misshaped = good.clone();
        misshaped[1] = ("lstm.weight_hh_l0".into(), vec![16, 5], vec![0.0; 80]);
        match load(&misshaped, "F32") {
            Error::TensorShape {
                name,
                expected,
                actual,
                ..
            } => {
                assert_eq!(name, "lstm.weight_hh_l0");
                assert_eq!((expected, actual), (vec![16, 4], vec![16, 5]));
            }
            other => panic!("{other}"),
        }

        let mut extra = good.clone();
        extra.push(("weight_ih_l1".into(), vec![16, 4], vec![0.0; 64]));
        assert!(matches!(load(&extra, "F32"),
            Error::UnexpectedTensor { name, .. } if name == "weight_ih_l1"));

        let mut both = good.clone();
        both.push(("bias_ih_l0".into(), vec![16], vec![0.0; 16]));
        assert!(matches!(load(&both, "F32"),
            Error::UnexpectedTensor { name, .. } if name == "bias_ih_l0"));

        assert!(matches!(load(&good, "I64"), Error::ModelFormat { .. }));

        let mut not_finite = good.clone();
        not_finite[2].2[3] = f64::NAN;
        assert!(matches!(load(&not_finite, "F32"),
            Error::ModelFormat { message, .. } if message.contains("bias_ih_l0")));

        std::fs::write(&path, b"not a safetensors file").unwrap();
        let err = LstmNetwork::load_safetensors(&path, 3, 4, 1).unwrap_err();
        assert!(matches!(err, Error::ModelFormat { .. }), "{err}");

        let err = LstmNetwork::load_safetensors(dir.join("absent"), 3, 4, 1).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn bad_shapes_of_inputs_are_rejected() {
        let net = LstmNetwork::new_seeded(3, 4, 1, 0).unwrap();
        assert!(net.forward_window(&[]).is_err());
        assert!(net.forward_window(&[0.0; 7]).is_err());
        assert!(net.forward_batch(&[0.0; 12], 0).is_err());
        assert!(net.forward_batch(&[0.0; 12], 5).is_err());
        assert!(LstmNetwork::new_seeded(0, 4, 1, 0).is_err());
        assert!(LstmNetwork::new_seeded(3, 4, 0, 0).is_err());
    }

    #[test]
    fn network_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<LstmNetwork>();
    }
}
