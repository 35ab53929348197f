//! Training throughput in the browser for the benchmark workloads W1-W3 (steps
//! of batch 64 on MNIST test digits), printed, never asserted. Not part of the
//! test run (ignored); run it with
//! `cargo test --release --target wasm32-unknown-unknown --test web_bench -- --include-ignored`.
#![cfg(target_arch = "wasm32")]

use layerlab::data::Mnist;
use layerlab::Trainer;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const TEST_IMAGES: &[u8] = include_bytes!("../assets/mnist/t10k-images-idx3-ubyte.gz");
const TEST_LABELS: &[u8] = include_bytes!("../assets/mnist/t10k-labels-idx1-ubyte.gz");

/// Gives the page back to the browser (and the test runner's polling) for a moment.
async fn breathe() {
    let p = js_sys::Promise::new(&mut |resolve, _| {
        web_sys::window().unwrap().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 0).unwrap();
    });
    wasm_bindgen_futures::JsFuture::from(p).await.unwrap();
}

#[wasm_bindgen_test]
#[ignore]
async fn workloads_in_the_browser() {
    let data = Mnist::from_idx("t10k-images", TEST_IMAGES, "t10k-labels", TEST_LABELS).unwrap();
    let now = || web_sys::window().unwrap().performance().unwrap().now();
    for name in ["seed-cnn", "seed-lstm", "tiny-vit"] {
        let spec = layerlab::preset(name).unwrap();
        let mut trainer = Trainer::new(&spec, data.clone(), data.clone()).unwrap();
        for _ in 0..10 {
            trainer.step().unwrap();
        }
        breathe().await;
        let mut rates = Vec::new();
        for _ in 0..3 {
            let t0 = now();
            for _ in 0..40 {
                trainer.step().unwrap();
            }
            rates.push(40.0 * 64.0 / ((now() - t0) / 1000.0));
            breathe().await;
        }
        rates.sort_by(f64::total_cmp);
        web_sys::console::log_1(
            &format!("{name}: {:.0} samples/s in the browser (median of 3 x 40 steps)", rates[1]).into(),
        );
    }
}
