//! The backend's op vocabulary, shared by the CPU and the GPU: elementwise
//! ops, convolution and pooling windows, and matrix products.

/// Elementwise operations (the GPU's `MAP` kernel takes the number).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MapOp {
    Add = 0,
    Sub = 1,
    Mul = 2,
    Div = 3,
    /// `g` where `x > 0`, for `(g, x)`.
    ReluGrad = 4,
    /// `g (1 - y^2)`, for `(g, y)`.
    TanhGrad = 5,
    /// `g y (1 - y)`, for `(g, y)`.
    SigmoidGrad = 6,
    /// `g gelu'(x)`, for `(g, x)`.
    GeluGrad = 7,
    /// `g / (2 y)`, for `(g, y)`.
    SqrtGrad = 8,
    Exp = 16,
    Log = 17,
    Sqrt = 18,
    Relu = 19,
    Tanh = 20,
    Sigmoid = 21,
    Gelu = 22,
    Scale = 23,
    Offset = 24,
}

/// The geometry of a 2-d convolution or pooling window over NCHW input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    /// Padding: top, bottom, left, right (TF "same" padding may be asymmetric).
    pub pad: [usize; 4],
}

impl Window {
    pub fn out_h(&self) -> usize {
        (self.h + self.pad[0] + self.pad[1] - self.kh) / self.sh + 1
    }
    pub fn out_w(&self) -> usize {
        (self.w + self.pad[2] + self.pad[3] - self.kw) / self.sw + 1
    }
}

/// A batched matrix product `C[b] = A[b] @ B[b]` with `C` `[batch·m, n]`
/// contiguous: `A[b]` is `[m, k]` and `B[b]` `[k, n]` as read, each stored in
/// row-major element order, or stored transposed (`[k, m]`, `[n, k]`) when
/// `transpose_a` / `transpose_b` say so; `B` is one matrix for the whole batch
/// unless `b_batched`. Build with `Gemm::matrix` or `Gemm::batched`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gemm {
    pub batch: usize,
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub transpose_a: bool,
    pub transpose_b: bool,
    pub b_batched: bool,
}

impl Gemm {
    /// One product `[m, k] @ [k, n]`.
    pub fn matrix(m: usize, k: usize, n: usize) -> Gemm {
        Gemm { batch: 1, m, k, n, transpose_a: false, transpose_b: false, b_batched: false }
    }

    /// `batch` products, each with its own `B`.
    pub fn batched(batch: usize, m: usize, k: usize, n: usize) -> Gemm {
        Gemm { batch, m, k, n, transpose_a: false, transpose_b: false, b_batched: true }
    }

    /// `A` stored transposed (`[k, m]`).
    pub fn a_transposed(self) -> Gemm {
        Gemm { transpose_a: true, ..self }
    }

    /// `B` stored transposed (`[n, k]`).
    pub fn b_transposed(self) -> Gemm {
        Gemm { transpose_b: true, ..self }
    }
}

/// The cell of a recurrent layer (`Tensor::recurrent`): SimpleRNN (tanh),
/// LSTM or GRU, with PyTorch's gates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recurrence {
    /// Elman: `h' = tanh(W_ih x + b_ih + W_hh h + b_hh)` (PyTorch `nn.RNN`).
    Rnn,
    /// PyTorch's `nn.LSTM`, gate order (i, f, g, o).
    Lstm,
    /// PyTorch's `nn.GRU`, gates (r, z, n); the reset gate scales `W_hn h + b_hn`.
    Gru,
}

impl Recurrence {
    /// Gate blocks in the weight matrices (G).
    pub fn gates(self) -> usize {
        match self {
            Recurrence::Rnn => 1,
            Recurrence::Lstm => 4,
            Recurrence::Gru => 3,
        }
    }
}
