//! Export to Keras 3: `model.py` builds a `keras.Sequential` with Keras's own
//! layers where Keras has them (Conv2D in channels-first, Dense, LSTM, GRU, ...)
//! and small custom layers where it has not (PyTorch's TransformerEncoderLayer,
//! Patchify, PositionalEmbedding); `load_layerlab_weights()` converts layerlab's
//! PyTorch-layout weights (conv kernels OIHW -> HWIO, Dense [out, in] -> [in, out],
//! GRU gates r, z, n -> z, r, h, attention projections per head), so the Keras
//! model gives the same outputs; `train.py` trains with `model.fit`.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::{hw, py_float, py_tuple, File};
use crate::error::Result;
use crate::nn::spec::{Activation, LayerSpec, OptimizerSpec, Padding, PositionKind};
use crate::nn::{Model, ModelInfo, ModelSpec};

const HELPERS: &[(&str, &str)] = &[
    ("gelu_tanh", include_str!("py/keras/gelu_tanh.py")),
    ("Patchify", include_str!("py/keras/patchify.py")),
    ("PositionalEmbedding", include_str!("py/keras/positional_embedding.py")),
    ("SelfAttention", include_str!("py/keras/self_attention.py")),
    ("TransformerEncoder", include_str!("py/keras/transformer_encoder.py")),
];

/// Weight conversions, each emitted only when a layer needs it.
const CONVERTERS: &[(&str, &str)] = &[
    ("conv_kernel", include_str!("py/keras/conv_kernel.py")),
    ("recurrent", include_str!("py/keras/recurrent.py")),
    ("gru", include_str!("py/keras/gru.py")),
    ("attention", include_str!("py/keras/attention.py")),
];

/// A Keras activation argument ("relu", ...) or None; a final softmax is left out.
fn activation_arg(
    a: Option<Activation>,
    output_softmax: bool,
    helpers: &mut BTreeSet<&'static str>,
) -> Option<&'static str> {
    match a? {
        Activation::Linear => None,
        Activation::Relu => Some("\"relu\""),
        Activation::Tanh => Some("\"tanh\""),
        Activation::Sigmoid => Some("\"sigmoid\""),
        Activation::Gelu => {
            helpers.insert("gelu_tanh");
            Some("gelu_tanh")
        }
        Activation::Softmax if output_softmax => None,
        Activation::Softmax => Some("\"softmax\""),
    }
}

/// One layer as a Keras layer expression, and how its weights are set.
fn layer_code(
    i: usize,
    layer: &LayerSpec,
    info: &crate::nn::spec::LayerInfo,
    output_softmax: bool,
    helpers: &mut BTreeSet<&'static str>,
    converters: &mut BTreeSet<&'static str>,
) -> (String, Option<String>) {
    let p = format!("\"{i}.");
    let act = |helpers: &mut BTreeSet<&'static str>, a| {
        activation_arg(a, output_softmax, helpers).map(|a| format!(", activation={a}")).unwrap_or_default()
    };
    match layer {
        LayerSpec::Dense(l) => {
            let bias = l.use_bias();
            let code = format!(
                "layers.Dense({}{}{})",
                l.units,
                act(helpers, l.activation),
                if bias { "" } else { ", use_bias=False" }
            );
            let w = if bias { format!("[w[{p}weight\"].T, w[{p}bias\"]]") } else { format!("[w[{p}weight\"].T]") };
            (code, Some(w))
        }
        LayerSpec::Conv2D(l) => {
            converters.insert("conv_kernel");
            let bias = l.use_bias();
            let mut code = format!("layers.Conv2D({}, {}", l.filters, hw(l.kernel_size));
            if let Some(s) = l.strides.filter(|s| s.hw() != [1, 1]) {
                let _ = write!(code, ", strides={}", hw(s));
            }
            if l.padding() == Padding::Same {
                code.push_str(", padding=\"same\"");
            }
            code.push_str(&act(helpers, l.activation));
            if !bias {
                code.push_str(", use_bias=False");
            }
            code.push_str(", data_format=\"channels_first\")");
            let w = if bias {
                format!("[conv_kernel(w[{p}weight\"]), w[{p}bias\"]]")
            } else {
                format!("[conv_kernel(w[{p}weight\"])]")
            };
            (code, Some(w))
        }
        LayerSpec::MaxPool2D(l) => (
            format!(
                "layers.MaxPooling2D({}, strides={}, data_format=\"channels_first\")",
                hw(l.pool_size),
                hw(l.stride_size())
            ),
            None,
        ),
        LayerSpec::AveragePool2D(l) => (
            format!(
                "layers.AveragePooling2D({}, strides={}, data_format=\"channels_first\")",
                hw(l.pool_size),
                hw(l.stride_size())
            ),
            None,
        ),
        // Flattens in memory order: channels, then rows, then columns, as layerlab.
        // "channels_last" is pinned: it means "no reordering", where a user's
        // keras.json with "channels_first" would move the channels to the end first.
        LayerSpec::Flatten(_) => ("layers.Flatten(data_format=\"channels_last\")".into(), None),
        LayerSpec::Dropout(l) => (format!("layers.Dropout({})", py_float(l.rate)), None),
        LayerSpec::Reshape(_) => (format!("layers.Reshape({})", py_tuple(&info.output_shape)), None),
        LayerSpec::ReLU(_)
        | LayerSpec::Tanh(_)
        | LayerSpec::Sigmoid(_)
        | LayerSpec::GELU(_)
        | LayerSpec::Softmax(_) => {
            let code = match activation_arg(layer.activation(), output_softmax, helpers) {
                Some(a) => format!("layers.Activation({a})"),
                None => "layers.Identity()".into(),
            };
            (code, None)
        }
        LayerSpec::SimpleRNN(l) => recurrent(&p, "SimpleRNN", l.units, l.return_sequences(), converters),
        LayerSpec::LSTM(l) => recurrent(&p, "LSTM", l.units, l.return_sequences(), converters),
        LayerSpec::GRU(l) => {
            converters.insert("gru");
            let seq = if l.return_sequences() { ", return_sequences=True" } else { "" };
            (format!("layers.GRU({}{seq})", l.units), Some(format!("gru(w, {p}\")")))
        }
        LayerSpec::LayerNormalization(l) => (
            format!("layers.LayerNormalization(epsilon={})", py_float(l.epsilon())),
            Some(format!("[w[{p}weight\"], w[{p}bias\"]]")),
        ),
        LayerSpec::PositionalEmbedding(l) => {
            helpers.insert("PositionalEmbedding");
            if l.kind == PositionKind::Learned {
                ("PositionalEmbedding()".into(), Some(format!("[w[{p}weight\"]]")))
            } else {
                ("PositionalEmbedding(learned=False)".into(), None)
            }
        }
        LayerSpec::MultiHeadAttention(l) => {
            helpers.insert("SelfAttention");
            converters.insert("attention");
            let (d, num_heads) = (info.input_shape[1], l.num_heads);
            let causal = if l.causal() { ", causal=True" } else { "" };
            (
                format!("SelfAttention({num_heads}, {}{causal})", d / num_heads),
                Some(format!("attention(w, {p}\", {num_heads})")),
            )
        }
        LayerSpec::TransformerEncoder(l) => {
            helpers.insert("TransformerEncoder");
            converters.insert("attention");
            let act = match l.activation() {
                Activation::Gelu => {
                    helpers.insert("gelu_tanh");
                    "gelu_tanh"
                }
                _ => "\"relu\"",
            };
            let code = format!(
                "TransformerEncoder({}, {}, activation={act}, dropout={}, norm_first={})",
                l.num_heads,
                l.ff_dim,
                py_float(l.dropout()),
                if l.norm_first() { "True" } else { "False" }
            );
            (code, Some(String::new()))
        }
        LayerSpec::Patchify(l) => {
            helpers.insert("Patchify");
            (format!("Patchify({})", l.patch_size), None)
        }
        // [batch, steps, features]: pinned, or keras.json could make it average the features.
        LayerSpec::GlobalAveragePooling1D(_) => {
            ("layers.GlobalAveragePooling1D(data_format=\"channels_last\")".into(), None)
        }
        LayerSpec::Embedding(l) => {
            (format!("layers.Embedding({}, {})", l.input_dim, l.output_dim), Some(format!("[w[{p}weight\"]]")))
        }
    }
}

/// Keras's `SimpleRNN` or `LSTM`, whose weights the `recurrent` converter sets.
fn recurrent(
    p: &str,
    class: &str,
    units: usize,
    return_sequences: bool,
    converters: &mut BTreeSet<&'static str>,
) -> (String, Option<String>) {
    converters.insert("recurrent");
    let seq = if return_sequences { ", return_sequences=True" } else { "" };
    (format!("layers.{class}({units}{seq})"), Some(format!("recurrent(w, {p}\")")))
}

/// `model.py` for Keras 3.
pub fn model_py(spec: &ModelSpec, info: &ModelInfo) -> String {
    let mut helpers = BTreeSet::new();
    let mut converters = BTreeSet::new();
    let mut layer_lines = Vec::new();
    let mut weight_lines = Vec::new();
    for (i, (layer, li)) in spec.layers.iter().zip(&info.layers).enumerate() {
        // The output softmax is the loss's (decided once, in the spec).
        let output_softmax = info.softmax_output == Some(i);
        let (code, weights) = layer_code(i, layer, li, output_softmax, &mut helpers, &mut converters);
        let mut comment = format!("{i} {} -> {:?}", layer.type_name(), li.output_shape);
        if output_softmax {
            comment.push_str(" (softmax left out: the loss takes logits)");
        }
        layer_lines.push(format!("        {code},  # {comment}"));
        match (weights, layer) {
            (Some(_), LayerSpec::TransformerEncoder(l)) => {
                let num_heads = l.num_heads;
                let p = format!("\"{i}.");
                weight_lines.push(format!("    layer = model.layers[{i}]"));
                weight_lines.push(format!("    layer.attn.set_weights(attention(w, {p}self_attn.\", {num_heads}))"));
                for sub in ["linear1", "linear2"] {
                    weight_lines
                        .push(format!("    layer.{sub}.set_weights([w[{p}{sub}.weight\"].T, w[{p}{sub}.bias\"]])"));
                }
                for sub in ["norm1", "norm2"] {
                    weight_lines
                        .push(format!("    layer.{sub}.set_weights([w[{p}{sub}.weight\"], w[{p}{sub}.bias\"]])"));
                }
            }
            (Some(wl), LayerSpec::MultiHeadAttention(_)) => {
                weight_lines.push(format!("    model.layers[{i}].mha.set_weights({wl})"))
            }
            (Some(wl), _) => weight_lines.push(format!("    model.layers[{i}].set_weights({wl})")),
            (None, _) => {}
        }
    }
    // User text: escaped so that no name can end the docstring.
    let name = crate::escape::python_doc_text(super::model_name(spec));
    let mut out = format!(
        r#""""The {name} model for Keras 3, exported from layerlab.

    model = build_model()
    load_layerlab_weights(model, "weights.safetensors")

build_model() returns a keras.Sequential, layer i being layerlab's layer i;
load_layerlab_weights() converts layerlab's weights (PyTorch's layouts) to
Keras's, so the model gives layerlab's outputs.

Input: {input}, batched: [batch, {ishape}].
Output: logits [batch, {oshape}] (no softmax: the loss takes logits).
Images are channels-first ([channels, height, width]) as in layerlab and PyTorch.
Runs on any Keras backend; torch is the default here (KERAS_BACKEND).
"""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers, ops  # noqa: E402,F401
from safetensors.numpy import load_file  # noqa: E402

"#,
        input = super::describe_input(spec),
        ishape = info.input_shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "),
        oshape = info.output_shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "),
    );
    super::push_used(&mut out, HELPERS, &helpers);
    super::push_used(&mut out, CONVERTERS, &converters);
    let _ = write!(
        out,
        "\ndef build_model():\n    \
         # float32 as layerlab computes, whatever ~/.keras/keras.json or a global dtype\n    \
         # policy says (every layer with a data_format has it written out, too).\n    \
         policy = keras.config.dtype_policy()\n    \
         keras.config.set_dtype_policy(\"float32\")\n    \
         try:\n        \
         return keras.Sequential([\n            keras.Input(shape={}, dtype=\"float32\"),\n",
        py_tuple(&info.input_shape)
    );
    out.push_str(&layer_lines.iter().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n"));
    let _ = write!(
        out,
        "\n        ], name={})\n    finally:\n        keras.config.set_dtype_policy(policy)\n",
        crate::escape::python_str(&crate::escape::identifier(super::model_name(spec), "model"))
    );
    out.push_str("\n\ndef load_layerlab_weights(model, path=\"weights.safetensors\"):\n    \"\"\"Sets the model's weights from layerlab's file (PyTorch names and layouts).\"\"\"\n    w = load_file(path)\n");
    if weight_lines.is_empty() {
        out.push_str("    del w, model  # this model has no weights\n");
    } else {
        out.push_str(&weight_lines.join("\n"));
        out.push('\n');
    }
    out
}

/// `train.py` for Keras: `model.fit` with the spec's recipe, in layerlab's data order.
pub fn train_py(spec: &ModelSpec) -> String {
    let t = &spec.training;
    let optimizer = match t.optimizer {
        OptimizerSpec::Adam { lr, beta_1, beta_2, epsilon } => format!(
            "keras.optimizers.Adam(learning_rate={}, beta_1={}, beta_2={}, epsilon={})",
            py_float(lr),
            py_float(beta_1),
            py_float(beta_2),
            py_float(epsilon)
        ),
        OptimizerSpec::SGD { lr, momentum } => {
            format!("keras.optimizers.SGD(learning_rate={}, momentum={})", py_float(lr), py_float(momentum))
        }
    };
    super::fill_train(TRAIN_TEMPLATE, spec, &optimizer)
}

const TRAIN_TEMPLATE: &str = include_str!("py/keras/train.py");

/// `check.py` for Keras: layerlab's logits on the check batch, within 1e-4.
pub const CHECK_PY: &str = include_str!("py/keras/check.py");

fn readme(spec: &ModelSpec, info: &ModelInfo) -> String {
    let name = crate::escape::markdown_text(super::model_name(spec));
    let data = if spec.input.is_tokens() {
        "The sequence task is generated by train.py itself."
    } else {
        "train.py reads MNIST from ./mnist (`--data DIR` to point elsewhere)."
    };
    format!(
        "# {name} for Keras 3, exported from layerlab\n\n\
         {params} parameters; input {input}.\n\n\
         - `model.py`: `build_model()` (a `keras.Sequential`) and `load_layerlab_weights(model, \"weights.safetensors\")`, \
         which converts layerlab's PyTorch-layout weights to Keras's.\n\
         - `train.py`: `model.fit` with layerlab's recipe, seed and data order. {data}\n\
         - `check.py`: `python check.py` verifies that this model reproduces layerlab's logits on a fixed batch.\n\
         - `weights.safetensors`, `check.safetensors`, `model.json` (the layerlab spec).\n\n\
         Needs `keras` (3), a backend (`torch` by default; set KERAS_BACKEND=jax or tensorflow for another), `numpy` and `safetensors`.\n",
        params = info.total_params,
        input = super::describe_input(spec),
    )
}

/// Every file of a Keras export of `model` with its current weights.
pub fn keras(model: &Model) -> Result<Vec<File>> {
    super::bundle(
        model,
        model_py(&model.spec, &model.info),
        train_py(&model.spec),
        CHECK_PY,
        readme(&model.spec, &model.info),
    )
}
