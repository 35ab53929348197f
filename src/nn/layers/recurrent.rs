//! `SimpleRNN`, `LSTM` and `GRU`: recurrent layers over `[steps, features]`,
//! unrolled in time from a zero state, with PyTorch's parameters
//! (`weight_ih_l0` `[G*units, features]`, `weight_hh_l0` `[G*units, units]`,
//! `bias_ih_l0`, `bias_hh_l0` `[G*units]`, with G gate blocks).

use serde::{Deserialize, Serialize};

use super::SpecError;
use super::{Context, Init, LayerConfig, Limit, Mode, Module, Param, Params, Role};
use crate::autograd::ops::Recurrence;
use crate::tensor::Tensor;

/// The cell a recurrent layer runs at each step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cell {
    /// Elman: `h' = tanh(W_ih x + b_ih + W_hh h + b_hh)` (PyTorch `nn.RNN`).
    Rnn,
    /// PyTorch's `nn.LSTM`, gate order (i, f, g, o).
    Lstm,
    /// PyTorch's `nn.GRU`, gates (r, z, n); the reset gate scales `W_hn h + b_hn`.
    Gru,
}

impl Cell {
    /// Gate blocks in the weight matrices.
    pub fn gates(self) -> usize {
        match self {
            Cell::Rnn => 1,
            Cell::Lstm => 4,
            Cell::Gru => 3,
        }
    }
}

macro_rules! recurrent_layer {
    ($($(#[$doc:meta])* $name:ident => $cell:ident,)*) => {$(
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            pub units: usize,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub return_sequences: Option<bool>,
        }

        impl $name {
            /// Whether it outputs every step's state `[steps, units]` rather
            /// than the last `[units]` (Keras's default: the last).
            pub fn return_sequences(&self) -> bool {
                self.return_sequences.unwrap_or(false)
            }
        }

        impl LayerConfig for $name {
            fn palette_default() -> Self {
                $name { units: 64, return_sequences: None }
            }

            fn param_names() -> &'static [&'static str] {
                &["units", "return_sequences"]
            }

            fn role(&self) -> Role {
                Role::Recurrent
            }

            fn limits(&self) -> Vec<Limit> {
                vec![Limit::width("units", self.units)]
            }

            fn infer(&self, cx: &Context) -> Result<Vec<usize>, SpecError> {
                infer(cx, self.units, self.return_sequences())
            }

            fn params(&self, input: &[usize], _output: &[usize]) -> Vec<Param> {
                params(Cell::$cell, self.units, input[1])
            }

            fn build(&self, _input: &[usize], _output: &[usize], p: &mut Params) -> Box<dyn Module> {
                Box::new(Recurrent::new(Cell::$cell, self.units, self.return_sequences(), p))
            }
        }
    )*};
}

recurrent_layer! {
    /// Elman RNN with tanh (PyTorch `nn.RNN`): input `[steps, features]`.
    SimpleRNN => Rnn,
    /// LSTM with PyTorch's gate order (i, f, g, o) and parameters.
    LSTM => Lstm,
    /// GRU as PyTorch's (gates r, z, n; the reset gate scales `W_hn h + b_hn`).
    GRU => Gru,
}

fn infer(cx: &Context, units: usize, return_sequences: bool) -> Result<Vec<usize>, SpecError> {
    if units == 0 {
        return cx.fail("units must be at least 1", None);
    }
    let [steps, _] = cx.sequence_input()?;
    Ok(if return_sequences { vec![steps, units] } else { vec![units] })
}

fn params(cell: Cell, units: usize, features: usize) -> Vec<Param> {
    let g = cell.gates() * units;
    let bias_ih = if cell == Cell::Lstm { Init::ForgetGateOnes { units } } else { Init::Zeros };
    vec![
        Param::new("weight_ih_l0", vec![g, features], Init::glorot([g, features])),
        Param::new("weight_hh_l0", vec![g, units], Init::Orthogonal),
        Param::new("bias_ih_l0", vec![g], bias_ih),
        Param::new("bias_hh_l0", vec![g], Init::Zeros),
    ]
}

struct Recurrent {
    cell: Cell,
    units: usize,
    w_ih: Tensor,
    w_hh: Tensor,
    b_ih: Tensor,
    b_hh: Tensor,
    return_sequences: bool,
}

impl Recurrent {
    fn new(cell: Cell, units: usize, return_sequences: bool, p: &mut Params) -> Recurrent {
        Recurrent {
            cell,
            units,
            w_ih: p.take("weight_ih_l0"),
            w_hh: p.take("weight_hh_l0"),
            b_ih: p.take("bias_ih_l0"),
            b_hh: p.take("bias_hh_l0"),
            return_sequences,
        }
    }

    /// The layer over `x` `[N, T, I]`: the last hidden state `[N, H]`, or
    /// every one `[N, T, H]`. On the GPU as one op (`run_fused`), on the CPU
    /// step by step from primitives (`run_steps`): the CPU's arrays are owned,
    /// so the fused op's per-step slices of the all-steps projection are
    /// copies, which made it slower there (W2 on 2 cores, one thread: 2,400
    /// training samples/s against 2,700 step by step, and inference at batch
    /// 1,000 2.5 times slower from allocating the projection).
    fn run(&self, x: &Tensor, return_sequences: bool) -> Tensor {
        if x.device().is_gpu() {
            self.run_fused(x, return_sequences)
        } else {
            self.run_steps(x, return_sequences)
        }
    }

    /// The input's gate pre-activations of every step in one GEMM
    /// (time-major), then the recurrence as one op with backpropagation
    /// through time inside (`Tensor::recurrence`, as PyTorch and cuDNN run
    /// it): per step one GEMM and the fused cell, so a GPU step dispatches
    /// about half as many kernels as `run_steps`.
    fn run_fused(&self, x: &Tensor, return_sequences: bool) -> Tensor {
        let s = x.shape();
        let (n, steps, features) = (s[0], s[1], s[2]);
        let h_dim = self.units;
        let gh = self.w_hh.shape()[0];
        // Time-major [T·N, I]: each step's rows are one block from here on.
        let x_tm = x.permute(&[1, 0, 2]).reshape(&[steps * n, features]);
        let xp = x_tm.matmul(&self.w_ih.transpose(0, 1)).add(&self.b_ih);
        let hs = match self.cell {
            // PyTorch: n = tanh(W_in x + b_in + r * (W_hn h + b_hn)); h' = (1 - z) n + z h,
            // so b_hh stays with the hidden state's half.
            Cell::Gru => xp.reshape(&[steps, n, gh]).recurrence(Recurrence::Gru, &self.w_hh, Some(&self.b_hh)),
            Cell::Lstm | Cell::Rnn => {
                let cell = if self.cell == Cell::Lstm { Recurrence::Lstm } else { Recurrence::Rnn };
                xp.add(&self.b_hh).reshape(&[steps, n, gh]).recurrence(cell, &self.w_hh, None)
            }
        };
        if return_sequences {
            hs.permute(&[1, 0, 2])
        } else {
            hs.slice(0, steps - 1, steps).reshape(&[n, h_dim])
        }
    }

    /// Step by step from primitives (backpropagation through time comes with
    /// them), the fused cells included.
    fn run_steps(&self, x: &Tensor, return_sequences: bool) -> Tensor {
        let s = x.shape();
        let (n, steps, features) = (s[0], s[1], s[2]);
        let h_dim = self.units;
        let (w_ih_t, w_hh_t) = (self.w_ih.transpose(0, 1), self.w_hh.transpose(0, 1));
        let mut h = Tensor::zeros(&[n, h_dim]);
        let mut c = Tensor::zeros(&[n, h_dim]);
        let mut outputs = Vec::with_capacity(if return_sequences { steps } else { 0 });
        for t in 0..steps {
            let x_t = x.slice(1, t, t + 1).reshape(&[n, features]);
            let gi = x_t.matmul(&w_ih_t).add(&self.b_ih); // [N, G*H]
            let gh = h.matmul(&w_hh_t).add(&self.b_hh);
            h = match self.cell {
                Cell::Rnn => gi.add(&gh).tanh(),
                Cell::Lstm => {
                    // [h | c'] from one fused op (see `Tensor::lstm_cell`).
                    let hc = gi.add(&gh).lstm_cell(&c);
                    c = hc.slice(1, h_dim, 2 * h_dim);
                    hc.slice(1, 0, h_dim)
                }
                // PyTorch: n = tanh(W_in x + b_in + r * (W_hn h + b_hn)); h' = (1 - z) n + z h
                Cell::Gru => gi.gru_cell(&gh, &h),
            };
            if return_sequences {
                outputs.push(h.reshape(&[n, 1, h_dim]));
            }
        }
        if return_sequences {
            Tensor::concat(&outputs, 1)
        } else {
            h
        }
    }
}

impl Module for Recurrent {
    fn forward(&self, x: &Tensor, _mode: &mut Mode, _fold_softmax: bool) -> Tensor {
        self.run(x, self.return_sequences)
    }

    fn hidden_states(&self, x: &Tensor) -> Option<Tensor> {
        Some(self.run(x, true))
    }
}
