//! Data sets: what a spec's `input` names, the MNIST IDX reader, batching and
//! the seeded data order.

pub mod drawing;
pub mod idx;
pub mod mnist;
pub mod tokens;

use serde::{Deserialize, Serialize};

use crate::error::SpecError;
use crate::nn::spec::{Fix, LayerSpec};

pub use mnist::Mnist;
pub use tokens::{TokenTask, TokenTaskKind};

/// The `input` section of a spec: which data set, and the shape one example is
/// given to the first layer in (without the batch axis).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dataset", rename_all = "lowercase", deny_unknown_fields)]
pub enum DatasetSpec {
    /// 28x28 grey digits, 10 classes; `shape` may be [1,28,28], [28,28] or [784].
    Mnist {
        #[serde(default = "mnist_default_shape")]
        shape: Vec<usize>,
    },
    /// Output the input tokens reversed; input `[seq_len]` token ids.
    Reverse { seq_len: usize, vocab: usize },
    /// Output the input tokens sorted.
    Sort { seq_len: usize, vocab: usize },
    /// Output the input tokens unchanged.
    Copy { seq_len: usize, vocab: usize },
}

/// The most positions and tokens a sequence task may have.
pub const MAX_SEQ_LEN: usize = 256;
pub const MAX_VOCAB: usize = 4096;

fn mnist_default_shape() -> Vec<usize> {
    vec![1, 28, 28]
}

impl DatasetSpec {
    pub fn name(&self) -> &'static str {
        match self {
            DatasetSpec::Mnist { .. } => "mnist",
            DatasetSpec::Reverse { .. } => "reverse",
            DatasetSpec::Sort { .. } => "sort",
            DatasetSpec::Copy { .. } => "copy",
        }
    }

    /// The sequence task this input names, if it is one (seeded with `seed`).
    pub fn token_task(&self, seed: u64, train: bool) -> Option<TokenTask> {
        let (kind, seq_len, vocab) = match *self {
            DatasetSpec::Mnist { .. } => return None,
            DatasetSpec::Reverse { seq_len, vocab } => (TokenTaskKind::Reverse, seq_len, vocab),
            DatasetSpec::Sort { seq_len, vocab } => (TokenTaskKind::Sort, seq_len, vocab),
            DatasetSpec::Copy { seq_len, vocab } => (TokenTaskKind::Copy, seq_len, vocab),
        };
        // The test set comes from another seed, so it holds unseen sequences.
        let (seed, len) =
            if train { (seed, tokens::TRAIN_EXAMPLES) } else { (seed ^ 0x7e57_7e57_7e57_7e57, tokens::TEST_EXAMPLES) };
        Some(TokenTask { kind, seq_len, vocab, seed, len })
    }

    /// The shape one example is given in (without the batch axis).
    pub fn shape(&self) -> Vec<usize> {
        match self {
            DatasetSpec::Mnist { shape } => shape.clone(),
            DatasetSpec::Reverse { seq_len, .. }
            | DatasetSpec::Sort { seq_len, .. }
            | DatasetSpec::Copy { seq_len, .. } => vec![*seq_len],
        }
    }

    pub fn classes(&self) -> usize {
        match self {
            DatasetSpec::Mnist { .. } => 10,
            DatasetSpec::Reverse { vocab, .. } | DatasetSpec::Sort { vocab, .. } | DatasetSpec::Copy { vocab, .. } => {
                *vocab
            }
        }
    }

    /// Whether examples are token ids (for Embedding) rather than pixels.
    pub fn is_tokens(&self) -> bool {
        !matches!(self, DatasetSpec::Mnist { .. })
    }

    /// The model's input shape, or why the given one cannot hold this data.
    pub fn validate(&self) -> Result<Vec<usize>, SpecError> {
        let err = |m: String| {
            Err(SpecError { layer: None, layer_type: String::new(), message: format!("input: {m}"), fix: None })
        };
        match self {
            DatasetSpec::Mnist { shape } => {
                if shape.is_empty() || shape.contains(&0) || shape.len() > 8 {
                    return err(format!("shape must have 1 to 8 positive sizes, got {shape:?}; use [1, 28, 28]"));
                }
                // Checked: a product that wrapped could pass for 784.
                let total = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
                if total != Some(mnist::PIXELS) {
                    let holds = total.map_or("more than 2^64".to_string(), |t| t.to_string());
                    return err(format!(
                        "shape {shape:?} holds {holds} values but an MNIST image has 784 (28x28); use [1, 28, 28]"
                    ));
                }
                Ok(shape.clone())
            }
            DatasetSpec::Reverse { seq_len, vocab }
            | DatasetSpec::Sort { seq_len, vocab }
            | DatasetSpec::Copy { seq_len, vocab } => {
                if !(1..=MAX_SEQ_LEN).contains(seq_len) {
                    return err(format!("seq_len must be between 1 and {MAX_SEQ_LEN}, got {seq_len}"));
                }
                if !(2..=MAX_VOCAB).contains(vocab) {
                    return err(format!("vocab must be between 2 and {MAX_VOCAB}, got {vocab}"));
                }
                Ok(vec![*seq_len])
            }
        }
    }

    /// The model's output must be one logit per class.
    pub fn check_output(&self, shape: &[usize], layer_count: usize) -> Result<(), SpecError> {
        let classes = self.classes();
        if self.is_tokens() {
            let want = [self.shape()[0], classes];
            if shape == want {
                return Ok(());
            }
            let fix = (shape.len() == 2 && shape[0] == want[0]).then(|| Fix::Insert {
                index: layer_count,
                layer: LayerSpec::Dense { units: classes, activation: None, use_bias: None },
            });
            return Err(SpecError {
                layer: layer_count.checked_sub(1),
                layer_type: String::new(),
                message: format!(
                    "the model ends with shape {shape:?} but {} needs {want:?}, a score for each of the {classes} tokens at each of the {} positions; end with Dense {classes} on the sequence",
                    self.name(),
                    want[0]
                ),
                fix,
            });
        }
        if shape == [classes] {
            return Ok(());
        }
        let (fix, advice) = if shape.len() > 1 {
            (LayerSpec::Flatten, format!("end with Flatten and Dense {classes}"))
        } else {
            (LayerSpec::Dense { units: classes, activation: None, use_bias: None }, format!("end with Dense {classes}"))
        };
        let last = layer_count.checked_sub(1);
        Err(SpecError {
            layer: last,
            layer_type: String::new(),
            message: format!("the model ends with shape {shape:?} but {} has {classes} classes; {advice}", self.name()),
            fix: Some(Fix::Insert { index: layer_count, layer: fix }),
        })
    }
}

/// A batch of examples: `x` row-major with shape `[batch, ..input shape]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    pub x: Vec<f32>,
    pub shape: Vec<usize>,
    pub labels: Vec<usize>,
}

/// The data order of BENCHMARKS.md: a Fisher-Yates shuffle driven by a 32-bit LCG
/// (`state = 1664525 * state + 1013904223 mod 2^32`; for i = n-1..1, j = state mod (i+1)).
/// With seed 1 it is the fixed order the PyTorch and TensorFlow.js anchors use.
pub fn lcg_permutation(n: usize, seed: u32) -> Vec<u32> {
    let mut perm: Vec<u32> = (0..n as u32).collect();
    let mut state = seed;
    for i in (1..n).rev() {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let j = (state as usize) % (i + 1);
        perm.swap(i, j);
    }
    perm
}

/// The shuffle seed of `epoch` under a spec's `seed`: seed 0, epoch 0 gives
/// LCG seed 1, the benchmarks' order; later epochs reshuffle.
pub fn epoch_shuffle_seed(seed: u64, epoch: usize) -> u32 {
    (seed as u32).wrapping_mul(0x9E37_79B1).wrapping_add(epoch as u32).wrapping_add(1)
}

/// The examples a trainer draws from: MNIST in memory, or a generated sequence task.
/// MNIST is shared (`Arc`), so a new trainer after every Reset costs no copy.
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    Mnist(std::sync::Arc<Mnist>),
    Tokens(TokenTask),
}

impl From<Mnist> for Data {
    fn from(m: Mnist) -> Self {
        Data::Mnist(std::sync::Arc::new(m))
    }
}

impl Data {
    pub fn len(&self) -> usize {
        match self {
            Data::Mnist(m) => m.len(),
            Data::Tokens(t) => t.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Examples `indices`, shaped `[batch, ..example_shape]`.
    pub fn batch(&self, indices: &[u32], example_shape: &[usize]) -> Batch {
        match self {
            Data::Mnist(m) => m.batch(indices, example_shape),
            Data::Tokens(t) => t.batch(indices),
        }
    }

    pub fn as_mnist(&self) -> Option<&Mnist> {
        match self {
            Data::Mnist(m) => Some(m),
            Data::Tokens(_) => None,
        }
    }

    /// The train and test sets of a spec's sequence task (`None` for MNIST,
    /// which is loaded from files).
    pub fn generated(spec: &DatasetSpec, seed: u64) -> Option<(Data, Data)> {
        Some((Data::Tokens(spec.token_task(seed, true)?), Data::Tokens(spec.token_task(seed, false)?)))
    }
}
