//! `DatasetSpec`: the `input` section of a spec, which data set and the shape
//! one example is given in, and the checks a model's input and output pass
//! against it. Loading and generating the data is `crate::data`'s.

use serde::{Deserialize, Serialize};

use crate::nn::layers::{Dense, Fix, Flatten, LayerSpec, SpecError};

/// Pixels in one MNIST image (28x28).
pub const MNIST_PIXELS: usize = 784;

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
        let err = |m: String| Err(SpecError::top(format!("input: {m}")));
        match self {
            DatasetSpec::Mnist { shape } => {
                if shape.is_empty() || shape.contains(&0) || shape.len() > 8 {
                    return err(format!("shape must have 1 to 8 positive sizes, got {shape:?}; use [1, 28, 28]"));
                }
                // Checked: a product that wrapped could pass for 784.
                let total = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
                if total != Some(MNIST_PIXELS) {
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
                    return err(format!(
                        "seq_len must be between 1 and {MAX_SEQ_LEN}, got {}",
                        crate::text::format_count(*seq_len as u64)
                    ));
                }
                if !(2..=MAX_VOCAB).contains(vocab) {
                    return err(format!(
                        "vocab must be between 2 and {}, got {}",
                        crate::text::format_count(MAX_VOCAB as u64),
                        crate::text::format_count(*vocab as u64)
                    ));
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
            let fix = (shape.len() == 2 && shape[0] == want[0])
                .then(|| Fix::Insert { index: layer_count, layer: LayerSpec::Dense(Dense::new(classes)) });
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
            let layers = vec![LayerSpec::Flatten(Flatten {}), LayerSpec::Dense(Dense::new(classes))];
            (Fix::InsertAll { index: layer_count, layers }, format!("end with Flatten and Dense {classes}"))
        } else {
            let layer = LayerSpec::Dense(Dense::new(classes));
            (Fix::Insert { index: layer_count, layer }, format!("end with Dense {classes}"))
        };
        let last = layer_count.checked_sub(1);
        Err(SpecError {
            layer: last,
            layer_type: String::new(),
            message: format!("the model ends with shape {shape:?} but {} has {classes} classes; {advice}", self.name()),
            fix: Some(fix),
        })
    }
}
