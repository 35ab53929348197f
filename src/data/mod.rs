//! Data sets: loading and generating what a spec's `input` names (its
//! `DatasetSpec`, in `nn::spec`), the MNIST IDX reader, batching and the
//! seeded data order.

pub mod drawing;
pub mod idx;
pub mod mnist;
pub mod tokens;

pub use crate::nn::spec::dataset::{DatasetSpec, MAX_SEQ_LEN, MAX_VOCAB};
pub use mnist::Mnist;
pub use tokens::{TokenTask, TokenTaskKind};

/// A batch of examples: `x` row-major with shape `[batch, ..input shape]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    pub x: Vec<f32>,
    pub shape: Vec<usize>,
    pub labels: Vec<usize>,
}

impl Batch {
    /// The examples `rows` (a range of the first axis) as a batch of their
    /// own: their values, and their labels, one per example or one per
    /// position of a sequence (every example has as many).
    pub fn rows(&self, rows: std::ops::Range<usize>) -> Batch {
        let n = self.shape[0];
        let (per_example, labels_per_example) = (self.x.len() / n, self.labels.len() / n);
        let mut shape = self.shape.clone();
        shape[0] = rows.len();
        Batch {
            x: self.x[rows.start * per_example..rows.end * per_example].to_vec(),
            shape,
            labels: self.labels[rows.start * labels_per_example..rows.end * labels_per_example].to_vec(),
        }
    }
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

    /// The labels of examples `indices` (as `batch` gives them: one per
    /// example, or one per position of a sequence), without their inputs.
    pub fn labels(&self, indices: &[u32]) -> Vec<usize> {
        match self {
            Data::Mnist(m) => indices.iter().map(|&i| m.labels[i as usize] as usize).collect(),
            Data::Tokens(t) => indices.iter().flat_map(|&i| t.example(i as usize).1).collect(),
        }
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
