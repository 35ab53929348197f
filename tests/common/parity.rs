//! Parity cases: the same computation on the CPU and on another device, compared.
//! Written once and run per backend: natively by `tests/gpu.rs` (lavapipe) and in
//! headless Chromium by `tests/web.rs` (WebGPU on SwiftShader), through the
//! engine's public interface only. Async because a
//! browser can only await a GPU readback.
//!
//! Each case runs forward, then backward from `sum(out * r)` with a fixed random
//! `r` (so every output element sends a different gradient), and compares the
//! output and every input's gradient. The error of a tensor is its largest
//! absolute difference relative to its largest magnitude.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use layerlab::backend::gpu::Tuning;
use layerlab::backend::{Device, Storage};
use layerlab::nn::{Mode, Model, ModelSpec};
use layerlab::tensor::{random_uniform, Array, Tensor};

/// Bound on the relative error of single kernels.
pub const KERNEL_TOLERANCE: f32 = 1e-4;
/// Bound for whole models (a few hundred kernels in a row, each summing in
/// another order than the CPU; measured on lavapipe: at most 8.3e-7).
pub const MODEL_TOLERANCE: f32 = 1e-4;

/// One compared tensor.
#[derive(Clone, Debug)]
pub struct Comparison {
    pub case: String,
    pub what: String,
    pub error: f32,
    pub tolerance: f32,
    /// The shapes differed, or one side had a gradient and the other did not.
    pub mismatch: Option<String>,
}

impl Comparison {
    pub fn ok(&self) -> bool {
        self.mismatch.is_none() && self.error <= self.tolerance
    }
}

impl std::fmt::Display for Comparison {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verdict = if self.ok() { "ok" } else { "OFF" };
        match &self.mismatch {
            Some(m) => write!(f, "{verdict} {} {}: {m}", self.case, self.what),
            None => write!(
                f,
                "{verdict} {} {}: relative error {:.1e} (bound {:.0e})",
                self.case, self.what, self.error, self.tolerance
            ),
        }
    }
}

fn compare(case: &str, what: &str, cpu: Option<&Array>, other: Option<&Array>, tolerance: f32) -> Comparison {
    let mut c = Comparison { case: case.into(), what: what.into(), error: 0.0, tolerance, mismatch: None };
    match (cpu, other) {
        (Some(a), Some(b)) if a.shape() == b.shape() => {
            let scale = a.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
            let diff = a.iter().zip(b.iter()).fold(0.0f32, |m, (x, y)| {
                if x.is_nan() != y.is_nan() {
                    f32::INFINITY
                } else {
                    m.max((x - y).abs())
                }
            });
            c.error = diff / scale;
        }
        (Some(a), Some(b)) => c.mismatch = Some(format!("shape {:?} vs {:?}", a.shape(), b.shape())),
        (None, None) => {}
        (a, _) => {
            c.mismatch = Some(format!("gradient only on the {}", if a.is_some() { "CPU" } else { "other device" }))
        }
    }
    c
}

async fn host(s: &Storage) -> Array {
    s.to_array_async().await.unwrap_or_else(|e| panic!("readback failed: {e}"))
}

type CaseFn = Box<dyn Fn(&[Tensor]) -> Tensor>;

struct Case {
    name: &'static str,
    inputs: Vec<Array>,
    f: CaseFn,
}

fn case(name: &'static str, inputs: Vec<Array>, f: impl Fn(&[Tensor]) -> Tensor + 'static) -> Case {
    Case { name, inputs, f: Box::new(f) }
}

/// Forward and backward of `case` on `device`: the output and each input's gradient.
async fn run(case: &Case, device: &Device) -> (Array, Vec<Option<Array>>) {
    let inputs: Vec<Tensor> = case
        .inputs
        .iter()
        .map(|a| {
            let t = Tensor::parameter(a.clone());
            t.upload_to(device);
            t
        })
        .collect();
    let out = (case.f)(&inputs);
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let r = Tensor::new(random_uniform(&out.shape(), 1.0, &mut rng));
    out.mul(&r).sum(&[], false).backward();
    let out = out.storage().clone();
    let value = host(&out).await;
    let mut grads = Vec::new();
    for t in &inputs {
        let g = t.grad_storage().map(|g| g.clone());
        grads.push(match g {
            Some(g) => Some(host(&g).await),
            None => None,
        });
    }
    (value, grads)
}

fn uniform(shape: &[usize], seed: u64) -> Array {
    random_uniform(shape, 1.0, &mut ChaCha8Rng::seed_from_u64(seed))
}

fn positive(shape: &[usize], seed: u64) -> Array {
    uniform(shape, seed).mapv(|v| v.abs() + 0.5)
}

fn cases() -> Vec<Case> {
    let u = uniform;
    vec![
        case("add (broadcast)", vec![u(&[2, 3, 4], 1), u(&[3, 1], 2)], |t| t[0].add(&t[1])),
        case("sub (broadcast)", vec![u(&[4], 3), u(&[2, 3, 4], 4)], |t| t[0].sub(&t[1])),
        case("mul (broadcast)", vec![u(&[2, 1, 4], 5), u(&[3, 1], 6)], |t| t[0].mul(&t[1])),
        case("div", vec![u(&[3, 5], 7), positive(&[3, 5], 8)], |t| t[0].div(&t[1])),
        case("mul_scalar, add_scalar", vec![u(&[7], 9)], |t| t[0].mul_scalar(-2.5).add_scalar(0.25)),
        case("exp", vec![u(&[4, 5], 10)], |t| t[0].exp()),
        case("log", vec![positive(&[4, 5], 11)], |t| t[0].log()),
        case("sqrt", vec![positive(&[4, 5], 12)], |t| t[0].sqrt()),
        case("relu", vec![u(&[300], 13)], |t| t[0].relu()),
        case("tanh", vec![u(&[300], 14).mapv(|v| v * 4.0)], |t| t[0].tanh()),
        case("sigmoid", vec![u(&[300], 15).mapv(|v| v * 6.0)], |t| t[0].sigmoid()),
        case("gelu", vec![u(&[300], 16).mapv(|v| v * 3.0)], |t| t[0].gelu()),
        case("sum over one axis, kept", vec![u(&[3, 4, 5], 17)], |t| t[0].sum(&[1], true)),
        case("sum over two axes", vec![u(&[3, 4, 5], 18)], |t| t[0].sum(&[0, 2], false)),
        case("sum of everything", vec![u(&[3, 70], 19)], |t| t[0].sum(&[], false)),
        case("mean", vec![u(&[6, 5], 20)], |t| t[0].mean(&[1], true)),
        case("sum of many terms (a convolution's bias gradient)", vec![u(&[16, 4, 26, 26], 47)], |t| {
            t[0].sum(&[0, 2, 3], true)
        }),
        case("sum of a long axis (partial sums, then their sum)", vec![u(&[3, 5000], 55)], |t| t[0].sum(&[1], true)),
        case("sum over axes whose strides do not merge", vec![u(&[40, 3, 60], 56)], |t| t[0].sum(&[0, 2], false)),
        case("max over an axis", vec![u(&[3, 7, 4], 21)], |t| t[0].max(1, false)),
        case("max, kept", vec![u(&[5, 6], 22)], |t| t[0].max(1, true)),
        case("reshape of a permuted view", vec![u(&[2, 3, 4], 23)], |t| t[0].permute(&[2, 0, 1]).reshape(&[4, 6])),
        case("slice and concat", vec![u(&[3, 8], 24), u(&[3, 2], 25)], |t| {
            Tensor::concat(&[t[0].slice(1, 2, 5), t[1].clone(), t[0].slice(1, 0, 1)], 1)
        }),
        case("matmul", vec![u(&[5, 7], 26), u(&[7, 3], 27)], |t| t[0].matmul(&t[1])),
        case("matmul over rows of a 3-d input", vec![u(&[2, 70, 33], 28), u(&[33, 65], 29)], |t| t[0].matmul(&t[1])),
        case("matmul of transposed views", vec![u(&[9, 4], 30), u(&[6, 9], 31)], |t| {
            t[0].transpose(0, 1).matmul(&t[1].transpose(0, 1))
        }),
        case("matmul with a long K (split into partial products)", vec![u(&[6, 9000], 57), u(&[9000, 5], 58)], |t| {
            t[0].matmul(&t[1])
        }),
        case("matmul with a long K in 64 x 64 tiles", vec![u(&[40, 9000], 60), u(&[9000, 40], 61)], |t| {
            t[0].matmul(&t[1])
        }),
        case("batched matmul", vec![u(&[2, 3, 4, 5], 32), u(&[2, 3, 6, 5], 33)], |t| {
            t[0].matmul(&t[1].transpose(2, 3))
        }),
        case("conv2d", vec![u(&[2, 3, 7, 6], 34), u(&[4, 3, 3, 2], 35), u(&[4], 36)], |t| {
            t[0].conv2d(&t[1], Some(&t[2]), [1, 1], [0; 4])
        }),
        case("conv2d, stride 2, asymmetric padding, no bias", vec![u(&[3, 2, 9, 8], 37), u(&[5, 2, 3, 4], 38)], |t| {
            t[0].conv2d(&t[1], None, [2, 2], [1, 1, 1, 2])
        }),
        case("max_pool2d, overlapping windows", vec![u(&[2, 3, 7, 7], 39)], |t| t[0].max_pool2d([3, 3], [2, 2])),
        case("max_pool2d", vec![u(&[2, 2, 8, 6], 40)], |t| t[0].max_pool2d([2, 2], [2, 2])),
        case("avg_pool2d", vec![u(&[2, 3, 7, 7], 41)], |t| t[0].avg_pool2d([2, 3], [2, 1])),
        case("gather_rows (repeated ids)", vec![u(&[5, 6], 42)], |t| t[0].gather_rows(&[0, 2, 2, 4, 1, 0, 2])),
        case("gather_rows of many ids (its gradient in chunks)", vec![u(&[7, 4], 59)], |t| {
            t[0].gather_rows(&(0..600).map(|i| (i * i + 3) % 7).collect::<Vec<_>>())
        }),
        case("dropout (same mask)", vec![u(&[6, 50], 43)], |t| t[0].dropout(0.4, &mut ChaCha8Rng::seed_from_u64(7))),
        case("lstm_cell", vec![u(&[5, 12], 48).mapv(|v| v * 4.0), u(&[5, 3], 49).mapv(|v| v * 2.0)], |t| {
            t[0].lstm_cell(&t[1])
        }),
        case("lstm_cell of strided views", vec![u(&[12, 5], 50).mapv(|v| v * 4.0), u(&[5, 6], 51)], |t| {
            t[0].transpose(0, 1).lstm_cell(&t[1].slice(1, 3, 6))
        }),
        case(
            "gru_cell",
            vec![u(&[5, 9], 52).mapv(|v| v * 3.0), u(&[5, 9], 53).mapv(|v| v * 3.0), u(&[5, 3], 54)],
            |t| t[0].gru_cell(&t[1], &t[2]),
        ),
        case("softmax", vec![u(&[4, 3, 9], 44).mapv(|v| v * 5.0)], |t| t[0].softmax()),
        case("softmax of a strided view", vec![u(&[4, 6], 45)], |t| t[0].transpose(0, 1).softmax()),
        case("softmax_cross_entropy", vec![u(&[2, 6, 5], 46).mapv(|v| v * 4.0)], |t| {
            t[0].softmax_cross_entropy(&[0, 4, 1, 1, 3, 2, 0, 0, 4, 2, 1, 3])
        }),
    ]
}

/// Every primitive, forward and backward, on the CPU and on `device` (on a
/// GPU, with both tunings' kernels: GEMMs and sums take other shapes).
/// Natively also a product of over a million columns (wider than one
/// dispatch of 16-wide tiles holds; too slow for the browser tests' time limit
/// on a software adapter).
pub async fn kernel_cases(device: &Device) -> Vec<Comparison> {
    let mut out = Vec::new();
    let mut all = cases();
    if cfg!(not(target_arch = "wasm32")) {
        let u = uniform;
        all.push(case("matmul with over a million columns", vec![u(&[2, 3], 62), u(&[3, 1_100_000], 63)], |t| {
            t[0].matmul(&t[1])
        }));
    }
    if let Some(gpu) = device.gpu() {
        let usual = gpu.tuning();
        let other = if usual == Tuning::Gpu { Tuning::Software } else { Tuning::Gpu };
        gpu.set_tuning(other);
        // The cases whose kernels the tuning changes.
        let tuned = ["matmul", "conv2d", "sum", "mean", "gather"];
        for c in all.iter().filter(|c| tuned.iter().any(|w| c.name.contains(w))) {
            let (a, ga) = run(c, &Device::Cpu).await;
            let (b, gb) = run(c, device).await;
            let name = format!("{} ({other:?} tuning)", c.name);
            out.push(compare(&name, "forward", Some(&a), Some(&b), KERNEL_TOLERANCE));
            for (i, (x, y)) in ga.iter().zip(&gb).enumerate() {
                out.push(compare(&name, &format!("gradient of input {i}"), x.as_ref(), y.as_ref(), KERNEL_TOLERANCE));
            }
        }
        gpu.set_tuning(usual);
    }
    for c in all.drain(..) {
        let (a, ga) = run(&c, &Device::Cpu).await;
        let (b, gb) = run(&c, device).await;
        out.push(compare(c.name, "forward", Some(&a), Some(&b), KERNEL_TOLERANCE));
        for (i, (x, y)) in ga.iter().zip(&gb).enumerate() {
            out.push(compare(c.name, &format!("gradient of input {i}"), x.as_ref(), y.as_ref(), KERNEL_TOLERANCE));
        }
    }
    out
}

/// A model's logits, loss and every parameter's gradient (training mode, so
/// dropout runs with the same mask) on `device` against the CPU, for a random batch.
pub async fn model_case(name: &str, spec: &ModelSpec, device: &Device) -> Vec<Comparison> {
    let cpu = model_run(spec, &Device::Cpu).await;
    let other = model_run(spec, device).await;
    let mut out = vec![
        compare(name, "logits", Some(&cpu.0), Some(&other.0), MODEL_TOLERANCE),
        compare(name, "loss", Some(&cpu.1), Some(&other.1), MODEL_TOLERANCE),
    ];
    for ((pname, a), (_, b)) in cpu.2.iter().zip(&other.2) {
        out.push(compare(name, &format!("gradient of {pname}"), a.as_ref(), b.as_ref(), MODEL_TOLERANCE));
    }
    out
}

type ModelRun = (Array, Array, Vec<(String, Option<Array>)>);

async fn model_run(spec: &ModelSpec, device: &Device) -> ModelRun {
    let model = Model::new(spec).expect("a valid spec");
    for t in model.tensors() {
        t.upload_to(device);
    }
    let mut shape = vec![3];
    shape.extend_from_slice(&model.info.input_shape);
    let n: usize = shape.iter().product();
    let classes = *model.info.output_shape.last().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let x: Vec<f32> = if model.takes_ids() {
        (0..n).map(|_| rng.random_range(0..classes) as f32).collect()
    } else {
        (0..n).map(|_| rng.random::<f32>()).collect()
    };
    let x = Tensor::from_vec(&shape, x);
    let mut dropout = ChaCha8Rng::seed_from_u64(4);
    let logits = model.forward_logits(&x, Mode::Train(&mut dropout));
    let rows = logits.len() / classes;
    let labels: Vec<usize> = (0..rows).map(|_| rng.random_range(0..classes)).collect();
    let loss = logits.softmax_cross_entropy(&labels);
    loss.backward();
    let mut grads = Vec::new();
    for (pname, p) in model.parameters() {
        let g = p.grad_storage().map(|g| g.clone());
        grads.push((
            pname,
            match g {
                Some(g) => Some(host(&g).await),
                None => None,
            },
        ));
    }
    let (logits, loss) = (logits.storage().clone(), loss.storage().clone());
    (host(&logits).await, host(&loss).await, grads)
}
