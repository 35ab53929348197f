//! The CPU recurrence: every time step of a SimpleRNN, LSTM or GRU layer,
//! forward and backward (backpropagation through time), over contiguous
//! time-major buffers allocated once per pass.
//!
//! The layout of PyTorch's CPU LSTM (`aten/src/ATen/native/RNN.cpp`): the
//! input's gate pre-activations of every step are one GEMM
//! (`[T·N, I] x [I, G·H]`, written straight into the tape, biases first);
//! each step adds `h W_hhᵀ` into its block of the tape with one GEMM
//! (`beta = 1`, no temporary) and applies the cell in place, keeping the
//! activated gates for the backward pass, which then needs no `exp` (only
//! the rational `fast_tanh` of the cell state). Backward, each step writes its gate gradients
//! into one `[T, N, G·H]` buffer; `dW_hh`, `dW_ih` and the input's gradient
//! are then one GEMM each over all steps. Inference keeps one step's
//! state and projects the input in one GEMM too, or step by step when the
//! batch is large (`PROJECT_ALL_MAX`).
//!
//! The cell's loops run over whole rows with the rational `fast_tanh` (and
//! σ(x) = (1 + tanh(x/2)) / 2), so they vectorise; libm's `expf` would not.

use ndarray::{ArrayView2, ArrayViewMut2};

use super::{fast_tanh, gemm_into};
use crate::backend::ops::Recurrence;

/// σ(x) through `fast_tanh`: (1 + tanh(x / 2)) / 2, branch-free and
/// vectorisable (within 1e-6 of `1 / (1 + e^-x)`, half `fast_tanh`'s error).
#[inline(always)]
fn sigmoid_fast(x: f32) -> f32 {
    0.5 + 0.5 * fast_tanh(0.5 * x)
}

/// What a recurrence's backward pass needs from its forward pass.
pub struct Tape {
    cell: Recurrence,
    steps: usize,
    n: usize,
    h: usize,
    /// `[T, N, G·H]`: the activated gates (LSTM: i, f, g, o; GRU: r, z, n).
    /// Unused by the SimpleRNN, whose output is its activation.
    gates: Vec<f32>,
    /// The GRU's `h W_hhᵀ + b_hh` `[T, N, 3H]` (r scales its n block).
    gh: Vec<f32>,
    /// The LSTM's cell states `[T, N, H]`.
    cs: Vec<f32>,
    /// Every hidden state `[T, N, H]` (a copy of the output).
    hs: Vec<f32>,
}

impl Tape {
    /// Whether it is a GRU's (whose `b_hh` has a gradient of its own).
    pub fn is_gru(&self) -> bool {
        self.cell == Recurrence::Gru
    }
}

/// A `[rows, cols]` view of `data`.
fn view(data: &[f32], rows: usize, cols: usize) -> ArrayView2<'_, f32> {
    ArrayView2::from_shape((rows, cols), data).expect("recurrence buffer sizes")
}

fn view_mut(data: &mut [f32], rows: usize, cols: usize) -> ArrayViewMut2<'_, f32> {
    ArrayViewMut2::from_shape((rows, cols), data).expect("recurrence buffer sizes")
}

/// The most gate pre-activations (`T·N·G·H`, 16 MB) that inference
/// projects in one GEMM; beyond, it projects step by step into one step's
/// buffer, as a batch of 1,000 row-LSTM sequences would allocate 57 MB.
pub const PROJECT_ALL_MAX: usize = 1 << 22;

/// Where a recurrence's input gate pre-activations come from.
pub enum Input<'a> {
    /// Computed outside, `[T, N, G·H]`.
    Projected(&'a [f32]),
    /// Projected here: `x` time-major `[T, N, I]`, `w_ih` `[G·H, I]`
    /// (PyTorch's `weight_ih_l0`, any strides), and the bias `[G·H]` added
    /// to every row (b_ih + b_hh, or the GRU's b_ih).
    Raw { x: &'a [f32], w_ih: ArrayView2<'a, f32>, bias: &'a [f32] },
}

impl Input<'_> {
    /// Writes the pre-activations of the `steps` steps from `t0` into `out`
    /// `[steps·N, G·H]`.
    fn fill(&self, t0: usize, steps: usize, n: usize, out: &mut [f32]) {
        match self {
            Input::Projected(xp) => out.copy_from_slice(&xp[t0 * out.len() / steps..][..out.len()]),
            Input::Raw { x, w_ih, bias } => {
                let features = w_ih.ncols();
                let x = &x[t0 * n * features..][..steps * n * features];
                super::fused::linear_into(x, steps * n, *w_ih, Some(bias), out);
            }
        }
    }
}

/// The forward pass: every hidden state `[T, N, H]` from h₀ = c₀ = 0, and
/// the tape for the backward pass when `keep`.
///
/// `input` gives the gate pre-activations of the input (see `Input`),
/// `w_hh` is `[G·H, H]` (PyTorch's `weight_hh_l0`, any strides), `b_hh`
/// `[G·H]` the GRU's (r scales its n block).
///
/// # Panics
/// When the sizes disagree (the autograd op checks them first).
pub fn forward(
    cell: Recurrence,
    input: &Input,
    steps: usize,
    n: usize,
    w_hh: ArrayView2<f32>,
    b_hh: Option<&[f32]>,
    keep: bool,
) -> (Vec<f32>, Option<Tape>) {
    let (gh_dim, h) = w_hh.dim();
    let block = n * gh_dim;
    if let Input::Projected(xp) = input {
        assert_eq!(xp.len(), steps * block, "recurrence: xp is [T, N, G*H]");
    }
    let w_t = w_hh.t();
    let zeros = vec![0.0f32; n * h];
    let mut hs = vec![0.0f32; steps * n * h];
    // Training keeps every step's gates (but the SimpleRNN's, which its
    // output holds). They are projected in one GEMM for every step, as is
    // inference's input while that buffer stays small; a large inference
    // batch projects step by step into one step's buffer.
    let keep_gates = keep && cell != Recurrence::Rnn;
    let all_steps = keep_gates || steps * block <= PROJECT_ALL_MAX;
    let mut gates = vec![0.0f32; if all_steps { steps * block } else { block }];
    if all_steps {
        input.fill(0, steps, n, &mut gates);
    }
    let mut gh =
        if cell == Recurrence::Gru { vec![0.0f32; if keep { steps * block } else { block }] } else { Vec::new() };
    let mut cs = if cell == Recurrence::Lstm { vec![0.0f32; if keep { steps } else { 2 } * n * h] } else { Vec::new() };
    for t in 0..steps {
        let slot = if all_steps { t } else { 0 };
        let g_t = &mut gates[slot * block..(slot + 1) * block];
        if !all_steps {
            input.fill(t, 1, n, g_t);
        }
        let (before, rest) = hs.split_at_mut(t * n * h);
        let h_t = &mut rest[..n * h];
        let h_prev = (t > 0).then(|| &before[(t - 1) * n * h..]);
        match cell {
            Recurrence::Rnn | Recurrence::Lstm => {
                if let Some(hp) = h_prev {
                    gemm_into(view(hp, n, h), w_t, 1.0, &mut view_mut(g_t, n, gh_dim));
                }
                if cell == Recurrence::Rnn {
                    for (o, &a) in h_t.iter_mut().zip(g_t.iter()) {
                        *o = fast_tanh(a);
                    }
                } else {
                    // Inference keeps two cell states and alternates.
                    let (c_prev, c_new) = if keep {
                        let (a, b) = cs.split_at_mut(t * n * h);
                        (if t > 0 { Some(&a[(t - 1) * n * h..]) } else { None }, &mut b[..n * h])
                    } else {
                        let (a, b) = cs.split_at_mut(n * h);
                        if t % 2 == 0 {
                            (if t > 0 { Some(&*b) } else { None }, a)
                        } else {
                            (Some(&*a), b)
                        }
                    };
                    lstm_rows(g_t, c_prev.unwrap_or(&zeros), c_new, h_t, h);
                }
            }
            Recurrence::Gru => {
                let gh_t = &mut gh[if keep { t * block } else { 0 }..][..block];
                let b = b_hh.expect("the GRU's b_hh");
                for row in gh_t.chunks_mut(gh_dim) {
                    row.copy_from_slice(b);
                }
                if let Some(hp) = h_prev {
                    gemm_into(view(hp, n, h), w_t, 1.0, &mut view_mut(gh_t, n, gh_dim));
                }
                gru_rows(g_t, gh_t, h_prev.unwrap_or(&zeros), h_t, h);
            }
        }
    }
    let tape = keep.then(|| Tape { cell, steps, n, h, gates, gh, cs, hs: hs.clone() });
    (hs, tape)
}

/// One LSTM step over rows of `h` units: activates the gates in place (i,
/// f, g, o) and writes c' = f c + i g and h = o tanh(c'). Zipped slices, no
/// indexing, so the loop vectorises.
fn lstm_rows(gates: &mut [f32], c_prev: &[f32], c_new: &mut [f32], h_out: &mut [f32], h: usize) {
    let rows = gates.chunks_exact_mut(4 * h).zip(c_prev.chunks_exact(h));
    for ((row, c_prev), (c_new, h_out)) in rows.zip(c_new.chunks_exact_mut(h).zip(h_out.chunks_exact_mut(h))) {
        let (i, rest) = row.split_at_mut(h);
        let (f, rest) = rest.split_at_mut(h);
        let (g, o) = rest.split_at_mut(h);
        lstm_lanes(i, f, g, o, c_prev, c_new, h_out);
    }
}

multiversion! {
/// `lstm_rows` on one row, each gate block its own argument: the compiler
/// then knows that no two overlap, and vectorises the loop (as one slice
/// split four ways, it ran the scalar loop).
fn lstm_lanes(
    i: &mut [f32],
    f: &mut [f32],
    g: &mut [f32],
    o: &mut [f32],
    c_prev: &[f32],
    c_new: &mut [f32],
    h_out: &mut [f32],
) {
    let gates = i.iter_mut().zip(f.iter_mut()).zip(g.iter_mut().zip(o.iter_mut()));
    for (((i, f), (g, o)), ((cp, cn), ho)) in gates.zip(c_prev.iter().zip(c_new.iter_mut()).zip(h_out.iter_mut())) {
        let (iv, fv, gv, ov) = (sigmoid_fast(*i), sigmoid_fast(*f), fast_tanh(*g), sigmoid_fast(*o));
        let c = fv * cp + iv * gv;
        (*i, *f, *g, *o) = (iv, fv, gv, ov);
        *cn = c;
        *ho = ov * fast_tanh(c);
    }
}
}

/// One GRU step over rows of `h` units: r = σ(x_r + gh_r), z = σ(x_z +
/// gh_z), n = tanh(x_n + r gh_n), h' = n + z (h - n). Keeps r, z, n in
/// `gates`.
fn gru_rows(gates: &mut [f32], gh: &[f32], h_prev: &[f32], h_out: &mut [f32], h: usize) {
    let rows = gates.chunks_exact_mut(3 * h).zip(gh.chunks_exact(3 * h));
    for ((row, ghr), (hp, ho)) in rows.zip(h_prev.chunks_exact(h).zip(h_out.chunks_exact_mut(h))) {
        let (rg, rest) = row.split_at_mut(h);
        let (z, nn) = rest.split_at_mut(h);
        let (ghr_r, rest) = ghr.split_at(h);
        let (ghr_z, ghr_n) = rest.split_at(h);
        gru_lanes(rg, z, nn, ghr_r, ghr_z, ghr_n, hp, ho);
    }
}

multiversion! {
/// `gru_rows` on one row, each block its own argument (see `lstm_lanes`).
#[allow(clippy::too_many_arguments)] // one argument per block, for the vectoriser
fn gru_lanes(
    rg: &mut [f32],
    z: &mut [f32],
    nn: &mut [f32],
    ghr_r: &[f32],
    ghr_z: &[f32],
    ghr_n: &[f32],
    hp: &[f32],
    ho: &mut [f32],
) {
    let gates = rg.iter_mut().zip(z.iter_mut()).zip(nn.iter_mut());
    let hidden = ghr_r.iter().zip(ghr_z).zip(ghr_n);
    for (((rg, z), nn), (((a, b), c), (hp, ho))) in gates.zip(hidden.zip(hp.iter().zip(ho.iter_mut()))) {
        let rv = sigmoid_fast(*rg + a);
        let zv = sigmoid_fast(*z + b);
        let nv = fast_tanh(*nn + rv * c);
        (*rg, *z, *nn) = (rv, zv, nv);
        *ho = nv + zv * (hp - nv);
    }
}
}

/// The gradients a recurrence's backward pass returns.
pub struct Grads {
    /// Of the input's gate pre-activations, `[T, N, G·H]`.
    pub dxp: Vec<f32>,
    /// Of `weight_hh_l0`, `[G·H, H]`, when asked for.
    pub dw_hh: Option<Vec<f32>>,
    /// Of the GRU's `bias_hh_l0`, `[G·H]`, when asked for.
    pub db_hh: Option<Vec<f32>>,
}

/// Backpropagation through time from `dy`, the gradient of every hidden
/// state `[T, N, H]`.
pub fn backward(tape: &Tape, w_hh: ArrayView2<f32>, dy: &[f32], want_w: bool, want_b: bool) -> Grads {
    let Tape { cell, steps, n, h, .. } = *tape;
    let gh_dim = w_hh.nrows();
    let block = n * gh_dim;
    assert_eq!(dy.len(), steps * n * h, "recurrence backward: dy is [T, N, H]");
    let mut dxp = vec![0.0f32; steps * block];
    // The GRU's gradient of h W_hhᵀ + b_hh differs from its input's.
    let mut dgh = if cell == Recurrence::Gru { vec![0.0f32; steps * block] } else { Vec::new() };
    let mut dh_next = vec![0.0f32; n * h];
    let mut dc_next = vec![0.0f32; if cell == Recurrence::Lstm { n * h } else { 0 }];
    let mut dh = vec![0.0f32; n * h];
    let zeros = vec![0.0f32; n * h];
    for t in (0..steps).rev() {
        for ((d, &g), &nx) in dh.iter_mut().zip(&dy[t * n * h..(t + 1) * n * h]).zip(&dh_next) {
            *d = g + nx;
        }
        let hs_t = &tape.hs[t * n * h..(t + 1) * n * h];
        let h_prev = (t > 0).then(|| &tape.hs[(t - 1) * n * h..t * n * h]);
        let dx_t = &mut dxp[t * block..(t + 1) * block];
        match cell {
            Recurrence::Rnn => {
                for ((d, &g), &y) in dx_t.iter_mut().zip(&dh).zip(hs_t) {
                    *d = g * (1.0 - y * y);
                }
            }
            Recurrence::Lstm => {
                let gates = &tape.gates[t * block..(t + 1) * block];
                let cs = &tape.cs[t * n * h..(t + 1) * n * h];
                let c_prev = (t > 0).then(|| &tape.cs[(t - 1) * n * h..t * n * h]);
                lstm_backward_rows(gates, c_prev.unwrap_or(&zeros), cs, &dh, &mut dc_next, dx_t, h);
            }
            Recurrence::Gru => {
                let gates = &tape.gates[t * block..(t + 1) * block];
                let gh = &tape.gh[t * block..(t + 1) * block];
                let dgh_t = &mut dgh[t * block..(t + 1) * block];
                gru_backward_rows(gates, gh, h_prev.unwrap_or(&zeros), &dh, dx_t, dgh_t, &mut dh_next, h);
            }
        }
        if t > 0 {
            // dh_{t-1} = d(h W_hhᵀ) W_hh (+ the GRU's direct path, already in dh_next).
            let d_hw = if cell == Recurrence::Gru {
                &dgh[t * block..(t + 1) * block]
            } else {
                &dxp[t * block..(t + 1) * block]
            };
            let beta = if cell == Recurrence::Gru { 1.0 } else { 0.0 };
            gemm_into(view(d_hw, n, gh_dim), w_hh, beta, &mut view_mut(&mut dh_next, n, h));
        }
    }
    let all_dhw = if cell == Recurrence::Gru { &dgh } else { &dxp };
    // dW_hh = Σ_{t≥1} d(h W_hhᵀ)_tᵀ h_{t-1}: one GEMM over (T-1)·N rows (h_{-1} = 0).
    let dw_hh = want_w.then(|| {
        let mut dw = vec![0.0f32; gh_dim * h];
        if steps > 1 {
            let rows = (steps - 1) * n;
            let a = view(&all_dhw[block..], rows, gh_dim);
            let b = view(&tape.hs[..rows * h], rows, h);
            gemm_into(a.t(), b, 0.0, &mut view_mut(&mut dw, gh_dim, h));
        }
        dw
    });
    let db_hh = want_b.then(|| column_sums(all_dhw, gh_dim));
    Grads { dxp, dw_hh, db_hh }
}

/// `x` `[a, b, c]` (row-major) as `[b, a, c]`: batch-major to time-major
/// and back, one row of `c` at a time.
pub fn swap_leading(x: &[f32], a: usize, b: usize, c: usize) -> Vec<f32> {
    assert_eq!(x.len(), a * b * c, "swap_leading: x is [a, b, c]");
    let mut out = vec![0.0f32; x.len()];
    if c == 0 {
        return out;
    }
    for (i, block) in x.chunks_exact(b * c).enumerate() {
        for (j, row) in block.chunks_exact(c).enumerate() {
            out[(j * a + i) * c..][..c].copy_from_slice(row);
        }
    }
    out
}

/// The sums of the columns of `a` `[rows, cols]` (a bias's gradient).
pub fn column_sums(a: &[f32], cols: usize) -> Vec<f32> {
    let mut sums = vec![0.0f32; cols];
    for row in a.chunks_exact(cols) {
        for (s, &v) in sums.iter_mut().zip(row) {
            *s += v;
        }
    }
    sums
}

/// The gradients of a raw input (`Input::Raw`) from `dxp` `[T·N, G·H]`:
/// of `x` `[T·N, I]` (time-major, as given) when `want_x`, and of `w_ih`
/// `[G·H, I]` when `want_w`; one GEMM each.
pub fn input_grads(
    dxp: &[f32],
    x: &[f32],
    w_ih: ArrayView2<f32>,
    want_x: bool,
    want_w: bool,
) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
    let (gh, features) = w_ih.dim();
    let rows = dxp.len() / gh;
    let d = view(dxp, rows, gh);
    let dx = want_x.then(|| {
        let mut dx = vec![0.0f32; rows * features];
        gemm_into(d, w_ih, 0.0, &mut view_mut(&mut dx, rows, features));
        dx
    });
    let dw = want_w.then(|| {
        let mut dw = vec![0.0f32; gh * features];
        gemm_into(d.t(), view(x, rows, features), 0.0, &mut view_mut(&mut dw, gh, features));
        dw
    });
    (dx, dw)
}

/// One LSTM step backward over rows of `h` units, from the activated gates,
/// the cell states before and after, `dh` and the running `dc` (updated to
/// dc_{t-1}).
fn lstm_backward_rows(
    gates: &[f32],
    c_prev: &[f32],
    cs: &[f32],
    dh: &[f32],
    dc_next: &mut [f32],
    dgates: &mut [f32],
    h: usize,
) {
    let rows = gates.chunks_exact(4 * h).zip(dgates.chunks_exact_mut(4 * h));
    let states =
        c_prev.chunks_exact(h).zip(cs.chunks_exact(h)).zip(dh.chunks_exact(h).zip(dc_next.chunks_exact_mut(h)));
    for ((row, drow), ((c_prev, c), (dh, dcn))) in rows.zip(states) {
        let (di, rest) = drow.split_at_mut(h);
        let (df, rest) = rest.split_at_mut(h);
        let (dg, d_o) = rest.split_at_mut(h);
        let (i, f, g, o) = (&row[..h], &row[h..2 * h], &row[2 * h..3 * h], &row[3 * h..]);
        lstm_backward_lanes(i, f, g, o, di, df, dg, d_o, c_prev, c, dh, dcn);
    }
}

multiversion! {
/// `lstm_backward_rows` on one row, each block its own argument (see
/// `lstm_lanes`; slices inside an array would not count).
#[allow(clippy::too_many_arguments)] // one argument per block, for the vectoriser
fn lstm_backward_lanes(
    i: &[f32],
    f: &[f32],
    g: &[f32],
    o: &[f32],
    di: &mut [f32],
    df: &mut [f32],
    dg: &mut [f32],
    d_o: &mut [f32],
    c_prev: &[f32],
    c: &[f32],
    dh: &[f32],
    dcn: &mut [f32],
) {
    let gates = i.iter().zip(f).zip(g.iter().zip(o));
    let grads = di.iter_mut().zip(df.iter_mut()).zip(dg.iter_mut().zip(d_o.iter_mut()));
    let states = c_prev.iter().zip(c).zip(dh.iter().zip(dcn.iter_mut()));
    for ((((i, f), (g, o)), ((di, df), (dg, d_o))), ((cp, c), (dh, dcn))) in gates.zip(grads).zip(states) {
        let tc = fast_tanh(*c);
        let dc = *dcn + dh * o * (1.0 - tc * tc);
        *di = dc * g * i * (1.0 - i);
        *df = dc * cp * f * (1.0 - f);
        *dg = dc * i * (1.0 - g * g);
        *d_o = dh * tc * o * (1.0 - o);
        *dcn = dc * f;
    }
}
}

/// One GRU step backward over rows of `h` units: the gradients of the
/// input's gate pre-activations, of h W_hhᵀ + b_hh, and the direct part of
/// dh_{t-1} (g z), written into `dh_prev`.
#[allow(clippy::too_many_arguments)] // one step's buffers
fn gru_backward_rows(
    gates: &[f32],
    gh: &[f32],
    h_prev: &[f32],
    dh: &[f32],
    dgi: &mut [f32],
    dgh: &mut [f32],
    dh_prev: &mut [f32],
    h: usize,
) {
    let rows = gates.chunks_exact(3 * h).zip(gh.chunks_exact(3 * h));
    let grads = dgi.chunks_exact_mut(3 * h).zip(dgh.chunks_exact_mut(3 * h));
    let states = h_prev.chunks_exact(h).zip(dh.chunks_exact(h)).zip(dh_prev.chunks_exact_mut(h));
    for (((row, ghr), (dgi, dgh)), ((hp, dh), dhp)) in rows.zip(grads).zip(states) {
        let (dgi_r, rest) = dgi.split_at_mut(h);
        let (dgi_z, dgi_n) = rest.split_at_mut(h);
        let (dgh_r, rest) = dgh.split_at_mut(h);
        let (dgh_z, dgh_n) = rest.split_at_mut(h);
        let (rg, z, nn, ghn) = (&row[..h], &row[h..2 * h], &row[2 * h..], &ghr[2 * h..]);
        gru_backward_lanes(rg, z, nn, ghn, hp, dh, dgi_r, dgi_z, dgi_n, dgh_r, dgh_z, dgh_n, dhp);
    }
}

multiversion! {
/// `gru_backward_rows` on one row, each block its own argument (see
/// `lstm_lanes`).
#[allow(clippy::too_many_arguments)] // one argument per block, for the vectoriser
fn gru_backward_lanes(
    rg: &[f32],
    z: &[f32],
    nn: &[f32],
    ghn: &[f32],
    hp: &[f32],
    dh: &[f32],
    dgi_r: &mut [f32],
    dgi_z: &mut [f32],
    dgi_n: &mut [f32],
    dgh_r: &mut [f32],
    dgh_z: &mut [f32],
    dgh_n: &mut [f32],
    dhp: &mut [f32],
) {
    let gates = rg.iter().zip(z).zip(nn.iter().zip(ghn));
    let d_in = dgi_r.iter_mut().zip(dgi_z.iter_mut()).zip(dgi_n.iter_mut());
    let d_hid = dgh_r.iter_mut().zip(dgh_z.iter_mut()).zip(dgh_n.iter_mut());
    let states = hp.iter().zip(dh).zip(dhp.iter_mut());
    for ((((rg, z), (nn, ghn)), ((ai, bi), ci)), (((ah, bh), ch), ((hp, g), dhp))) in
        gates.zip(d_in).zip(d_hid.zip(states))
    {
        let dn = g * (1.0 - z) * (1.0 - nn * nn);
        let dz = g * (hp - nn) * z * (1.0 - z);
        let dr = dn * ghn * rg * (1.0 - rg);
        (*ai, *bi, *ci) = (dr, dz, dn);
        (*ah, *bh, *ch) = (dr, dz, dn * rg);
        *dhp = g * z;
    }
}
}
