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

use crate::data::DatasetSpec;
use crate::error::Result;
use crate::nn::spec::{Activation, LayerSpec, OptimizerSpec, Padding, PositionKind, Size2};
use crate::nn::{Mode, Model, ModelInfo, ModelSpec};
use crate::Tensor;

/// One generated file: its name and contents.
pub type File = (String, Vec<u8>);

/// PyTorch's recurrent layers as Keras's (`RNN` is Keras's SimpleRNN): batch
/// first, returning every step's output or only the last one. Emitted once per
/// class a model uses, with `{class}` filled in.
const RECURRENT_HELPER: &str = r#"class {class}(nn.{class}):
    """nn.{class} (batch first) returning, like Keras, every step's output or only the last one."""

    def __init__(self, input_size, hidden_size, return_sequences=False):
        super().__init__(input_size, hidden_size, batch_first=True)
        self.return_sequences = return_sequences

    def forward(self, x):
        out, _ = super().forward(x)
        return out if self.return_sequences else out[:, -1]
"#;

/// Helper classes, each emitted only when a layer needs it (name, Python source).
const HELPERS: &[(&str, &str)] = &[
    (
        "Linear",
        r#"class Linear(nn.Linear):
    """nn.Linear (on the last axis, as Keras's Dense) followed by an activation."""

    def __init__(self, in_features, out_features, bias=True, activation=None):
        super().__init__(in_features, out_features, bias=bias)
        self.activation = activation or nn.Identity()

    def forward(self, x):
        return self.activation(super().forward(x))
"#,
    ),
    (
        "Conv2d",
        r#"class Conv2d(nn.Conv2d):
    """nn.Conv2d followed by an activation. `pad` (left, right, top, bottom) is
    Keras's "same" padding, which puts an odd extra row or column at the end."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, bias=True, pad=None, activation=None):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, bias=bias)
        self.pad = pad
        self.activation = activation or nn.Identity()

    def forward(self, x):
        if self.pad:
            x = F.pad(x, self.pad)
        return self.activation(super().forward(x))
"#,
    ),
    (
        "Reshape",
        r#"class Reshape(nn.Module):
    """Keras's Reshape: a new shape for each example (the batch axis stays)."""

    def __init__(self, *shape):
        super().__init__()
        self.shape = shape

    def forward(self, x):
        return x.reshape(x.shape[0], *self.shape)
"#,
    ),
    (
        "Embedding",
        r#"class Embedding(nn.Embedding):
    """nn.Embedding that accepts token ids of any number type."""

    def forward(self, x):
        return super().forward(x.long())
"#,
    ),
    (
        "PositionalEmbedding",
        r#"class PositionalEmbedding(nn.Module):
    """Adds a position code to [batch, steps, features]: a learned `weight`, or the
    fixed sinusoids of "Attention is all you need" (sin on even features, cos on
    odd ones)."""

    def __init__(self, steps, features, learned=True):
        super().__init__()
        if learned:
            self.weight = nn.Parameter(torch.randn(steps, features) * 0.02)
        else:
            pos = torch.arange(steps, dtype=torch.float32)[:, None]
            k = torch.arange(features)
            angle = pos / 10000 ** ((k - k % 2).float() / features)
            table = torch.where(k % 2 == 0, torch.sin(angle), torch.cos(angle))
            self.register_buffer("weight", table, persistent=False)

    def forward(self, x):
        return x + self.weight
"#,
    ),
    (
        "SelfAttention",
        r#"class SelfAttention(nn.MultiheadAttention):
    """Multi-head self-attention over [batch, steps, features] (optionally causal:
    a step sees only itself and earlier steps)."""

    def __init__(self, embed_dim, num_heads, causal=False):
        super().__init__(embed_dim, num_heads, batch_first=True)
        self.causal = causal

    def forward(self, x):
        mask = None
        if self.causal:
            t = x.shape[1]
            mask = torch.triu(torch.ones(t, t, dtype=torch.bool, device=x.device), diagonal=1)
        out, _ = super().forward(x, x, x, attn_mask=mask, need_weights=False)
        return out
"#,
    ),
    (
        "Patchify",
        r#"class Patchify(nn.Module):
    """Image [batch, C, H, W] -> tokens [batch, (H/p)*(W/p), C*p*p]: the p x p
    patches, row by row."""

    def __init__(self, patch_size):
        super().__init__()
        self.p = patch_size

    def forward(self, x):
        b, c, h, w = x.shape
        p = self.p
        x = x.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)
        return x.reshape(b, (h // p) * (w // p), c * p * p)
"#,
    ),
    (
        "GlobalAveragePooling1D",
        r#"class GlobalAveragePooling1D(nn.Module):
    """The mean over the steps of [batch, steps, features]."""

    def forward(self, x):
        return x.mean(dim=1)
"#,
    ),
];

pub(crate) fn py_float(v: f32) -> String {
    let s = format!("{v:?}");
    if s.contains(['.', 'e', 'i', 'N']) { s } else { format!("{s}.0") }
}

pub(crate) fn py_tuple(v: &[usize]) -> String {
    match v {
        [one] => format!("({one},)"),
        _ => format!("({})", v.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    }
}

fn hw(s: Size2) -> String {
    let [h, w] = s.hw();
    if h == w { h.to_string() } else { format!("({h}, {w})") }
}

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
fn module(layer: &LayerSpec, input: &[usize], output: &[usize], output_softmax: bool, pad: [usize; 4], helpers: &mut BTreeSet<&'static str>) -> String {
    let mut need = |h: &'static str| {
        helpers.insert(h);
    };
    match layer {
        LayerSpec::Dense { units, activation, use_bias } => {
            let fan_in = input.last().copied().unwrap_or(0);
            let bias = if use_bias.unwrap_or(true) { "" } else { ", bias=False" };
            match activation_module(*activation, output_softmax) {
                None => format!("nn.Linear({fan_in}, {units}{bias})"),
                Some(a) => {
                    need("Linear");
                    format!("Linear({fan_in}, {units}{bias}, activation={a})")
                }
            }
        }
        LayerSpec::Conv2D { filters, kernel_size, strides, padding, activation, use_bias } => {
            let mut args = format!("{}, {filters}, kernel_size={}", input[0], hw(*kernel_size));
            if let Some(s) = strides.filter(|s| s.hw() != [1, 1]) {
                let _ = write!(args, ", stride={}", hw(s));
            }
            if !use_bias.unwrap_or(true) {
                args.push_str(", bias=False");
            }
            let same = padding.unwrap_or_default() == Padding::Same && pad != [0; 4];
            let act = activation_module(*activation, output_softmax);
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
        LayerSpec::MaxPool2D { pool_size, strides } => format!("nn.MaxPool2d(kernel_size={}, stride={})", hw(*pool_size), hw(strides.unwrap_or(*pool_size))),
        LayerSpec::AveragePool2D { pool_size, strides } => format!("nn.AvgPool2d(kernel_size={}, stride={})", hw(*pool_size), hw(strides.unwrap_or(*pool_size))),
        LayerSpec::Flatten => "nn.Flatten()".into(),
        LayerSpec::Dropout { rate } => format!("nn.Dropout({})", py_float(*rate)),
        LayerSpec::Reshape { .. } => {
            need("Reshape");
            format!("Reshape({})", output.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "))
        }
        LayerSpec::ReLU | LayerSpec::Tanh | LayerSpec::Sigmoid | LayerSpec::GELU | LayerSpec::Softmax => {
            activation_module(layer.activation(), output_softmax).unwrap_or("nn.Identity()").to_string()
        }
        LayerSpec::SimpleRNN { units, return_sequences } | LayerSpec::LSTM { units, return_sequences } | LayerSpec::GRU { units, return_sequences } => {
            let class = match layer {
                LayerSpec::SimpleRNN { .. } => "RNN",
                LayerSpec::LSTM { .. } => "LSTM",
                _ => "GRU",
            };
            need(class);
            let seq = if return_sequences.unwrap_or(false) { ", return_sequences=True" } else { "" };
            format!("{class}({}, {units}{seq})", input[1])
        }
        LayerSpec::LayerNormalization { epsilon } => format!("nn.LayerNorm({}, eps={})", input.last().copied().unwrap_or(0), py_float(epsilon.unwrap_or(1e-5))),
        LayerSpec::PositionalEmbedding { kind } => {
            need("PositionalEmbedding");
            let learned = if *kind == PositionKind::Learned { "" } else { ", learned=False" };
            format!("PositionalEmbedding({}, {}{learned})", input[0], input[1])
        }
        LayerSpec::MultiHeadAttention { num_heads, causal, .. } => {
            need("SelfAttention");
            let causal = if causal.unwrap_or(false) { ", causal=True" } else { "" };
            format!("SelfAttention({}, {num_heads}{causal})", input[1])
        }
        LayerSpec::TransformerEncoder { num_heads, ff_dim, activation, dropout, norm_first } => {
            let act = match activation.unwrap_or(Activation::Relu) {
                Activation::Gelu => "gelu_tanh",
                _ => "\"relu\"",
            };
            format!(
                "nn.TransformerEncoderLayer({}, {num_heads}, dim_feedforward={ff_dim}, dropout={}, activation={act}, batch_first=True, norm_first={})",
                input[1],
                py_float(dropout.unwrap_or(0.0)),
                if norm_first.unwrap_or(false) { "True" } else { "False" }
            )
        }
        LayerSpec::Patchify { patch_size } => {
            need("Patchify");
            format!("Patchify({patch_size})")
        }
        LayerSpec::GlobalAveragePooling1D => {
            need("GlobalAveragePooling1D");
            "GlobalAveragePooling1D()".into()
        }
        LayerSpec::Embedding { input_dim, output_dim } => {
            need("Embedding");
            format!("Embedding({input_dim}, {output_dim})")
        }
    }
}

/// "same" padding of a Conv2D as layerlab computes it: [top, bottom, left, right].
fn same_pad(layer: &LayerSpec, input: &[usize], output: &[usize]) -> [usize; 4] {
    let LayerSpec::Conv2D { kernel_size, strides, padding: Some(Padding::Same), .. } = layer else { return [0; 4] };
    let [kh, kw] = kernel_size.hw();
    let [sh, sw] = strides.map_or([1, 1], Size2::hw);
    let total = |inp: usize, out: usize, k: usize, s: usize| ((out - 1) * s + k).saturating_sub(inp);
    let th = total(input[1], output[1], kh, sh);
    let tw = total(input[2], output[2], kw, sw);
    [th / 2, th - th / 2, tw / 2, tw - tw / 2]
}

/// The spec's name, or "model" for an unnamed one: user text, which reaches
/// generated files only through `io::escape`.
pub fn model_name(spec: &ModelSpec) -> &str {
    if spec.name.is_empty() { "model" } else { spec.name.as_str() }
}

pub(crate) fn describe_input(spec: &ModelSpec) -> String {
    match &spec.input {
        DatasetSpec::Mnist { shape } => format!("MNIST digits {shape:?} per example, pixels in [0, 1]"),
        other => format!("token ids [{}] per example (the {} task, vocabulary {})", other.shape()[0], other.name(), other.classes()),
    }
}

/// `model.py`: the helper classes the model needs and `build_model()`.
pub fn model_py(spec: &ModelSpec, info: &ModelInfo) -> String {
    let mut helpers = BTreeSet::new();
    let mut lines = Vec::new();
    for (i, (layer, li)) in spec.layers.iter().zip(&info.layers).enumerate() {
        // The output softmax is the loss's (decided once, in the spec).
        let output_softmax = info.softmax_output == Some(i);
        let pad = same_pad(layer, &li.input_shape, &li.output_shape);
        let m = module(layer, &li.input_shape, &li.output_shape, output_softmax, pad, &mut helpers);
        let mut comment = format!("{i} {} -> {:?}", layer.type_name(), li.output_shape);
        if output_softmax {
            comment.push_str(" (softmax left out: the loss takes logits)");
        }
        lines.push(format!("        {m},  # {comment}"));
    }
    let uses_gelu = spec.layers.iter().any(|l| matches!(l, LayerSpec::TransformerEncoder { activation: Some(Activation::Gelu), .. }));
    // User text: escaped so that no name can end the docstring.
    let name = super::escape::python_doc_text(model_name(spec));
    let mut out = format!(
        r#""""The {name} model, exported from layerlab.

build_model() returns an nn.Sequential whose state_dict() has layerlab's names
and shapes, so the exported weights load unchanged:

    model = build_model()
    model.load_state_dict(safetensors.torch.load_file("weights.safetensors"))

Input: {input}, batched: {batch_shape}.
Output: logits {out_shape} (no softmax: nn.CrossEntropyLoss takes logits).
{params} parameters.
"""
import functools

import torch
import torch.nn.functional as F
from torch import nn

"#,
        input = describe_input(spec),
        batch_shape = format!("[batch, {}]", info.input_shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
        out_shape = format!("[batch, {}]", info.output_shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
        params = info.total_params,
    );
    if uses_gelu {
        out.push_str("# GELU in its tanh form, as layerlab (and the benchmark) compute it.\ngelu_tanh = functools.partial(F.gelu, approximate=\"tanh\")\n\n");
    }
    for (h, src) in HELPERS {
        if helpers.contains(h) {
            out.push('\n');
            out.push_str(src);
            out.push('\n');
        }
    }
    for class in ["RNN", "LSTM", "GRU"] {
        if helpers.contains(class) {
            out.push('\n');
            out.push_str(&RECURRENT_HELPER.replace("{class}", class));
            out.push('\n');
        }
    }
    out.push_str("\ndef build_model():\n    return nn.Sequential(\n");
    out.push_str(&lines.join("\n"));
    out.push_str("\n    )\n");
    if !uses_gelu {
        out = out.replace("import functools\n\n", "");
    }
    out
}

/// The data set's name and the Python line with its shape (MNIST) or its
/// sequence length and vocabulary (tasks).
pub(crate) fn task_lines(spec: &ModelSpec) -> (String, String) {
    match &spec.input {
        DatasetSpec::Mnist { shape } => ("mnist".to_string(), format!("INPUT_SHAPE = {}", py_tuple(shape))),
        other => (other.name().to_string(), format!("SEQ_LEN, VOCAB = {}, {}", other.shape()[0], other.classes())),
    }
}

/// The data functions both train.py files share: MNIST from IDX files in
/// layerlab's order (numpy arrays), or the sequence task generated with numpy.
pub(crate) const DATA_PY: &str = r#"def read_idx(path):
    """An MNIST IDX file (.gz) as a numpy array."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def lcg_permutation(n, seed):
    """layerlab's data order: Fisher-Yates driven by a 32-bit LCG."""
    perm = list(range(n))
    state = seed
    for i in range(n - 1, 0, -1):
        state = (state * 1664525 + 1013904223) & 0xFFFFFFFF
        j = state % (i + 1)
        perm[i], perm[j] = perm[j], perm[i]
    return perm


def epoch_seed(epoch):
    return (SEED * 0x9E3779B1 + epoch + 1) & 0xFFFFFFFF


def load_data(folder):
    """(x_train, y_train, x_test, y_test) as numpy arrays."""
    if DATASET == "mnist":
        def images(name):
            return (read_idx(os.path.join(folder, name)).astype(np.float32) / 255.0).reshape(-1, *INPUT_SHAPE)

        def labels(name):
            return read_idx(os.path.join(folder, name)).astype(np.int64)

        return (images("train-images-idx3-ubyte.gz"), labels("train-labels-idx1-ubyte.gz"),
                images("t10k-images-idx3-ubyte.gz"), labels("t10k-labels-idx1-ubyte.gz"))
    # The sequence task, generated here with numpy from the seed (layerlab draws
    # its examples with its own generator: the same task, other examples).
    def task(n, seed):
        x = np.random.default_rng(seed).integers(0, VOCAB, size=(n, SEQ_LEN))
        y = {"reverse": x[:, ::-1], "sort": np.sort(x, axis=1), "copy": x}[DATASET]
        return x.astype(np.int64), np.ascontiguousarray(y).astype(np.int64)

    return (*task(50_000, SEED), *task(1_000, SEED + 1))
"#;

/// `train.py`: the spec's recipe (optimizer, learning rate, batch, epochs, seed)
/// on its data set, on one process or many (torchrun + DDP).
pub fn train_py(spec: &ModelSpec) -> String {
    let t = &spec.training;
    let (optimizer, class) = match t.optimizer {
        // Keras's Adam update (epsilon before the bias correction), which
        // torch.optim.Adam does not make: the small class below does.
        OptimizerSpec::Adam { lr, beta_1, beta_2, epsilon } => {
            (format!("KerasAdam(params, lr={}, beta_1={}, beta_2={}, epsilon={})", py_float(lr), py_float(beta_1), py_float(beta_2), py_float(epsilon)), KERAS_ADAM_PY)
        }
        // PyTorch's momentum buffer b = momentum * b + g, w -= lr * b is Keras's
        // v = momentum * v - lr * g, w += v with v = -lr * b: the same update.
        OptimizerSpec::SGD { lr, momentum } => (format!("torch.optim.SGD(params, lr={}, momentum={})", py_float(lr), py_float(momentum)), ""),
    };
    let (dataset, task_line) = task_lines(spec);
    TRAIN_TEMPLATE
        .replace("{{OPTIMIZER_CLASS}}", class)
        .replace("{{DATA_PY}}", DATA_PY)
        .replace("{{DATASET}}", &dataset)
        .replace("{{TASK_LINE}}", &task_line)
        .replace("{{SEED}}", &t.seed.to_string())
        .replace("{{BATCH}}", &t.batch_size.to_string())
        .replace("{{EPOCHS}}", &t.epochs.to_string())
        .replace("{{OPTIMIZER}}", &optimizer)
}

/// Adam as Keras and layerlab apply it, for PyTorch.
const KERAS_ADAM_PY: &str = r#"class KerasAdam(torch.optim.Optimizer):
    """Adam as Keras (and layerlab) apply it: epsilon is added to sqrt(v), and the
    bias correction goes into the step size,
        w -= lr * sqrt(1 - beta_2^t) / (1 - beta_1^t) * m / (sqrt(v) + epsilon).
    torch.optim.Adam adds epsilon after the correction instead, which moves the
    weights differently (by far, for a large epsilon)."""

    def __init__(self, params, lr, beta_1, beta_2, epsilon):
        super().__init__(params, dict(lr=lr, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            lr, b1, b2, eps = group["lr"], group["beta_1"], group["beta_2"], group["epsilon"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["t"], state["m"], state["v"] = 0, torch.zeros_like(p), torch.zeros_like(p)
                state["t"] += 1
                t, m, v, g = state["t"], state["m"], state["v"], p.grad
                m.add_((g - m) * (1 - b1))
                v.add_((g * g - v) * (1 - b2))
                p.sub_(lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t) * m / (v.sqrt() + eps))


"#;

const TRAIN_TEMPLATE: &str = r#""""Trains the exported model with layerlab's recipe.

    python train.py                                # one machine (a GPU if there is one)
    torchrun --nproc_per_node=4 train.py           # 4 processes, DistributedDataParallel
    torchrun --nnodes=2 --nproc_per_node=8 ... train.py   # many machines

It starts from weights.safetensors (the weights layerlab exported) when that file
is beside it, and writes the trained weights to trained.safetensors. Each step
takes one batch of the same size and order as layerlab; with N processes every
process takes 1/N of it and DDP averages the gradients, so the recipe is the
same on any number of GPUs.
"""
import argparse
import gzip
import math
import os

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from model import build_model

DATASET = "{{DATASET}}"
{{TASK_LINE}}
SEED = {{SEED}}
BATCH_SIZE = {{BATCH}}
EPOCHS = {{EPOCHS}}


{{OPTIMIZER_CLASS}}def make_optimizer(params):
    return {{OPTIMIZER}}


{{DATA_PY}}

def evaluate(model, x, y, device):
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(x[i:i + 1000].to(device)).cpu() for i in range(0, len(x), 1000)])
    model.train()
    right = logits.argmax(-1) == y
    if right.dim() == 2:
        return right.float().mean().item(), right.all(dim=1).float().mean().item()
    return right.float().mean().item(), None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--data", default=os.path.join(here, "mnist"), help="folder with the four MNIST .gz files")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--steps", type=int, default=None, help="stop after this many steps (a quick check)")
    parser.add_argument("--out", default=os.path.join(here, "trained.safetensors"))
    args = parser.parse_args()

    distributed = "WORLD_SIZE" in os.environ
    if distributed:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
        local = int(os.environ.get("LOCAL_RANK", 0))
        device = torch.device("cuda", local) if torch.cuda.is_available() else torch.device("cpu")
    else:
        rank, world = 0, 1
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)

    torch.manual_seed(SEED)
    model = build_model()
    start = os.path.join(here, "weights.safetensors")
    if os.path.exists(start):
        model.load_state_dict(load_file(start))
    model.to(device)
    net = torch.nn.parallel.DistributedDataParallel(model) if distributed else model
    optimizer = make_optimizer(net.parameters())

    x_train, y_train, x_test, y_test = (torch.from_numpy(a) for a in load_data(args.data))
    n = len(x_train)
    step = 0
    for epoch in range(args.epochs):
        order = torch.tensor(lcg_permutation(n, epoch_seed(epoch)))
        for begin in range(0, n, BATCH_SIZE):
            if min(BATCH_SIZE, n - begin) < world:
                break  # a last batch too small to give every process an example
            batch = order[begin:begin + BATCH_SIZE][rank::world]
            x, y = x_train[batch].to(device), y_train[batch].to(device)
            logits = net(x)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            if rank == 0 and step % 100 == 0:
                print(f"epoch {epoch + 1} step {step}: loss {loss.item():.4f}", flush=True)
            if args.steps is not None and step >= args.steps:
                break
        if args.steps is not None and step >= args.steps:
            break

    if rank == 0:
        accuracy, sequences = evaluate(model, x_test, y_test, device)
        line = f"after {step} steps: test accuracy {accuracy * 100:.2f} %"
        if sequences is not None:
            line += f", sequences right {sequences * 100:.2f} %"
        print(line)
        save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, args.out)
        print(f"trained weights: {args.out}")
    if distributed:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
"#;

/// `check.py`: loads the weights and compares the model's logits with
/// layerlab's on the batch in `check.safetensors`.
pub const CHECK_PY: &str = r#""""Checks the export: the PyTorch model, with the exported weights, gives
layerlab's logits on a fixed batch (check.safetensors holds the batch `x` and
layerlab's `logits`). Prints the largest difference; exits 1 above 1e-4."""
import os
import sys

import torch
from safetensors.torch import load_file

from model import build_model

here = os.path.dirname(os.path.abspath(__file__))
model = build_model()
model.load_state_dict(load_file(os.path.join(here, "weights.safetensors")))
model.eval()
check = load_file(os.path.join(here, "check.safetensors"))
with torch.no_grad():
    logits = model(check["x"])
diff = (logits - check["logits"]).abs().max().item()
print(f"largest difference from layerlab's logits: {diff:.2e}")
sys.exit(0 if diff <= 1e-4 else 1)
"#;

fn readme(spec: &ModelSpec, info: &ModelInfo) -> String {
    let name = super::escape::markdown_text(model_name(spec));
    let data = if spec.input.is_tokens() { "The sequence task is generated by train.py itself." } else { "train.py reads MNIST from ./mnist (the four .gz files; `--data DIR` to point elsewhere)." };
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

/// A fixed batch for `check.py`: 8 examples drawn from seed 0 (pixels in [0, 1]
/// or token ids), and the model's logits for it, as safetensors (`x`, `logits`).
pub fn check_batch(model: &Model) -> Result<Vec<u8>> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let mut shape = vec![8];
    shape.extend_from_slice(&model.info.input_shape);
    let n: usize = shape.iter().product();
    let x: Vec<f32> = match &model.spec.input {
        DatasetSpec::Mnist { .. } => (0..n).map(|_| rng.random::<f32>()).collect(),
        other => (0..n).map(|_| rng.random_range(0..other.classes()) as f32).collect(),
    };
    let x = Tensor::from_vec(&shape, x);
    let logits = crate::autograd::no_grad(|| model.forward_logits(&x, Mode::Eval));
    let tensors = [("x".to_string(), x.value().clone()), ("logits".to_string(), logits.to_array())];
    super::weights::to_bytes(&tensors)
}

/// Every file of a PyTorch export of `model` with its current weights: the code,
/// `weights.safetensors` (layerlab's names), the check batch with layerlab's
/// logits, and the spec.
pub fn pytorch(model: &Model) -> Result<Vec<File>> {
    bundle(model, model_py(&model.spec, &model.info), train_py(&model.spec), CHECK_PY, readme(&model.spec, &model.info))
}

/// The files every export has, around its framework's code.
pub(crate) fn bundle(model: &Model, model_py: String, train_py: String, check_py: &str, readme: String) -> Result<Vec<File>> {
    Ok(vec![
        ("model.py".into(), model_py.into_bytes()),
        ("train.py".into(), train_py.into_bytes()),
        ("check.py".into(), check_py.as_bytes().to_vec()),
        ("README.md".into(), readme.into_bytes()),
        ("model.json".into(), model.spec.to_json_pretty().into_bytes()),
        ("weights.safetensors".into(), super::weights::save_parameters(&model.parameters())?),
        ("check.safetensors".into(), check_batch(model)?),
    ])
}

/// The files in one zip archive (stored, not compressed: weights do not shrink
/// and code is small), each under `folder/`.
pub fn zip(folder: &str, files: &[File]) -> Result<Vec<u8>> {
    use std::io::Write;
    let fail = |e: &dyn std::fmt::Display| crate::error::Error::Input(format!("the zip archive could not be written: {e}"));
    let mut w = ::zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = ::zip::write::SimpleFileOptions::default().compression_method(::zip::CompressionMethod::Stored).large_file(false);
    for (name, bytes) in files {
        w.start_file(format!("{folder}/{name}"), options).map_err(|e| fail(&e))?;
        w.write_all(bytes).map_err(|e| fail(&e))?;
    }
    Ok(w.finish().map_err(|e| fail(&e))?.into_inner())
}

/// The files of a zip archive (the page's Download, an export, or the same files
/// zipped again by the user's own tool): name and contents, folders and
/// macOS's `__MACOSX/` and `._` entries left out.
/// Entries may be stored or deflated, with or without data descriptors; names
/// may use `/` or `\`. At most `max_bytes` in all are read, whatever sizes
/// the archive declares (a zip bomb stops there).
pub fn unzip(bytes: &[u8], max_bytes: usize) -> Result<Vec<File>> {
    use std::io::Read;
    let fail = |m: String| crate::error::Error::Input(m);
    let too_large = || fail(format!("its files add up to more than {} MB, more than layerlab opens", max_bytes >> 20));
    let mut archive = ::zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| fail(format!("not a zip archive ({e})")))?;
    let mut out = Vec::new();
    let mut total = 0usize;
    for i in 0..archive.len() {
        let f = archive.by_index(i).map_err(|e| fail(format!("a damaged zip archive ({e})")))?;
        // Folders, and what macOS's Finder adds to a zip it makes (`__MACOSX/`,
        // `._name` resource forks), are not the user's files.
        let path = f.name().to_string();
        let name = path.rsplit(['/', '\\']).next().unwrap_or_default().to_string();
        if f.is_dir() || name.is_empty() || name.starts_with("._") || path.split(['/', '\\']).any(|part| part == "__MACOSX") {
            continue;
        }
        if f.size() as usize > max_bytes - total {
            return Err(too_large());
        }
        let mut data = Vec::with_capacity(f.size() as usize);
        f.take((max_bytes - total) as u64 + 1).read_to_end(&mut data).map_err(|e| fail(format!("{name} in it cannot be read ({e}); unzip it and open its files")))?;
        total += data.len();
        if total > max_bytes {
            return Err(too_large());
        }
        out.push((name, data));
    }
    Ok(out)
}
