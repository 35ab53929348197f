//! One test per user-facing spec error: each names the layer and the shapes and says how to fix it.

use layerlab::nn::layers::{Dense, Flatten, Reshape};
use layerlab::nn::spec::{Fix, LayerSpec};
use layerlab::{Error, ModelSpec, SpecError};

fn spec_with(layers: &str) -> String {
    format!(r#"{{"input": {{"dataset": "mnist", "shape": [1, 28, 28]}}, "layers": {layers}}}"#)
}

fn infer_err(layers: &str) -> SpecError {
    ModelSpec::from_json(&spec_with(layers)).expect("parses").infer().expect_err("must be rejected")
}

fn parse_err(text: &str) -> String {
    match ModelSpec::from_json(text) {
        Err(e) => e.to_string(),
        Ok(s) => panic!("parsed: {s:?}"),
    }
}

#[test]
fn dense_on_an_image_asks_for_flatten() {
    let e = infer_err(
        r#"[{"type": "Conv2D", "filters": 64, "kernel_size": 3}, {"type": "MaxPool2D", "pool_size": 2}, {"type": "Conv2D", "filters": 64, "kernel_size": 3}, {"type": "MaxPool2D", "pool_size": 2}, {"type": "Conv2D", "filters": 64, "kernel_size": 3}, {"type": "ReLU"}, {"type": "Dense", "units": 64}]"#,
    );
    assert_eq!(e.to_string(), "layer 6 Dense: expects a flat input but gets [64, 3, 3]; insert Flatten before it");
    assert_eq!(e.layer, Some(6));
    assert_eq!(e.fix, Some(Fix::Insert { index: 6, layer: LayerSpec::Flatten(Flatten {}) }));
}

#[test]
fn the_fix_makes_the_stack_valid() {
    let text = spec_with(r#"[{"type": "Dense", "units": 10}]"#);
    let mut spec = ModelSpec::from_json(&text).unwrap();
    let mut guard = 0;
    while let Err(e) = spec.infer() {
        e.fix.expect("offers a fix").apply(&mut spec.layers);
        guard += 1;
        assert!(guard < 5);
    }
    assert_eq!(spec.layers[0], LayerSpec::Flatten(Flatten {}));
}

#[test]
fn conv_on_a_flat_input_asks_for_reshape() {
    let e = infer_err(r#"[{"type": "Flatten"}, {"type": "Conv2D", "filters": 8, "kernel_size": 3}]"#);
    assert_eq!(e.to_string(), "layer 1 Conv2D: expects an image [channels, height, width] but gets [784]; insert Reshape [1, 28, 28] before it");
    assert_eq!(
        e.fix,
        Some(Fix::Insert { index: 1, layer: LayerSpec::Reshape(Reshape { target_shape: vec![1, 28, 28] }) })
    );
}

#[test]
fn kernel_larger_than_input() {
    let e = infer_err(r#"[{"type": "Conv2D", "filters": 8, "kernel_size": 30}]"#);
    assert_eq!(e.layer, Some(0));
    assert!(e.to_string().contains("kernel 30x30 is larger than its input 28x28"), "{e}");
    assert!(e.to_string().contains("padding \"same\""), "{e}");
}

#[test]
fn pool_larger_than_input() {
    let e = infer_err(r#"[{"type": "MaxPool2D", "pool_size": 8}, {"type": "MaxPool2D", "pool_size": 4}]"#);
    assert_eq!(e.to_string(), "layer 1 MaxPool2D: pool 4x4 is larger than its input 3x3 (input shape [1, 3, 3]); use a smaller pool_size or remove this layer");
}

#[test]
fn zero_and_out_of_range_parameters() {
    assert_eq!(
        infer_err(r#"[{"type": "Conv2D", "filters": 0, "kernel_size": 3}]"#).to_string(),
        "layer 0 Conv2D: filters must be at least 1"
    );
    assert_eq!(
        infer_err(r#"[{"type": "Conv2D", "filters": 4, "kernel_size": 0}]"#).to_string(),
        "layer 0 Conv2D: kernel_size must be at least 1, got 0x0"
    );
    assert_eq!(
        infer_err(r#"[{"type": "Conv2D", "filters": 4, "kernel_size": 3, "strides": 0}]"#).to_string(),
        "layer 0 Conv2D: strides must be at least 1, got 0x0"
    );
    assert_eq!(
        infer_err(r#"[{"type": "Flatten"}, {"type": "Dense", "units": 0}]"#).to_string(),
        "layer 1 Dense: units must be at least 1"
    );
    let e = infer_err(r#"[{"type": "Flatten"}, {"type": "Dropout", "rate": -0.1}, {"type": "Dense", "units": 10}]"#);
    assert_eq!(e.to_string(), "layer 1 Dropout: rate must be in [0, 1), got -0.1; 0.2 to 0.5 is usual");
    assert!(infer_err(r#"[{"type": "Dropout", "rate": 1.0}]"#).to_string().contains("rate must be in [0, 1)"));
}

#[test]
fn negative_counts_are_type_errors_naming_the_layer() {
    let e = parse_err(&spec_with(r#"[{"type": "Flatten"}, {"type": "Dense", "units": -3}]"#));
    assert_eq!(e, "invalid model: layer 1 Dense: expects a whole number such as 3 (0 or more), got -3");
}

#[test]
fn missing_parameter() {
    let e = parse_err(&spec_with(r#"[{"type": "Conv2D", "kernel_size": 3}]"#));
    assert_eq!(e, "invalid model: layer 0 Conv2D: needs \"filters\"");
}

#[test]
fn misspelled_parameter() {
    let e = parse_err(&spec_with(r#"[{"type": "Conv2D", "filters": 3, "kernel": 3}]"#));
    assert!(
        e.starts_with("invalid model: layer 0 Conv2D: unknown field \"kernel\"; expected one of filters, kernel_size,"),
        "{e}"
    );
}

#[test]
fn unknown_layer_type_lists_known_ones_and_suggests() {
    let e = parse_err(&spec_with(r#"[{"type": "Conv3D", "filters": 3}]"#));
    assert!(
        e.starts_with("invalid model: layer 0 Conv3D: unknown layer type \"Conv3D\"; known types: Dense, Conv2D,"),
        "{e}"
    );
    let e = parse_err(&spec_with(r#"[{"type": "Flatten"}, {"type": "dense", "units": 3}]"#));
    assert!(e.contains("layer 1 dense: unknown layer type \"dense\"; did you mean Dense?"), "{e}");
    let e = parse_err(&spec_with(r#"[{"units": 3}]"#));
    assert!(e.contains("layer 0: has no \"type\""), "{e}");
}

#[test]
fn bad_reshape() {
    let e = infer_err(r#"[{"type": "Reshape", "target_shape": [27, 28]}]"#);
    assert_eq!(
        e.to_string(),
        "layer 0 Reshape: cannot reshape [1, 28, 28] (784 values) to [27, 28]: the target holds 756 values"
    );
    let e = infer_err(r#"[{"type": "Reshape", "target_shape": [-1, 5]}]"#);
    assert!(e.to_string().contains("784 is not divisible by 5"), "{e}");
}

#[test]
fn wrong_output_size_asks_for_the_classifier() {
    let e = infer_err(r#"[{"type": "Flatten"}, {"type": "Dense", "units": 64}]"#);
    assert_eq!(e.to_string(), "layer 1: the model ends with shape [64] but mnist has 10 classes; end with Dense 10");
    assert_eq!(
        e.fix,
        Some(Fix::Insert { index: 2, layer: LayerSpec::Dense(Dense { units: 10, activation: None, use_bias: None }) })
    );
    let e = infer_err("[]");
    assert!(
        e.to_string().contains("ends with shape [1, 28, 28] but mnist has 10 classes; end with Flatten and Dense 10"),
        "{e}"
    );
    // Fix it does what the message says: both layers, and the stack trains.
    let mut layers = vec![];
    e.fix.as_ref().unwrap().apply(&mut layers);
    assert_eq!(layers, [LayerSpec::Flatten(Flatten {}), LayerSpec::Dense(Dense::new(10))]);
}

#[test]
fn input_errors() {
    let spec = ModelSpec::from_json(r#"{"input": {"dataset": "mnist", "shape": [1, 28, 27]}, "layers": []}"#);
    let e = spec.unwrap().infer().unwrap_err();
    assert_eq!(
        e.to_string(),
        "input: shape [1, 28, 27] holds 756 values but an MNIST image has 784 (28x28); use [1, 28, 28]"
    );
    let e = parse_err(r#"{"input": {"dataset": "cifar"}, "layers": []}"#);
    assert!(e.contains("input: unknown value \"cifar\"; choose one of mnist, reverse, sort, copy"), "{e}");
    let e = parse_err(r#"{"layers": []}"#);
    assert!(e.contains("the spec has no \"input\""), "{e}");
    let e = parse_err(r#"{"input": {"dataset": "mnist"}, "layers": {}}"#);
    assert!(e.contains("\"layers\" must be a list"), "{e}");
}

#[test]
fn training_errors() {
    let bad = |training: &str| {
        let text = format!(
            r#"{{"input": {{"dataset": "mnist"}}, "layers": [{{"type": "Flatten"}}, {{"type": "Dense", "units": 10}}], "training": {training}}}"#
        );
        match ModelSpec::from_json(&text) {
            Ok(s) => s.infer().unwrap_err().to_string(),
            Err(e) => e.to_string(),
        }
    };
    assert_eq!(bad(r#"{"batch_size": 0}"#), "training: batch_size must be between 1 and 4,096, got 0; 64 is usual");
    assert_eq!(bad(r#"{"epochs": 0}"#), "training: epochs must be between 1 and 1,000, got 0");
    assert!(bad(r#"{"optimizer": {"type": "Adam", "lr": -1}}"#)
        .contains("the learning rate must be a positive number, got -1"));
    assert!(bad(r#"{"optimizer": {"type": "SGD", "lr": 0.1, "momentum": 1.5}}"#)
        .contains("SGD momentum must be in [0, 1), got 1.5"));
    assert!(bad(r#"{"optimizer": {"type": "RMSprop", "lr": 0.1}}"#)
        .contains("unknown value \"RMSprop\"; choose one of SGD, Adam"));
}

#[test]
fn malformed_json_is_an_error_not_a_panic() {
    assert!(matches!(ModelSpec::from_json("{\"input\": "), Err(Error::Json(_))));
    assert!(ModelSpec::from_json("[1, 2]").unwrap_err().to_string().contains("must be a JSON object"));
    assert!(ModelSpec::from_json(r#"{"input": {"dataset": "mnist"}, "layers": [], "extra": 1}"#)
        .unwrap_err()
        .to_string()
        .contains("unknown key \"extra\""));
}

#[test]
fn presets_are_valid_and_round_trip() {
    for &layerlab::Preset { id: name, json: text, .. } in layerlab::PRESETS {
        let spec = ModelSpec::from_json(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        spec.infer().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(ModelSpec::from_json(&spec.to_json_pretty()).unwrap(), spec, "{name}");
        // The page's preset selector names the model shown.
        assert_eq!(layerlab::Preset::of(&spec).map(|p| p.id), Some(name));
    }
    let mut edited = layerlab::preset("seed-cnn").unwrap();
    edited.training.seed += 1;
    assert_eq!(layerlab::Preset::of(&edited).map(|p| p.id), Some("seed-cnn"), "settings are no part of the model");
    edited.layers.pop();
    assert!(layerlab::Preset::of(&edited).is_none());
}

#[test]
fn shape_inference_of_the_seed_cnn() {
    let info = layerlab::preset("seed-cnn").unwrap().infer().unwrap();
    let shapes: Vec<Vec<usize>> = info.layers.iter().map(|l| l.output_shape.clone()).collect();
    assert_eq!(
        shapes,
        vec![
            vec![32, 26, 26],
            vec![32, 13, 13],
            vec![64, 11, 11],
            vec![64, 5, 5],
            vec![64, 3, 3],
            vec![576],
            vec![64],
            vec![10]
        ]
    );
    let counts: Vec<usize> = info.layers.iter().map(|l| l.param_count).collect();
    assert_eq!(counts, vec![320, 0, 18_496, 0, 36_928, 0, 36_928, 650]);
    // "same" padding keeps the size (ceil(in / stride)).
    let spec = ModelSpec::from_json(&spec_with(r#"[{"type": "Conv2D", "filters": 4, "kernel_size": 5, "padding": "same", "strides": 2}, {"type": "Flatten"}, {"type": "Dense", "units": 10}]"#)).unwrap();
    assert_eq!(spec.infer().unwrap().layers[0].output_shape, vec![4, 14, 14]);
}

#[test]
fn models_too_large_for_a_browser_are_refused_not_crashed() {
    let e = infer_err(r#"[{"type": "Flatten"}, {"type": "Dense", "units": 65536}, {"type": "Dense", "units": 10}]"#);
    assert!(
        e.to_string().starts_with(
            "layer 1 Dense: would have 51,445,760 parameters, more than the 50,000,000 a layer may have here"
        ),
        "{e}"
    );
    let e =
        infer_err(r#"[{"type": "Flatten"}, {"type": "Dense", "units": 100000000}, {"type": "Dense", "units": 10}]"#);
    assert_eq!(
        e.to_string(),
        "layer 1 Dense: units 100,000,000 is more than the 65,536 layerlab allows; use at most 65,536"
    );
    let e = infer_err(r#"[{"type": "Conv2D", "filters": 40000, "kernel_size": 3, "padding": "same"}]"#);
    assert!(
        e.to_string().starts_with("layer 0 Conv2D: outputs [40000, 28, 28] = 31,360,000 values per example"),
        "{e}"
    );
    let e = infer_err(
        r#"[{"type": "Conv2D", "filters": 64, "kernel_size": 3}, {"type": "Conv2D", "filters": 1, "kernel_size": 20, "padding": "same"}]"#,
    );
    assert!(e.to_string().contains("layer 1 Conv2D: unfolds"), "{e}");
    let e = infer_err(r#"[{"type": "Reshape", "target_shape": [9223372036854775807, 9223372036854775807]}]"#);
    assert!(e.to_string().contains("cannot reshape"), "{e}");
}

#[test]
fn parameters_edited_as_text() {
    let conv = LayerSpec::default_for("Conv2D").unwrap();
    assert_eq!(conv.param_text("filters"), "32");
    assert_eq!(conv.param_text("activation"), "relu");
    assert_eq!(conv.param_text("strides"), "");
    let c = conv.with_param("kernel_size", "[3,5]").unwrap();
    assert_eq!(c.param_text("kernel_size"), "[3, 5]");
    let c = c.with_param("activation", "").unwrap();
    assert_eq!(c.activation(), None);
    // What the field expects, in words: no Rust type or enum names (issue 15 point 10).
    assert_eq!(
        conv.with_param("filters", "many").unwrap_err(),
        "filters: expects a whole number such as 3, got \"many\""
    );
    assert_eq!(conv.with_param("filters", "2.5").unwrap_err(), "filters: expects a whole number such as 3, got 2.5");
    assert_eq!(
        conv.with_param("kernel_size", "abc").unwrap_err(),
        "kernel_size: expects a whole number such as 3, or [height, width] such as [3, 5]"
    );
    assert_eq!(
        conv.with_param("padding", "middle").unwrap_err(),
        "padding: unknown value \"middle\"; choose one of valid, same"
    );
    assert_eq!(
        conv.with_param("activation", "rleu").unwrap_err(),
        "activation: unknown value \"rleu\"; choose one of linear, relu, tanh, sigmoid, gelu, softmax"
    );
    assert_eq!(conv.with_param("use_bias", "3").unwrap_err(), "use_bias: expects true or false, got 3");
    let lstm = LayerSpec::default_for("LSTM").unwrap();
    assert_eq!(
        lstm.with_param("return_sequences", "yes").unwrap_err(),
        "return_sequences: expects true or false, got \"yes\""
    );
    let rate = LayerSpec::default_for("Dropout").unwrap().with_param("rate", "half").unwrap_err();
    assert_eq!(rate, "rate: expects a number such as 0.5, got \"half\"");
    let ln = LayerSpec::default_for("LayerNormalization").unwrap().with_param("epsilon", "1e-5").unwrap();
    assert_eq!(ln.param_text("epsilon"), "0.00001", "an f32 shows as typed, not as its f64 expansion");
    let drop = LayerSpec::default_for("Dropout").unwrap().with_param("rate", "0.1").unwrap();
    assert_eq!(drop.param_text("rate"), "0.1");
    // Every layer and parameter says what it is (the page's tooltips).
    for ty in layerlab::nn::spec::LAYER_TYPES {
        assert!(LayerSpec::description(ty).len() > 20, "{ty} has no description");
        for name in LayerSpec::param_names(ty) {
            assert!(!LayerSpec::param_help(name).is_empty(), "{ty}.{name} has no help");
        }
    }
    // Parameters of a few values are chosen from a list; the lists are the
    // values the spec takes, no more and no fewer.
    for ty in layerlab::nn::spec::LAYER_TYPES {
        let l = LayerSpec::default_for(ty).unwrap();
        for name in LayerSpec::param_names(ty) {
            let refused = l.with_param(name, "no-such-word").unwrap_err();
            let listed = refused.split_once("choose one of ").map(|(_, names)| names.to_string());
            let switch = l.with_param(name, "true").is_ok() && l.with_param(name, "2").is_err();
            match l.param_choices(name) {
                Some(["true", "false"]) => assert!(switch, "{ty}.{name} is not a switch"),
                Some(choices) => {
                    // The spec's own list, or (TransformerEncoder's activation) the part of it the layer takes.
                    let listed = listed.unwrap_or_default();
                    let listed: Vec<&str> = listed.split(", ").collect();
                    assert!(choices.iter().all(|c| listed.contains(c)), "{ty}.{name}: {choices:?} against {listed:?}");
                    let mut spec = layerlab::preset("reverse-transformer").unwrap();
                    for c in choices {
                        let with = l.with_param(name, c).unwrap();
                        if *ty == "TransformerEncoder" {
                            spec.layers[2] = with;
                            spec.infer().unwrap_or_else(|e| panic!("{ty}.{name} {c}: {e}"));
                        }
                    }
                    if l.param_choices(name) != Some(&listed[..]) {
                        assert_eq!(*ty, "TransformerEncoder", "{ty}.{name} lists fewer than the spec takes");
                    }
                }
                None => assert!(listed.is_none() && !switch, "{ty}.{name} should be a list: {refused}"),
            }
        }
    }
    // The palette's groups hold every type the spec accepts, once.
    let mut grouped: Vec<&str> = layerlab::nn::spec::LAYER_GROUPS.iter().flat_map(|(_, t)| t.iter().copied()).collect();
    let mut known = layerlab::nn::spec::LAYER_TYPES.to_vec();
    grouped.sort();
    known.sort();
    assert_eq!(grouped, known);
    for (_, types) in layerlab::nn::spec::LAYER_GROUPS {
        for ty in *types {
            let l = LayerSpec::default_for(ty).unwrap();
            assert_eq!(l.type_name(), *ty);
            for p in LayerSpec::param_names(ty) {
                let text = l.param_text(p);
                assert_eq!(l.with_param(p, &text).unwrap(), l, "{ty}.{p}");
            }
        }
    }
}

#[test]
fn lstm_after_conv_without_reshape_names_both() {
    let e = infer_err(
        r#"[{"type": "Conv2D", "filters": 4, "kernel_size": 3}, {"type": "LSTM", "units": 8}, {"type": "Dense", "units": 10}]"#,
    );
    assert_eq!(e.to_string(), "layer 1 LSTM: expects a sequence [steps, features] but gets [4, 26, 26] from layer 0 Conv2D; insert Reshape [4, 676] before it");
    assert_eq!(
        e.fix,
        Some(Fix::Insert { index: 1, layer: LayerSpec::Reshape(Reshape { target_shape: vec![4, 676] }) })
    );
    let e = infer_err(r#"[{"type": "GRU", "units": 8}]"#);
    assert_eq!(e.to_string(), "layer 0 GRU: expects a sequence [steps, features] but gets [1, 28, 28] from the input; insert Reshape [28, 28] before it");
    assert_eq!(
        infer_err(r#"[{"type": "Reshape", "target_shape": [28, 28]}, {"type": "SimpleRNN", "units": 0}]"#).to_string(),
        "layer 1 SimpleRNN: units must be at least 1"
    );
}

#[test]
fn attention_errors() {
    let e = infer_err(r#"[{"type": "Patchify", "patch_size": 5}]"#);
    assert_eq!(
        e.to_string(),
        "layer 0 Patchify: patch_size 5 does not divide the image 28x28; use one of 1, 2, 4, 7, 14, 28"
    );
    let e = infer_err(r#"[{"type": "Patchify", "patch_size": 7}, {"type": "MultiHeadAttention", "num_heads": 5}]"#);
    assert_eq!(
        e.to_string(),
        "layer 1 MultiHeadAttention: num_heads 5 must divide the feature size 49; use one of 1, 7, 49"
    );
    let e = infer_err(
        r#"[{"type": "Patchify", "patch_size": 7}, {"type": "MultiHeadAttention", "num_heads": 7, "key_dim": 8}]"#,
    );
    assert!(e.to_string().contains("key_dim 8 must be features / num_heads = 7"), "{e}");
    let e = infer_err(r#"[{"type": "TransformerEncoder", "num_heads": 1, "ff_dim": 8}]"#);
    assert!(
        e.to_string().starts_with(
            "layer 0 TransformerEncoder: expects a sequence [steps, features] but gets [1, 28, 28] from the input"
        ),
        "{e}"
    );
    let e = infer_err(
        r#"[{"type": "Patchify", "patch_size": 7}, {"type": "TransformerEncoder", "num_heads": 1, "ff_dim": 0}]"#,
    );
    assert_eq!(e.to_string(), "layer 1 TransformerEncoder: ff_dim must be at least 1");
    let e = infer_err(r#"[{"type": "Flatten"}, {"type": "GlobalAveragePooling1D"}]"#);
    assert!(
        e.to_string().contains(
            "layer 1 GlobalAveragePooling1D: expects a sequence [steps, features] but gets [784] from layer 0 Flatten"
        ),
        "{e}"
    );
}

#[test]
fn a_transformer_encoder_takes_relu_or_gelu_only() {
    // PyTorch's TransformerEncoderLayer, which both exports build, takes these
    // two; anything else would train one model and export another.
    let encoder = |activation: &str| {
        let layers = format!(
            r#"[{{"type": "Embedding", "input_dim": 5, "output_dim": 8}},
               {{"type": "TransformerEncoder", "num_heads": 2, "ff_dim": 16, "activation": "{activation}"}},
               {{"type": "Dense", "units": 5}}]"#
        );
        let text = format!(r#"{{"input": {{"dataset": "reverse", "seq_len": 4, "vocab": 5}}, "layers": {layers}}}"#);
        ModelSpec::from_json(&text).expect("parses").infer()
    };
    assert!(encoder("relu").is_ok());
    assert!(encoder("gelu").is_ok());
    let e = encoder("tanh").unwrap_err();
    assert_eq!(e.layer, Some(1));
    assert_eq!(
        e.to_string(),
        "layer 1 TransformerEncoder: activation must be relu or gelu, as in PyTorch's TransformerEncoderLayer; got tanh"
    );
}
