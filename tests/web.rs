//! The engine inside headless Chromium (wasm-bindgen-test): shape inference,
//! gradients and a few training steps on real MNIST digits, compiled to wasm32.
#![cfg(target_arch = "wasm32")]

use layerlab::data::Mnist;
use layerlab::{ModelSpec, Trainer};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const TEST_IMAGES: &[u8] = include_bytes!("../assets/mnist/t10k-images-idx3-ubyte.gz");
const TEST_LABELS: &[u8] = include_bytes!("../assets/mnist/t10k-labels-idx1-ubyte.gz");

#[wasm_bindgen_test]
fn presets_infer_in_the_browser() {
    let info = layerlab::preset("seed-cnn").unwrap().infer().unwrap();
    assert_eq!(info.total_params, 93_322);
    let e = ModelSpec::from_json(r#"{"input": {"dataset": "mnist"}, "layers": [{"type": "Dense", "units": 10}]}"#)
        .unwrap()
        .infer()
        .unwrap_err();
    assert_eq!(e.to_string(), "layer 0 Dense: expects a flat input but gets [1, 28, 28]; insert Flatten before it");
}

#[wasm_bindgen_test]
fn a_cnn_trains_on_mnist_in_the_browser() {
    let mut data = Mnist::from_idx("t10k-images", TEST_IMAGES, "t10k-labels", TEST_LABELS).unwrap();
    assert_eq!(data.len(), 10_000);
    data.truncate(1_000);
    let spec = ModelSpec::from_json(
        r#"{"input": {"dataset": "mnist"}, "layers": [
            {"type": "Conv2D", "filters": 8, "kernel_size": 3, "activation": "relu"},
            {"type": "MaxPool2D", "pool_size": 2}, {"type": "Flatten"}, {"type": "Dense", "units": 10}],
            "training": {"batch_size": 32}}"#,
    )
    .unwrap();
    let mut trainer = Trainer::new(&spec, data.clone(), data).unwrap();
    let losses: Vec<f32> = (0..30).map(|_| trainer.step().unwrap().loss).collect();
    let first: f32 = losses[..5].iter().sum::<f32>() / 5.0;
    let last: f32 = losses[25..].iter().sum::<f32>() / 5.0;
    assert!(last < 0.7 * first, "{losses:?}");
    assert!(losses.iter().all(|l| l.is_finite()));
}

/// The browser's SIMD GEMM against a plain triple loop: odd sizes (partial tiles),
/// blocks deeper than one K block, transposed operands, `beta`, and outputs
/// narrower than a tile (as a convolution's weight gradient over one channel).
#[wasm_bindgen_test]
fn simd_gemm_matches_a_plain_loop() {
    use layerlab::backend::cpu::gemm_into;
    use ndarray::{Array2, ShapeBuilder};
    let mut seed = 7u32;
    let mut next = move || {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
    };
    for &(m, k, n) in &[
        (1, 1, 1),
        (3, 5, 7),
        (4, 8, 8),
        (17, 300, 33),
        (64, 9, 1030),
        (130, 257, 9),
        (32, 676, 9),
        (37, 700, 5),
        (12, 3, 1),
    ] {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            // Column-major storage makes a transposed (strided) view.
            let a = Array2::from_shape_fn((m, k).set_f(ta), |_| next());
            let b = Array2::from_shape_fn((k, n).set_f(tb), |_| next());
            let c0 = Array2::from_shape_fn((m, n), |_| next());
            for beta in [0.0f32, 1.0, 0.5] {
                let mut c = if beta == 0.0 { Array2::from_elem((m, n), f32::NAN) } else { c0.clone() };
                gemm_into(a.view(), b.view(), beta, &mut c.view_mut());
                for i in 0..m {
                    for j in 0..n {
                        let want: f32 = (0..k).map(|p| a[[i, p]] * b[[p, j]]).sum::<f32>()
                            + if beta == 0.0 { 0.0 } else { beta * c0[[i, j]] };
                        let got = c[[i, j]];
                        assert!(
                            (got - want).abs() <= 1e-4 * (1.0 + want.abs()),
                            "{m}x{k}x{n} ta {ta} tb {tb} beta {beta} at ({i}, {j}): {got} vs {want}"
                        );
                    }
                }
            }
        }
    }
    // A transposed output view.
    let a = Array2::from_shape_fn((5, 6), |_| next());
    let b = Array2::from_shape_fn((6, 9), |_| next());
    let mut ct = Array2::<f32>::zeros((9, 5));
    gemm_into(a.view(), b.view(), 0.0, &mut ct.view_mut().reversed_axes());
    let want = a.dot(&b);
    assert!(want.iter().zip(ct.t().iter()).all(|(w, g)| (w - g).abs() < 1e-5));
}

/// The convolution's im2col and col2im (rows copied and added four lanes at a
/// time in wasm) against the direct convolution.
#[wasm_bindgen_test]
fn conv2d_in_chunks_matches_direct_convolution() {
    common::conv2d_in_chunks_matches_direct_convolution();
}

/// The 2x2 max pool's SIMD path (four outputs at a time) against its definition.
#[wasm_bindgen_test]
fn max_pool_matches_its_definition() {
    common::max_pool_matches_its_definition();
}

/// The page's workers load the build with fused multiply-adds where
/// `WebAssembly.validate` accepts the relaxed-SIMD probe: Chromium does
/// (relaxed SIMD is on by default since Chromium 114). The same module with
/// an opcode that no proposal defines is refused, so it is the feature that
/// is tested, not the module's shape.
#[wasm_bindgen_test]
fn the_relaxed_simd_probe_validates_in_chromium() {
    let probe = layerlab::worker::protocol::RELAXED_SIMD_PROBE;
    let validate = |bytes: &[u8]| js_sys::WebAssembly::validate(&js_sys::Uint8Array::from(bytes).into()).unwrap();
    assert!(validate(&probe), "Chromium has relaxed SIMD");
    let mut unknown = probe;
    // 0xfd 0x1ff: no such SIMD instruction.
    (unknown[79], unknown[80]) = (0xff, 0x03);
    assert!(!validate(&unknown));
}

mod common;

/// The parity suite of `tests/gpu.rs`, on WebGPU in the browser (SwiftShader in
/// headless Chromium, which `webdriver.json` starts with `--enable-unsafe-webgpu`).
#[wasm_bindgen_test]
async fn webgpu_gives_the_cpus_numbers() {
    use crate::common::parity;
    use layerlab::backend::{Device, Gpu};
    let gpu = Gpu::new()
        .await
        .unwrap_or_else(|e| panic!("no WebGPU adapter (webdriver.json must pass --enable-unsafe-webgpu): {e}"));
    web_sys::console::log_1(&format!("WebGPU adapter: {}", gpu.adapter).into());
    let dev = Device::Gpu(gpu);
    let mut results = parity::kernel_cases(&dev).await;
    for (name, spec) in common::models() {
        results.extend(parity::model_case(&name, &spec, &dev).await);
    }
    let off: Vec<String> = results.iter().filter(|r| !r.ok()).map(|r| r.to_string()).collect();
    assert!(off.is_empty(), "{} of {} comparisons are off:\n{}", off.len(), results.len(), off.join("\n"));
}

/// Training steps on WebGPU, awaited as the page's worker does (begin, read,
/// finish), give the CPU's losses.
#[wasm_bindgen_test]
async fn webgpu_training_steps_match_the_cpu() {
    use layerlab::backend::{Device, Gpu};
    let gpu = Gpu::new().await.expect("a WebGPU adapter");
    let mut data = Mnist::from_idx("t10k-images", TEST_IMAGES, "t10k-labels", TEST_LABELS).unwrap();
    data.truncate(256);
    let spec = layerlab::preset("mlp").unwrap();
    let mut cpu = Trainer::new(&spec, data.clone(), data.clone()).unwrap();
    let mut on_gpu = Trainer::with_device(&spec, data.clone(), data, &Device::Gpu(gpu)).unwrap();
    for step in 0..4 {
        let a = cpu.step().unwrap().loss;
        let pending = on_gpu.begin_step();
        let words = pending.read().await.unwrap();
        let b = on_gpu.finish_step(pending, words).unwrap().loss;
        assert!((a - b).abs() <= 1e-4 * a.abs().max(1.0), "step {step}: CPU {a}, WebGPU {b}");
    }
}
