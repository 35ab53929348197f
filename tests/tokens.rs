//! Sequence tasks: seeded generation, specs with Embedding, training the reverse
//! task, and `step` with token batches.

use layerlab::data::{Data, DatasetSpec, TokenTaskKind};
use layerlab::nn::layers::Dense;
use layerlab::nn::spec::{Fix, LayerSpec};
use layerlab::{ModelSpec, Trainer};

fn task(kind: &str) -> DatasetSpec {
    serde_json::from_str(&format!(r#"{{"dataset": "{kind}", "seq_len": 6, "vocab": 5}}"#)).unwrap()
}

#[test]
fn tasks_are_seeded_and_correct() {
    let t = task("reverse").token_task(3, true).unwrap();
    assert_eq!(t.kind, TokenTaskKind::Reverse);
    let (x, y) = t.example(17);
    assert_eq!(t.example(17), (x.clone(), y.clone()), "example i depends only on (seed, i)");
    assert_ne!(t.example(18).0, x);
    assert_eq!(y, x.iter().rev().copied().collect::<Vec<_>>());
    assert!(x.iter().all(|&v| v < 5) && x.len() == 6);
    let (x, y) = task("sort").token_task(3, true).unwrap().example(2);
    let mut sorted = x.clone();
    sorted.sort();
    assert_eq!(y, sorted);
    let (x, y) = task("copy").token_task(3, true).unwrap().example(2);
    assert_eq!(x, y);
    let test = task("reverse").token_task(3, false).unwrap();
    assert_ne!(test.example(0), t.example(0), "the test set uses another seed");
    let b = t.batch(&[0, 1, 2]);
    assert_eq!((b.shape, b.labels.len()), (vec![3, 6], 18));
}

fn spec(layers: &str) -> ModelSpec {
    ModelSpec::from_json(&format!(
        r#"{{"input": {{"dataset": "reverse", "seq_len": 8, "vocab": 10}}, "layers": {layers}}}"#
    ))
    .unwrap()
}

#[test]
fn sequence_specs_and_their_errors() {
    let info = layerlab::preset("reverse-transformer").unwrap().infer().unwrap();
    assert_eq!(info.input_shape, vec![8]);
    assert_eq!(info.output_shape, vec![8, 10]);
    assert_eq!(info.layers[0].params, vec![("weight".to_string(), vec![10, 64])]);
    let e = spec(r#"[{"type": "Embedding", "input_dim": 6, "output_dim": 4}, {"type": "Dense", "units": 10}]"#)
        .infer()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "layer 0 Embedding: input_dim 6 is smaller than the task's vocabulary of 10 tokens; use input_dim 10"
    );
    let e = spec(r#"[{"type": "Embedding", "input_dim": 10, "output_dim": 4}, {"type": "Embedding", "input_dim": 10, "output_dim": 4}]"#).infer().unwrap_err();
    assert_eq!(
        e.to_string(),
        "layer 1 Embedding: takes token ids, so it must be the first layer: move it to the top, or remove it"
    );
    assert_eq!(e.fix, Some(Fix::Remove { index: 1 }));
    let e = spec(r#"[{"type": "Embedding", "input_dim": 10, "output_dim": 4}, {"type": "GlobalAveragePooling1D"}, {"type": "Dense", "units": 10}]"#).infer().unwrap_err();
    assert_eq!(e.to_string(), "layer 2: the model ends with shape [10] but reverse needs [8, 10], a score for each of the 10 tokens at each of the 8 positions; end with Dense 10 on the sequence");
    let e = spec(r#"[{"type": "Embedding", "input_dim": 10, "output_dim": 4}]"#).infer().unwrap_err();
    assert_eq!(
        e.fix,
        Some(Fix::Insert { index: 1, layer: LayerSpec::Dense(Dense { units: 10, activation: None, use_bias: None }) })
    );
    let mnist = ModelSpec::from_json(r#"{"input": {"dataset": "mnist", "shape": [784]}, "layers": [{"type": "Embedding", "input_dim": 10, "output_dim": 4}]}"#).unwrap();
    // First already, on images: the message says what is wrong (issue 15 point 12).
    let e = mnist.infer().unwrap_err();
    assert_eq!(e.to_string(), "layer 0 Embedding: takes token ids, which only a sequence task (reverse, sort, copy) gives; this model's input is images: remove it, or choose a sequence task");
    assert_eq!(e.fix, Some(Fix::Remove { index: 0 }));
    let bad =
        ModelSpec::from_json(r#"{"input": {"dataset": "sort", "seq_len": 0, "vocab": 10}, "layers": []}"#).unwrap();
    assert_eq!(bad.infer().unwrap_err().to_string(), "input: seq_len must be between 1 and 256, got 0");
}

#[test]
fn a_transformer_learns_to_reverse() {
    let mut spec = spec(
        r#"[{"type": "Embedding", "input_dim": 10, "output_dim": 32}, {"type": "PositionalEmbedding"},
        {"type": "TransformerEncoder", "num_heads": 2, "ff_dim": 64, "activation": "gelu", "norm_first": true}, {"type": "Dense", "units": 10}]"#,
    );
    spec.training.optimizer.set_lr(0.003);
    let (train, test) = Data::generated(&spec.input, 0).unwrap();
    let mut trainer = Trainer::new(&spec, train, test).unwrap();
    let before = trainer.evaluate(Some(200));
    for _ in 0..250 {
        trainer.step().unwrap();
    }
    let after = trainer.evaluate(Some(200));
    assert!(after.accuracy > 0.9, "per-token accuracy {} -> {}", before.accuracy, after.accuracy);
    assert!(after.sequence_accuracy.unwrap() > after.accuracy.powi(8) * 0.5, "{after:?}");
    assert_eq!(after.confusion.iter().flatten().sum::<u32>(), 200 * 8);
}

#[test]
fn a_trained_reverser_attends_to_the_mirrored_position() {
    // The preset as it is (recipe and seed): after a short training, the last
    // attention layer routes output position i to input position T-1-i for test
    // examples: its map (summed over heads) peaks on the anti-diagonal.
    let spec = layerlab::preset("reverse-transformer").unwrap();
    let (train, test) = Data::generated(&spec.input, 0).unwrap();
    let mut trainer = Trainer::new(&spec, train, test.clone()).unwrap();
    for _ in 0..200 {
        trainer.step().unwrap();
    }
    let eval = trainer.evaluate(Some(500));
    assert!(eval.sequence_accuracy.unwrap() >= 0.99, "{eval:?}");
    let (mut hits, mut rows) = (0, 0);
    for k in 0..10u32 {
        let b = test.batch(&[k], &[8]);
        let maps = trainer.model.attention_maps(&layerlab::Tensor::from_vec(&b.shape, b.x));
        assert_eq!(maps.len(), 2);
        assert!(maps.iter().all(|m| m.shape() == [4, 8, 8]));
        for m in &maps {
            for row in m.as_slice().unwrap().chunks(8) {
                assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-4, "each query's weights sum to 1");
            }
        }
        let summed = maps[1].sum_axis(ndarray::Axis(0));
        hits += (0..8).filter(|&i| layerlab::train::argmax(summed.row_slice(i)) == 7 - i).count();
        rows += 8;
    }
    assert!(hits * 10 >= rows * 9, "the last layer peaks on the anti-diagonal in {hits} of {rows} rows");
}

trait RowSlice {
    fn row_slice(&self, i: usize) -> &[f32];
}
impl RowSlice for ndarray::ArrayD<f32> {
    fn row_slice(&self, i: usize) -> &[f32] {
        let w = self.shape()[1];
        &self.as_slice().unwrap()[i * w..(i + 1) * w]
    }
}
