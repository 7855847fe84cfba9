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
        self.forward_with(&mut Scratch::new(self.hidden), window)
    }

    /// As [`FusedLstm::forward`], reusing `scratch` (from [`Scratch::new`] with this
    /// network's hidden size) across calls.
    pub(crate) fn forward_with(&self, scratch: &mut Scratch, window: &[f32]) -> f32 {
        #[cfg(target_arch = "x86_64")]
        if self.wide {
            // SAFETY: `wide` is true only when the running CPU reported AVX2 and FMA.
            return unsafe { forward_wide(self, scratch, window) };
        }
        forward_body(self, scratch, window)
    }
}

/// Working memory of one forward pass.
#[derive(Debug, Clone)]
pub(crate) struct Scratch {
    gates: Vec<f32>,
    h: Vec<f32>,
    c: Vec<f32>,
    /// Outputs of the previous layer and of the current one, for stacked layers.
    previous: Vec<f32>,
    current: Vec<f32>,
}

impl Scratch {
    pub(crate) fn new(hidden: usize) -> Self {
        Scratch {
            gates: vec![0.0; 4 * hidden],
            h: vec![0.0; hidden],
            c: vec![0.0; hidden],
            previous: Vec::new(),
            current: Vec::new(),
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn forward_wide(net: &FusedLstm, scratch: &mut Scratch, window: &[f32]) -> f32 {
    forward_body(net, scratch, window)
}

#[inline(always)]
fn forward_body(net: &FusedLstm, scratch: &mut Scratch, window: &[f32]) -> f32 {
    let Scratch {
        gates,
        h,
        c,
        previous,
        current,
    } = scratch;
    let n_layers = net.layers.len();
    for (k, layer) in net.layers.iter().enumerate() {
        let keep_outputs = k + 1 < n_layers;
        h.fill(0.0);
        c.fill(0.0);
        current.clear();
        let input: &[f32] = if k == 0 { window } else { previous };
        for x in input.chunks_exact(layer.input_size) {
            step(layer, x, h, c, gates);
            if keep_outputs {
                current.extend_from_slice(h);
            }
        }
        std::mem::swap(previous, current);
    }
    let head: f32 = net
        .head_weight
        .iter()
        .zip(h.iter())
        .map(|(w, x)| w * x)
        .sum();
    head + net.head_bias
}

/// One LSTM time step: updates `h` and `c` in place, `gates` is scratch space.
#[inline(always)]
fn step(layer: &FusedLayer, x: &[f32], h: &mut [f32], c: &mut [f32], gates: &mut [f32]) {
    let hidden = h.len();
    gates.copy_from_slice(&layer.bias);
    accumulate(x, &layer.w_ih_t, gates);
    accumulate(h, &layer.w_hh_t, gates);
    // Activations in place, each a separate branch-free loop over plain slices so the
    // compiler vectorises it (chained or six-way zipped iterators defeat it).
    let (input_forget, rest) = gates.split_at_mut(2 * hidden);
    let (cell_gate, output_gate) = rest.split_at_mut(hidden);
    for v in input_forget.iter_mut() {
        *v = sigmoid(*v);
    }
    for v in output_gate.iter_mut() {
        *v = sigmoid(*v);
    }
    for v in cell_gate.iter_mut() {
        *v = tanh(*v);
    }
    let (input_gate, forget_gate) = input_forget.split_at(hidden);
    for ((c, &i), (&f, &g)) in c
        .iter_mut()
        .zip(input_gate)
        .zip(forget_gate.iter().zip(cell_gate.iter()))
    {
        *c = f * *c + i * g;
    }
    // The cell-gate values are spent: reuse their slots for tanh(c).
    for (t, &c) in cell_gate.iter_mut().zip(c.iter()) {
        *t = tanh(c);
    }
    for ((h, &o), &t) in h.iter_mut().zip(output_gate.iter()).zip(cell_gate.iter()) {
        *h = o * t;
    }
}

/// `e^x` in `f32`: Cody–Waite reduction `x = k ln 2 + r`, `|r| <= ln 2 / 2`, Cephes'
/// degree-5 polynomial for `e^r` and `2^k` built in the exponent bits. Within a few
/// ulps of `expf` on `[-87.3, 88.3]`, clamped outside (where `expf` under- or overflows
/// anyway). Branch-free, unlike a call into libm, so loops over it vectorise; the
/// libm calls (about 10,000 per window) were most of the single-window time.
#[inline(always)]
fn exp(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 * 2^23: adding and subtracting it rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.3, 88.3);
    let shifted = x * LOG2_E + ROUND;
    let k = shifted - ROUND;
    let r = x - k * LN2_HI - k * LN2_LO;
    let p = 1.987_569_1e-4_f32;
    let p = p * r + 1.398_2e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let e_r = p * r * r + r + 1.0;
    // `shifted` is 1.5 * 2^23 + k exactly, so its bits are those of 1.5 * 2^23 plus k:
    // integer k without a float-to-int conversion (whose saturating checks stop the
    // loop from vectorising). k is in [-126, 127], so k + 127 is a normal exponent. A
    // NaN input stays NaN through `e_r`.
    let k_bits = shifted.to_bits().wrapping_sub(ROUND.to_bits());
    e_r * f32::from_bits(k_bits.wrapping_add(127) << 23)
}

#[inline(always)]
pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// `tanh x = 1 - 2 / (e^(2x) + 1)`: exact at both tails, absolute error ~1e-7 near 0.
#[inline(always)]
pub(crate) fn tanh(x: f32) -> f32 {
    1.0 - 2.0 / (exp(2.0 * x) + 1.0)
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
    for (&a, row) in tail
        .iter()
        .zip(matrix[4 * blocks * width..].chunks_exact(width))
    {
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
    fn activations_match_f64_references() {
        let mut worst_exp: f64 = 0.0;
        let mut worst_sigmoid: f64 = 0.0;
        let mut worst_tanh: f64 = 0.0;
        for i in 0..=400_000 {
            let x = -87.0 + 175.0 * f64::from(i) / 400_000.0;
            let xf = x as f32;
            let xd = f64::from(xf);
            let relative = (f64::from(exp(xf)) - xd.exp()).abs() / xd.exp();
            worst_exp = worst_exp.max(relative);
            let sig = 1.0 / (1.0 + (-xd).exp());
            worst_sigmoid = worst_sigmoid.max((f64::from(sigmoid(xf)) - sig).abs());
            worst_tanh = worst_tanh.max((f64::from(tanh(xf)) - xd.tanh()).abs());
        }
        assert!(worst_exp < 5e-7, "exp {worst_exp}");
        assert!(worst_sigmoid < 2e-7, "sigmoid {worst_sigmoid}");
        assert!(worst_tanh < 3e-7, "tanh {worst_tanh}");
        // Tails: saturate, never NaN or infinite.
        assert_eq!(sigmoid(-1e4), sigmoid(-1e4).max(0.0));
        assert!(sigmoid(-1e4) < 1e-37 && sigmoid(1e4) == 1.0);
        assert_eq!((tanh(-1e4), tanh(1e4)), (-1.0, 1.0));
        assert!(exp(1e4).is_finite() && exp(-1e4) > 0.0);
        assert!(exp(f32::NAN).is_nan() && sigmoid(f32::NAN).is_nan());
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-0.5 * std::f32::consts::LN_2 * 2.0), 0.5);
    }

    #[test]
    fn transpose_moves_each_value() {
        let t = transpose(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2, 3);
        assert_eq!(t, vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    }
}
