//! Helpers shared by the integration tests: seeded random arrays and a
//! finite-difference gradient check.
#![allow(dead_code)]

use layerlab::tensor::{random_normal, Array};
use layerlab::Tensor;
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
    let analytic: Vec<Array> = params.iter().map(|p| p.grad().map(|g| g.to_owned()).unwrap_or_else(|| Array::zeros(IxDyn(&p.shape())))).collect();

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
