//! Layers, one file per layer type (as candle-nn and burn keep them): its config
//! (the spec's fields, Keras's names, defaults resolved once in accessors), its
//! palette default, its shape inference, its parameters (PyTorch's names and
//! layouts, Keras's initialisers), the module it builds and that module's forward
//! pass, and its role for the views.
//!
//! `layer_table!` at the end of this file is the one list of layer types. It
//! generates the spec's [`LayerSpec`] enum (serde, tagged by `"type"`),
//! [`LAYER_TYPES`], the palette's [`LAYER_GROUPS`] and the dispatch from a
//! `LayerSpec` to its config. Adding a layer is one file here whose config
//! implements [`LayerConfig`] (and builds a [`Module`]), one line in the table,
//! and the arms the exporters' `match`es then ask for (they have no catch-all).
//! Families that PyTorch keeps together share a file: the five activation
//! layers (`activation.rs`), the two poolings (`pooling.rs`) and the three
//! recurrent layers (`recurrent.rs`).

pub mod activation;
pub mod conv2d;
pub mod dense;
pub mod dropout;
pub mod embedding;
pub mod error;
pub mod flatten;
pub mod global_average_pooling1d;
pub mod layer_normalization;
pub mod multi_head_attention;
pub mod patchify;
pub mod pooling;
pub mod positional_embedding;
pub mod recurrent;
pub mod reshape;
pub mod transformer_encoder;

use ndarray::{ArrayD, IxDyn};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::tensor::Tensor;

pub use error::{Fix, SpecError};

pub use activation::Activation;
pub use conv2d::Padding;
pub use positional_embedding::PositionKind;

/// The most units, filters, heads, `ff_dim`, `key_dim`, `input_dim` or
/// `output_dim` one layer may have.
pub const MAX_WIDTH: usize = 65_536;
/// The largest kernel, pool, stride or patch size.
pub const MAX_WINDOW: usize = 1024;
/// The most parameters one layer may have, and the most values one example may
/// occupy in a layer's output or unfolded patches: beyond these a model would not
/// fit in a browser tab (wasm32 has 4 GiB in all).
pub const MAX_LAYER_PARAMS: usize = 50_000_000;
pub const MAX_VALUES_PER_EXAMPLE: usize = 16_000_000;

/// Training (dropout active, drawing from the generator) or evaluation.
pub enum Mode<'a> {
    Train(&'a mut ChaCha8Rng),
    Eval,
}

/// What a layer is to the views that show a model's insides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Nothing to show beyond its output.
    Plain,
    /// Has filters `[filters, channels, kh, kw]` and feature maps (the filter view).
    Convolution,
    /// Has a hidden state per time step (the memory view).
    Recurrent,
    /// Has attention weights `[heads, T, T]` (the attention view).
    Attention,
}

/// A size given as one number (square) or as `[height, width]`, as Keras allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Size2 {
    Square(usize),
    Rect([usize; 2]),
}

impl Size2 {
    /// `[height, width]`.
    pub fn hw(self) -> [usize; 2] {
        match self {
            Size2::Square(s) => [s, s],
            Size2::Rect(r) => r,
        }
    }
}

/// How a parameter starts: Keras's initialisers, in PyTorch's layouts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    Zeros,
    Ones,
    /// Uniform in `[-l, l]`, `l = sqrt(6 / (fan_in + fan_out))` (Glorot and
    /// Bengio 2010; Keras's `glorot_uniform`, its default kernel initialiser).
    GlorotUniform {
        fan_in: usize,
        fan_out: usize,
    },
    /// Uniform in `[-limit, limit]` (Keras's `Embedding` uses 0.05).
    Uniform(f32),
    /// Normal with mean 0 and this standard deviation.
    Normal(f32),
    /// A `[rows, cols]` matrix with orthonormal columns (Keras's
    /// `recurrent_initializer`, Saxe et al. 2013; Gram-Schmidt on normal samples).
    Orthogonal,
    /// Zeros, with ones on `[units, 2 * units)`: the forget gate of PyTorch's
    /// gate order (i, f, g, o) starts open (Keras's `unit_forget_bias`).
    ForgetGateOnes {
        units: usize,
    },
}

impl Init {
    /// Glorot-uniform for a `[out, in]` weight.
    pub fn glorot(shape: [usize; 2]) -> Init {
        Init::GlorotUniform { fan_in: shape[1], fan_out: shape[0] }
    }

    /// A tensor of `shape` drawn from `rng` (zeros and ones draw nothing).
    pub fn sample(self, shape: &[usize], rng: &mut ChaCha8Rng) -> ArrayD<f32> {
        match self {
            Init::Zeros => ArrayD::zeros(IxDyn(shape)),
            Init::Ones => ArrayD::ones(IxDyn(shape)),
            Init::GlorotUniform { fan_in, fan_out } => {
                crate::tensor::random_uniform(shape, (6.0 / (fan_in + fan_out) as f32).sqrt(), rng)
            }
            Init::Uniform(limit) => crate::tensor::random_uniform(shape, limit, rng),
            Init::Normal(std) => crate::tensor::random_normal(shape, std, rng),
            Init::Orthogonal => orthogonal(shape[0], shape[1], rng),
            Init::ForgetGateOnes { units } => {
                let mut b = ArrayD::zeros(IxDyn(shape));
                b.slice_mut(ndarray::s![units..2 * units]).fill(1.0);
                b
            }
        }
    }
}

/// A `[rows, cols]` matrix (rows >= cols) with orthonormal columns.
fn orthogonal(rows: usize, cols: usize, rng: &mut ChaCha8Rng) -> ArrayD<f32> {
    let a = crate::tensor::random_normal(&[cols, rows], 1.0, rng);
    let mut q: Vec<Vec<f64>> = Vec::with_capacity(cols);
    for k in 0..cols {
        let mut v: Vec<f64> = (0..rows).map(|r| a[[k, r]] as f64).collect();
        for u in &q {
            let d: f64 = v.iter().zip(u).map(|(a, b)| a * b).sum();
            v.iter_mut().zip(u).for_each(|(a, b)| *a -= d * b);
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
        v.iter_mut().for_each(|x| *x /= norm);
        q.push(v);
    }
    ArrayD::from_shape_fn(IxDyn(&[rows, cols]), |i| q[i[1]][i[0]] as f32)
}

/// One parameter of a layer: its name in PyTorch's state dict (within the
/// layer: `"weight"`, `"self_attn.in_proj_weight"`), its shape and how it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    pub name: String,
    pub shape: Vec<usize>,
    pub init: Init,
}

impl Param {
    pub fn new(name: impl Into<String>, shape: Vec<usize>, init: Init) -> Param {
        Param { name: name.into(), shape, init }
    }
}

/// A layer's parameter tensors, handed to its `build` in the order of its
/// `params`; `take` checks the name, so the two cannot drift apart.
pub struct Params(std::iter::Peekable<std::vec::IntoIter<(String, Tensor)>>);

impl Params {
    pub(crate) fn new(named: Vec<(String, Tensor)>) -> Params {
        Params(named.into_iter().peekable())
    }

    /// The next parameter, which `params` named `name`.
    ///
    /// # Panics
    /// When `params` and `build` disagree: a bug in the layer's file, which
    /// every layer's test catches.
    pub fn take(&mut self, name: &str) -> Tensor {
        match self.0.next() {
            Some((n, t)) if n == name => t,
            other => panic!("layer parameters out of order: expected {name}, got {:?}", other.map(|(n, _)| n)),
        }
    }

    /// The next parameter if it is named `name` (an optional bias).
    pub fn take_if(&mut self, name: &str) -> Option<Tensor> {
        self.0.next_if(|(n, _)| n == name).map(|(_, t)| t)
    }
}

/// A layer's place in a model, for shape inference and its messages.
pub struct Context<'a> {
    /// 0-based index in the spec's `layers`.
    pub index: usize,
    pub type_name: &'static str,
    /// The input shape of one example (no batch axis).
    pub input: &'a [usize],
    pub previous: Option<&'a LayerSpec>,
    /// The vocabulary, when the model's input is token ids.
    pub token_vocab: Option<usize>,
}

impl Context<'_> {
    /// A `SpecError` pinned to this layer.
    pub fn error(&self, message: impl Into<String>, fix: Option<Fix>) -> SpecError {
        SpecError::layer(self.index, self.type_name, message, fix)
    }

    /// `Err` of [`Context::error`].
    pub fn fail<T>(&self, message: impl Into<String>, fix: Option<Fix>) -> Result<T, SpecError> {
        Err(self.error(message, fix))
    }

    /// The size of the input's last axis (features).
    pub fn features(&self) -> usize {
        self.input.last().copied().unwrap_or(0)
    }

    /// `[steps, features]`, or an error suggesting the Reshape that makes it.
    pub fn sequence_input(&self) -> Result<[usize; 2], SpecError> {
        let input = self.input;
        if let [t, f] = *input {
            return Ok([t, f]);
        }
        let suggestion: Vec<i64> = match input {
            [1, h, w] => vec![*h as i64, *w as i64],
            [first, rest @ ..] if !rest.is_empty() => vec![*first as i64, volume(rest) as i64],
            _ => vec![],
        };
        let from = match self.previous {
            None => "the input".to_string(),
            Some(p) => format!("layer {} {}", self.index - 1, p.type_name()),
        };
        let message = if suggestion.is_empty() {
            format!("expects a sequence [steps, features] but gets {input:?} from {from}; reshape it to [steps, features] first")
        } else {
            format!("expects a sequence [steps, features] but gets {input:?} from {from}; insert Reshape {suggestion:?} before it")
        };
        let fix = (!suggestion.is_empty()).then(|| Fix::Insert { index: self.index, layer: reshape::to(suggestion) });
        self.fail(message, fix)
    }

    /// `[channels, height, width]`, or an error suggesting the Reshape that makes it.
    pub fn image_input(&self) -> Result<[usize; 3], SpecError> {
        let input = self.input;
        if let [c, h, w] = *input {
            return Ok([c, h, w]);
        }
        let total: usize = input.iter().product();
        let side = (total as f64).sqrt().round() as usize;
        let suggestion = match input {
            [h, w] => Some(vec![1, *h as i64, *w as i64]),
            [_] if side * side == total => Some(vec![1, side as i64, side as i64]),
            _ => None,
        };
        let message = match &suggestion {
            Some(s) => {
                format!("expects an image [channels, height, width] but gets {input:?}; insert Reshape {s:?} before it")
            }
            None => {
                format!(
                    "expects an image [channels, height, width] but gets {input:?}; reshape its input to 3 axes first"
                )
            }
        };
        self.fail(message, suggestion.map(|s| Fix::Insert { index: self.index, layer: reshape::to(s) }))
    }
}

/// The number of values in `shape`, saturating instead of wrapping.
pub fn volume(shape: &[usize]) -> usize {
    shape.iter().fold(1usize, |a, &d| a.saturating_mul(d))
}

/// A count a layer takes (`units`, `kernel_size`, ...) and the most it may be;
/// checked before any arithmetic on it.
pub struct Limit {
    pub field: &'static str,
    pub value: usize,
    pub max: usize,
}

impl Limit {
    /// A width (units, filters, heads, dimensions), at most `MAX_WIDTH`.
    pub fn width(field: &'static str, value: usize) -> Limit {
        Limit { field, value, max: MAX_WIDTH }
    }

    /// Both sides of a window (kernel, pool, stride, patch), at most `MAX_WINDOW`.
    pub fn window(field: &'static str, size: Option<Size2>) -> Vec<Limit> {
        size.map_or(vec![], |s| s.hw().into_iter().map(|value| Limit { field, value, max: MAX_WINDOW }).collect())
    }
}

/// What every layer type's config provides. Shapes exclude the batch axis.
pub trait LayerConfig {
    /// The layer the palette adds: sensible starting parameters.
    fn palette_default() -> Self
    where
        Self: Sized;

    /// The spec fields this layer takes, in display order (optional ones included).
    fn param_names() -> &'static [&'static str]
    where
        Self: Sized;

    /// One line for the palette: what the layer does, and to the shape.
    fn description() -> &'static str
    where
        Self: Sized;

    /// The activation this layer applies at its end, if it is one or has one.
    fn activation(&self) -> Option<Activation> {
        None
    }

    fn role(&self) -> Role {
        Role::Plain
    }

    /// The counts this layer takes, with their stated maxima.
    fn limits(&self) -> Vec<Limit> {
        vec![]
    }

    /// The output shape for `cx.input`, or the mistake (naming the field, the
    /// shapes and a fix).
    fn infer(&self, cx: &Context) -> Result<Vec<usize>, SpecError>;

    /// The parameters, in state-dict order, for an input and output shape that
    /// `infer` accepted.
    fn params(&self, _input: &[usize], _output: &[usize]) -> Vec<Param> {
        vec![]
    }

    /// Checks what one example occupies in this layer's working memory beyond
    /// its output (a convolution's unfolded patches) against
    /// `MAX_VALUES_PER_EXAMPLE`; the error is the message.
    fn check_working_memory(&self, _input: &[usize], _output: &[usize]) -> Result<(), String> {
        Ok(())
    }

    /// The module, with `params` holding the tensors of `self.params(..)` in order.
    fn build(&self, input: &[usize], output: &[usize], params: &mut Params) -> Box<dyn Module>;
}

/// A built layer: its forward pass over a batch, and what the views read.
pub trait Module {
    /// `x` is `[batch, ..input shape]`. `fold_softmax`: this layer's softmax is
    /// the model's output softmax, which the loss applies (left out here).
    fn forward(&self, x: &Tensor, mode: &mut Mode, fold_softmax: bool) -> Tensor;

    /// Tensors the module holds that are not parameters (a sinusoidal table),
    /// to move with the model to another device.
    fn constants(&self) -> Vec<Tensor> {
        vec![]
    }

    /// For `Role::Recurrent`: the hidden state at every step, `[batch, T, units]`.
    fn hidden_states(&self, _x: &Tensor) -> Option<Tensor> {
        None
    }

    /// For `Role::Convolution`: the filters `[filters, channels, kh, kw]`.
    fn filters(&self) -> Option<Tensor> {
        None
    }
}

/// A module with no parameters whose forward pass is a function of its input.
pub(crate) struct Stateless<F>(pub F);

impl<F: Fn(&Tensor, &mut Mode, bool) -> Tensor> Module for Stateless<F> {
    fn forward(&self, x: &Tensor, mode: &mut Mode, fold_softmax: bool) -> Tensor {
        (self.0)(x, mode, fold_softmax)
    }
}

/// `x W^T + b` over the last axis (`W` is `[out, in]`, as PyTorch's `nn.Linear`).
pub fn linear(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Tensor {
    x.linear(w, b)
}

macro_rules! layer_table {
    (groups: [$($group:literal),* $(,)?], layers: [$($name:ident => $module:ident in $in:literal),* $(,)?] $(,)?) => {
        /// One layer, with Keras's names and parameters (`{"type": "Dense",
        /// "units": 64}`). Each variant's config is in its file under
        /// `src/nn/layers/`; parameter layouts are PyTorch's.
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "type")]
        pub enum LayerSpec {
            $($name($module::$name),)*
        }

        $(pub use $module::$name;)*

        /// Every layer type the spec accepts, with its palette group.
        const TABLE: &[(&str, &str)] = &[$((stringify!($name), $in)),*];

        /// Every layer type the spec accepts.
        pub const LAYER_TYPES: &[&str] = &[$(stringify!($name)),*];

        /// The palette: layer families and their types, in the table's order.
        pub const LAYER_GROUPS: &[(&str, &[&str])] = &[$(($group, &group_types::<{ group_len($group) }>($group))),*];

        // Every layer is in a listed group (a misspelt group fails the build).
        const _: () = {
            let mut i = 0;
            while i < TABLE.len() {
                let mut found = false;
                $(found |= str_eq(TABLE[i].1, $group);)*
                assert!(found, "a layer's group is not in the table's groups");
                i += 1;
            }
        };

        impl LayerSpec {
            /// The layer's config, for dispatch.
            pub fn config(&self) -> &dyn LayerConfig {
                match self {
                    $(LayerSpec::$name(c) => c,)*
                }
            }

            /// The type name as written in a spec (`"Dense"`).
            pub fn type_name(&self) -> &'static str {
                match self {
                    $(LayerSpec::$name(_) => stringify!($name),)*
                }
            }

            /// A layer of type `ty` with sensible starting parameters, for the
            /// palette; `None` for a name that is not in [`LAYER_TYPES`].
            pub fn default_for(ty: &str) -> Option<LayerSpec> {
                match ty {
                    $(stringify!($name) => Some(LayerSpec::$name(<$module::$name as LayerConfig>::palette_default())),)*
                    _ => None,
                }
            }

            /// What a layer type does, in one line (the palette's tooltip);
            /// empty for an unknown type.
            pub fn description(ty: &str) -> &'static str {
                match ty {
                    $(stringify!($name) => <$module::$name as LayerConfig>::description(),)*
                    _ => "",
                }
            }

            /// The parameters a layer type takes, in display order (optional
            /// ones included); empty for an unknown type.
            pub fn param_names(ty: &str) -> &'static [&'static str] {
                match ty {
                    $(stringify!($name) => <$module::$name as LayerConfig>::param_names(),)*
                    _ => &[],
                }
            }
        }
    };
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

const fn group_len(group: &str) -> usize {
    let (mut n, mut i) = (0, 0);
    while i < TABLE.len() {
        if str_eq(TABLE[i].1, group) {
            n += 1;
        }
        i += 1;
    }
    n
}

const fn group_types<const N: usize>(group: &str) -> [&'static str; N] {
    let mut out = [""; N];
    let (mut n, mut i) = (0, 0);
    while i < TABLE.len() {
        if str_eq(TABLE[i].1, group) {
            out[n] = TABLE[i].0;
            n += 1;
        }
        i += 1;
    }
    out
}

// The one list of layer types. Its order is the order of `LAYER_TYPES` (and of
// the "known types" in messages) and, within each group, of the palette.
layer_table! {
    groups: ["Core", "Convolution", "Recurrent", "Attention"],
    layers: [
        Dense => dense in "Core",
        Conv2D => conv2d in "Convolution",
        MaxPool2D => pooling in "Convolution",
        AveragePool2D => pooling in "Convolution",
        Flatten => flatten in "Core",
        Dropout => dropout in "Core",
        Reshape => reshape in "Core",
        ReLU => activation in "Core",
        Tanh => activation in "Core",
        Sigmoid => activation in "Core",
        GELU => activation in "Core",
        Softmax => activation in "Core",
        SimpleRNN => recurrent in "Recurrent",
        LSTM => recurrent in "Recurrent",
        GRU => recurrent in "Recurrent",
        Embedding => embedding in "Attention",
        Patchify => patchify in "Attention",
        PositionalEmbedding => positional_embedding in "Attention",
        MultiHeadAttention => multi_head_attention in "Attention",
        TransformerEncoder => transformer_encoder in "Attention",
        LayerNormalization => layer_normalization in "Attention",
        GlobalAveragePooling1D => global_average_pooling1d in "Attention",
    ],
}

impl LayerSpec {
    /// The activation this layer applies at its end, if it is one or has one.
    pub fn activation(&self) -> Option<Activation> {
        self.config().activation()
    }

    /// What the layer is to the views.
    pub fn role(&self) -> Role {
        self.config().role()
    }
}
