//! Helpers shared by the integration tests: seeded random arrays and a
//! finite-difference gradient check.
#![allow(dead_code)]

pub mod parity;

use layerlab::tensor::{random_normal, Array};
use layerlab::{ModelSpec, Tensor};
use ndarray::{ArrayD, IxDyn};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

pub fn randn(shape: &[usize], seed: u64) -> Array {
    random_normal(shape, 1.0, &mut rng(seed))
}

/// Distinct values at least 0.05 apart, none near zero, in random order: inputs
/// for ops with kinks (relu, max, max-pool), so a finite difference never crosses one.
pub fn spaced(shape: &[usize], seed: u64) -> Array {
    let n: usize = shape.iter().product();
    let mut v: Vec<f32> = (0..n).map(|i| (i as f32 - (n / 2) as f32) * 0.05 + 0.025).collect();
    v.shuffle(&mut rng(seed));
    ArrayD::from_shape_vec(IxDyn(shape), v).unwrap()
}

pub fn positive(shape: &[usize], seed: u64) -> Array {
    randn(shape, seed).mapv(|v| v.abs() + 0.5)
}

/// Checks the gradients of `f` at `inputs` against central differences of
/// `sum(f(inputs) * r)` with a fixed random `r`, for up to `max_checks` entries
/// per input. Panics with the first mismatch.
pub fn gradcheck(name: &str, inputs: &[Array], f: impl Fn(&[Tensor]) -> Tensor) {
    gradcheck_with(name, inputs, 1e-2, 2e-2, f)
}

pub fn gradcheck_with(name: &str, inputs: &[Array], eps: f32, tol: f32, f: impl Fn(&[Tensor]) -> Tensor) {
    let params: Vec<Tensor> = inputs.iter().map(|a| Tensor::parameter(a.clone())).collect();
    let out = f(&params);
    let weights = Tensor::new(randn(&out.shape(), 12345));
    let loss = out.mul(&weights).sum(&[], false);
    loss.backward();
    let analytic: Vec<Array> = params
        .iter()
        .map(|p| p.grad().map(|g| g.to_owned()).unwrap_or_else(|| Array::zeros(IxDyn(&p.shape()))))
        .collect();

    let eval = |values: &[Array]| -> f64 {
        let ts: Vec<Tensor> = values.iter().map(|a| Tensor::new(a.clone())).collect();
        let out = f(&ts);
        let total: f64 = out.value().iter().zip(weights.value().iter()).map(|(a, b)| *a as f64 * *b as f64).sum();
        total
    };
    for (k, input) in inputs.iter().enumerate() {
        let n = input.len();
        let stride = (n / 40).max(1);
        for idx in (0..n).step_by(stride) {
            let mut plus = inputs.to_vec();
            plus[k].as_slice_mut().unwrap()[idx] += eps;
            let mut minus = inputs.to_vec();
            minus[k].as_slice_mut().unwrap()[idx] -= eps;
            let numeric = ((eval(&plus) - eval(&minus)) / (2.0 * eps as f64)) as f32;
            let a = analytic[k].as_standard_layout().as_slice().unwrap()[idx];
            let scale = 1.0f32.max(a.abs()).max(numeric.abs());
            assert!(
                (a - numeric).abs() <= tol * scale,
                "{name}: d/d input{k}[{idx}]: autograd {a} vs finite difference {numeric} (shape {:?})",
                input.shape()
            );
        }
    }
}

pub fn spec(input: &str, layers: &str) -> ModelSpec {
    ModelSpec::from_json(&format!(
        r#"{{"name": "mixed", "input": {input}, "layers": {layers}, "training": {{"seed": 5, "batch_size": 16}}}}"#
    ))
    .unwrap()
}

/// Presets and stacks that use every layer type and option the exporter maps.
pub fn models() -> Vec<(String, ModelSpec)> {
    let mut out: Vec<(String, ModelSpec)> = layerlab::PRESETS.iter().map(|p| (p.id.to_string(), p.spec())).collect();
    let mnist = r#"{"dataset": "mnist"}"#;
    out.push(("conv-same".into(), spec(mnist, r#"[
        {"type": "Conv2D", "filters": 4, "kernel_size": [3, 4], "strides": 2, "padding": "same", "activation": "tanh"},
        {"type": "AveragePool2D", "pool_size": 2, "strides": 1},
        {"type": "Conv2D", "filters": 3, "kernel_size": 2, "padding": "same", "use_bias": false},
        {"type": "Sigmoid"}, {"type": "MaxPool2D", "pool_size": [2, 3]},
        {"type": "Flatten"}, {"type": "Dropout", "rate": 0.3},
        {"type": "Dense", "units": 12, "activation": "gelu"}, {"type": "Dense", "units": 10, "activation": "softmax", "use_bias": false}]"#)));
    out.push((
        "rows-rnn-gru".into(),
        spec(
            mnist,
            r#"[
        {"type": "Reshape", "target_shape": [28, -1]},
        {"type": "SimpleRNN", "units": 6, "return_sequences": true},
        {"type": "GRU", "units": 5, "return_sequences": true},
        {"type": "LayerNormalization", "epsilon": 0.001},
        {"type": "MultiHeadAttention", "num_heads": 5, "causal": true},
        {"type": "LSTM", "units": 7}, {"type": "ReLU"}, {"type": "Dense", "units": 10}, {"type": "Softmax"}]"#,
        ),
    ));
    out.push((
        "tokens-sinusoidal".into(),
        spec(
            r#"{"dataset": "sort", "seq_len": 6, "vocab": 7}"#,
            r#"[
        {"type": "Embedding", "input_dim": 7, "output_dim": 8}, {"type": "PositionalEmbedding", "kind": "sinusoidal"},
        {"type": "TransformerEncoder", "num_heads": 2, "ff_dim": 16, "dropout": 0.1},
        {"type": "GELU"}, {"type": "Tanh"}, {"type": "Dense", "units": 7}]"#,
        ),
    ));
    // The output softmax before a Flatten: left out of the model and both exports.
    out.push(("softmax-flatten".into(), spec(r#"{"dataset": "mnist", "shape": [1, 784]}"#, r#"[
        {"type": "Dense", "units": 10, "activation": "relu"}, {"type": "Dense", "units": 10}, {"type": "Softmax"}, {"type": "Flatten"}]"#)));
    out
}

/// The first `train` training and `test` test digits of the MNIST in assets/
/// (native only: the browser tests have no file system).
#[cfg(not(target_arch = "wasm32"))]
pub fn mnist(train: usize, test: usize) -> (layerlab::data::Mnist, layerlab::data::Mnist) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/mnist");
    let (mut a, mut b) =
        (layerlab::data::Mnist::load_dir(&dir, true).unwrap(), layerlab::data::Mnist::load_dir(&dir, false).unwrap());
    a.truncate(train);
    b.truncate(test);
    (a, b)
}

/// A new, empty folder that belongs to the calling test alone (its name has
/// the process, a counter and the clock), under the system's temporary folder.
/// No two calls share one, so tests never race on files.
#[cfg(not(target_arch = "wasm32"))]
pub fn unique_dir(label: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let label: String = label.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    let dir = std::env::temp_dir().join(format!(
        "layerlab-{label}-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The `layerlab` command line run in the crate's folder: exit code, stdout, stderr.
#[cfg(not(target_arch = "wasm32"))]
pub fn cli(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_layerlab"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every file of a `format` export (`pytorch` or `keras`) of `model`, written
/// to a new folder of its own (named after `label`): the folder and the files.
#[cfg(not(target_arch = "wasm32"))]
pub fn export_to(model: &layerlab::Model, format: &str, label: &str) -> (std::path::PathBuf, Vec<(String, Vec<u8>)>) {
    let files =
        if format == "keras" { layerlab::io::keras::keras(model) } else { layerlab::io::export::pytorch(model) }
            .unwrap();
    let dir = unique_dir(&format!("{label}-{format}"));
    for (file, bytes) in &files {
        std::fs::write(dir.join(file), bytes).unwrap();
    }
    (dir, files)
}
