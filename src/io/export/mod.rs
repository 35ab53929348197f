//! Export to PyTorch and Keras 3: readable Python generated from a model spec,
//! with the model's weights, a check batch and the spec.
//!
//! - `pytorch.rs`: `model.py` with an `nn.Sequential` whose state-dict names and
//!   shapes are layerlab's, `train.py` (one process or `torchrun` + DDP), `check.py`.
//! - `keras.rs`: a `keras.Sequential` and `load_layerlab_weights()`, which
//!   converts PyTorch layouts to Keras's; `train.py` with `model.fit`.
//! - `archive.rs`: the zip the page downloads and opens again.
//! - `py/`: the Python that does not depend on the model (helper classes, weight
//!   converters, the data loader, the train and check scripts), as `.py` files
//!   included here, so they can be read and linted as Python. Train scripts mark
//!   what the spec fills in with `__NAME__` placeholders (valid Python names).
//!
//! This file holds what both exporters share. User text (a model's name)
//! reaches generated files only through `io::escape`.

mod archive;
pub mod keras;
mod pytorch;

pub use archive::{unzip, zip};
pub use pytorch::{model_py, pytorch, train_py, CHECK_PY};

use crate::data::DatasetSpec;
use crate::error::Result;
use crate::nn::spec::Size2;
use crate::nn::{Mode, Model, ModelSpec};
use crate::Tensor;

/// One generated file: its name and contents.
pub type File = (String, Vec<u8>);

/// An f32 as a Python float literal (`0.001`, `1.0`).
pub(crate) fn py_float(v: f32) -> String {
    let s = format!("{v:?}");
    if s.contains(['.', 'e', 'i', 'N']) {
        s
    } else {
        format!("{s}.0")
    }
}

/// Sizes as a Python tuple (`(784,)`, `(1, 28, 28)`).
pub(crate) fn py_tuple(v: &[usize]) -> String {
    match v {
        [one] => format!("({one},)"),
        _ => format!("({})", v.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    }
}

/// A size as a Python argument: `3` for a square, `(3, 5)` otherwise.
pub(crate) fn hw(s: Size2) -> String {
    let [h, w] = s.hw();
    if h == w {
        h.to_string()
    } else {
        format!("({h}, {w})")
    }
}

/// The spec's name, or "model" for an unnamed one: user text, which reaches
/// generated files only through `io::escape`.
pub fn model_name(spec: &ModelSpec) -> &str {
    if spec.name.is_empty() {
        "model"
    } else {
        spec.name.as_str()
    }
}

/// The input in words, for the generated docstrings and READMEs.
pub(crate) fn describe_input(spec: &ModelSpec) -> String {
    match &spec.input {
        DatasetSpec::Mnist { shape } => format!("MNIST digits {shape:?} per example, pixels in [0, 1]"),
        other => format!(
            "token ids [{}] per example (the {} task, vocabulary {})",
            other.shape()[0],
            other.name(),
            other.classes()
        ),
    }
}

/// The data set's name and the Python line with its shape (MNIST) or its
/// sequence length and vocabulary (tasks).
fn task_lines(spec: &ModelSpec) -> (String, String) {
    match &spec.input {
        DatasetSpec::Mnist { shape } => ("mnist".to_string(), format!("INPUT_SHAPE = {}", py_tuple(shape))),
        other => (other.name().to_string(), format!("SEQ_LEN, VOCAB = {}, {}", other.shape()[0], other.classes())),
    }
}

/// Appends the Python source of each named piece that `used` holds, in the
/// list's order, each with a blank line before and after.
pub(crate) fn push_used<S: AsRef<str>>(
    out: &mut String,
    pieces: &[(&str, S)],
    used: &std::collections::BTreeSet<&str>,
) {
    for (name, src) in pieces {
        if used.contains(name) {
            out.push('\n');
            out.push_str(src.as_ref());
            out.push('\n');
        }
    }
}

/// A train script (`py/*/train.py`) with the spec's recipe in its `__NAME__`
/// placeholders: the data set, its shape or task line, the seed, batch size,
/// epochs and the optimizer expression, and the shared data code.
pub(crate) fn fill_train(template: &str, spec: &ModelSpec, optimizer: &str) -> String {
    let t = &spec.training;
    let (dataset, task_line) = task_lines(spec);
    template
        .replace("__DATA_PY__", DATA_PY)
        .replace("__DATASET__", &dataset)
        .replace("__TASK_LINE__", &task_line)
        .replace("__SEED__", &t.seed.to_string())
        .replace("__BATCH__", &t.batch_size.to_string())
        .replace("__EPOCHS__", &t.epochs.to_string())
        .replace("__OPTIMIZER__", optimizer)
}

/// The data functions both train.py files share: MNIST from IDX files in
/// layerlab's order (numpy arrays), or the sequence task generated with numpy.
const DATA_PY: &str = include_str!("py/data.py");

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
    crate::io::weights::to_bytes(&tensors)
}

/// The files every export has, around its framework's code.
pub(crate) fn bundle(
    model: &Model,
    model_py: String,
    train_py: String,
    check_py: &str,
    readme: String,
) -> Result<Vec<File>> {
    Ok(vec![
        ("model.py".into(), model_py.into_bytes()),
        ("train.py".into(), train_py.into_bytes()),
        ("check.py".into(), check_py.as_bytes().to_vec()),
        ("README.md".into(), readme.into_bytes()),
        ("model.json".into(), model.spec.to_json_pretty().into_bytes()),
        ("weights.safetensors".into(), crate::io::weights::save_parameters(&model.parameters())?),
        ("check.safetensors".into(), check_batch(model)?),
    ])
}
