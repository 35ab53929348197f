//! Where kernels live. Kernels see arrays and layouts, never the autograd graph.
//!
//! `Storage` is a tensor's value on a device: an ndarray on the CPU, or a
//! `GpuArray` on the GPU. The functions here are the narrow interface the
//! autograd primitives (`autograd::ops`) call; each dispatches to `cpu` or `gpu`.
//! An operation that meets a CPU array and a GPU one uploads the CPU one (a
//! batch, a mask or a constant meeting the model's parameters), so a model on the
//! GPU needs no change to the layer code.

pub mod cpu;
pub mod gpu;
pub mod ops;

use std::borrow::Cow;
use std::rc::Rc;

use ndarray::{ArrayD, IxDyn};

pub use gpu::{Gpu, GpuArray, GpuError};
pub use ops::{Gemm, MapOp, Recurrence, Window};

/// An f32 array of any rank on the CPU (`tensor::Array` is this one).
pub type Array = ndarray::ArrayD<f32>;

/// Where a tensor's value lives.
#[derive(Clone)]
pub enum Device {
    Cpu,
    Gpu(Rc<Gpu>),
}

impl Device {
    pub fn is_gpu(&self) -> bool {
        matches!(self, Device::Gpu(_))
    }
    /// "CPU", or the GPU adapter's name.
    pub fn name(&self) -> String {
        match self {
            Device::Cpu => "CPU".into(),
            Device::Gpu(g) => g.adapter.clone(),
        }
    }
    /// Submits the work recorded so far (nothing to do on the CPU).
    pub fn flush(&self) {
        if let Device::Gpu(g) = self {
            g.flush();
        }
    }

    pub fn gpu(&self) -> Option<&Rc<Gpu>> {
        match self {
            Device::Gpu(g) => Some(g),
            Device::Cpu => None,
        }
    }
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

/// A tensor's value.
#[derive(Clone)]
pub enum Storage {
    Cpu(Array),
    Gpu(GpuArray),
}

/// Indices kept for a backward pass (maxima, labels, embedding ids), on the
/// device of the array they index.
pub enum Indices {
    Cpu(Vec<u32>),
    Gpu(Rc<gpu::Buffer>),
}

impl Indices {
    fn cpu(&self) -> &[u32] {
        match self {
            Indices::Cpu(v) => v,
            Indices::Gpu(_) => unreachable!("GPU indices with a CPU array"),
        }
    }
    fn gpu(&self) -> &gpu::Buffer {
        match self {
            Indices::Gpu(b) => b,
            Indices::Cpu(_) => unreachable!("CPU indices with a GPU array"),
        }
    }
    fn on(device: &Device, v: Vec<u32>) -> Indices {
        match device {
            Device::Cpu => Indices::Cpu(v),
            Device::Gpu(g) => Indices::Gpu(g.upload_u32(&v)),
        }
    }
}

impl Storage {
    pub fn shape(&self) -> &[usize] {
        match self {
            Storage::Cpu(a) => a.shape(),
            Storage::Gpu(a) => &a.shape,
        }
    }
    pub fn len(&self) -> usize {
        self.shape().iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn device(&self) -> Device {
        match self {
            Storage::Cpu(_) => Device::Cpu,
            Storage::Gpu(a) => Device::Gpu(a.gpu().clone()),
        }
    }

    /// An array of `shape` filled with `value`, on `device`.
    pub fn full(shape: &[usize], value: f32, device: &Device) -> Storage {
        match device {
            Device::Cpu => Storage::Cpu(ArrayD::from_elem(IxDyn(shape), value)),
            Device::Gpu(g) => Storage::Gpu(gpu::fill(g, shape, value)),
        }
    }

    /// The same values on `device` (an upload, a readback, or a cheap clone).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn to_device(&self, device: &Device) -> Result<Storage, GpuError> {
        Ok(match (self, device) {
            (Storage::Gpu(_), Device::Cpu) => Storage::Cpu(self.to_array()?),
            _ => self.upload_to(device),
        })
    }

    /// The same values on `device`, where that needs no readback.
    pub fn upload_to(&self, device: &Device) -> Storage {
        match (self, device) {
            (Storage::Cpu(a), Device::Gpu(g)) => {
                let a = a.as_standard_layout();
                Storage::Gpu(g.upload(a.shape(), a.as_slice().expect("standard layout")))
            }
            (Storage::Gpu(a), Device::Gpu(g)) if !Rc::ptr_eq(a.gpu(), g) => {
                panic!("arrays of two different GPU devices met")
            }
            _ => self.clone(),
        }
    }

    /// The values as an ndarray (a readback from the GPU, which waits for it).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn to_array(&self) -> Result<Array, GpuError> {
        match self {
            Storage::Cpu(a) => Ok(a.clone()),
            Storage::Gpu(a) => Ok(ArrayD::from_shape_vec(IxDyn(&a.shape), a.gpu().read_blocking(a)?).expect("shape")),
        }
    }

    /// The values as an ndarray; in the browser a GPU readback must be awaited.
    pub async fn to_array_async(&self) -> Result<Array, GpuError> {
        match self {
            Storage::Cpu(a) => Ok(a.clone()),
            Storage::Gpu(a) => Ok(ArrayD::from_shape_vec(IxDyn(&a.shape), a.gpu().read(a).await?).expect("shape")),
        }
    }

    /// Reads many arrays to the CPU, all GPU ones in a single readback.
    pub async fn read_all(values: &[&Storage]) -> Result<Vec<Array>, GpuError> {
        let gpu_arrays: Vec<&GpuArray> = values
            .iter()
            .filter_map(|s| match s {
                Storage::Gpu(a) => Some(a),
                Storage::Cpu(_) => None,
            })
            .collect();
        let mut read = match gpu_arrays.first() {
            Some(first) => first.gpu().clone().read_many(&gpu_arrays).await?.into_iter(),
            None => Vec::new().into_iter(),
        };
        Ok(values
            .iter()
            .map(|s| match s {
                Storage::Cpu(a) => a.clone(),
                Storage::Gpu(a) => {
                    ArrayD::from_shape_vec(IxDyn(&a.shape), read.next().expect("one per GPU array")).expect("shape")
                }
            })
            .collect())
    }

    /// `self += other` (same shape): gradient accumulation.
    pub fn add_assign(&mut self, other: &Storage) {
        match (&mut *self, other) {
            (Storage::Cpu(a), Storage::Cpu(b)) => *a += b,
            _ => *self = binary(MapOp::Add, self, other),
        }
    }

    fn cpu(&self) -> &Array {
        match self {
            Storage::Cpu(a) => a,
            Storage::Gpu(_) => unreachable!("a GPU array where a CPU one was expected"),
        }
    }
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Storage::Cpu(a) => write!(f, "{a:?}"),
            Storage::Gpu(a) => write!(f, "GpuArray(shape={:?}, on {})", a.shape, a.gpu().adapter),
        }
    }
}

/// Both operands on one device: a CPU one meeting a GPU one is uploaded.
fn pair<'a>(a: &'a Storage, b: &'a Storage) -> (Cow<'a, Storage>, Cow<'a, Storage>) {
    (beside(a, b), beside(b, a))
}

/// `x` on the device of `like`, uploaded if `x` is on the CPU and `like` on the GPU.
fn beside<'a>(x: &'a Storage, like: &Storage) -> Cow<'a, Storage> {
    match (x, like) {
        (Storage::Cpu(_), Storage::Gpu(g)) => Cow::Owned(x.upload_to(&Device::Gpu(g.gpu().clone()))),
        _ => Cow::Borrowed(x),
    }
}

// ----- elementwise ------------------------------------------------------------

/// A binary op with numpy broadcasting (the gradient ops take equal shapes).
pub fn binary(op: MapOp, a: &Storage, b: &Storage) -> Storage {
    let (a, b) = pair(a, b);
    match (&*a, &*b) {
        (Storage::Gpu(x), Storage::Gpu(y)) => Storage::Gpu(gpu::binary(op, x, y)),
        (Storage::Cpu(x), Storage::Cpu(y)) => Storage::Cpu(cpu::array::binary(op, x, y)),
        _ => unreachable!(),
    }
}

/// A unary op; `Scale` and `Offset` take `s`.
pub fn unary(op: MapOp, x: &Storage, s: f32) -> Storage {
    match x {
        Storage::Gpu(x) => Storage::Gpu(gpu::unary(op, x, s)),
        Storage::Cpu(x) => Storage::Cpu(cpu::array::unary(op, x, s)),
    }
}

// ----- reductions and shapes -----------------------------------------------------

/// Sums `x` down to `shape`, undoing numpy-style broadcasting (leading axes, and
/// axes where `shape` has 1).
pub fn sum_to(x: &Storage, shape: &[usize]) -> Storage {
    match x {
        Storage::Gpu(x) => Storage::Gpu(gpu::sum_to(x, shape)),
        Storage::Cpu(x) => Storage::Cpu(cpu::array::sum_to(x, shape)),
    }
}

/// `x` broadcast to `shape`, materialised.
pub fn broadcast_to(x: &Storage, shape: &[usize]) -> Storage {
    match x {
        Storage::Gpu(x) => Storage::Gpu(gpu::broadcast_to(x, shape)),
        Storage::Cpu(x) => Storage::Cpu(cpu::array::broadcast_to(x, shape)),
    }
}

pub fn reshape(x: &Storage, shape: &[usize]) -> Storage {
    match x {
        Storage::Gpu(x) => Storage::Gpu(gpu::reshape(x, shape)),
        Storage::Cpu(x) => Storage::Cpu(cpu::array::reshape(x, shape)),
    }
}

/// `reshape` of a value the caller gives up (a kernel's fresh output): no
/// copy where its layout allows.
pub fn reshape_owned(x: Storage, shape: &[usize]) -> Storage {
    match x {
        Storage::Gpu(x) => Storage::Gpu(gpu::reshape(&x, shape)),
        Storage::Cpu(x) => Storage::Cpu(cpu::array::reshape_owned(x, shape)),
    }
}

pub fn permute(x: &Storage, axes: &[usize]) -> Storage {
    match x {
        Storage::Gpu(x) => Storage::Gpu(gpu::permute(x, axes)),
        Storage::Cpu(x) => Storage::Cpu(cpu::array::permute(x, axes)),
    }
}

pub fn slice(x: &Storage, axis: usize, start: usize, end: usize) -> Storage {
    match x {
        Storage::Gpu(x) => Storage::Gpu(gpu::slice(x, axis, start, end)),
        Storage::Cpu(x) => Storage::Cpu(cpu::array::slice(x, axis, start, end)),
    }
}

/// Zeros of `shape` with `g` at `start..` along `axis` (the gradient of `slice`).
pub fn unslice(g: &Storage, shape: &[usize], axis: usize, start: usize) -> Storage {
    match g {
        Storage::Gpu(g) => Storage::Gpu(gpu::unslice(g, shape, axis, start)),
        Storage::Cpu(g) => Storage::Cpu(cpu::array::unslice(g, shape, axis, start)),
    }
}

pub fn concat(parts: &[&Storage], axis: usize) -> Storage {
    if let Some(Storage::Gpu(first)) = parts.iter().find(|p| matches!(p, Storage::Gpu(_))) {
        let device = Device::Gpu(first.gpu().clone());
        let owned: Vec<Storage> = parts.iter().map(|p| p.upload_to(&device)).collect();
        let arrays: Vec<&GpuArray> = owned
            .iter()
            .map(|s| match s {
                Storage::Gpu(a) => a,
                Storage::Cpu(_) => unreachable!(),
            })
            .collect();
        return Storage::Gpu(gpu::concat(&arrays, axis));
    }
    let views: Vec<_> = parts.iter().map(|p| p.cpu().view()).collect();
    Storage::Cpu(cpu::array::concat(&views, axis))
}

/// Maximum over `axis` (removed), with the position of the first maximum.
pub fn max_axis(x: &Storage, axis: usize) -> (Storage, Indices) {
    match x {
        Storage::Gpu(x) => {
            let (v, arg) = gpu::max_axis(x, axis);
            (Storage::Gpu(v), Indices::Gpu(arg))
        }
        Storage::Cpu(x) => {
            let (v, arg) = cpu::array::max_axis(x, axis);
            (Storage::Cpu(v), Indices::Cpu(arg))
        }
    }
}

/// The gradient of `max_axis`: `g` (its output's shape) at the maxima of `shape`.
pub fn max_axis_backward(g: &Storage, arg: &Indices, shape: &[usize], axis: usize) -> Storage {
    match g {
        Storage::Gpu(g) => Storage::Gpu(gpu::max_axis_backward(g, arg.gpu(), shape, axis)),
        Storage::Cpu(g) => Storage::Cpu(cpu::array::max_axis_backward(g, arg.cpu(), shape, axis)),
    }
}

// ----- linear algebra -----------------------------------------------------------

/// The product `g` describes (see `Gemm`), `[batch·m, n]`.
pub fn gemm(a: &Storage, b: &Storage, g: Gemm) -> Storage {
    let (a, b) = pair(a, b);
    match (&*a, &*b) {
        (Storage::Gpu(x), Storage::Gpu(y)) => Storage::Gpu(gpu::gemm(x, y, &g)),
        (Storage::Cpu(x), Storage::Cpu(y)) => Storage::Cpu(cpu::array::gemm(x, y, g)),
        _ => unreachable!(),
    }
}

// ----- convolution and pooling ----------------------------------------------------

/// `x` [N,C,H,W], `w` [F,C,KH,KW], `bias` [F] -> [N,F,OH,OW]. With `keep`,
/// the CPU also returns the unfolded patches for `conv2d_backward` (the GPU
/// unfolds again: its memory is the scarcer).
pub fn conv2d(
    x: &Storage,
    w: &Storage,
    bias: Option<&Storage>,
    g: &Window,
    keep: bool,
) -> (Storage, Option<cpu::Patches>) {
    let (x, w) = pair(x, w);
    let f = w.shape()[0];
    let ckk = g.c * g.kh * g.kw;
    match (&*x, &*w) {
        (Storage::Gpu(xa), Storage::Gpu(wa)) => {
            let bias = bias.map(|b| b.upload_to(&x.device()));
            let b = bias.as_ref().map(|b| match b {
                Storage::Gpu(b) => b,
                Storage::Cpu(_) => unreachable!(),
            });
            (Storage::Gpu(gpu::conv2d_forward(xa, &gpu::reshape(wa, &[f, ckk]), b, g)), None)
        }
        (Storage::Cpu(xa), Storage::Cpu(wa)) => {
            let (y, patches) = cpu::array::conv2d(xa, wa, bias.map(|b| b.cpu()), g, keep);
            (Storage::Cpu(y), patches)
        }
        _ => unreachable!(),
    }
}

/// Gradients of a convolution: input (if `want_dx`), weight [F,C,KH,KW], bias
/// [F]; `patches` are what `conv2d` kept, if anything.
pub fn conv2d_backward(
    x: &Storage,
    w: &Storage,
    dy: &Storage,
    g: &Window,
    want_dx: bool,
    patches: Option<&cpu::Patches>,
) -> (Option<Storage>, Storage, Storage) {
    let (x, w) = pair(x, w);
    let f = w.shape()[0];
    let ckk = g.c * g.kh * g.kw;
    match (&*x, &*w, dy) {
        (Storage::Gpu(xa), Storage::Gpu(wa), Storage::Gpu(dya)) => {
            let (dx, dw, db) = gpu::conv2d_backward(xa, &gpu::reshape(wa, &[f, ckk]), dya, g, want_dx);
            let dw = gpu::reshape(&dw, &[f, g.c, g.kh, g.kw]);
            (dx.map(Storage::Gpu), Storage::Gpu(dw), Storage::Gpu(db))
        }
        (Storage::Cpu(xa), Storage::Cpu(wa), Storage::Cpu(dya)) => {
            let (dx, dw, db) = cpu::array::conv2d_backward(xa, wa, dya, g, want_dx, patches);
            (dx.map(Storage::Cpu), Storage::Cpu(dw), Storage::Cpu(db))
        }
        _ => unreachable!("conv2d backward on mixed devices"),
    }
}

pub fn max_pool(x: &Storage, g: &Window) -> (Storage, Indices) {
    match x {
        Storage::Gpu(x) => {
            let (y, arg) = gpu::max_pool_forward(x, g);
            (Storage::Gpu(y), Indices::Gpu(arg))
        }
        Storage::Cpu(x) => {
            let (y, arg) = cpu::array::max_pool(x, g);
            (Storage::Cpu(y), Indices::Cpu(arg))
        }
    }
}

pub fn max_pool_backward(dy: &Storage, arg: &Indices, g: &Window) -> Storage {
    match dy {
        Storage::Gpu(dy) => Storage::Gpu(gpu::max_pool_backward(dy, arg.gpu(), g)),
        Storage::Cpu(dy) => Storage::Cpu(cpu::array::max_pool_backward(dy, arg.cpu(), g)),
    }
}

pub fn avg_pool(x: &Storage, g: &Window) -> Storage {
    match x {
        Storage::Gpu(x) => Storage::Gpu(gpu::avg_pool_forward(x, g)),
        Storage::Cpu(x) => Storage::Cpu(cpu::array::avg_pool(x, g)),
    }
}

pub fn avg_pool_backward(dy: &Storage, g: &Window) -> Storage {
    match dy {
        Storage::Gpu(dy) => Storage::Gpu(gpu::avg_pool_backward(dy, g)),
        Storage::Cpu(dy) => Storage::Cpu(cpu::array::avg_pool_backward(dy, g)),
    }
}

// ----- lookups, softmax and loss ---------------------------------------------------

/// Rows of `table` [rows, d] picked by `ids` -> [ids.len(), d].
pub fn gather_rows(table: &Storage, ids: &[usize]) -> (Storage, Indices) {
    let ids32: Vec<u32> = ids.iter().map(|&i| i as u32).collect();
    match table {
        Storage::Gpu(t) => {
            let idx = t.gpu().upload_u32(&ids32);
            (Storage::Gpu(gpu::gather_rows(t, &idx, ids.len())), Indices::Gpu(idx))
        }
        Storage::Cpu(t) => (Storage::Cpu(cpu::array::gather_rows(t, ids)), Indices::Cpu(ids32)),
    }
}

/// The gradient of `gather_rows` for a table of `rows` rows.
pub fn scatter_rows(g: &Storage, ids: &Indices, rows: usize) -> Storage {
    match g {
        Storage::Gpu(g) => Storage::Gpu(gpu::scatter_rows(g, ids.gpu(), g.shape[0], rows)),
        Storage::Cpu(g) => Storage::Cpu(cpu::array::scatter_rows(g, ids.cpu(), rows)),
    }
}

// ----- fused recurrent cells ----------------------------------------------------

/// One LSTM step: `[h | c']` [N, 2H] from the gate pre-activations [N, 4H]
/// (i, f, g, o) and the cell state [N, H].
pub fn lstm_cell(gates: &Storage, c: &Storage) -> Storage {
    let (gates, c) = pair(gates, c);
    match (&*gates, &*c) {
        (Storage::Gpu(a), Storage::Gpu(c)) => Storage::Gpu(gpu::lstm_cell(a, c)),
        (Storage::Cpu(a), Storage::Cpu(c)) => Storage::Cpu(cpu::lstm_cell(a, c)),
        _ => unreachable!("LSTM cell on mixed devices"),
    }
}

/// The gradients of the gates and of the cell state from `g`, that of `[h | c']`.
pub fn lstm_cell_backward(gates: &Storage, c: &Storage, out: &Storage, g: &Storage) -> (Storage, Storage) {
    let (c, out, g) = (beside(c, gates), beside(out, gates), beside(g, gates));
    match (gates, &*c, &*out, &*g) {
        (Storage::Gpu(a), Storage::Gpu(c), Storage::Gpu(o), Storage::Gpu(g)) => {
            let (da, dc) = gpu::lstm_cell_backward(a, c, o, g);
            (Storage::Gpu(da), Storage::Gpu(dc))
        }
        (Storage::Cpu(a), Storage::Cpu(c), Storage::Cpu(o), Storage::Cpu(g)) => {
            let (da, dc) = cpu::lstm_cell_backward(a, c, o, g);
            (Storage::Cpu(da), Storage::Cpu(dc))
        }
        _ => unreachable!("LSTM cell backward on mixed devices"),
    }
}

/// A 2-d view of a CPU weight (`[G·H, H]`, `[G·H, I]`).
fn matrix_view(w: &Array) -> ndarray::ArrayView2<'_, f32> {
    w.view().into_dimensionality::<ndarray::Ix2>().expect("a weight matrix")
}

/// `a` as a contiguous slice (copied only when it is not one).
pub fn contiguous(a: &Array) -> std::borrow::Cow<'_, [f32]> {
    match a.as_slice() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(cpu::array::standard(a).into_owned().into_raw_vec_and_offset().0),
    }
}

/// A recurrence's forward pass on the CPU (`cpu::recurrent`) from the
/// input's gate pre-activations `xp` `[T, N, G·H]`, `w_hh` `[G·H, H]` and
/// the GRU's `b_hh` `[G·H]`: every hidden state `[T, N, H]`, with the tape
/// for the backward pass when `keep`.
pub fn recurrence_cpu(
    cell: Recurrence,
    xp: &Array,
    w_hh: &Array,
    b_hh: Option<&Array>,
    keep: bool,
) -> (Array, Option<cpu::recurrent::Tape>) {
    let (steps, n, h) = (xp.shape()[0], xp.shape()[1], w_hh.shape()[1]);
    let xp = contiguous(xp);
    let b = b_hh.map(contiguous);
    let input = cpu::recurrent::Input::Projected(&xp);
    let (hs, tape) = cpu::recurrent::forward(cell, &input, steps, n, matrix_view(w_hh), b.as_deref(), keep);
    (ArrayD::from_shape_vec(IxDyn(&[steps, n, h]), hs).expect("[T, N, H]"), tape)
}

/// The CPU recurrence's backward pass from `g`, the gradient of every hidden
/// state `[T, N, H]`: the gradients of `xp` `[T, N, G·H]`, of `w_hh`
/// `[G·H, H]` (when `want_w`) and of the GRU's `b_hh` `[G·H]` (when `want_b`).
pub fn recurrence_cpu_backward(
    tape: &cpu::recurrent::Tape,
    w_hh: &Array,
    g: &Array,
    want_w: bool,
    want_b: bool,
) -> (Array, Option<Array>, Option<Array>) {
    let w = matrix_view(w_hh);
    let (gh, h) = w.dim();
    let (steps, n) = (g.shape()[0], g.shape()[1]);
    let grads = cpu::recurrent::backward(tape, w, &contiguous(g), want_w, want_b);
    (
        ArrayD::from_shape_vec(IxDyn(&[steps, n, gh]), grads.dxp).expect("[T, N, G*H]"),
        grads.dw_hh.map(|d| ArrayD::from_shape_vec(IxDyn(&[gh, h]), d).expect("[G*H, H]")),
        grads.db_hh.map(|d| ArrayD::from_shape_vec(IxDyn(&[gh]), d).expect("[G*H]")),
    )
}

/// What a whole recurrent layer on the CPU keeps for its backward pass: the
/// recurrence's tape and the input, time-major `[T·N, I]`.
pub struct RecurrentTape {
    tape: cpu::recurrent::Tape,
    x_tm: Vec<f32>,
}

/// A whole recurrent layer on the CPU (`Tensor::recurrent`): from `x`
/// `[N, T, I]` and PyTorch's four parameters, every hidden state time-major
/// `[T, N, H]`; the input projection happens inside (see `cpu::recurrent`).
pub fn recurrent_cpu(
    cell: Recurrence,
    x: &Array,
    [w_ih, w_hh, b_ih, b_hh]: [&Array; 4],
    keep: bool,
) -> (Array, Option<RecurrentTape>) {
    let (n, steps, features) = (x.shape()[0], x.shape()[1], x.shape()[2]);
    let h = w_hh.shape()[1];
    let x_tm = cpu::recurrent::swap_leading(&contiguous(x), n, steps, features);
    // The GRU's b_hh stays with the hidden state's half (r scales it).
    let bias: Vec<f32> =
        if cell == Recurrence::Gru { contiguous(b_ih).into_owned() } else { (b_ih + b_hh).iter().copied().collect() };
    let b_hh = (cell == Recurrence::Gru).then(|| contiguous(b_hh));
    let input = cpu::recurrent::Input::Raw { x: &x_tm, w_ih: matrix_view(w_ih), bias: &bias };
    let (hs, tape) = cpu::recurrent::forward(cell, &input, steps, n, matrix_view(w_hh), b_hh.as_deref(), keep);
    debug_assert_eq!(x_tm.len(), steps * n * features);
    let tape = tape.map(|tape| RecurrentTape { tape, x_tm });
    (ArrayD::from_shape_vec(IxDyn(&[steps, n, h]), hs).expect("[T, N, H]"), tape)
}

/// The gradients of `recurrent_cpu`'s five inputs (x `[N, T, I]`, then the
/// parameters) from `g` `[T, N, H]`, each where `need` asks for it.
pub fn recurrent_cpu_backward(
    rt: &RecurrentTape,
    [w_ih, w_hh]: [&Array; 2],
    g: &Array,
    need: &[bool],
) -> Vec<Option<Array>> {
    let (gh, features) = (w_ih.shape()[0], w_ih.shape()[1]);
    let (steps, n) = (g.shape()[0], g.shape()[1]);
    let gru = rt.tape.is_gru();
    let grads = cpu::recurrent::backward(&rt.tape, matrix_view(w_hh), &contiguous(g), need[2], gru && need[4]);
    let (dx_tm, dw_ih) = cpu::recurrent::input_grads(&grads.dxp, &rt.x_tm, matrix_view(w_ih), need[0], need[1]);
    let dx = dx_tm.map(|d| {
        let d = cpu::recurrent::swap_leading(&d, steps, n, features);
        ArrayD::from_shape_vec(IxDyn(&[n, steps, features]), d).expect("[N, T, I]")
    });
    let db_ih = (need[3] || (need[4] && !gru)).then(|| cpu::recurrent::column_sums(&grads.dxp, gh));
    let db_hh = if gru { grads.db_hh } else { db_ih.clone().filter(|_| need[4]) };
    let hh = w_hh.shape()[1];
    vec![
        dx,
        dw_ih.map(|d| ArrayD::from_shape_vec(IxDyn(&[gh, features]), d).expect("[G*H, I]")),
        grads.dw_hh.map(|d| ArrayD::from_shape_vec(IxDyn(&[gh, hh]), d).expect("[G*H, H]")),
        db_ih.filter(|_| need[3]).map(|d| ArrayD::from_shape_vec(IxDyn(&[gh]), d).expect("[G*H]")),
        db_hh.map(|d| ArrayD::from_shape_vec(IxDyn(&[gh]), d).expect("[G*H]")),
    ]
}

/// One GRU step: h' [N, H] from the input's and the hidden state's gate
/// pre-activations [N, 3H] (r, z, n) and the hidden state [N, H].
pub fn gru_cell(gi: &Storage, gh: &Storage, h: &Storage) -> Storage {
    let (gh, h) = (beside(gh, gi), beside(h, gi));
    match (gi, &*gh, &*h) {
        (Storage::Gpu(a), Storage::Gpu(b), Storage::Gpu(h)) => Storage::Gpu(gpu::gru_cell(a, b, h)),
        (Storage::Cpu(a), Storage::Cpu(b), Storage::Cpu(h)) => Storage::Cpu(cpu::gru_cell(a, b, h)),
        _ => unreachable!("GRU cell on mixed devices"),
    }
}

/// The GRU step's gradients of both gate pre-activations and of the hidden
/// state, from `g`, that of h'.
pub fn gru_cell_backward(gi: &Storage, gh: &Storage, h: &Storage, g: &Storage) -> (Storage, Storage, Storage) {
    let (gh, h, g) = (beside(gh, gi), beside(h, gi), beside(g, gi));
    match (gi, &*gh, &*h, &*g) {
        (Storage::Gpu(a), Storage::Gpu(b), Storage::Gpu(h), Storage::Gpu(g)) => {
            let (da, db, dh) = gpu::gru_cell_backward(a, b, h, g);
            (Storage::Gpu(da), Storage::Gpu(db), Storage::Gpu(dh))
        }
        (Storage::Cpu(a), Storage::Cpu(b), Storage::Cpu(h), Storage::Cpu(g)) => {
            let (da, db, dh) = cpu::gru_cell_backward(a, b, h, g);
            (Storage::Cpu(da), Storage::Cpu(db), Storage::Cpu(dh))
        }
        _ => unreachable!("GRU cell backward on mixed devices"),
    }
}

/// Softmax over the last axis.
pub fn softmax(x: &Storage) -> Storage {
    match x {
        Storage::Gpu(x) => Storage::Gpu(gpu::softmax(x)),
        Storage::Cpu(x) => Storage::Cpu(cpu::array::softmax(x)),
    }
}

/// dx = y (g - sum(g y)) per row, from the softmax output `y`.
pub fn softmax_backward(g: &Storage, y: &Storage) -> Storage {
    match (g, y) {
        (Storage::Gpu(g), Storage::Gpu(y)) => Storage::Gpu(gpu::softmax_backward(g, y)),
        (Storage::Cpu(g), Storage::Cpu(y)) => Storage::Cpu(cpu::array::softmax_backward(g, y)),
        _ => unreachable!("softmax backward on mixed devices"),
    }
}

/// Mean softmax cross-entropy of rows of `x` against `labels`: the loss (a
/// scalar), the probabilities and the labels on the device, for the backward pass.
pub fn cross_entropy(x: &Storage, labels: &[usize]) -> (Storage, Storage, Indices) {
    match x {
        Storage::Gpu(xa) => {
            let l = Indices::on(&x.device(), labels.iter().map(|&y| y as u32).collect());
            let (loss, probs) = gpu::cross_entropy(xa, l.gpu());
            (Storage::Gpu(loss), Storage::Gpu(probs), l)
        }
        Storage::Cpu(xa) => {
            let (loss, probs) = cpu::array::cross_entropy(xa, labels);
            (Storage::Cpu(loss), Storage::Cpu(probs), Indices::Cpu(labels.iter().map(|&y| y as u32).collect()))
        }
    }
}

/// d loss / d logits = (probs - onehot) · g / rows, `g` a scalar.
pub fn cross_entropy_backward(probs: &Storage, labels: &Indices, g: &Storage) -> Storage {
    match probs {
        Storage::Gpu(p) => {
            let g = g.upload_to(&probs.device());
            let Storage::Gpu(g) = g else { unreachable!() };
            Storage::Gpu(gpu::cross_entropy_backward(p, labels.gpu(), &g))
        }
        Storage::Cpu(p) => {
            let g = g.cpu().iter().next().copied().unwrap_or(1.0);
            Storage::Cpu(cpu::array::cross_entropy_backward(p, labels.cpu(), g))
        }
    }
}

/// One optimizer update of a parameter, with Keras's rules.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Update {
    /// `v = momentum * v - lr * g; w += v` (`v` in the first state array).
    Sgd { lr: f32, momentum: f32 },
    /// `m += (g - m)(1 - beta_1); v += (g^2 - v)(1 - beta_2); w -= alpha m / (sqrt(v) + epsilon)`,
    /// with `alpha = lr sqrt(1 - beta_2^t) / (1 - beta_1^t)` (Kingma and Ba 2015, as Keras).
    Adam { alpha: f32, beta_1: f32, beta_2: f32, epsilon: f32 },
}

/// Applies `update` to the parameter `w` with its gradient `g` and state `m`
/// (and `v` for Adam) on the parameter's device (`g` moves there), adding the
/// gradient's NaN and infinite entries to counter `slot`: in place
/// on the CPU; on the GPU into new arrays that replace `w`, `m` and `v`, so
/// that a clone taken before (the trainer's snapshot) keeps the old values
/// without a copy.
///
/// # Panics
/// When the parameter and its state are on different devices (a bug: the
/// optimizer makes its state where the parameter lives).
pub fn apply_update(
    update: Update,
    w: &mut Storage,
    m: &mut Storage,
    v: &mut Storage,
    g: &Storage,
    (counters, slot): (&StepCounters, usize),
) {
    match (w, m) {
        (Storage::Cpu(w), Storage::Cpu(m)) => {
            counters.count_nonfinite(slot, g);
            let g = g.cpu();
            match (update, v) {
                (Update::Sgd { lr, momentum }, _) => cpu::sgd_update(w, m, g, lr, momentum),
                (Update::Adam { alpha, beta_1, beta_2, epsilon }, Storage::Cpu(v)) => {
                    cpu::adam_update(w, m, v, g, alpha, beta_1, beta_2, epsilon)
                }
                _ => panic!("Adam state off the parameter's device"),
            }
        }
        // On the GPU the update writes new arrays: the old ones are the
        // trainer's snapshot for undoing a diverging step, shared, not copied.
        // The kernel counts the gradient's non-finite entries as it reads them.
        (Storage::Gpu(w), Storage::Gpu(m)) => {
            let Storage::Gpu(g) = g.upload_to(&Device::Gpu(w.gpu().clone())) else { unreachable!() };
            let StepCounters::Gpu { counters, .. } = counters else { panic!("step counters off the GPU") };
            let count = (&**counters, slot);
            match (update, v) {
                (Update::Sgd { lr, momentum }, _) => (*w, *m) = gpu::sgd_update(w, m, &g, lr, momentum, count),
                (adam @ Update::Adam { .. }, Storage::Gpu(v)) => {
                    (*w, *m, *v) = gpu::adam_update(w, m, v, &g, adam, count)
                }
                _ => panic!("Adam state off the parameter's device"),
            }
        }
        _ => panic!("optimizer: a parameter and its state are on different devices"),
    }
}

/// A few u32 counters that a training step fills on its device (correct
/// predictions, non-finite values), read back with the loss in one readback:
/// the step's metrics, without the host waiting inside the step.
pub enum StepCounters {
    Cpu(std::cell::RefCell<Vec<u32>>),
    Gpu { counters: Rc<gpu::Buffer>, n: usize },
}

impl StepCounters {
    /// `n` zeroed counters on `device`.
    pub fn new(device: &Device, n: usize) -> StepCounters {
        match device {
            Device::Cpu => StepCounters::Cpu(std::cell::RefCell::new(vec![0; n])),
            Device::Gpu(g) => StepCounters::Gpu { counters: gpu::counters(g, n), n },
        }
    }

    /// Adds to counter `slot` the rows of `logits` (`[.., classes]`) whose first
    /// maximum is the row's label.
    pub fn count_correct(&self, slot: usize, logits: &Storage, labels: &[usize]) {
        match (self, logits) {
            (StepCounters::Cpu(c), Storage::Cpu(x)) => c.borrow_mut()[slot] += cpu::count_correct(x, labels),
            (StepCounters::Gpu { counters: c, .. }, Storage::Gpu(x)) => {
                let labels: Vec<u32> = labels.iter().map(|&y| y as u32).collect();
                gpu::count_correct(x, &x.gpu().upload_u32(&labels), c, slot);
            }
            _ => panic!("step counters and logits on different devices"),
        }
    }

    /// Adds `n` to counter `slot` (counts made elsewhere: data-parallel parts).
    ///
    /// # Panics
    /// For GPU counters, which only kernels add to.
    pub fn add(&self, slot: usize, n: u32) {
        match self {
            StepCounters::Cpu(c) => c.borrow_mut()[slot] += n,
            StepCounters::Gpu { .. } => panic!("GPU step counters are added to by kernels"),
        }
    }

    /// Adds to counter `slot` the NaN and infinite values of `x`.
    pub fn count_nonfinite(&self, slot: usize, x: &Storage) {
        match (self, x) {
            (StepCounters::Cpu(c), Storage::Cpu(x)) => c.borrow_mut()[slot] += cpu::array::count_nonfinite(x),
            (StepCounters::Gpu { counters: c, .. }, Storage::Gpu(x)) => gpu::count_nonfinite(x, c, slot),
            (StepCounters::Gpu { counters: c, .. }, Storage::Cpu(x)) => {
                let x = Storage::Cpu(x.clone()).upload_to(&Device::Gpu(c.gpu().clone()));
                self.count_nonfinite(slot, &x);
            }
            _ => panic!("step counters on the CPU, values on the GPU"),
        }
    }

    /// The bits of `scalar`'s first value (the loss), then the counters, in one
    /// readback; ready at once on the CPU.
    pub async fn read(&self, scalar: &Storage) -> Result<Vec<u32>, GpuError> {
        match (self, scalar) {
            (StepCounters::Cpu(c), Storage::Cpu(s)) => {
                let first = s.iter().next().copied().unwrap_or(f32::NAN);
                Ok(std::iter::once(first.to_bits()).chain(c.borrow().iter().copied()).collect())
            }
            (StepCounters::Gpu { counters: c, n }, Storage::Gpu(s)) => {
                let n = *n;
                let mut words = vec![(s.raw(), s.offset)];
                words.extend((0..n).map(|i| (c.raw(), i)));
                s.gpu().read_words(&words).await
            }
            _ => Err(GpuError("step counters and the loss on different devices".into())),
        }
    }
}

/// The output of a future that is ready at once: CPU work behind an async
/// interface (a CPU checkpoint's `to_host`, a CPU step's metrics).
///
/// # Panics
/// When the future is pending: GPU work must be awaited.
pub fn ready<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut std::task::Context::from_waker(std::task::Waker::noop())) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("CPU work behind a future needs no waiting; GPU work must be awaited"),
    }
}
