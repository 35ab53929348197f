//! A training run as one safetensors file: the weights under their PyTorch
//! names (so the file is also a weights file for `torch`), the optimizer's
//! moments (`optimizer.m.*`, `optimizer.v.*`) and, in the header's metadata,
//! where the run stands (step, epoch, position in the epoch's order, Adam's
//! step count, the dropout generator). A run continued from it takes exactly
//! the steps the original would have taken. The page keeps one in the browser
//! so that a reload goes on with the same run; `layerlab train --resume` reads
//! one natively.

use std::collections::HashMap;
use std::str::FromStr;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{Counters, HostCheckpoint, Trainer};
use crate::data::{epoch_shuffle_seed, lcg_permutation};
use crate::error::{Error, Result};
use crate::io::weights;
use crate::nn::spec::OptimizerSpec;
use crate::tensor::Array;

const FORMAT: &str = "layerlab.checkpoint";
const VERSION: &str = "1";

fn optimizer_name(spec: &OptimizerSpec) -> &'static str {
    match spec {
        OptimizerSpec::SGD { .. } => "SGD",
        OptimizerSpec::Adam { .. } => "Adam",
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

fn bad(message: String) -> Error {
    Error::Checkpoint(message)
}

impl Trainer {
    /// `host` (a checkpoint of this trainer, see `Trainer::checkpoint`) as the
    /// bytes of one safetensors file.
    pub fn checkpoint_to_bytes(&self, host: &HostCheckpoint) -> Result<Vec<u8>> {
        let adam = matches!(self.optimizer.spec, OptimizerSpec::Adam { .. });
        let mut tensors: Vec<(String, Array)> =
            self.params.iter().zip(&host.weights).map(|((name, _), w)| (name.clone(), w.clone())).collect();
        for ((name, _), (m, v)) in self.params.iter().zip(&host.optimizer_state) {
            tensors.push((format!("optimizer.m.{name}"), m.clone()));
            if adam {
                tensors.push((format!("optimizer.v.{name}"), v.clone()));
            }
        }
        let c = &host.counters;
        let spec = &self.model.spec.training;
        let meta: HashMap<String, String> = [
            ("format", FORMAT.to_string()),
            ("version", VERSION.to_string()),
            ("step", c.step.to_string()),
            ("epoch", c.epoch.to_string()),
            ("cursor", c.cursor.to_string()),
            ("samples_seen", c.samples_seen.to_string()),
            ("train_examples", self.train.len().to_string()),
            ("seed", spec.seed.to_string()),
            ("optimizer", optimizer_name(&self.optimizer.spec).to_string()),
            ("optimizer_t", host.optimizer_t.to_string()),
            ("dropout_seed", hex(&c.dropout_rng.get_seed())),
            ("dropout_stream", c.dropout_rng.get_stream().to_string()),
            ("dropout_word_pos", c.dropout_rng.get_word_pos().to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        weights::to_bytes_with(&tensors, Some(meta))
    }

    /// Reads a checkpoint written by `checkpoint_to_bytes` for this trainer's
    /// model and training settings, checking every tensor and count; `restore`
    /// then continues the run from it.
    pub fn checkpoint_from_bytes(&self, bytes: &[u8]) -> Result<HostCheckpoint> {
        let meta = weights::read_metadata(bytes).map_err(|e| bad(e.to_string()))?;
        if meta.get("format").map(String::as_str) != Some(FORMAT) {
            return Err(bad("this is not a layerlab checkpoint (a weights file? open it as weights instead)".into()));
        }
        let get = |key: &str| meta.get(key).map(String::as_str).unwrap_or("");
        fn num<T: FromStr>(meta: &HashMap<String, String>, key: &str) -> Result<T> {
            meta.get(key)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| bad(format!("its \"{key}\" is missing or not a number; the file is damaged")))
        }
        if get("version") != VERSION {
            return Err(bad(format!(
                "version {} is newer than this layerlab reads ({VERSION}); reload the page or update layerlab",
                crate::escape::printable(get("version"))
            )));
        }
        let training = &self.model.spec.training;
        let optimizer = optimizer_name(&self.optimizer.spec);
        if get("optimizer") != optimizer {
            let saved = crate::escape::printable(get("optimizer"));
            return Err(bad(format!("it was saved training with {saved}, but the model trains with {optimizer}; choose {saved} to continue it")));
        }
        let seed: u64 = num(&meta, "seed")?;
        if seed != training.seed {
            return Err(bad(format!("it was saved with seed {seed}, but the training settings say {}; set the seed to {seed} to continue it", training.seed)));
        }
        let train_examples: usize = num(&meta, "train_examples")?;
        if train_examples != self.train.len() {
            return Err(bad(format!(
                "it was saved training on {train_examples} examples, but this training set has {}",
                self.train.len()
            )));
        }
        let (step, epoch, cursor, samples_seen): (usize, usize, usize, usize) =
            (num(&meta, "step")?, num(&meta, "epoch")?, num(&meta, "cursor")?, num(&meta, "samples_seen")?);
        if cursor >= train_examples {
            return Err(bad(format!(
                "its position in the epoch ({cursor}) is past the training set ({train_examples}); the file is damaged"
            )));
        }
        // Counts from a file: bounded before any arithmetic on them (a step
        // counter near the largest integer would wrap on the next step).
        let most_steps = self
            .steps_per_epoch()
            .checked_mul(epoch.saturating_add(1))
            .filter(|_| epoch <= crate::nn::spec::MAX_EPOCHS);
        if most_steps.is_none_or(|most| step > most) {
            return Err(bad(format!(
                "its step {step} and epoch {epoch} do not fit a run of {} steps per epoch; the file is damaged",
                self.steps_per_epoch()
            )));
        }
        let optimizer_t: u64 = num(&meta, "optimizer_t")?;
        if optimizer_t > step as u64 {
            return Err(bad(format!(
                "its optimizer has counted {optimizer_t} updates in {step} steps; the file is damaged"
            )));
        }
        if samples_seen > step.saturating_mul(crate::nn::spec::MAX_BATCH_SIZE) {
            return Err(bad(format!("it counts {samples_seen} examples seen in {step} steps; the file is damaged")));
        }
        let dropout_seed = unhex(get("dropout_seed"))
            .ok_or_else(|| bad("its \"dropout_seed\" is not 64 hexadecimal digits; the file is damaged".into()))?;
        let mut dropout_rng = ChaCha8Rng::from_seed(dropout_seed);
        dropout_rng.set_stream(num(&meta, "dropout_stream")?);
        dropout_rng.set_word_pos(num(&meta, "dropout_word_pos")?);

        let loaded = weights::read_all(bytes).map_err(|e| bad(e.to_string()))?;
        let adam = optimizer == "Adam";
        let mut expected = Vec::new();
        let (mut weights_out, mut state) = (Vec::new(), Vec::new());
        for (name, p) in &self.params {
            let shape = p.shape();
            let one = |n: &str| weights::checked(&loaded, n, &shape).cloned().map_err(bad);
            weights_out.push(one(name)?);
            let m = one(&format!("optimizer.m.{name}"))?;
            let v = if adam { one(&format!("optimizer.v.{name}"))? } else { Array::zeros(ndarray::IxDyn(&[0])) };
            state.push((m, v));
            expected.extend([name.clone(), format!("optimizer.m.{name}")]);
            if adam {
                expected.push(format!("optimizer.v.{name}"));
            }
        }
        let mut extra: Vec<&String> = loaded.keys().filter(|k| !expected.contains(k)).collect();
        extra.sort();
        if let Some(name) = extra.first() {
            return Err(bad(format!(
                "it has a tensor \"{}\" that this model does not have; it was saved from a different model",
                crate::escape::printable(name)
            )));
        }
        let order = lcg_permutation(train_examples, epoch_shuffle_seed(seed, epoch));
        Ok(HostCheckpoint {
            weights: weights_out,
            optimizer_state: state,
            optimizer_t,
            counters: Counters { cursor, epoch, step, samples_seen, order, dropout_rng },
        })
    }
}
