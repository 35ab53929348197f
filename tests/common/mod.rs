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

/// The direct convolution of `x` [N,C,H,W] with `w` [F,C,KH,KW] (stride 1,
/// padding `pad` top/bottom/left/right) and, from `dy` [N,F,OH,OW], its
/// gradients of the input, weight and bias: each sum written out, in f64.
pub fn direct_conv(x: &Array, w: &Array, dy: &Array, pad: [usize; 4]) -> [Array; 4] {
    let (xs, ws, ys) = (x.shape(), w.shape(), dy.shape());
    let (mut y, mut dx, mut dw) = (Array::zeros(ys), Array::zeros(xs), Array::zeros(ws));
    let mut db = Array::zeros(IxDyn(&[ws[0]]));
    let mut acc_w = vec![0.0f64; w.len()];
    for n in 0..xs[0] {
        for f in 0..ws[0] {
            for oy in 0..ys[2] {
                for ox in 0..ys[3] {
                    let g = dy[[n, f, oy, ox]];
                    db[[f]] += g;
                    let mut s = 0.0f64;
                    for c in 0..xs[1] {
                        for i in 0..ws[2] {
                            for j in 0..ws[3] {
                                let (iy, ix) =
                                    ((oy + i) as isize - pad[0] as isize, (ox + j) as isize - pad[2] as isize);
                                if iy < 0 || ix < 0 || iy as usize >= xs[2] || ix as usize >= xs[3] {
                                    continue;
                                }
                                let at = [n, c, iy as usize, ix as usize];
                                s += (x[at] * w[[f, c, i, j]]) as f64;
                                dx[at] += g * w[[f, c, i, j]];
                                acc_w[((f * xs[1] + c) * ws[2] + i) * ws[3] + j] += (g * x[at]) as f64;
                            }
                        }
                    }
                    y[[n, f, oy, ox]] = s as f32;
                }
            }
        }
    }
    dw.iter_mut().zip(&acc_w).for_each(|(d, &a)| *d = a as f32);
    [y, dx, dw, db]
}

/// The CPU convolution (`Tensor::conv2d` and `cpu::conv2d_forward` /
/// `conv2d_backward`, whose im2col and col2im copy rows of a few pixels) gives
/// the direct convolution's output and gradients, natively and in wasm.
pub fn conv2d_in_chunks_matches_direct_convolution() {
    use layerlab::backend::{cpu, ops::Window};

    // Outputs of 26x26 go one image per GEMM (straight into the output);
    // 10x10 go five images at a time, the last chunk of 7 images holding two;
    // with padding and without; through the autograd (which keeps the
    // unfolded patches for backward) and without keeping them.
    let cases: [(&[usize], &[usize], [usize; 4]); 3] = [
        (&[3, 2, 28, 28], &[4, 2, 3, 3], [0; 4]),
        (&[7, 3, 10, 10], &[5, 3, 3, 3], [1, 1, 1, 1]),
        (&[7, 3, 11, 12], &[2, 3, 2, 3], [0, 0, 1, 0]),
    ];
    for (k, (xs, ws, pad)) in cases.into_iter().enumerate() {
        let (x, w, b) = (randn(xs, 200 + k as u64), randn(ws, 210 + k as u64), randn(&[ws[0]], 220 + k as u64));
        let (xt, wt, bt) = (Tensor::parameter(x.clone()), Tensor::parameter(w.clone()), Tensor::parameter(b.clone()));
        let y = xt.conv2d(&wt, Some(&bt), [1, 1], pad);
        let dy = randn(&y.shape(), 230 + k as u64);
        let [y_ref, dx_ref, dw_ref, db_ref] = direct_conv(&x, &w, &dy, pad);
        let y_ref = &y_ref + &b.view().into_shape_with_order(IxDyn(&[1, ws[0], 1, 1])).unwrap();
        let close = |what: &str, got: &Array, want: &Array| {
            assert_eq!(got.shape(), want.shape(), "case {k}: {what}");
            for (i, (a, b)) in got.iter().zip(want).enumerate() {
                assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "case {k}: {what}[{i}] = {a}, expected {b}");
            }
        };
        close("output", &y.value(), &y_ref);
        y.backward_with(dy.clone());
        close("input gradient", &xt.grad().unwrap(), &dx_ref);
        close("weight gradient", &wt.grad().unwrap(), &dw_ref);
        close("bias gradient", &bt.grad().unwrap(), &db_ref);
        // The backend without patches kept: the same gradients.
        let g = Window { n: xs[0], c: xs[1], h: xs[2], w: xs[3], kh: ws[2], kw: ws[3], sh: 1, sw: 1, pad };
        let wm = w.view().into_shape_with_order((ws[0], ws[1] * ws[2] * ws[3])).unwrap();
        let (x_s, dy_s) = (x.as_slice().unwrap(), dy.as_slice().unwrap());
        let (out, patches) = cpu::conv2d_forward(x_s, wm, None, &g, false);
        assert!(patches.is_none(), "case {k}: patches kept though not asked for");
        close(
            "output without bias",
            &Array::from_shape_vec(y_ref.raw_dim(), out).unwrap(),
            &(&y_ref - &b.view().into_shape_with_order(IxDyn(&[1, ws[0], 1, 1])).unwrap()),
        );
        let (dx, dw, db) = cpu::conv2d_backward(x_s, wm, dy_s, &g, true, None);
        close(
            "input gradient, patches unfolded again",
            &Array::from_shape_vec(x.raw_dim(), dx.unwrap()).unwrap(),
            &dx_ref,
        );
        close(
            "weight gradient, patches unfolded again",
            &dw.into_dyn().into_shape_with_order(w.raw_dim()).unwrap(),
            &dw_ref,
        );
        close("bias gradient, patches unfolded again", &ndarray::Array1::from_vec(db).into_dyn(), &db_ref);
    }
}

/// The CPU max pool (`cpu::max_pool_forward`; 2x2 windows of stride 2 run
/// four outputs at a time in wasm) gives, for every output, the largest tap
/// and its index, the first of equal ones in row-major tap order, and a NaN
/// only where it is the first tap; for output rows of 1 to 13.
pub fn max_pool_matches_its_definition() {
    use layerlab::backend::{cpu, ops::Window};
    for (h, w, k, s) in [(2, 2, 2, 2), (6, 27, 2, 2), (26, 26, 2, 2), (11, 11, 2, 2), (9, 17, 3, 2), (7, 9, 2, 1)] {
        let (n, c) = (2, 3);
        // Few distinct values, so that ties are common; a few NaNs.
        let mut x = randn(&[n, c, h, w], (h * 31 + w) as u64).mapv(|v| (v * 2.0).round());
        for (i, v) in x.iter_mut().enumerate() {
            if i % 37 == 5 {
                *v = f32::NAN;
            }
        }
        let g = Window { n, c, h, w, kh: k, kw: k, sh: s, sw: s, pad: [0; 4] };
        let (out, arg) = cpu::max_pool_forward(x.as_slice().unwrap(), &g);
        let (oh, ow) = (g.out_h(), g.out_w());
        assert_eq!(out.len(), n * c * oh * ow);
        let xs = x.as_slice().unwrap();
        for p in 0..n * c {
            for oy in 0..oh {
                for ox in 0..ow {
                    let (mut best, mut at) = (f32::NAN, usize::MAX);
                    for i in 0..k {
                        for j in 0..k {
                            let idx = (oy * s + i) * w + ox * s + j;
                            let v = xs[p * h * w + idx];
                            if at == usize::MAX || v > best {
                                (best, at) = (v, idx);
                            }
                        }
                    }
                    let o = (p * oh + oy) * ow + ox;
                    let what = format!("{h}x{w} pool {k} stride {s}, plane {p}, output ({oy}, {ox})");
                    assert_eq!(arg[o] as usize, at, "{what}: index");
                    assert!(out[o] == best || (out[o].is_nan() && best.is_nan()), "{what}: {} vs {best}", out[o]);
                }
            }
        }
    }
}
