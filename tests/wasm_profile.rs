//! Where the page's engine spends its time: the workloads W1-W3 (steps of
//! batch 64 on MNIST test digits) and the Seed CNN's GEMM shapes, compiled for
//! wasm32 with SIMD128 as the page is and run in Node.js, whose V8 is
//! Chromium's engine and writes a CPU profile with the wasm functions' names.
//! Printed, never asserted; ignored in the test run. `scripts/wasm_profile.sh
//! [w1|w2|w3|gemm]` builds it, runs it with `node --cpu-prof` and prints the
//! functions by their share of the samples (`scripts/cpuprofile_summary.py`).
//! This is how ReLU's `f32::max` (a call to libm's `fmaxf` per element in
//! wasm, 15 % of the Seed CNN's step) was found.
#![cfg(target_arch = "wasm32")]

use layerlab::data::Mnist;
use layerlab::Trainer;
use wasm_bindgen_test::*;
use web_time::Instant;

const TEST_IMAGES: &[u8] = include_bytes!("../assets/mnist/t10k-images-idx3-ubyte.gz");
const TEST_LABELS: &[u8] = include_bytes!("../assets/mnist/t10k-labels-idx1-ubyte.gz");

fn log(line: String) {
    web_sys::console::log_1(&line.into());
}

/// 10 warm-up steps (V8 compiles hot functions again, optimised), then the
/// fastest of 4 x 25 steps.
fn workload(name: &str) {
    let data = Mnist::from_idx("t10k-images", TEST_IMAGES, "t10k-labels", TEST_LABELS).unwrap();
    let spec = layerlab::preset(name).unwrap();
    let mut trainer = Trainer::new(&spec, data.clone(), data).unwrap();
    for _ in 0..10 {
        trainer.step().unwrap();
    }
    let mut best_s = f64::INFINITY;
    for _ in 0..4 {
        let t0 = Instant::now();
        for _ in 0..25 {
            trainer.step().unwrap();
        }
        best_s = best_s.min(t0.elapsed().as_secs_f64());
    }
    log(format!("{name}: {:.0} samples/s in Node.js (fastest of 4 x 25 steps)", 25.0 * 64.0 / best_s));
}

#[wasm_bindgen_test]
#[ignore]
fn w1() {
    workload("seed-cnn");
}

#[wasm_bindgen_test]
#[ignore]
fn w2() {
    workload("seed-lstm");
}

#[wasm_bindgen_test]
#[ignore]
fn w3() {
    workload("tiny-vit");
}

/// The main GEMMs of a Seed CNN step at batch 64, in the shapes and layouts
/// the convolutions give them (`conv2d_forward` / `conv2d_backward` in chunks
/// of about 512 columns, the largest chunk of each: F filters, C·K·K patch
/// rows), and the LSTM's recurrent GEMM: GFLOP/s and milliseconds per batch,
/// the fastest of 5 rounds.
#[wasm_bindgen_test]
#[ignore]
fn gemm() {
    use layerlab::backend::cpu::gemm_into;
    use ndarray::{Array2, ShapeBuilder};
    // (what, m, k, n, A stored transposed, B stored transposed, calls per batch)
    let shapes = [
        ("conv1 forward: W [32, 9] x patches [9, 676]", 32, 9, 676, false, false, 64),
        ("conv1 weight grad: dY [32, 676] x patches^T [676, 9]", 32, 676, 9, false, true, 64),
        ("conv2 forward: W [64, 288] x patches [288, 484]", 64, 288, 484, false, false, 16),
        ("conv2 weight grad: dY [64, 484] x patches^T [484, 288]", 64, 484, 288, false, true, 16),
        ("conv2 input grad: W^T [288, 64] x dY [64, 484]", 288, 64, 484, true, false, 16),
        ("conv3 forward: W [64, 576] x patches [576, 504]", 64, 576, 504, false, false, 1),
        ("conv3 input grad: W^T [576, 64] x dY [64, 504]", 576, 64, 504, true, false, 1),
        ("LSTM step: h [64, 128] x W_hh^T [128, 512]", 64, 128, 512, false, true, 28),
    ];
    for (what, m, k, n, ta, tb, calls) in shapes {
        // Column-major storage makes a transposed (strided) view.
        let a = Array2::<f32>::from_elem((m, k).set_f(ta), 0.5);
        let b = Array2::<f32>::from_elem((k, n).set_f(tb), 0.25);
        let mut c = Array2::<f32>::zeros((m, n));
        let mut best_ms = f64::INFINITY;
        for _ in 0..5 {
            let t0 = Instant::now();
            for _ in 0..4 * calls {
                gemm_into(a.view(), b.view(), 0.0, &mut c.view_mut());
            }
            best_ms = best_ms.min(t0.elapsed().as_secs_f64() * 1000.0 / 4.0);
        }
        let flops = 2.0 * (m * k * n * calls) as f64;
        log(format!("{what}: {:.1} GFLOP/s, {best_ms:.2} ms per batch", flops / (best_ms / 1000.0) / 1e9));
    }
}
