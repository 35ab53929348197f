//! Synthetic sequence tasks, generated on the fly from a seed: `reverse`, `sort`
//! and `copy` over random tokens. Example `i` depends only on (seed, i), so any
//! batch can be rebuilt without storing the set.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{Batch, DatasetSpec};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenTaskKind {
    Reverse,
    Sort,
    Copy,
}

/// Examples in one epoch of a token task, and in its test set.
pub const TRAIN_EXAMPLES: usize = 50_000;
pub const TEST_EXAMPLES: usize = 1_000;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TokenTask {
    pub kind: TokenTaskKind,
    pub seq_len: usize,
    pub vocab: usize,
    pub seed: u64,
    pub len: usize,
}

// The generator's side of a spec's `input`: defined here, with the generators,
// so that the spec (in `nn::spec`) does not depend on the data it names.
impl DatasetSpec {
    /// The sequence task this input names, if it is one (seeded with `seed`).
    pub fn token_task(&self, seed: u64, train: bool) -> Option<TokenTask> {
        let (kind, seq_len, vocab) = match *self {
            DatasetSpec::Mnist { .. } => return None,
            DatasetSpec::Reverse { seq_len, vocab } => (TokenTaskKind::Reverse, seq_len, vocab),
            DatasetSpec::Sort { seq_len, vocab } => (TokenTaskKind::Sort, seq_len, vocab),
            DatasetSpec::Copy { seq_len, vocab } => (TokenTaskKind::Copy, seq_len, vocab),
        };
        // The test set comes from another seed, so it holds unseen sequences.
        let (seed, len) = if train { (seed, TRAIN_EXAMPLES) } else { (seed ^ 0x7e57_7e57_7e57_7e57, TEST_EXAMPLES) };
        Some(TokenTask { kind, seq_len, vocab, seed, len })
    }
}

impl TokenTask {
    /// Example `i`: random tokens and the sequence the task asks for.
    pub fn example(&self, i: usize) -> (Vec<usize>, Vec<usize>) {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(i as u64);
        let input: Vec<usize> = (0..self.seq_len).map(|_| rng.random_range(0..self.vocab)).collect();
        let target = match self.kind {
            TokenTaskKind::Reverse => input.iter().rev().copied().collect(),
            TokenTaskKind::Sort => {
                let mut t = input.clone();
                t.sort_unstable();
                t
            }
            TokenTaskKind::Copy => input.clone(),
        };
        (input, target)
    }

    /// Token ids as f32 `[batch, seq_len]`; one label per position.
    pub fn batch(&self, indices: &[u32]) -> Batch {
        let mut x = Vec::with_capacity(indices.len() * self.seq_len);
        let mut labels = Vec::with_capacity(indices.len() * self.seq_len);
        for &i in indices {
            let (input, target) = self.example(i as usize);
            x.extend(input.iter().map(|&t| t as f32));
            labels.extend(target);
        }
        Batch { x, shape: vec![indices.len(), self.seq_len], labels }
    }
}
