//! `SimpleRNN`, `LSTM` and `GRU`: recurrent layers over `[steps, features]`,
//! unrolled in time from a zero state, with PyTorch's parameters
//! (`weight_ih_l0` `[G*units, features]`, `weight_hh_l0` `[G*units, units]`,
//! `bias_ih_l0`, `bias_hh_l0` `[G*units]`, with G gate blocks).

use serde::{Deserialize, Serialize};

use super::SpecError;
use super::{Context, Init, LayerConfig, Limit, Mode, Module, Param, Params, Role};

/// The cell a recurrent layer runs at each step (one enum with the op's).
pub use crate::autograd::ops::Recurrence as Cell;
use crate::tensor::Tensor;

macro_rules! recurrent_layer {
    ($($(#[$doc:meta])* $name:ident => $cell:ident: $description:literal,)*) => {$(
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

            fn description() -> &'static str {
                $description
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
    SimpleRNN => Rnn: "Reads a sequence step by step, keeping a state of units values: [T, features] becomes [units] (the last state), or [T, units] with return_sequences.",
    /// LSTM with PyTorch's gate order (i, f, g, o) and parameters.
    LSTM => Lstm: "An RNN with gates and a cell state that carry memory over long sequences: [T, features] becomes [units], or [T, units] with return_sequences.",
    /// GRU as PyTorch's (gates r, z, n; the reset gate scales `W_hn h + b_hn`).
    GRU => Gru: "A lighter gated RNN (update and reset gates): [T, features] becomes [units], or [T, units] with return_sequences.",
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
    /// every one `[N, T, H]`.
    ///
    /// One op with backpropagation through time inside
    /// (`Tensor::recurrent`, as PyTorch and cuDNN run it): the input's gate
    /// pre-activations of every step in one GEMM, then per step one GEMM
    /// and the fused cell; the weight gradients are one GEMM each over all
    /// steps.
    fn run(&self, x: &Tensor, return_sequences: bool) -> Tensor {
        let s = x.shape();
        let (n, steps) = (s[0], s[1]);
        let hs = x.recurrent(self.cell, &self.w_ih, &self.w_hh, &self.b_ih, &self.b_hh);
        let h_dim = self.units;
        if return_sequences {
            hs.permute(&[1, 0, 2])
        } else {
            hs.slice(0, steps - 1, steps).reshape(&[n, h_dim])
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
