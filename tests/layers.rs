//! Layers inside models: gradient checks of the loss with respect to every
//! parameter, Keras initialisation, PyTorch names and layouts, flatten order.

mod common;

use layerlab::nn::{Mode, Model, ModelSpec};
use layerlab::Tensor;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn spec(layers: &str) -> ModelSpec {
    ModelSpec::from_json(&format!(
        r#"{{"input": {{"dataset": "mnist", "shape": [1, 28, 28]}}, "layers": {layers}, "training": {{"seed": 3}}}}"#
    ))
    .unwrap()
}

fn loss(model: &Model, x: &Tensor, labels: &[usize]) -> f32 {
    // Dropout draws from a generator re-seeded on every pass, so the mask is fixed.
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    model.forward_logits(x, Mode::Train(&mut rng)).softmax_cross_entropy(labels).item()
}

/// Finite differences of the loss against autograd for sampled entries of every parameter.
fn check_model(layers: &str) {
    let model = Model::new(&spec(layers)).unwrap();
    let x = Tensor::new(common::randn(&[3, 1, 28, 28], 1).mapv(|v| v.abs() * 0.5));
    let labels = [3usize, 7, 1];
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    model.forward_logits(&x, Mode::Train(&mut rng)).softmax_cross_entropy(&labels).backward();
    let eps = 1e-2f32;
    for (name, p) in model.parameters() {
        let g = p.grad().expect("every parameter gets a gradient").as_standard_layout().into_owned();
        let n = p.len();
        for idx in (0..n).step_by((n / 12).max(1)) {
            let orig = p.value().as_slice().unwrap()[idx];
            p.value_mut().as_slice_mut().unwrap()[idx] = orig + eps;
            let up = loss(&model, &x, &labels) as f64;
            p.value_mut().as_slice_mut().unwrap()[idx] = orig - eps;
            let down = loss(&model, &x, &labels) as f64;
            p.value_mut().as_slice_mut().unwrap()[idx] = orig;
            let numeric = ((up - down) / (2.0 * eps as f64)) as f32;
            let a = g.as_slice().unwrap()[idx];
            assert!(
                (a - numeric).abs() <= 3e-2 * 1f32.max(a.abs()).max(numeric.abs()) + 2e-3,
                "{layers}\n{name}[{idx}]: autograd {a} vs finite difference {numeric}"
            );
        }
    }
}

#[test]
fn dense_layers() {
    check_model(
        r#"[{"type": "Flatten"}, {"type": "Dense", "units": 8, "activation": "tanh"}, {"type": "Dense", "units": 10}]"#,
    );
    check_model(
        r#"[{"type": "Flatten"}, {"type": "Dense", "units": 6, "activation": "sigmoid", "use_bias": false}, {"type": "Dense", "units": 10, "activation": "softmax"}]"#,
    );
    check_model(
        r#"[{"type": "Reshape", "target_shape": [784]}, {"type": "Dense", "units": 6, "activation": "gelu"}, {"type": "Dense", "units": 10}]"#,
    );
}

#[test]
fn conv_and_pool_layers() {
    check_model(
        r#"[{"type": "Conv2D", "filters": 2, "kernel_size": 3, "strides": 2, "activation": "tanh"}, {"type": "MaxPool2D", "pool_size": 2}, {"type": "Flatten"}, {"type": "Dense", "units": 10}]"#,
    );
    check_model(
        r#"[{"type": "Conv2D", "filters": 2, "kernel_size": [3, 5], "padding": "same", "strides": [3, 2], "use_bias": false}, {"type": "AveragePool2D", "pool_size": 3, "strides": 2}, {"type": "Flatten"}, {"type": "Dense", "units": 10}]"#,
    );
}

#[test]
fn activation_and_dropout_layers() {
    check_model(
        r#"[{"type": "Reshape", "target_shape": [28, 28]}, {"type": "Dense", "units": 4}, {"type": "GELU"}, {"type": "Flatten"}, {"type": "Dropout", "rate": 0.3}, {"type": "Dense", "units": 12}, {"type": "Sigmoid"}, {"type": "Dense", "units": 10}, {"type": "Softmax"}]"#,
    );
    check_model(
        r#"[{"type": "Flatten"}, {"type": "Dense", "units": 10}, {"type": "Softmax"}, {"type": "Dense", "units": 10}, {"type": "Tanh"}]"#,
    );
}

#[test]
fn seed_cnn_parameters_have_pytorch_names_and_layouts() {
    let model = Model::new(&layerlab::preset("seed-cnn").unwrap()).unwrap();
    let names: Vec<(String, Vec<usize>)> = model.parameters().iter().map(|(n, t)| (n.clone(), t.shape())).collect();
    let expected = [
        ("0.weight", vec![32, 1, 3, 3]),
        ("0.bias", vec![32]),
        ("2.weight", vec![64, 32, 3, 3]),
        ("2.bias", vec![64]),
        ("4.weight", vec![64, 64, 3, 3]),
        ("4.bias", vec![64]),
        ("6.weight", vec![64, 576]),
        ("6.bias", vec![64]),
        ("7.weight", vec![10, 64]),
        ("7.bias", vec![10]),
    ];
    assert_eq!(names, expected.iter().map(|(n, s)| (n.to_string(), s.clone())).collect::<Vec<_>>());
    assert_eq!(model.info.total_params, 93_322);
}

#[test]
fn keras_initialisation_is_glorot_uniform_with_zero_biases_and_seeded() {
    let spec = layerlab::preset("seed-cnn").unwrap();
    let (a, b) = (Model::new(&spec).unwrap(), Model::new(&spec).unwrap());
    for ((name, pa), (_, pb)) in a.parameters().iter().zip(b.parameters()) {
        assert_eq!(pa.to_vec(), pb.to_vec(), "{name} is reproducible from the seed");
    }
    let params = a.parameters();
    // Dense 576 -> 64: limit sqrt(6 / 640); conv 32 -> 64 with 3x3: sqrt(6 / (288 + 576)).
    for (name, limit) in [("6.weight", (6.0f32 / 640.0).sqrt()), ("2.weight", (6.0f32 / 864.0).sqrt())] {
        let w = params.iter().find(|(n, _)| n == name).unwrap().1.to_vec();
        let max = w.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(max <= limit && max > 0.9 * limit, "{name}: max |w| {max} vs limit {limit}");
        let mean = w.iter().sum::<f32>() / w.len() as f32;
        assert!(mean.abs() < 0.05 * limit);
    }
    assert!(params.iter().filter(|(n, _)| n.ends_with("bias")).all(|(_, b)| b.to_vec().iter().all(|v| *v == 0.0)));
    let mut other = spec.clone();
    other.training.seed = 1;
    assert_ne!(Model::new(&other).unwrap().parameters()[0].1.to_vec(), params[0].1.to_vec());
}

#[test]
fn flatten_is_channel_height_width_order() {
    let model = Model::new(&spec(
        r#"[{"type": "Reshape", "target_shape": [4, 14, 14]}, {"type": "Flatten"}, {"type": "Dense", "units": 10}]"#,
    ))
    .unwrap();
    // With the first Dense weight set to pick out element k, the logit equals the
    // k-th element in C,H,W order of the reshaped input.
    let x: Vec<f32> = (0..784).map(|i| i as f32).collect();
    let w = &model.parameters()[0].1;
    w.value_mut().fill(0.0);
    w.value_mut()[[0, 200]] = 1.0;
    let y = model.forward_logits(&Tensor::from_vec(&[1, 1, 28, 28], x), Mode::Eval).to_vec();
    assert_eq!(y[0], 200.0);
}

#[test]
fn recurrent_layers() {
    check_model(
        r#"[{"type": "Reshape", "target_shape": [28, 28]}, {"type": "SimpleRNN", "units": 3}, {"type": "Dense", "units": 10}]"#,
    );
    check_model(
        r#"[{"type": "Reshape", "target_shape": [28, 28]}, {"type": "LSTM", "units": 3}, {"type": "Dense", "units": 10}]"#,
    );
    check_model(
        r#"[{"type": "Reshape", "target_shape": [28, 28]}, {"type": "GRU", "units": 3}, {"type": "Dense", "units": 10}]"#,
    );
    // Sequences out, then per-step Dense, then a second recurrent layer.
    check_model(
        r#"[{"type": "Reshape", "target_shape": [49, 16]}, {"type": "GRU", "units": 2, "return_sequences": true}, {"type": "Dense", "units": 3}, {"type": "LSTM", "units": 2}, {"type": "Dense", "units": 10}]"#,
    );
}

#[test]
fn lstm_has_pytorch_names_gate_layout_and_keras_init() {
    let model = Model::new(&layerlab::preset("seed-lstm").unwrap()).unwrap();
    let params = model.parameters();
    let names: Vec<(String, Vec<usize>)> = params.iter().map(|(n, t)| (n.clone(), t.shape())).collect();
    assert_eq!(
        names,
        [
            ("1.weight_ih_l0", vec![512, 28]),
            ("1.weight_hh_l0", vec![512, 128]),
            ("1.bias_ih_l0", vec![512]),
            ("1.bias_hh_l0", vec![512]),
            ("2.weight", vec![10, 128]),
            ("2.bias", vec![10])
        ]
        .map(|(n, s)| (n.to_string(), s))
    );
    assert_eq!(model.info.total_params, 82_186, "PyTorch's count for W2");
    // Forget-gate bias 1 (gates i, f, g, o), the rest 0.
    let b = params[2].1.to_vec();
    assert!(
        b[..128].iter().all(|&v| v == 0.0)
            && b[128..256].iter().all(|&v| v == 1.0)
            && b[256..].iter().all(|&v| v == 0.0)
    );
    // The recurrent kernel has orthonormal columns.
    let w = params[1].1.value().clone();
    for (a, bcol) in [(0usize, 0usize), (0, 1), (5, 77), (127, 127)] {
        let dot: f32 = (0..512).map(|r| w[[r, a]] * w[[r, bcol]]).sum();
        let expected = if a == bcol { 1.0 } else { 0.0 };
        assert!((dot - expected).abs() < 1e-4, "columns {a}, {bcol}: {dot}");
    }
}

#[test]
fn return_sequences_gives_one_state_per_step() {
    let model = Model::new(&spec(r#"[{"type": "Reshape", "target_shape": [28, 28]}, {"type": "LSTM", "units": 5, "return_sequences": true}, {"type": "Flatten"}, {"type": "Dense", "units": 10}]"#)).unwrap();
    assert_eq!(model.info.layers[1].output_shape, vec![28, 5]);
    let x = Tensor::new(common::randn(&[2, 1, 28, 28], 4));
    assert_eq!(model.forward_logits(&x, Mode::Eval).shape(), vec![2, 10]);
}

#[test]
fn hidden_states_show_every_step_and_end_in_the_layer_output() {
    for cell in ["SimpleRNN", "LSTM", "GRU"] {
        let model = Model::new(&spec(&format!(r#"[{{"type": "Reshape", "target_shape": [28, 28]}}, {{"type": "{cell}", "units": 6}}, {{"type": "Dense", "units": 10}}]"#))).unwrap();
        let x = Tensor::new(common::randn(&[1, 1, 28, 28], 5));
        let states = model.hidden_states(&x);
        assert_eq!(states.len(), 1);
        let (layer, s) = &states[0];
        assert_eq!((*layer, s.shape()), (1, &[28, 6][..]));
        let out = model.activations(&x)[1].to_vec();
        let last: Vec<f32> = s.as_slice().unwrap()[27 * 6..].to_vec();
        assert_eq!(last, out, "{cell}: the last state is the layer's output");
        assert!(s.as_slice().unwrap()[..6] != last[..], "{cell}: states change over time");
    }
}

#[test]
fn attention_layers() {
    check_model(
        r#"[{"type": "Patchify", "patch_size": 7}, {"type": "LayerNormalization"}, {"type": "Dense", "units": 8}, {"type": "PositionalEmbedding"}, {"type": "MultiHeadAttention", "num_heads": 2}, {"type": "GlobalAveragePooling1D"}, {"type": "Dense", "units": 10}]"#,
    );
    check_model(
        r#"[{"type": "Patchify", "patch_size": 14}, {"type": "PositionalEmbedding", "kind": "sinusoidal"}, {"type": "MultiHeadAttention", "num_heads": 4, "causal": true}, {"type": "Flatten"}, {"type": "Dense", "units": 10}]"#,
    );
    check_model(
        r#"[{"type": "Patchify", "patch_size": 7}, {"type": "Dense", "units": 8}, {"type": "TransformerEncoder", "num_heads": 2, "ff_dim": 6, "activation": "gelu", "norm_first": true}, {"type": "GlobalAveragePooling1D"}, {"type": "Dense", "units": 10}]"#,
    );
    check_model(
        r#"[{"type": "Patchify", "patch_size": 7}, {"type": "Dense", "units": 4}, {"type": "TransformerEncoder", "num_heads": 1, "ff_dim": 5, "dropout": 0.2}, {"type": "GlobalAveragePooling1D"}, {"type": "Dense", "units": 10}]"#,
    );
}

#[test]
fn tiny_vit_has_pytorch_names_and_the_benchmark_size() {
    let model = Model::new(&layerlab::preset("tiny-vit").unwrap()).unwrap();
    assert_eq!(model.info.total_params, 71_946, "W3's parameter count");
    let names: Vec<String> =
        model.parameters().iter().map(|(n, _)| n.clone()).filter(|n| n.starts_with("3.")).collect();
    assert_eq!(
        names,
        [
            "self_attn.in_proj_weight",
            "self_attn.in_proj_bias",
            "self_attn.out_proj.weight",
            "self_attn.out_proj.bias",
            "linear1.weight",
            "linear1.bias",
            "linear2.weight",
            "linear2.bias",
            "norm1.weight",
            "norm1.bias",
            "norm2.weight",
            "norm2.bias"
        ]
        .map(|n| format!("3.{n}"))
    );
    assert_eq!(model.info.layers[0].output_shape, vec![16, 49]);
}

#[test]
fn patches_are_row_major_over_the_grid() {
    // Token 4*pr + pc holds patch (pr, pc), its 49 values row-major (BENCHMARKS.md W3).
    let model = Model::new(&spec(
        r#"[{"type": "Patchify", "patch_size": 7}, {"type": "Flatten"}, {"type": "Dense", "units": 10}]"#,
    ))
    .unwrap();
    let x: Vec<f32> = (0..784).map(|i| i as f32).collect();
    let tokens = model.activations(&Tensor::from_vec(&[1, 1, 28, 28], x))[0].to_vec();
    let (pr, pc, r, c) = (2usize, 1usize, 3usize, 5usize);
    assert_eq!(tokens[(4 * pr + pc) * 49 + r * 7 + c], ((pr * 7 + r) * 28 + pc * 7 + c) as f32);
}

#[test]
fn inference_in_pieces_gives_the_logits_of_the_whole_batch() {
    // 150 rows: pieces of 64, 64 and 22 (`INFERENCE_PIECE`), with a
    // recurrent layer between pieced layers in the last model.
    const { assert!(150 > 2 * layerlab::nn::model::INFERENCE_PIECE) };
    let mut specs: Vec<ModelSpec> =
        ["seed-cnn", "seed-lstm", "tiny-vit", "mlp"].iter().map(|id| layerlab::preset(id).unwrap()).collect();
    specs.push(spec(
        r#"[{"type": "Conv2D", "filters": 4, "kernel_size": 3, "activation": "relu"},
            {"type": "Reshape", "target_shape": [104, 26]}, {"type": "LSTM", "units": 8},
            {"type": "Dense", "units": 10}]"#,
    ));
    for s in specs {
        let model = Model::new(&s).unwrap();
        let x = Tensor::new(common::randn(&[150, 1, 28, 28], 5).mapv(|v| v.abs()));
        // With a graph recorded, the batch goes whole.
        let whole = model.forward_logits(&x, Mode::Eval).to_array();
        let pieced = layerlab::autograd::no_grad(|| model.forward_logits(&x, Mode::Eval)).to_array();
        assert_eq!(whole.shape(), pieced.shape(), "{}", s.name);
        for (i, (a, b)) in whole.iter().zip(&pieced).enumerate() {
            assert!((a - b).abs() <= 1e-5 * (1.0 + a.abs()), "{}: logit {i}: {a} whole, {b} in pieces", s.name);
        }
    }
}
