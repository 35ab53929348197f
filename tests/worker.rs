//! The worker's state machine, natively: commands in, events out.

mod common;

use layerlab::nn::spec::OptimizerSpec;
use layerlab::worker::{Command, Event, Session};

fn session(train: usize) -> Session {
    let (a, b) = common::mnist(train, 500);
    let mut s = Session::new();
    assert_eq!(s.set_data(a, b), vec![Event::DataLoaded { train, test: 500 }]);
    s
}

/// Ticks (at most `max_ticks` slices of `slice_s`) until training stops; all events.
fn run_until_stopped(s: &mut Session, slice_s: f64, max_ticks: usize) -> Vec<Event> {
    let mut events = Vec::new();
    for _ in 0..max_ticks {
        events.extend(s.tick(slice_s));
        if !s.is_running() {
            break;
        }
    }
    events
}

fn losses(events: &[Event]) -> Vec<f32> {
    events.iter().flat_map(|e| if let Event::Metrics { losses, .. } = e { losses.clone() } else { vec![] }).collect()
}

#[test]
fn train_pause_step_and_finish() {
    let mut s = session(640);
    s.handle(Command::SetSpec { spec: layerlab::preset("mlp").unwrap() });
    assert_eq!(s.tick(1.0), vec![], "nothing runs before Train");
    assert_eq!(s.handle(Command::Train), vec![Event::Running { running: true }]);
    let first = s.tick(0.01);
    assert!(!losses(&first).is_empty());
    let paused = s.handle(Command::Pause);
    assert_eq!(paused[0], Event::Running { running: false });
    assert!(matches!(paused[1], Event::Evaluation { samples: 500, sequence_accuracy: None, .. }), "{paused:?}");
    assert_eq!(s.tick(1.0), vec![]);
    let step = s.handle(Command::Step);
    assert_eq!(losses(&step).len(), 1);
    // The rest of the epoch (10 steps at 640 examples), then it stops with a full evaluation.
    s.handle(Command::Train);
    let events = run_until_stopped(&mut s, 1.0, 100);
    assert!(events.iter().any(|e| matches!(e, Event::Finished { steps: 10 })), "{events:?}");
    assert!(events.iter().any(|e| matches!(e, Event::Evaluation { samples: 500, sequence_accuracy: None, .. })));
    assert!(!s.is_running());
}

#[test]
fn reset_starts_over_with_the_same_seed() {
    let mut s = session(640);
    s.handle(Command::SetSpec { spec: layerlab::preset("mlp").unwrap() });
    let a = losses(&s.handle(Command::Step));
    s.handle(Command::Reset);
    let b = losses(&s.handle(Command::Step));
    assert_eq!(a, b);
}

#[test]
fn divergence_pauses_with_a_message() {
    let mut s = session(2000);
    let mut spec = layerlab::preset("mlp").unwrap();
    spec.training.optimizer = OptimizerSpec::SGD { lr: 1e12, momentum: 0.0 };
    s.handle(Command::SetSpec { spec });
    s.handle(Command::Train);
    let events = run_until_stopped(&mut s, 0.05, 50);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Diverged { message } if message.contains("try a smaller learning rate"))),
        "{events:?}"
    );
    assert!(!s.is_running());
    assert!(
        s.handle(Command::SetLr { lr: -1.0 })[0]
            == Event::Error { message: "the learning rate must be a positive number, got -1".into() }
    );
    s.handle(Command::SetLr { lr: 0.001 });
    assert!(losses(&s.handle(Command::Step)).iter().all(|l| l.is_finite()));
}

#[test]
fn errors_instead_of_panics() {
    let mut s = Session::new();
    assert_eq!(s.handle(Command::Train), vec![Event::Error { message: "no model yet".into() }]);
    s.handle(Command::SetSpec { spec: layerlab::preset("mlp").unwrap() });
    assert_eq!(s.handle(Command::Step), vec![Event::Error { message: "the MNIST data is still loading".into() }]);
    let mut s = session(64);
    let mut bad = layerlab::preset("mlp").unwrap();
    bad.layers.remove(0);
    s.handle(Command::SetSpec { spec: bad });
    match &s.handle(Command::Train)[0] {
        Event::Error { message } => assert!(message.contains("layer 0 Dense: expects a flat input"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn messages_are_json() {
    let cmd: Command = serde_json::from_str(r#"{"cmd": "SetLr", "lr": 0.01}"#).unwrap();
    assert_eq!(cmd, Command::SetLr { lr: 0.01 });
    assert_eq!(
        serde_json::to_string(&Event::Running { running: true }).unwrap(),
        r#"{"event":"Running","running":true}"#
    );
}

#[test]
fn predicts_a_drawing_with_the_current_weights() {
    let mut s = session(640);
    s.handle(Command::SetSpec { spec: layerlab::preset("seed-cnn").unwrap() });
    match &s.handle(Command::Predict { pixels: vec![0.5; 784] })[0] {
        Event::Prediction { probs } => {
            assert_eq!(probs.len(), 10);
            assert!((probs.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(&s.handle(Command::Predict { pixels: vec![0.0; 5] })[0], Event::Error { message } if message.contains("784 pixels"))
    );
}

#[test]
fn confusion_examples_and_inspection() {
    let mut s = session(640);
    s.handle(Command::SetSpec { spec: layerlab::preset("seed-cnn").unwrap() });
    s.handle(Command::Train);
    s.tick(0.2);
    let paused = s.handle(Command::Pause);
    let Event::Evaluation { confusion, samples, .. } = &paused[1] else { panic!("{paused:?}") };
    assert_eq!(confusion.iter().flatten().sum::<u32>() as usize, *samples);
    // The cell with the most digits off the diagonal, or the diagonal of 1s.
    let (a, p) = (1, 1);
    let count = confusion[a][p] as usize;
    match &s.handle(Command::Examples { actual: a, predicted: p })[0] {
        Event::Examples { indices, images, .. } => {
            assert_eq!(indices.len(), count.min(layerlab::worker::MAX_EXAMPLES));
            assert!(images.iter().all(|im| im.len() == 784));
        }
        other => panic!("{other:?}"),
    }
    match &s.handle(Command::Inspect { index: 3, layer: None })[0] {
        Event::Inspection { filter_shape, filters, map_shape, maps, image, label, .. } => {
            assert_eq!(filter_shape, &vec![32, 1, 3, 3]);
            assert_eq!(filters.len(), 288);
            assert_eq!(map_shape, &vec![32, 26, 26]);
            assert_eq!(maps.len(), 32 * 26 * 26);
            assert!(maps.iter().all(|&v| v >= 0.0), "after ReLU");
            assert_eq!(image.len(), 784);
            assert!(*label < 10);
        }
        other => panic!("{other:?}"),
    }
    // Any convolution, not only the first: layer 2 of the Seed CNN.
    match &s.handle(Command::Inspect { index: 3, layer: Some(2) })[0] {
        Event::Inspection { layer, filter_shape, map_shape, .. } => {
            assert_eq!((*layer, filter_shape.clone(), map_shape.clone()), (2, vec![64, 32, 3, 3], vec![64, 11, 11]));
        }
        other => panic!("{other:?}"),
    }
    // A layer that is no convolution (the stack changed): the first one.
    assert!(matches!(&s.handle(Command::Inspect { index: 3, layer: Some(1) })[0], Event::Inspection { layer: 0, .. }));
    assert!(
        matches!(&s.handle(Command::Inspect { index: 10_000, layer: None })[0], Event::Error { message } if message.contains("no test example 10000"))
    );
}

#[test]
fn attention_maps_and_token_models() {
    let mut s = Session::new();
    s.handle(Command::SetSpec { spec: layerlab::preset("reverse-transformer").unwrap() });
    // Sequence tasks need no download.
    let step = s.handle(Command::Step);
    assert_eq!(losses(&step).len(), 1);
    match &s.handle(Command::Attention { index: 0 })[0] {
        Event::AttentionMaps { maps, tokens, targets, image, grid, .. } => {
            assert!(image.is_empty() && grid.is_empty(), "tokens are not patches");
            assert_eq!(maps.len(), 2);
            assert_eq!(
                (maps[0].layer, maps[1].layer, maps[0].heads, maps[0].steps, maps[0].weights.len()),
                (2, 3, 4, 8, 256)
            );
            assert_eq!(tokens.len(), 8);
            assert_eq!(targets, &tokens.iter().rev().copied().collect::<Vec<_>>());
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(&s.handle(Command::Predict { pixels: vec![0.0; 784] })[0], Event::Error { message } if message.contains("reads token sequences"))
    );
    assert!(matches!(&s.handle(Command::Inspect { index: 0, layer: None })[0], Event::Error { .. }));
}

#[test]
fn vit_attention_comes_with_the_digit_and_its_patch_grid() {
    let mut s = session(64);
    s.handle(Command::SetSpec { spec: layerlab::preset("tiny-vit").unwrap() });
    match &s.handle(Command::Attention { index: 5 })[0] {
        Event::AttentionMaps { index, maps, tokens, image, label, grid, .. } => {
            assert_eq!((*index, maps.len(), maps[0].steps, grid.as_slice()), (5, 2, 16, &[4, 4][..]));
            assert!(tokens.is_empty());
            assert_eq!(image.len(), 784);
            let (_, test) = common::mnist(0, 10);
            assert_eq!((image.as_slice(), *label), (test.image(5), test.labels[5] as usize));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(&s.handle(Command::Attention { index: 500 })[0], Event::Error { message } if message.contains("no test example 500"))
    );
}

#[test]
fn hidden_states_of_every_recurrent_layer() {
    let mut s = Session::new();
    s.handle(Command::SetSpec { spec: layerlab::preset("reverse-lstm").unwrap() });
    match &s.handle(Command::Hidden { index: 2 })[0] {
        Event::HiddenStates { layers, tokens, targets, image, .. } => {
            assert!(!layers.is_empty() && image.is_empty());
            assert_eq!((tokens.len(), targets.len()), (8, 8));
            for l in layers {
                assert_eq!((l.steps, l.values.len()), (8, 8 * l.units));
                assert!(l.values.iter().all(|v| v.abs() < 1.0 + 1e-6), "LSTM states are tanh-bounded");
                assert!(l.layer_type == "LSTM");
            }
        }
        other => panic!("{other:?}"),
    }
    // A model without recurrent layers has none to show.
    s.handle(Command::SetSpec { spec: layerlab::preset("reverse-transformer").unwrap() });
    assert!(
        matches!(&s.handle(Command::Hidden { index: 0 })[0], Event::HiddenStates { layers, .. } if layers.is_empty())
    );
    // A GRU that returns only its last state still shows every step; rows of a
    // digit come with the digit.
    let mut s = session(64);
    let mut spec = layerlab::preset("seed-lstm").unwrap();
    spec.layers = serde_json::from_str(r#"[{"type": "Reshape", "target_shape": [28, 28]}, {"type": "GRU", "units": 5}, {"type": "Dense", "units": 10}]"#).unwrap();
    s.handle(Command::SetSpec { spec });
    match &s.handle(Command::Hidden { index: 0 })[0] {
        Event::HiddenStates { layers, image, .. } => {
            assert_eq!(
                (layers.len(), layers[0].layer, layers[0].steps, layers[0].units, image.len()),
                (1, 1, 28, 5, 784)
            );
            assert_eq!(layers[0].layer_type, "GRU");
        }
        other => panic!("{other:?}"),
    }
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn accuracy_of(events: &[Event]) -> f32 {
    events
        .iter()
        .find_map(|e| if let Event::Evaluation { accuracy, .. } = e { Some(*accuracy) } else { None })
        .expect("an evaluation")
}

#[test]
fn trained_weights_come_back_with_the_same_accuracy() {
    let mut s = session(640);
    s.handle(Command::SetSpec { spec: layerlab::preset("mlp").unwrap() });
    for _ in 0..6 {
        s.handle(Command::Step);
    }
    let trained = accuracy_of(&s.handle(Command::Pause));
    let Event::Weights { spec, steps, safetensors, .. } =
        s.handle(Command::GetWeights { purpose: "test".into() }).remove(0)
    else {
        panic!()
    };
    assert_eq!(steps, 6);
    // A reload: a new worker, the stored spec and weights.
    let mut again = session(640);
    again.handle(Command::SetSpec { spec: spec.clone() });
    let events = again.handle(Command::LoadWeights { safetensors: safetensors.clone() });
    assert!(
        events.contains(&Event::WeightsLoaded {
            tensors: spec.infer().unwrap().layers.iter().map(|l| l.params.len()).sum()
        }),
        "{events:?}"
    );
    assert_eq!(accuracy_of(&events), trained, "the restored model is the trained one");
    // Weights that arrive before the data are kept until it is there.
    let mut early = Session::new();
    early.handle(Command::SetSpec { spec: spec.clone() });
    let events = early.handle(Command::LoadWeights { safetensors: safetensors.clone() });
    assert!(matches!(events.last(), Some(Event::WeightsLoaded { .. })), "{events:?}");
    let Event::Weights { safetensors: held, .. } =
        early.handle(Command::GetWeights { purpose: "test".into() }).remove(0)
    else {
        panic!()
    };
    assert_eq!(held, safetensors);
    let (a, b) = common::mnist(640, 500);
    let digit: Vec<f32> = b.image(0).iter().map(|&p| p as f32 / 255.0).collect();
    let events = early.set_data(a, b);
    assert_eq!(accuracy_of(&events), trained, "once the data is there, the held weights are evaluated");
    let predict = Command::Predict { pixels: digit };
    assert_eq!(early.handle(predict.clone()), s.handle(predict), "the held weights are the trained ones");
}

#[test]
fn weights_that_do_not_fit_are_refused_with_the_tensor_named() {
    let mut s = session(64);
    s.handle(Command::SetSpec { spec: layerlab::preset("mlp").unwrap() });
    let Event::Weights { safetensors, .. } = s.handle(Command::GetWeights { purpose: "test".into() }).remove(0) else {
        panic!()
    };
    s.handle(Command::SetSpec { spec: layerlab::preset("seed-cnn").unwrap() });
    let err = |events: Vec<Event>| match &events[..] {
        [Event::Error { message }] => message.clone(),
        other => panic!("{other:?}"),
    };
    let m = err(s.handle(Command::LoadWeights { safetensors }));
    assert!(
        m.starts_with(
            "these weights do not fit the model: weights: the file has no tensor \"0.weight\" (shape [32, 1, 3, 3])"
        ),
        "{m}"
    );
    assert!(err(s.handle(Command::LoadWeights { safetensors: "%%%".into() })).contains("not base64"));
    assert!(err(s.handle(Command::LoadWeights { safetensors: b64(b"not a safetensors file") })).contains("do not fit"));
    // NaN from a diverged run.
    let model = layerlab::Model::new(&layerlab::preset("seed-cnn").unwrap()).unwrap();
    model.parameters()[0].1.value_mut()[[0, 0, 0, 0]] = f32::NAN;
    let bytes = layerlab::io::weights::save_parameters(&model.parameters()).unwrap();
    let m = err(s.handle(Command::LoadWeights { safetensors: b64(&bytes) }));
    assert!(m.contains("tensor \"0.weight\" holds NaN"), "{m}");
}

#[test]
fn the_worker_exports_pytorch_code_with_its_weights() {
    let mut s = Session::new();
    s.handle(Command::SetSpec { spec: layerlab::preset("reverse-lstm").unwrap() });
    s.handle(Command::Step);
    let Event::Weights { safetensors, .. } = s.handle(Command::GetWeights { purpose: "test".into() }).remove(0) else {
        panic!()
    };
    match s.handle(Command::Export { format: "pytorch".into() }).remove(0) {
        Event::Exported { format, files } => {
            assert_eq!(format, "pytorch");
            let names: Vec<&str> = files.iter().map(|f| f.0.as_str()).collect();
            assert_eq!(
                names,
                [
                    "model.py",
                    "train.py",
                    "check.py",
                    "README.md",
                    "model.json",
                    "weights.safetensors",
                    "check.safetensors"
                ]
            );
            assert_eq!(files[5].1, safetensors, "the trained weights, not fresh ones");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(&s.handle(Command::Export { format: "onnx".into() })[0], Event::Error { message } if message.contains("unknown export format"))
    );
}

fn checkpoint_of(s: &mut Session) -> (layerlab::nn::ModelSpec, usize, String) {
    match s.handle(Command::GetCheckpoint).remove(0) {
        Event::Checkpoint { spec, steps, checkpoint, .. } => (spec, steps, checkpoint),
        other => panic!("{other:?}"),
    }
}

fn steps(s: &mut Session, n: usize) -> Vec<f32> {
    (0..n).flat_map(|_| losses(&s.handle(Command::Step))).collect()
}

#[test]
fn a_run_goes_on_from_its_checkpoint_exactly() {
    // Adam and SGD with momentum, a dropout layer, over an epoch's end (10 steps
    // an epoch): the continued run takes the steps the original takes.
    for optimizer in [
        OptimizerSpec::Adam { lr: 1e-3, beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7 },
        OptimizerSpec::SGD { lr: 0.05, momentum: 0.9 },
    ] {
        let mut spec = layerlab::preset("mlp").unwrap();
        spec.training.epochs = 3;
        spec.training.optimizer = optimizer;
        let mut s = session(640);
        s.handle(Command::SetSpec { spec: spec.clone() });
        steps(&mut s, 7);
        let (kept_spec, kept_steps, checkpoint) = checkpoint_of(&mut s);
        assert_eq!((kept_spec, kept_steps), (spec.clone(), 7));
        let original = steps(&mut s, 8);

        // A reload: a new worker gets the checkpoint before the data arrives.
        let history = layerlab::worker::History {
            losses: vec![2.0; 7],
            evals: vec![(7, 0.5)],
            test_losses: vec![(7, 1.5)],
            elapsed_s: 3.0,
        };
        let mut again = Session::new();
        again.handle(Command::SetSpec { spec: spec.clone() });
        assert_eq!(
            again.handle(Command::Resume { checkpoint: checkpoint.clone(), history: history.clone() }),
            vec![Event::Running { running: false }]
        );
        let (a, b) = common::mnist(640, 500);
        let events = again.set_data(a, b);
        assert_eq!(events[1], Event::Resumed { steps: 7, history: history.clone() }, "{events:?}");
        assert!(matches!(events[2], Event::Evaluation { step: 7, .. }));
        let step = again.handle(Command::Step);
        assert!(matches!(step[1], Event::Metrics { first_step: 8, elapsed_s, .. } if elapsed_s >= 3.0), "{step:?}");
        let continued: Vec<f32> = losses(&step).into_iter().chain(steps(&mut again, 7)).collect();
        assert_eq!(continued, original, "{:?}", spec.training.optimizer);

        // With the data there, at once.
        let mut third = session(640);
        third.handle(Command::SetSpec { spec: spec.clone() });
        let events = third.handle(Command::Resume { checkpoint, history: history.clone() });
        assert!(events.contains(&Event::Resumed { steps: 7, history }), "{events:?}");
        assert_eq!(steps(&mut third, 8), original);
    }
}

#[test]
fn a_token_model_goes_on_from_its_checkpoint() {
    let spec = layerlab::preset("reverse-transformer").unwrap();
    let mut s = Session::new();
    s.handle(Command::SetSpec { spec: spec.clone() });
    steps(&mut s, 3);
    let (_, _, checkpoint) = checkpoint_of(&mut s);
    let original = steps(&mut s, 3);
    let mut again = Session::new();
    again.handle(Command::SetSpec { spec });
    let events = again.handle(Command::Resume { checkpoint, history: Default::default() });
    assert!(matches!(events[1], Event::Resumed { steps: 3, .. }), "{events:?}");
    assert_eq!(steps(&mut again, 3), original);
}

#[test]
fn checkpoints_that_do_not_fit_are_refused_with_the_reason() {
    let mut s = session(64);
    let mlp = layerlab::preset("mlp").unwrap();
    s.handle(Command::SetSpec { spec: mlp.clone() });
    assert!(
        matches!(&s.handle(Command::GetCheckpoint)[..], [Event::Error { message }] if message.contains("no training to keep"))
    );
    steps(&mut s, 1);
    let (_, _, checkpoint) = checkpoint_of(&mut s);
    let err = |s: &mut Session, spec: &layerlab::nn::ModelSpec, checkpoint: String| {
        s.handle(Command::SetSpec { spec: spec.clone() });
        let events = s.handle(Command::Resume { checkpoint, history: Default::default() });
        match &events[..] {
            [Event::Running { running: false }, Event::Error { message }] => message.clone(),
            other => panic!("{other:?}"),
        }
    };
    let m = err(&mut s, &layerlab::preset("seed-cnn").unwrap(), checkpoint.clone());
    assert!(
        m.contains("could not be continued (checkpoint: the file has no tensor \"0.weight\" (shape [32, 1, 3, 3])"),
        "{m}"
    );
    assert!(m.ends_with("training starts over."), "{m}");
    // After the message, training starts over from a fresh model.
    assert_eq!(losses(&s.handle(Command::Step)).len(), 1);
    let mut sgd = mlp.clone();
    sgd.training.optimizer = OptimizerSpec::SGD { lr: 0.1, momentum: 0.0 };
    assert!(err(&mut s, &sgd, checkpoint.clone())
        .contains("saved training with Adam, but the model trains with SGD; choose Adam"));
    let mut seeded = mlp.clone();
    seeded.training.seed = 5;
    assert!(err(&mut s, &seeded, checkpoint.clone()).contains("saved with seed 0, but the training settings say 5"));
    // A weights file is not a checkpoint; damaged bytes are refused, not a panic.
    let Event::Weights { safetensors, .. } = s.handle(Command::GetWeights { purpose: "test".into() }).remove(0) else {
        panic!()
    };
    assert!(err(&mut s, &mlp, safetensors).contains("not a layerlab checkpoint"));
    assert!(err(&mut s, &mlp, b64(b"garbage")).contains("not a valid safetensors file"));
    assert!(
        matches!(&s.handle(Command::Resume { checkpoint: "%%".into(), history: Default::default() })[..], [Event::Error { message }] if message.contains("not base64"))
    );
    // A cut-off checkpoint.
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD.decode(&checkpoint).unwrap();
    assert!(err(&mut s, &mlp, b64(&bytes[..bytes.len() / 2])).contains("not a valid safetensors file"));
}

/// Weights whose outputs overflow f32 on the test set: the evaluation reports a
/// divergence (and pauses), never an accuracy or a loss of infinity or NaN.
#[test]
fn an_evaluation_that_overflows_is_a_divergence_not_a_figure() {
    let spec = layerlab::ModelSpec::from_json(
        r#"{"input": {"dataset": "mnist", "shape": [784]}, "layers": [{"type": "Dense", "units": 10}]}"#,
    )
    .unwrap();
    let mut s = session(640);
    s.handle(Command::SetSpec { spec: spec.clone() });
    let model = layerlab::Model::new(&spec).unwrap();
    let huge: Vec<(String, layerlab::tensor::Array)> = model
        .parameters()
        .iter()
        .enumerate()
        .map(|(i, (n, p))| (n.clone(), p.to_array().mapv(|_| if i == 0 { 1e37 } else { 0.0 })))
        .collect();
    let events = s.handle(Command::LoadWeights { safetensors: b64(&layerlab::io::weights::to_bytes(&huge).unwrap()) });
    assert!(!events.iter().any(|e| matches!(e, Event::Evaluation { .. })), "{events:?}");
    let message = events
        .iter()
        .find_map(|e| if let Event::Diverged { message } = e { Some(message.clone()) } else { None })
        .expect("a divergence");
    assert!(
        message.starts_with("the test loss is ")
            && message.contains("with these weights: the model's outputs overflow"),
        "{message}"
    );
    assert!(!s.is_running());
}

/// Trains `preset` with `optimizer` on the first `train` digits (evaluated on
/// 500) for up to `steps` steps; every event.
fn train_with(preset: &str, optimizer: OptimizerSpec, train: usize, steps: usize) -> Vec<Event> {
    let mut spec = layerlab::preset(preset).unwrap();
    spec.training.optimizer = optimizer;
    spec.training.epochs = steps.div_ceil(train / 64).max(1);
    let mut s = session(train);
    let mut events = s.handle(Command::SetSpec { spec });
    events.extend(s.handle(Command::Train));
    while s.is_running() && losses(&events).len() < steps {
        events.extend(s.tick(0.5));
    }
    events
}

fn not_learning(events: &[Event]) -> Vec<&String> {
    events.iter().filter_map(|e| if let Event::NotLearning { message } = e { Some(message) } else { None }).collect()
}

#[test]
fn a_far_too_high_learning_rate_is_called_out() {
    // Adam at 10: the Seed CNN sits at the chance level (TF Playground's users meet this).
    let events =
        train_with("seed-cnn", OptimizerSpec::Adam { lr: 10.0, beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7 }, 3200, 500);
    let said = not_learning(&events);
    assert_eq!(said.len(), 1, "{said:?}");
    // Its loss spikes early (then sits near chance): either way it is named.
    assert!(said[0].contains("not learning") && said[0].contains("earning rate 10 is"), "{}", said[0]);
    assert!(said[0].contains("far too high; try 1."), "{}", said[0]);
    assert_eq!(events.last(), Some(&Event::Running { running: false }));
    assert!(losses(&events).len() <= 300, "paused at step 20 or at the first judgement, step 300");
    // SGD at 10: called out too (not learning, or diverged), and paused.
    let events = train_with("seed-cnn", OptimizerSpec::SGD { lr: 10.0, momentum: 0.0 }, 3200, 500);
    let called = events.iter().any(|e| matches!(e, Event::NotLearning { .. } | Event::Diverged { .. }));
    assert!(called, "{:?}", events.iter().filter(|e| !matches!(e, Event::Metrics { .. })).collect::<Vec<_>>());
    assert_eq!(events.last(), Some(&Event::Running { running: false }));

    // SGD at 1e6 on all 60,000 digits: the MLP's loss runs away, finite (it
    // "finished" at 896,760 before), and the run pauses at step 20.
    let events = train_with("mlp", OptimizerSpec::SGD { lr: 1e6, momentum: 0.0 }, 60_000, 200);
    let said = not_learning(&events);
    assert!(said.first().is_some_and(|m| m.starts_with("The loss rose from 2.52 to ")), "{said:?}");
    assert_eq!(losses(&events).len(), 20);
    assert!(said[0].contains("The learning rate 1e6 is far too high; try 1e5"), "{}", said[0]);
}

#[test]
fn a_run_that_learns_is_left_alone() {
    for preset in layerlab::PRESETS.iter().map(|p| p.id) {
        let lr = layerlab::preset(preset).unwrap().training.optimizer;
        let events = train_with(preset, lr, 3200, 400);
        assert!(losses(&events).len() >= 400, "{preset} stopped early: {:?}", not_learning(&events));
        assert_eq!(not_learning(&events), Vec::<&String>::new(), "{preset}");
    }
}

/// Helpers in this process for `train_slice` (the page's are Web Workers):
/// each a `Replica` that, as if it ran beside the training worker, begins
/// the next chunk of its job at each of that worker's `settle`s (unless
/// claimed: then it stops), and computes the rest of them when its answer is
/// awaited. The `fail_job`-th job (counting from 1) is answered with a
/// failure. A `deaf` helper ignores claims, as one whose word crossed the
/// training worker's would: the chunks both computed count once.
struct InProcess {
    replicas: Vec<std::cell::RefCell<Option<(layerlab::nn::ModelSpec, layerlab::train::Replica)>>>,
    out: std::cell::RefCell<Vec<Option<Out>>>,
    jobs: std::cell::Cell<usize>,
    /// Of the jobs, the parts of evaluations.
    evaluations: std::cell::Cell<usize>,
    /// Chunks the training worker computed, and the helpers, in all.
    own_chunks: std::cell::Cell<usize>,
    helper_chunks: std::cell::Cell<usize>,
    fail_job: Option<usize>,
    failed: std::cell::Cell<bool>,
    deaf: bool,
    /// The training worker's `settle`s a helper takes to begin a chunk (1:
    /// as fast as that worker; 0: never, until its answer is awaited).
    pace: usize,
    settles: std::cell::Cell<usize>,
}

/// A helper's job out: the chunks it went through, the results, the chunks
/// the training worker claimed, whether it stopped (a claimed chunk next),
/// and whether it is to fail.
struct Out {
    job: layerlab::train::PartJob,
    next: usize,
    results: Vec<layerlab::train::PartResult>,
    claimed: u64,
    stopped: bool,
    fails: bool,
}

impl InProcess {
    fn new(helpers: usize, fail_job: Option<usize>) -> InProcess {
        InProcess {
            replicas: (0..helpers).map(|_| Default::default()).collect(),
            out: std::cell::RefCell::new((0..helpers).map(|_| None).collect()),
            jobs: Default::default(),
            evaluations: Default::default(),
            own_chunks: Default::default(),
            helper_chunks: Default::default(),
            fail_job,
            failed: Default::default(),
            deaf: false,
            pace: 1,
            settles: Default::default(),
        }
    }

    /// Helper `k` begins (and computes) the next chunk of its job, if any is
    /// left that the training worker did not claim.
    fn advance(&self, k: usize) -> bool {
        let mut out = self.out.borrow_mut();
        let Some(o) = out[k].as_mut().filter(|o| !o.stopped && !o.fails && o.next < o.job.chunks.len()) else {
            return false;
        };
        let index = o.job.chunks[o.next].index;
        if !self.deaf && o.claimed >> index & 1 == 1 {
            o.stopped = true;
            return false;
        }
        let replica = self.replicas[k].borrow();
        o.results.push(replica.as_ref().unwrap().1.chunk(&o.job, o.next));
        o.next += 1;
        self.helper_chunks.set(self.helper_chunks.get() + 1);
        true
    }
}

impl layerlab::worker::Helpers for InProcess {
    async fn ready(&self) -> usize {
        if self.failed.get() {
            0
        } else {
            self.replicas.len()
        }
    }
    fn send(&self, k: usize, spec: &layerlab::nn::ModelSpec, job: layerlab::train::PartJob) {
        let mut replica = self.replicas[k].borrow_mut();
        if replica.as_ref().is_none_or(|(s, _)| s != spec) {
            *replica = Some((spec.clone(), layerlab::train::Replica::new(spec).unwrap()));
        }
        self.jobs.set(self.jobs.get() + 1);
        self.evaluations.set(self.evaluations.get() + usize::from(job.evaluate));
        if k == 0 {
            // Each step's pace counts from its start.
            self.settles.set(0);
        }
        replica.as_ref().unwrap().1.start(&job).unwrap();
        let fails = Some(self.jobs.get()) == self.fail_job;
        self.out.borrow_mut()[k] = Some(Out { job, next: 0, results: Vec::new(), claimed: 0, stopped: false, fails });
    }
    fn started(&self, index: usize) -> bool {
        let out = self.out.borrow();
        out.iter().flatten().any(|o| o.job.chunks[..o.next].iter().any(|c| c.index == index))
    }
    fn claim(&self, index: usize) {
        self.own_chunks.set(self.own_chunks.get() + 1);
        for o in self.out.borrow_mut().iter_mut().flatten() {
            o.claimed |= 1 << index;
        }
    }
    async fn settle(&self) {
        self.settles.set(self.settles.get() + 1);
        if self.pace > 0 && self.settles.get() % self.pace == 0 {
            for k in 0..self.replicas.len() {
                self.advance(k);
            }
        }
    }
    async fn receive(&self, k: usize) -> Result<Vec<layerlab::train::PartResult>, String> {
        while self.advance(k) {}
        let out = self.out.borrow_mut()[k].take().expect("a job was sent");
        let answer = match out.fails {
            true => Err("a simulated failure".to_string()),
            false => Ok(out.results),
        };
        self.failed.set(self.failed.get() || answer.is_err());
        answer
    }
}

/// `steps` steps of `spec`, in slices of at most 4 steps, with `helpers`:
/// the losses and the final weights (`train_and_measure`: with the
/// `WorkerSpeeds` events).
fn train_with_helpers(
    spec: &layerlab::nn::ModelSpec,
    steps: usize,
    helpers: &impl layerlab::worker::Helpers,
) -> (Vec<f32>, Vec<f32>) {
    train_and_measure(spec, steps, helpers).0
}

fn train_and_measure(
    spec: &layerlab::nn::ModelSpec,
    steps: usize,
    helpers: &impl layerlab::worker::Helpers,
) -> ((Vec<f32>, Vec<f32>), Vec<Event>) {
    let mut measured = Vec::new();
    let mut s = session(640);
    s.handle(Command::SetSpec { spec: spec.clone() });
    s.handle(Command::Train);
    let mut all = Vec::new();
    while all.len() < steps {
        let cell = std::cell::RefCell::new(&mut s);
        let events = pollster::block_on(layerlab::worker::train_slice(
            &cell,
            helpers,
            (steps - all.len()).min(4),
            f64::INFINITY,
            |_| {},
        ));
        assert!(!losses(&events).is_empty(), "the run stopped after {} steps: {events:?}", all.len());
        measured.extend(events.iter().filter(|e| matches!(e, Event::WorkerSpeeds { .. })).cloned());
        all.extend(losses(&events));
    }
    s.handle(Command::Pause);
    let Event::Weights { safetensors, .. } = &s.handle(Command::GetWeights { purpose: "test".into() })[0] else {
        panic!()
    };
    let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, safetensors).unwrap();
    let mut tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap().tensors();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let weights = tensors
        .iter()
        .flat_map(|(_, t)| t.data().chunks(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())))
        .collect();
    ((all, weights), measured)
}

fn close(a: &[f32], b: &[f32], tol: f32) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol * (1.0 + y.abs()))
}

#[test]
fn workers_split_each_step_and_train_as_one_does() {
    // The page's multi-worker training, with helpers in this process: 2 and
    // 3 workers over 8 steps of the Seed CNN (and of a sequence task, a label
    // per position) give one worker's losses and
    // weights to float tolerance (the gradients are summed in another order).
    // Steps 1-4 are whole and 5-8 split: the measurement of which is faster
    // (`split::SplitTuner`), the same every run.
    for (preset, helpers) in [("seed-cnn", 1), ("seed-cnn", 2), ("reverse-lstm", 2)] {
        let spec = layerlab::preset(preset).unwrap();
        let (one, w1) = train_with_helpers(&spec, 8, &layerlab::worker::NoHelpers);
        let h = InProcess::new(helpers, None);
        let ((parts, w), measured) = train_and_measure(&spec, 8, &h);
        assert_eq!(h.jobs.get(), 4 * helpers, "steps 5-8 were split");
        assert!(
            matches!(measured[..], [Event::WorkerSpeeds { workers, one, split, .. }] if workers == helpers + 1 && one > 0.0 && split > 0.0),
            "{measured:?}"
        );
        assert!(close(&parts, &one, 1e-4), "{preset}, {} workers: {parts:?} against {one:?}", helpers + 1);
        assert!(close(&w, &w1, 1e-3), "{preset}, {} workers: the weights differ", helpers + 1);
        assert!(parts[7] < parts[0], "{parts:?}");
        // The chunks were shared out: 4 a worker, of 4 steps.
        assert_eq!((h.own_chunks.get(), h.helper_chunks.get()), (16, 16 * helpers), "{preset}");
    }
}

#[test]
fn a_worker_done_first_takes_the_others_chunks() {
    // A split step's chunks go to whoever is free: a helper three times as
    // slow leaves most to the training worker, one that does nothing until
    // its answer is awaited leaves it all but what it had begun, one deaf
    // to the training worker's claims computes chunks twice (counted once).
    // Every way, the run is one worker's to float tolerance, and the same
    // whoever computed which chunk (each chunk's gradient is the same, summed
    // in the chunks' order).
    let spec = layerlab::preset("seed-cnn").unwrap();
    let (one, w1) = train_with_helpers(&spec, 8, &layerlab::worker::NoHelpers);
    let even = InProcess::new(1, None);
    let (split, ws) = train_with_helpers(&spec, 8, &even);
    for (pace, deaf, own, theirs) in [(3, false, 4 * 6, 4 * 2), (0, false, 4 * 8, 0), (1, true, 4 * 4, 4 * 7)] {
        let h = InProcess { pace, deaf, ..InProcess::new(1, None) };
        let (parts, w) = train_with_helpers(&spec, 8, &h);
        assert_eq!((h.own_chunks.get(), h.helper_chunks.get()), (own, theirs), "pace {pace}, deaf {deaf}");
        assert!(close(&parts, &one, 1e-4), "pace {pace}: {parts:?} against {one:?}");
        assert!(close(&w, &w1, 1e-3), "pace {pace}: the weights differ");
        assert_eq!(parts, split, "pace {pace}, deaf {deaf}: another share of the chunks, another result");
        assert!(w == ws, "pace {pace}, deaf {deaf}: another share of the chunks, other weights");
    }
}

/// `steps` steps of `spec` on 640 examples, in slices of at most 4 steps,
/// with `helpers`, every step split (`Session::force_split`); all events,
/// and the session.
fn train_split(
    spec: &layerlab::nn::ModelSpec,
    steps: usize,
    helpers: &impl layerlab::worker::Helpers,
) -> (Vec<Event>, Session) {
    let mut s = session(640);
    s.force_split(Some(true));
    s.handle(Command::SetSpec { spec: spec.clone() });
    s.handle(Command::Train);
    let (mut all, mut done) = (Vec::new(), 0);
    while done < steps {
        let cell = std::cell::RefCell::new(&mut s);
        let events = pollster::block_on(layerlab::worker::train_slice(
            &cell,
            helpers,
            (steps - done).min(4),
            f64::INFINITY,
            |_| {},
        ));
        assert!(!losses(&events).is_empty(), "the run stopped after {done} steps: {events:?}");
        done += losses(&events).len();
        all.extend(events);
    }
    (all, s)
}

#[test]
fn a_split_run_splits_its_evaluations_too() {
    // The evaluation after step 100 of a run whose steps are split across
    // helpers: each helper computes the logits of its share of the test
    // examples, this worker its own, and the figures are those of the same
    // weights evaluated in one worker (Pause evaluates them so, at once).
    // The split is forced: in this thread helpers are never faster.
    let mut spec = layerlab::preset("seed-cnn").unwrap();
    // 10 steps an epoch: 110 steps, an evaluation after step 100.
    spec.training.epochs = 11;
    let evaluations = |events: &[Event]| -> Vec<(usize, f32, f32, Vec<Vec<u32>>)> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Evaluation { step, accuracy, loss, samples: 500, confusion, .. } => {
                    Some((*step, *accuracy, *loss, confusion.clone()))
                }
                _ => None,
            })
            .collect()
    };
    for (helpers, fail) in [(1, None), (2, None), (1, Some(101))] {
        let h = InProcess::new(helpers, fail);
        let (events, mut s) = train_split(&spec, 100, &h);
        let split = evaluations(&events);
        let whole = evaluations(&s.handle(Command::Pause));
        let what = format!("{} workers{}", helpers + 1, if fail.is_some() { ", the helper failing" } else { "" });
        assert!(
            split.len() == 1 && whole.len() == 1 && split[0].0 == 100 && whole[0].0 == 100,
            "{what}: {split:?} {whole:?}"
        );
        let ((_, acc, loss, confusion), (_, acc1, loss1, confusion1)) = (&split[0], &whole[0]);
        assert!((loss - loss1).abs() <= 1e-5 * loss1, "{what}: loss {loss} against {loss1}");
        // The same predictions, but where the GEMM's blocking (which may
        // follow the number of rows natively) tipped a near tie: one at most.
        assert!((acc - acc1).abs() <= 1.0 / 500.0 + 1e-6, "{what}: accuracy {acc} against {acc1}");
        let moved: u32 = confusion.iter().flatten().zip(confusion1.iter().flatten()).map(|(a, b)| a.abs_diff(*b)).sum();
        assert!(moved <= 2, "{what}: the confusion matrices differ by {moved}");
        match fail {
            // The 101st job, the evaluation's part (steps 1-100 sent the first
            // hundred), fails: this worker evaluates it all, the run goes on.
            Some(_) => assert!(h.failed.get() && h.evaluations.get() == 1, "{what}"),
            None => {
                assert_eq!(h.evaluations.get(), helpers, "{what}: one part of the evaluation for each helper");
                assert_eq!(h.jobs.get(), 100 * helpers + helpers, "{what}: every step split, and the evaluation");
            }
        }
    }
}

#[test]
fn a_failing_helper_leaves_one_worker_to_train_the_same_batches() {
    // The third job fails (step 7): that step is taken again in this worker
    // alone, with the same batch and dropout masks, and no step is lost. The
    // MLP has dropout: steps 5-6 used the helper's masks, so from there on
    // the run is compared with itself done again.
    let spec = layerlab::preset("mlp").unwrap();
    let failing = InProcess::new(1, Some(3));
    let (a, wa) = train_with_helpers(&spec, 8, &failing);
    assert!(failing.failed.get());
    assert_eq!(failing.jobs.get(), 3, "no job after the failure");
    assert_eq!(a.len(), 8, "{a:?}");
    let again = InProcess::new(1, Some(3));
    let (b, wb) = train_with_helpers(&spec, 8, &again);
    assert_eq!(a, b, "a failure is repeatable");
    assert!(wa == wb, "a failure is repeatable: the weights differ");
    // Without dropout, the run equals one worker's.
    let mut no_dropout = spec.clone();
    no_dropout.layers.retain(|l| !matches!(l, layerlab::nn::spec::LayerSpec::Dropout(_)));
    let (one, _) = train_with_helpers(&no_dropout, 8, &layerlab::worker::NoHelpers);
    let (split, _) = train_with_helpers(&no_dropout, 8, &InProcess::new(1, Some(3)));
    assert!(close(&split, &one, 1e-4), "{split:?} against {one:?}");
}

/// Helpers that hand the session `commands` while the `at`-th part is out,
/// as the page's worker handles messages then; `answers` what they gave.
struct HandlingAt<'a, 'b> {
    inner: InProcess,
    cell: &'a std::cell::RefCell<&'b mut layerlab::worker::Session>,
    at: usize,
    commands: std::cell::RefCell<Vec<Command>>,
    answers: std::cell::RefCell<Vec<Event>>,
}

impl<'a, 'b> HandlingAt<'a, 'b> {
    fn new(cell: &'a std::cell::RefCell<&'b mut layerlab::worker::Session>, at: usize, commands: Vec<Command>) -> Self {
        HandlingAt { inner: InProcess::new(1, None), cell, at, commands: commands.into(), answers: Default::default() }
    }
}

impl layerlab::worker::Helpers for HandlingAt<'_, '_> {
    async fn ready(&self) -> usize {
        self.inner.ready().await
    }
    fn send(&self, k: usize, spec: &layerlab::nn::ModelSpec, job: layerlab::train::PartJob) {
        self.inner.send(k, spec, job)
    }
    fn started(&self, index: usize) -> bool {
        self.inner.started(index)
    }
    fn claim(&self, index: usize) {
        self.inner.claim(index)
    }
    async fn settle(&self) {
        self.inner.settle().await
    }
    async fn receive(&self, k: usize) -> Result<Vec<layerlab::train::PartResult>, String> {
        if self.inner.jobs.get() == self.at {
            for cmd in self.commands.take() {
                let events = self.cell.borrow_mut().handle(cmd);
                self.answers.borrow_mut().extend(events);
            }
        }
        self.inner.receive(k).await
    }
}

#[test]
fn a_pause_while_parts_are_out_shows_the_weights_the_run_pauses_with() {
    // Step 5 is the first split one: Pause comes while its part is out. The
    // step finishes, and only then is the paused run evaluated (the page
    // keeps the checkpoint it asks for after that evaluation: a reload must
    // show the same accuracy).
    let mut s = session(640);
    s.handle(Command::SetSpec { spec: layerlab::preset("seed-cnn").unwrap() });
    s.handle(Command::Train);
    let cell = std::cell::RefCell::new(&mut s);
    let helpers = HandlingAt::new(&cell, 1, vec![Command::Pause]);
    let events = pollster::block_on(layerlab::worker::train_slice(&cell, &helpers, 20, f64::INFINITY, |_| {}));
    assert_eq!(
        *helpers.answers.borrow(),
        vec![Event::Running { running: false }],
        "no evaluation in the middle of a step"
    );
    assert_eq!(losses(&events).len(), 5, "the step under way finished, no other began");
    let evaluated = events.iter().find_map(|e| match e {
        Event::Evaluation { step, accuracy, .. } => Some((*step, *accuracy)),
        _ => None,
    });
    drop(helpers);
    let again = accuracy_of(&cell.into_inner().handle(Command::Pause));
    assert_eq!(evaluated, Some((5, again)), "{events:?}");
}

#[test]
fn a_new_run_while_parts_are_out_hears_nothing_of_the_old_one() {
    // The page switches preset while step 5's parts are out (CI's e2e saw the
    // Seed LSTM's last slice shown as the tiny ViT's: "Paused after 1 step").
    // After `RunStarted` nothing of the old run comes: no losses, no
    // evaluation; the new model starts at step 1.
    let mut s = session(640);
    s.handle(Command::SetSpec { spec: layerlab::preset("seed-cnn").unwrap() });
    s.handle(Command::Train);
    let cell = std::cell::RefCell::new(&mut s);
    let mlp = layerlab::preset("mlp").unwrap();
    // The page's drawing is predicted by the new model at once (its trainer is made).
    let predict = Command::Predict { pixels: vec![0.0; 784] };
    let commands =
        vec![Command::Pause, Command::NewRun { run: 7, keep: false }, Command::SetSpec { spec: mlp }, predict];
    let helpers = HandlingAt::new(&cell, 1, commands);
    let events = pollster::block_on(layerlab::worker::train_slice(&cell, &helpers, 20, f64::INFINITY, |_| {}));
    let answers = helpers.answers.take();
    let started = answers.iter().position(|e| *e == Event::RunStarted { run: 7 }).expect("RunStarted");
    assert!(!answers[..started].iter().any(|e| matches!(e, Event::Evaluation { .. })), "{answers:?}");
    assert!(events.iter().all(|e| !e.of_run()), "the old run's slice reported after RunStarted: {events:?}");
    drop(helpers);
    let s = cell.into_inner();
    let events = s.handle(Command::Step);
    let first = events.iter().find_map(|e| match e {
        Event::Metrics { first_step, losses, .. } => Some((*first_step, losses.len())),
        _ => None,
    });
    assert_eq!(first, Some((1, 1)), "{events:?}");
}

#[test]
fn commands_while_an_evaluations_parts_are_out() {
    // Every step split (forced) over 100 steps; the evaluation after step
    // 100 is split too, and a command comes while its part is out (the
    // 101st job). Pause leaves the evaluating to it: one evaluation of step
    // 100, not two. NewRun: nothing of the old run after RunStarted.
    let mut spec = layerlab::preset("seed-cnn").unwrap();
    spec.training.epochs = 11;
    for commands in [vec![Command::Pause], vec![Command::Pause, Command::NewRun { run: 3, keep: false }]] {
        let mut s = session(640);
        s.force_split(Some(true));
        s.handle(Command::SetSpec { spec: spec.clone() });
        s.handle(Command::Train);
        let new_run = commands.len() > 1;
        let cell = std::cell::RefCell::new(&mut s);
        let helpers = HandlingAt::new(&cell, 101, commands);
        // Slice 25 takes steps 97-100 and the evaluation.
        let slices: Vec<Vec<Event>> = (0..26)
            .map(|_| pollster::block_on(layerlab::worker::train_slice(&cell, &helpers, 4, f64::INFINITY, |_| {})))
            .collect();
        assert!(!cell.borrow().is_running(), "stopped by the command");
        let events: Vec<Event> = slices.concat();
        let answers = helpers.answers.take();
        let evaluations: Vec<usize> = answers
            .iter()
            .chain(&events)
            .filter_map(|e| match e {
                Event::Evaluation { step, .. } => Some(*step),
                _ => None,
            })
            .collect();
        // After NewRun the slice under way (steps 97-100) tells nothing.
        assert_eq!(losses(&events).len(), if new_run { 96 } else { 100 }, "{answers:?}");
        if new_run {
            assert!(answers.contains(&Event::RunStarted { run: 3 }), "{answers:?}");
            assert!(evaluations.is_empty(), "{answers:?}");
            assert!(slices[24].iter().all(|e| !e.of_run()), "the old run after RunStarted: {:?}", slices[24]);
        } else {
            assert_eq!(evaluations, [100], "one evaluation of step 100: {answers:?}");
            assert_eq!(helpers.inner.evaluations.get(), 1);
        }
    }
}

#[test]
fn events_of_a_run_are_told_from_the_rest() {
    // The page drops the first kind when they come from a run it has left.
    assert!(Event::Metrics {
        first_step: 1,
        losses: vec![1.0],
        accuracy: 0.1,
        samples_per_s: 1.0,
        train_s: 1.0,
        epoch: 0,
        epoch_progress: 0.0,
        elapsed_s: 1.0,
        total_steps: 10
    }
    .of_run());
    assert!(Event::Running { running: false }.of_run());
    assert!(Event::Prediction { probs: vec![] }.of_run());
    assert!(!Event::RunStarted { run: 1 }.of_run());
    assert!(!Event::DataLoaded { train: 1, test: 1 }.of_run());
    assert!(!Event::Exported { format: "pytorch".into(), files: vec![] }.of_run());
}

#[test]
fn a_complete_run_trains_on_with_more_epochs() {
    // Issue 15 point 11: one epoch (10 steps), complete; one more epoch goes
    // on from step 11, not from the start.
    let mut s = session(640);
    let mut spec = layerlab::preset("mlp").unwrap();
    spec.training.epochs = 1;
    s.handle(Command::SetSpec { spec });
    s.handle(Command::Train);
    let events = run_until_stopped(&mut s, 1.0, 100);
    assert!(events.iter().any(|e| matches!(e, Event::Finished { steps: 10 })), "{events:?}");
    assert!(
        matches!(&s.handle(Command::SetEpochs { epochs: 0 })[..], [Event::Error { message }] if message.contains("between 1 and"))
    );
    assert_eq!(s.handle(Command::SetEpochs { epochs: 2 }), vec![]);
    s.handle(Command::Train);
    let more = run_until_stopped(&mut s, 1.0, 100);
    let first = more.iter().find_map(|e| match e {
        Event::Metrics { first_step, .. } => Some(*first_step),
        _ => None,
    });
    assert_eq!(first, Some(11), "{more:?}");
    assert_eq!(losses(&more).len(), 10);
    assert!(more.iter().any(|e| matches!(e, Event::Finished { steps: 20 })), "{more:?}");
    // The run kept in the browser is of two epochs now.
    let Event::Checkpoint { spec, steps, .. } = &s.handle(Command::GetCheckpoint)[0] else { panic!() };
    assert_eq!((spec.training.epochs, *steps), (2, 20));
}

#[test]
fn a_confusion_cell_of_a_sequence_task_shows_its_sequences() {
    // Issue 15 point 4: a cell of a token confusion matrix is positions of
    // test sequences; its examples are those sequences, the position marked.
    let mut s = session(640);
    s.handle(Command::SetSpec { spec: layerlab::preset("reverse-transformer").unwrap() });
    s.handle(Command::Step);
    let paused = s.handle(Command::Pause);
    let Event::Evaluation { confusion, .. } = &paused[1] else { panic!("{paused:?}") };
    let (a, p) = (0..confusion.len())
        .flat_map(|a| (0..confusion.len()).map(move |p| (a, p)))
        .find(|&(a, p)| a != p && confusion[a][p] > 0)
        .expect("an untrained model gets some wrong");
    let Event::Examples { images, sequences, indices, .. } =
        &s.handle(Command::Examples { actual: a, predicted: p })[0]
    else {
        panic!()
    };
    assert!(images.is_empty());
    assert!(!sequences.is_empty() && sequences.len() <= layerlab::worker::MAX_EXAMPLES);
    assert_eq!(indices.len(), sequences.len());
    let positions: u32 = confusion[a][p];
    assert!(sequences.len() as u32 <= positions);
    for seq in sequences {
        assert_eq!((seq.tokens.len(), seq.targets.len(), seq.predicted.len()), (8, 8, 8));
        assert_eq!((seq.targets[seq.position], seq.predicted[seq.position]), (a, p), "{seq:?}");
        let reversed: Vec<usize> = seq.tokens.iter().rev().copied().collect();
        assert_eq!(seq.targets, reversed, "the reverse task's targets");
    }
}

#[test]
fn a_run_left_for_another_model_comes_back_as_a_checkpoint_with_its_history() {
    // Issue 15 point 2: the page leaves a run mid-training; the worker sends
    // it, with every step's loss, before the new run begins (the page keeps
    // it with its model), unless the page starts it over (Reset).
    let mut s = session(640);
    s.handle(Command::SetSpec { spec: layerlab::preset("mlp").unwrap() });
    let mut losses_seen = Vec::new();
    for _ in 0..5 {
        losses_seen.extend(losses(&s.handle(Command::Step)));
    }
    let events = s.handle(Command::NewRun { run: 3, keep: true });
    let Event::Checkpoint { steps, history, spec, .. } = &events[0] else { panic!("{events:?}") };
    assert_eq!((*steps, spec.name.as_str()), (5, "mlp"));
    assert_eq!(history.losses, losses_seen, "the run's every loss, as the page showed them");
    assert_eq!(events[1], Event::RunStarted { run: 3 });
    // Nothing to keep: a run that has not trained, or one started over.
    assert_eq!(s.handle(Command::NewRun { run: 4, keep: true })[0], Event::RunStarted { run: 4 });
    s.handle(Command::SetSpec { spec: layerlab::preset("mlp").unwrap() });
    s.handle(Command::Step);
    assert_eq!(s.handle(Command::NewRun { run: 5, keep: false })[0], Event::RunStarted { run: 5 });
}
