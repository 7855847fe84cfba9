//! The pointwise part of an LSTM step as two candle custom operations with
//! hand-written gradients.
//!
//! With the gate pre-activations `a = x W_ih^T + h W_hh^T + b` (`batch x 4H`, in
//! blocks `[a_i | a_f | a_g | a_o]`, `b = b_ih + b_hh` added inside the operations)
//! and `i = sigmoid(a_i)`, `f = sigmoid(a_f)`, `g = tanh(a_g)`, `o = sigmoid(a_o)`:
//!
//! | op | forward | backward, from the output's gradient `d` |
//! |---|---|---|
//! | [`CellState`] `(xw, c_prev, b) -> c` | `c = f c_prev + i g` | `da_i = d g i (1 - i)`, `da_f = d c_prev f (1 - f)`, `da_g = d i (1 - g^2)`, `dc_prev = d f` |
//! | [`HiddenState`] `(xw, c, b) -> h` | `h = o tanh c` | `da_o = d tanh(c) o (1 - o)`, `dc = d o (1 - tanh^2 c)` |
//!
//! The gradient of `xw` is `da`, that of `b` is `da` summed over the batch. candle adds
//! the two operations' gradients and chains `dc` into the previous step.
//!
//! Written with candle's primitives, the same step takes about twenty tensor
//! operations (a bias broadcast, four gate slices, activations, products), and the
//! backward pass of each slice allocates and sums a zero-padded tensor of the full gate
//! width; as two fused operations the pointwise work is one pass over the data each
//! way. The activations are the kernel's branch-free `f32` ones, so training and
//! prediction use the same functions.

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor, bail};

use super::kernel::{sigmoid, tanh};

/// `c = sigmoid(a_f) * c_prev + sigmoid(a_i) * tanh(a_g)`, `a = xw + b`.
pub(crate) struct CellState {
    pub(crate) hidden: usize,
}

/// `h = sigmoid(a_o) * tanh(c)`, `a = xw + b`.
pub(crate) struct HiddenState {
    pub(crate) hidden: usize,
}

/// The `f32` values of a contiguous tensor argument.
fn contiguous_f32<'a>(storage: &'a CpuStorage, layout: &Layout) -> candle_core::Result<&'a [f32]> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&storage.as_slice::<f32>()?[start..end]),
        None => bail!("lstm cell: arguments must be contiguous"),
    }
}

fn values(tensor: &Tensor) -> candle_core::Result<Vec<f32>> {
    tensor.flatten_all()?.to_vec1::<f32>()
}

/// Checks the shapes `(batch, 4H)`, `(batch, H)`, `(4H)`; returns `batch`.
fn check_shapes(
    hidden: usize,
    gates: &Layout,
    state: &Layout,
    bias: &Layout,
) -> candle_core::Result<usize> {
    let (batch, width) = gates.shape().dims2()?;
    if width != 4 * hidden
        || state.shape().dims2()? != (batch, hidden)
        || bias.shape().dims1()? != 4 * hidden
    {
        bail!(
            "lstm cell: shapes {:?}, {:?}, {:?} do not fit hidden size {hidden}",
            gates.shape(),
            state.shape(),
            bias.shape()
        );
    }
    Ok(batch)
}

/// The four gate blocks `[i | f | g | o]` of one `4H` row, each exactly `h` long (so
/// that indexed loops over `0..h` need no bounds checks and vectorise).
#[inline(always)]
fn blocks(row: &[f32], h: usize) -> [&[f32]; 4] {
    let (i, rest) = row.split_at(h);
    let (f, rest) = rest.split_at(h);
    let (g, o) = rest.split_at(h);
    [i, f, g, &o[..h]]
}

/// As [`blocks`], mutable.
#[inline(always)]
fn blocks_mut(row: &mut [f32], h: usize) -> [&mut [f32]; 4] {
    let (i, rest) = row.split_at_mut(h);
    let (f, rest) = rest.split_at_mut(h);
    let (g, o) = rest.split_at_mut(h);
    [i, f, g, &mut o[..h]]
}

// The row functions take every slice as an argument and are kept out of line: `&mut`
// arguments are known not to alias, which lets the compiler vectorise the loops
// (inlined, with the slices split inside one function, it kept them scalar). Each starts by cutting its slices to one length
// so the indexing needs no bounds checks.

/// `out = sigmoid(a_f) * c_prev + sigmoid(a_i) * tanh(a_g)` for one batch row.
#[inline(never)]
fn cell_forward_row(xw: [&[f32]; 4], b: [&[f32]; 4], c_prev: &[f32], out: &mut [f32]) {
    let n = out.len();
    let (xi, xf, xg) = (&xw[0][..n], &xw[1][..n], &xw[2][..n]);
    let (bi, bf, bg) = (&b[0][..n], &b[1][..n], &b[2][..n]);
    let c_prev = &c_prev[..n];
    for j in 0..n {
        let i = sigmoid(xi[j] + bi[j]);
        let f = sigmoid(xf[j] + bf[j]);
        let g = tanh(xg[j] + bg[j]);
        out[j] = f * c_prev[j] + i * g;
    }
}

/// Gradients of [`cell_forward_row`] from the output's gradient `d`.
#[inline(never)]
fn cell_backward_row(
    xw: [&[f32]; 4],
    b: [&[f32]; 4],
    c_prev: &[f32],
    d: &[f32],
    da: [&mut [f32]; 3],
    dc_prev: &mut [f32],
) {
    let n = d.len();
    let (xi, xf, xg) = (&xw[0][..n], &xw[1][..n], &xw[2][..n]);
    let (bi, bf, bg) = (&b[0][..n], &b[1][..n], &b[2][..n]);
    let c_prev = &c_prev[..n];
    let [dai, daf, dag] = da;
    let (dai, daf, dag, dc_prev) = (
        &mut dai[..n],
        &mut daf[..n],
        &mut dag[..n],
        &mut dc_prev[..n],
    );
    for j in 0..n {
        let i = sigmoid(xi[j] + bi[j]);
        let f = sigmoid(xf[j] + bf[j]);
        let g = tanh(xg[j] + bg[j]);
        dai[j] = d[j] * g * i * (1.0 - i);
        daf[j] = d[j] * c_prev[j] * f * (1.0 - f);
        dag[j] = d[j] * i * (1.0 - g * g);
        dc_prev[j] = d[j] * f;
    }
}

/// `out = sigmoid(a_o) * tanh(c)` for one batch row.
#[inline(never)]
fn hidden_forward_row(xo: &[f32], bo: &[f32], c: &[f32], out: &mut [f32]) {
    let n = out.len();
    let (xo, bo, c) = (&xo[..n], &bo[..n], &c[..n]);
    for j in 0..n {
        out[j] = sigmoid(xo[j] + bo[j]) * tanh(c[j]);
    }
}

/// Gradients of [`hidden_forward_row`] from the output's gradient `d`.
#[inline(never)]
fn hidden_backward_row(
    xo: &[f32],
    bo: &[f32],
    c: &[f32],
    d: &[f32],
    dao: &mut [f32],
    dc: &mut [f32],
) {
    let n = d.len();
    let (xo, bo, c, dao, dc) = (&xo[..n], &bo[..n], &c[..n], &mut dao[..n], &mut dc[..n]);
    for j in 0..n {
        let o = sigmoid(xo[j] + bo[j]);
        let tc = tanh(c[j]);
        dao[j] = d[j] * tc * o * (1.0 - o);
        dc[j] = d[j] * o * (1.0 - tc * tc);
    }
}

/// Gradient of the bias: `d_gates` summed over the batch rows.
fn column_sums(d_gates: &[f32], width: usize) -> Vec<f32> {
    let mut sums = vec![0.0f32; width];
    for row in d_gates.chunks_exact(width) {
        for (s, v) in sums.iter_mut().zip(row) {
            *s += v;
        }
    }
    sums
}

impl CustomOp3 for CellState {
    fn name(&self) -> &'static str {
        "lstm-cell-state"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let h = self.hidden;
        let batch = check_shapes(h, l1, l2, l3)?;
        let (xw, c_prev, b) = (
            contiguous_f32(s1, l1)?,
            contiguous_f32(s2, l2)?,
            contiguous_f32(s3, l3)?,
        );
        let mut out = vec![0.0f32; batch * h];
        let bias = blocks(b, h);
        for ((out, xw), c_prev) in out
            .chunks_exact_mut(h)
            .zip(xw.chunks_exact(4 * h))
            .zip(c_prev.chunks_exact(h))
        {
            cell_forward_row(blocks(xw, h), bias, c_prev, out);
        }
        Ok((CpuStorage::F32(out), Shape::from((batch, h))))
    }

    fn bwd(
        &self,
        xw: &Tensor,
        c_prev: &Tensor,
        bias: &Tensor,
        _c: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let h = self.hidden;
        let (xw_v, c_prev_v, b, d) = (values(xw)?, values(c_prev)?, values(bias)?, values(grad)?);
        let mut d_gates = vec![0.0f32; xw_v.len()];
        let mut d_c_prev = vec![0.0f32; d.len()];
        let bias_blocks = blocks(&b, h);
        for (((da, xw), (dc_prev, c_prev)), d) in d_gates
            .chunks_exact_mut(4 * h)
            .zip(xw_v.chunks_exact(4 * h))
            .zip(d_c_prev.chunks_exact_mut(h).zip(c_prev_v.chunks_exact(h)))
            .zip(d.chunks_exact(h))
        {
            let [dai, daf, dag, _] = blocks_mut(da, h);
            cell_backward_row(
                blocks(xw, h),
                bias_blocks,
                c_prev,
                d,
                [dai, daf, dag],
                dc_prev,
            );
        }
        let d_bias = column_sums(&d_gates, 4 * h);
        Ok((
            Some(Tensor::from_vec(d_gates, xw.shape(), xw.device())?),
            Some(Tensor::from_vec(d_c_prev, c_prev.shape(), c_prev.device())?),
            Some(Tensor::from_vec(d_bias, bias.shape(), bias.device())?),
        ))
    }
}

impl CustomOp3 for HiddenState {
    fn name(&self) -> &'static str {
        "lstm-hidden-state"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let h = self.hidden;
        let batch = check_shapes(h, l1, l2, l3)?;
        let (xw, c, b) = (
            contiguous_f32(s1, l1)?,
            contiguous_f32(s2, l2)?,
            contiguous_f32(s3, l3)?,
        );
        let mut out = vec![0.0f32; batch * h];
        let [_, _, _, bo] = blocks(b, h);
        for ((out, xw), c) in out
            .chunks_exact_mut(h)
            .zip(xw.chunks_exact(4 * h))
            .zip(c.chunks_exact(h))
        {
            hidden_forward_row(blocks(xw, h)[3], bo, c, out);
        }
        Ok((CpuStorage::F32(out), Shape::from((batch, h))))
    }

    fn bwd(
        &self,
        xw: &Tensor,
        c: &Tensor,
        bias: &Tensor,
        _h: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let h = self.hidden;
        let (xw_v, c_v, b, d) = (values(xw)?, values(c)?, values(bias)?, values(grad)?);
        let [_, _, _, bo] = blocks(&b, h);
        let mut d_gates = vec![0.0f32; xw_v.len()];
        let mut d_c = vec![0.0f32; d.len()];
        for (((da, xw), (dc, c)), d) in d_gates
            .chunks_exact_mut(4 * h)
            .zip(xw_v.chunks_exact(4 * h))
            .zip(d_c.chunks_exact_mut(h).zip(c_v.chunks_exact(h)))
            .zip(d.chunks_exact(h))
        {
            let [_, _, _, dao] = blocks_mut(da, h);
            hidden_backward_row(blocks(xw, h)[3], bo, c, d, dao, dc);
        }
        let d_bias = column_sums(&d_gates, 4 * h);
        Ok((
            Some(Tensor::from_vec(d_gates, xw.shape(), xw.device())?),
            Some(Tensor::from_vec(d_c, c.shape(), c.device())?),
            Some(Tensor::from_vec(d_bias, bias.shape(), bias.device())?),
        ))
    }
}
