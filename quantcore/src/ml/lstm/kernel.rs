//! The fused `f32` forward pass behind [`LstmNetwork::forward_window`](super::LstmNetwork::forward_window).
//!
//! Same equations as the candle pass (see [`network`](super::network)), on plain
//! slices: per step, the gate pre-activations start from the summed biases and
//! accumulate `x_t[k] * W_ih^T[k, ..]` and `h[k] * W_hh^T[k, ..]` row by row. The
//! weights are stored transposed (`in x 4H`) so the inner loop runs over contiguous
//! memory without a horizontal reduction, four rows at a time to save stores; the
//! compiler vectorises it. On x86-64 an AVX2/FMA build of the same code is selected at
//! run time when the CPU has those features.

/// One layer's weights, transposed for the row-accumulation loop.
#[derive(Debug, Clone, Default)]
struct FusedLayer {
    input_size: usize,
    /// `W_ih^T`, `input_size x 4H`, row-major.
    w_ih_t: Vec<f32>,
    /// `W_hh^T`, `H x 4H`, row-major.
    w_hh_t: Vec<f32>,
    /// `b_ih + b_hh`, `4H`.
    bias: Vec<f32>,
}

/// `f32` copies of a network's weights laid out for single-window inference.
#[derive(Debug, Clone, Default)]
pub(crate) struct FusedLstm {
    hidden: usize,
    layers: Vec<FusedLayer>,
    head_weight: Vec<f32>,
    head_bias: f32,
    /// The CPU supports AVX2 and FMA (x86-64 only).
    wide: bool,
}

/// Transposes a row-major `rows x cols` matrix.
fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

impl FusedLstm {
    /// An empty network of `hidden` units; add layers with [`FusedLstm::push_layer`] and
    /// the head with [`FusedLstm::set_head`].
    pub(crate) fn new(hidden: usize) -> Self {
        #[cfg(target_arch = "x86_64")]
        let wide = std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma");
        #[cfg(not(target_arch = "x86_64"))]
        let wide = false;
        FusedLstm {
            hidden,
            layers: Vec::new(),
            head_weight: Vec::new(),
            head_bias: 0.0,
            wide,
        }
    }

    /// Adds a layer from PyTorch-layout weights: `w_ih` is `4H x input_size`, `w_hh`
    /// is `4H x H`, both row-major.
    pub(crate) fn push_layer(
        &mut self,
        input_size: usize,
        w_ih: &[f32],
        w_hh: &[f32],
        b_ih: &[f32],
        b_hh: &[f32],
    ) {
        let gates = 4 * self.hidden;
        self.layers.push(FusedLayer {
            input_size,
            w_ih_t: transpose(w_ih, gates, input_size),
            w_hh_t: transpose(w_hh, gates, self.hidden),
            bias: b_ih.iter().zip(b_hh).map(|(a, b)| a + b).collect(),
        });
    }

    /// Sets the linear head (`H` weights and the bias).
    pub(crate) fn set_head(&mut self, weight: &[f32], bias: f32) {
        self.head_weight = weight.to_vec();
        self.head_bias = bias;
    }

    /// The network output for one time-major window; `window.len()` is a positive
    /// multiple of the input size (checked by the caller).
    pub(crate) fn forward(&self, window: &[f32]) -> f32 {
        #[cfg(target_arch = "x86_64")]
        if self.wide {
            // SAFETY: `wide` is true only when the running CPU reported AVX2 and FMA.
            return unsafe { forward_wide(self, window) };
        }
        forward_body(self, window)
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn forward_wide(net: &FusedLstm, window: &[f32]) -> f32 {
    forward_body(net, window)
}

#[inline(always)]
fn forward_body(net: &FusedLstm, window: &[f32]) -> f32 {
    let hidden = net.hidden;
    let mut gates = vec![0.0f32; 4 * hidden];
    let mut h = vec![0.0f32; hidden];
    let mut c = vec![0.0f32; hidden];
    // Outputs of the previous layer and of the current one, for stacked layers.
    let mut previous: Vec<f32> = Vec::new();
    let mut current: Vec<f32> = Vec::new();
    let n_layers = net.layers.len();
    for (k, layer) in net.layers.iter().enumerate() {
        let keep_outputs = k + 1 < n_layers;
        h.fill(0.0);
        c.fill(0.0);
        current.clear();
        let input: &[f32] = if k == 0 { window } else { &previous };
        for x in input.chunks_exact(layer.input_size) {
            step(layer, x, &mut h, &mut c, &mut gates);
            if keep_outputs {
                current.extend_from_slice(&h);
            }
        }
        std::mem::swap(&mut previous, &mut current);
    }
    let head: f32 = net.head_weight.iter().zip(&h).map(|(w, x)| w * x).sum();
    head + net.head_bias
}

/// One LSTM time step: updates `h` and `c` in place, `gates` is scratch space.
#[inline(always)]
fn step(layer: &FusedLayer, x: &[f32], h: &mut [f32], c: &mut [f32], gates: &mut [f32]) {
    let hidden = h.len();
    gates.copy_from_slice(&layer.bias);
    accumulate(x, &layer.w_ih_t, gates);
    accumulate(h, &layer.w_hh_t, gates);
    let (input_gate, rest) = gates.split_at(hidden);
    let (forget_gate, rest) = rest.split_at(hidden);
    let (cell_gate, output_gate) = rest.split_at(hidden);
    for (((((h, c), &i), &f), &g), &o) in h
        .iter_mut()
        .zip(c.iter_mut())
        .zip(input_gate)
        .zip(forget_gate)
        .zip(cell_gate)
        .zip(output_gate)
    {
        *c = sigmoid(f) * *c + sigmoid(i) * g.tanh();
        *h = sigmoid(o) * c.tanh();
    }
}

#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// `out += sum_k coefficients[k] * matrix[k, ..]` for a row-major `matrix` with
/// `out.len()` columns, four rows per pass over `out`.
#[inline(always)]
fn accumulate(coefficients: &[f32], matrix: &[f32], out: &mut [f32]) {
    let width = out.len();
    let blocks = coefficients.len() / 4;
    for (a, rows) in coefficients
        .chunks_exact(4)
        .zip(matrix.chunks_exact(4 * width))
    {
        let (r0, rest) = rows.split_at(width);
        let (r1, rest) = rest.split_at(width);
        let (r2, r3) = rest.split_at(width);
        for ((((o, &w0), &w1), &w2), &w3) in out.iter_mut().zip(r0).zip(r1).zip(r2).zip(r3) {
            *o += a[0] * w0 + a[1] * w1 + a[2] * w2 + a[3] * w3;
        }
    }
    let tail = &coefficients[4 * blocks..];
    for (&a, row) in tail.iter().zip(matrix[4 * blocks * width..].chunks_exact(width)) {
        for (o, &w) in out.iter_mut().zip(row) {
            *o += a * w;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accumulate_matches_a_naive_product() {
        // 6 rows (one block of 4 and a tail of 2) by 3 columns.
        let matrix: Vec<f32> = (0..18).map(|v| v as f32 * 0.5 - 3.0).collect();
        let coefficients = [1.0f32, -2.0, 0.5, 3.0, -1.0, 0.25];
        let mut out = vec![1.0f32; 3];
        accumulate(&coefficients, &matrix, &mut out);
        for (col, &got) in out.iter().enumerate() {
            let expected: f32 = 1.0
                + (0..6)
                    .map(|r| coefficients[r] * matrix[r * 3 + col])
                    .sum::<f32>();
            assert!((got - expected).abs() < 1e-5, "column {col}");
        }
    }

    #[test]
    fn transpose_moves_each_value() {
        let t = transpose(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2, 3);
        assert_eq!(t, vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    }
}
