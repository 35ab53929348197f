//! Export to PyTorch: plain, readable Python from a model spec.
//!
//! `model.py` has `build_model()`, an `nn.Sequential` whose `state_dict()` names
//! and shapes are layerlab's (`"{i}.{name}"`), so `weights.safetensors` loads
//! unchanged; `train.py` trains it with the spec's recipe and seed on one
//! machine or, under `torchrun`, with DistributedDataParallel on many;
//! `check.py` verifies that the PyTorch model gives layerlab's logits on a fixed
//! batch (`check.safetensors`). The spec is the single source of truth: every
//! layer type maps to one module.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::{bundle, describe_input, hw, model_name, py_float, File};
use crate::error::Result;
use crate::nn::spec::{Activation, LayerSpec, OptimizerSpec, Padding, PositionKind};
use crate::nn::{Model, ModelInfo, ModelSpec};

/// PyTorch's recurrent layers as Keras's (`RNN` is Keras's SimpleRNN): batch
/// first, returning every step's output or only the last one. Emitted once per
/// class a model uses: the file is written for `RNN`, and `LSTM`/`GRU` take its place.
const RECURRENT_HELPER: &str = include_str!("py/pytorch/recurrent.py");

/// Helper classes, each emitted only when a layer needs it (name, Python source).
const HELPERS: &[(&str, &str)] = &[
    ("Linear", include_str!("py/pytorch/linear.py")),
    ("Conv2d", include_str!("py/pytorch/conv2d.py")),
    ("Reshape", include_str!("py/pytorch/reshape.py")),
    ("Embedding", include_str!("py/pytorch/embedding.py")),
    ("PositionalEmbedding", include_str!("py/pytorch/positional_embedding.py")),
    ("SelfAttention", include_str!("py/pytorch/self_attention.py")),
    ("Patchify", include_str!("py/pytorch/patchify.py")),
    ("GlobalAveragePooling1D", include_str!("py/pytorch/global_average_pooling_1d.py")),
];

/// The module for an activation (None for linear); `output_softmax` leaves the output softmax
/// out, as layerlab does: the loss takes logits.
fn activation_module(a: Option<Activation>, output_softmax: bool) -> Option<&'static str> {
    match a? {
        Activation::Linear => None,
        Activation::Relu => Some("nn.ReLU()"),
        Activation::Tanh => Some("nn.Tanh()"),
        Activation::Sigmoid => Some("nn.Sigmoid()"),
        Activation::Gelu => Some("nn.GELU(approximate=\"tanh\")"),
        Activation::Softmax if output_softmax => None,
        Activation::Softmax => Some("nn.Softmax(dim=-1)"),
    }
}

/// One layer as a PyTorch module expression, and the helper classes it needs.
fn module(
    layer: &LayerSpec,
    input: &[usize],
    output: &[usize],
    output_softmax: bool,
    helpers: &mut BTreeSet<&'static str>,
) -> String {
    let mut need = |h: &'static str| {
        helpers.insert(h);
    };
    match layer {
        LayerSpec::Dense(l) => {
            let (fan_in, units) = (input.last().copied().unwrap_or(0), l.units);
            let bias = if l.use_bias() { "" } else { ", bias=False" };
            match activation_module(l.activation, output_softmax) {
                None => format!("nn.Linear({fan_in}, {units}{bias})"),
                Some(a) => {
                    need("Linear");
                    format!("Linear({fan_in}, {units}{bias}, activation={a})")
                }
            }
        }
        LayerSpec::Conv2D(l) => {
            let mut args = format!("{}, {}, kernel_size={}", input[0], l.filters, hw(l.kernel_size));
            if let Some(s) = l.strides.filter(|s| s.hw() != [1, 1]) {
                let _ = write!(args, ", stride={}", hw(s));
            }
            if !l.use_bias() {
                args.push_str(", bias=False");
            }
            let pad = l.pad(input, output);
            let same = l.padding() == Padding::Same && pad != [0; 4];
            let act = activation_module(l.activation, output_softmax);
            if !same && act.is_none() {
                return format!("nn.Conv2d({args})");
            }
            need("Conv2d");
            if same {
                // layerlab's pad is [top, bottom, left, right]; F.pad wants (left, right, top, bottom).
                let _ = write!(args, ", pad=({}, {}, {}, {})", pad[2], pad[3], pad[0], pad[1]);
            }
            if let Some(a) = act {
                let _ = write!(args, ", activation={a}");
            }
            format!("Conv2d({args})")
        }
        LayerSpec::MaxPool2D(l) => {
            format!("nn.MaxPool2d(kernel_size={}, stride={})", hw(l.pool_size), hw(l.stride_size()))
        }
        LayerSpec::AveragePool2D(l) => {
            format!("nn.AvgPool2d(kernel_size={}, stride={})", hw(l.pool_size), hw(l.stride_size()))
        }
        LayerSpec::Flatten(_) => "nn.Flatten()".into(),
        LayerSpec::Dropout(l) => format!("nn.Dropout({})", py_float(l.rate)),
        LayerSpec::Reshape(_) => {
            need("Reshape");
            format!("Reshape({})", output.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "))
        }
        LayerSpec::ReLU(_)
        | LayerSpec::Tanh(_)
        | LayerSpec::Sigmoid(_)
        | LayerSpec::GELU(_)
        | LayerSpec::Softmax(_) => {
            activation_module(layer.activation(), output_softmax).unwrap_or("nn.Identity()").to_string()
        }
        LayerSpec::SimpleRNN(l) => recurrent("RNN", input[1], l.units, l.return_sequences(), &mut need),
        LayerSpec::LSTM(l) => recurrent("LSTM", input[1], l.units, l.return_sequences(), &mut need),
        LayerSpec::GRU(l) => recurrent("GRU", input[1], l.units, l.return_sequences(), &mut need),
        LayerSpec::LayerNormalization(l) => {
            format!("nn.LayerNorm({}, eps={})", input.last().copied().unwrap_or(0), py_float(l.epsilon()))
        }
        LayerSpec::PositionalEmbedding(l) => {
            need("PositionalEmbedding");
            let learned = if l.kind == PositionKind::Learned { "" } else { ", learned=False" };
            format!("PositionalEmbedding({}, {}{learned})", input[0], input[1])
        }
        LayerSpec::MultiHeadAttention(l) => {
            need("SelfAttention");
            let causal = if l.causal() { ", causal=True" } else { "" };
            format!("SelfAttention({}, {}{causal})", input[1], l.num_heads)
        }
        LayerSpec::TransformerEncoder(l) => {
            let act = match l.activation() {
                Activation::Gelu => "gelu_tanh",
                _ => "\"relu\"",
            };
            format!(
                "nn.TransformerEncoderLayer({}, {}, dim_feedforward={}, dropout={}, activation={act}, batch_first=True, norm_first={})",
                input[1],
                l.num_heads,
                l.ff_dim,
                py_float(l.dropout()),
                if l.norm_first() { "True" } else { "False" }
            )
        }
        LayerSpec::Patchify(l) => {
            need("Patchify");
            format!("Patchify({})", l.patch_size)
        }
        LayerSpec::GlobalAveragePooling1D(_) => {
            need("GlobalAveragePooling1D");
            "GlobalAveragePooling1D()".into()
        }
        LayerSpec::Embedding(l) => {
            need("Embedding");
            format!("Embedding({}, {})", l.input_dim, l.output_dim)
        }
    }
}

/// A recurrent helper class (`RNN`, `LSTM`, `GRU`) over `features` inputs.
fn recurrent(
    class: &'static str,
    features: usize,
    units: usize,
    seq: bool,
    need: &mut impl FnMut(&'static str),
) -> String {
    need(class);
    let seq = if seq { ", return_sequences=True" } else { "" };
    format!("{class}({features}, {units}{seq})")
}

/// `model.py`: the helper classes the model needs and `build_model()`.
pub fn model_py(spec: &ModelSpec, info: &ModelInfo) -> String {
    let mut helpers = BTreeSet::new();
    let mut lines = Vec::new();
    for (i, (layer, li)) in spec.layers.iter().zip(&info.layers).enumerate() {
        // The output softmax is the loss's (decided once, in the spec).
        let output_softmax = info.softmax_output == Some(i);
        let m = module(layer, &li.input_shape, &li.output_shape, output_softmax, &mut helpers);
        let mut comment = format!("{i} {} -> {:?}", layer.type_name(), li.output_shape);
        if output_softmax {
            comment.push_str(" (softmax left out: the loss takes logits)");
        }
        lines.push(format!("        {m},  # {comment}"));
    }
    let uses_gelu =
        spec.layers.iter().any(|l| matches!(l, LayerSpec::TransformerEncoder(t) if t.activation() == Activation::Gelu));
    // User text: escaped so that no name can end the docstring.
    let name = crate::escape::python_doc_text(model_name(spec));
    let dims = |shape: &[usize]| shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ");
    let (batch_shape, out_shape) = (dims(&info.input_shape), dims(&info.output_shape));
    let mut out = format!(
        r#""""The {name} model, exported from layerlab.

build_model() returns an nn.Sequential whose state_dict() has layerlab's names
and shapes, so the exported weights load unchanged:

    model = build_model()
    model.load_state_dict(safetensors.torch.load_file("weights.safetensors"))

Input: {input}, batched: [batch, {batch_shape}].
Output: logits [batch, {out_shape}] (no softmax: nn.CrossEntropyLoss takes logits).
{params} parameters.
"""
import functools

import torch
import torch.nn.functional as F
from torch import nn

"#,
        input = describe_input(spec),
        params = info.total_params,
    );
    if uses_gelu {
        out.push_str("# GELU in its tanh form, as layerlab (and the benchmark) compute it.\ngelu_tanh = functools.partial(F.gelu, approximate=\"tanh\")\n\n");
    }
    super::push_used(&mut out, HELPERS, &helpers);
    let recurrent: Vec<(&str, String)> =
        ["RNN", "LSTM", "GRU"].iter().map(|&c| (c, RECURRENT_HELPER.replace("RNN", c))).collect();
    super::push_used(&mut out, &recurrent, &helpers);
    out.push_str("\ndef build_model():\n    return nn.Sequential(\n");
    out.push_str(&lines.join("\n"));
    out.push_str("\n    )\n");
    if !uses_gelu {
        out = out.replace("import functools\n\n", "");
    }
    out
}

/// `train.py`: the spec's recipe (optimizer, learning rate, batch, epochs, seed)
/// on its data set, on one process or many (torchrun + DDP).
pub fn train_py(spec: &ModelSpec) -> String {
    let t = &spec.training;
    let (optimizer, class) = match t.optimizer {
        // Keras's Adam update (epsilon before the bias correction), which
        // torch.optim.Adam does not make: the small class below does.
        OptimizerSpec::Adam { lr, beta_1, beta_2, epsilon } => (
            format!(
                "KerasAdam(params, lr={}, beta_1={}, beta_2={}, epsilon={})",
                py_float(lr),
                py_float(beta_1),
                py_float(beta_2),
                py_float(epsilon)
            ),
            KERAS_ADAM_PY,
        ),
        // PyTorch's momentum buffer b = momentum * b + g, w -= lr * b is Keras's
        // v = momentum * v - lr * g, w += v with v = -lr * b: the same update.
        OptimizerSpec::SGD { lr, momentum } => {
            (format!("torch.optim.SGD(params, lr={}, momentum={})", py_float(lr), py_float(momentum)), "")
        }
    };
    super::fill_train(&TRAIN_TEMPLATE.replace("__OPTIMIZER_CLASS__\n", class), spec, &optimizer)
}

/// Adam as Keras and layerlab apply it, for PyTorch.
const KERAS_ADAM_PY: &str = include_str!("py/pytorch/keras_adam.py");

const TRAIN_TEMPLATE: &str = include_str!("py/pytorch/train.py");

/// `check.py`: loads the weights and compares the model's logits with
/// layerlab's on the batch in `check.safetensors`.
pub const CHECK_PY: &str = include_str!("py/pytorch/check.py");

fn readme(spec: &ModelSpec, info: &ModelInfo) -> String {
    let name = crate::escape::markdown_text(model_name(spec));
    let data = if spec.input.is_tokens() {
        "The sequence task is generated by train.py itself."
    } else {
        "train.py reads MNIST from ./mnist (the four .gz files; `--data DIR` to point elsewhere)."
    };
    format!(
        "# {name}, exported from layerlab\n\n\
         {params} parameters; input {input}.\n\n\
         - `model.py`: `build_model()`, a plain `nn.Sequential`; its `state_dict()` names and shapes are layerlab's.\n\
         - `weights.safetensors`: the weights (`model.load_state_dict(safetensors.torch.load_file(\"weights.safetensors\"))`).\n\
         - `train.py`: trains with layerlab's recipe and seed; `python train.py` on one machine, \
         `torchrun --nproc_per_node=N train.py` for N processes (DistributedDataParallel). {data}\n\
         - `check.py`: `python check.py` verifies that this model reproduces layerlab's logits on a fixed batch.\n\
         - `model.json`: the layerlab spec it was made from.\n\n\
         Needs `torch`, `numpy` and `safetensors` (`pip install torch numpy safetensors`).\n",
        params = info.total_params,
        input = describe_input(spec),
    )
}

/// Every file of a PyTorch export of `model` with its current weights: the code,
/// `weights.safetensors` (layerlab's names), the check batch with layerlab's
/// logits, and the spec.
pub fn pytorch(model: &Model) -> Result<Vec<File>> {
    bundle(model, model_py(&model.spec, &model.info), train_py(&model.spec), CHECK_PY, readme(&model.spec, &model.info))
}
