//! Which backend trains a model faster, measured: a few real training steps of
//! the model on each device (a fresh model from the spec's seed on the run's
//! own data; the run itself is not touched), and the faster one is chosen.
//! The page's Auto and the CLI's `--backend auto` use it whenever a GPU
//! adapter exists, because an adapter is not a fast GPU: a software one
//! (SwiftShader, lavapipe) trains tens of times slower than the CPU path.

use web_time::Instant;

use super::Trainer;
use crate::backend::Device;
use crate::data::Data;
use crate::error::{Error, Result};
use crate::nn::ModelSpec;

/// Seconds of timed steps per backend (after one warm-up step).
pub const BUDGET_S: f64 = 0.4;
/// Timed steps per backend at least (unless the warm-up alone took the budget).
const MIN_STEPS: usize = 2;
/// Timed steps per backend at most.
const MAX_STEPS: usize = 50;

/// Training speed in samples per second of `spec` on `device`: one warm-up
/// step (buffers, first-use work), then steps for about `budget_s` seconds
/// (at least `MIN_STEPS`). A device so slow that the warm-up step alone took
/// the budget is measured by that step, so the whole takes about `2 ×
/// budget_s` on the faster device and one step on a slow one.
///
/// # Errors
/// The trainer's (`Error::Spec` for an invalid spec, `Error::Gpu` when the
/// GPU fails); a diverging step is timed like any other.
pub async fn samples_per_s(spec: &ModelSpec, train: &Data, device: &Device, budget_s: f64) -> Result<f64> {
    let mut t = Trainer::with_device(spec, train.clone(), train.clone(), device)?;
    let batch = spec.training.batch_size.min(train.len()).max(1) as f64;
    let started = Instant::now();
    step(&mut t).await?;
    let warm_up = started.elapsed().as_secs_f64();
    if warm_up >= budget_s {
        return Ok(batch / warm_up.max(1e-9));
    }
    let started = Instant::now();
    let mut steps = 0;
    while steps < MIN_STEPS || (steps < MAX_STEPS && started.elapsed().as_secs_f64() < budget_s) {
        step(&mut t).await?;
        steps += 1;
    }
    Ok(batch * steps as f64 / started.elapsed().as_secs_f64().max(1e-9))
}

/// One training step, awaiting its metrics (as the worker's slice loop does).
/// A step that diverges took its time all the same: it counts (the speed is
/// the point here, and a fresh model at a huge learning rate diverges).
async fn step(t: &mut Trainer) -> Result<()> {
    let pending = t.begin_step();
    let words = pending.read().await.map_err(|e| Error::Gpu(e.0))?;
    match t.finish_step(pending, words) {
        Ok(_) | Err(Error::NonFiniteLoss { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Both backends' measured speed, samples per second.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Speeds {
    pub gpu: f32,
    pub cpu: f32,
}

impl Speeds {
    /// The GPU trains faster (ties go to the CPU, which needs no readbacks).
    pub fn gpu_wins(&self) -> bool {
        self.gpu > self.cpu
    }

    /// "WebGPU 4,100 samples/s, CPU 780: using WebGPU" (`gpu_name` names the GPU backend).
    pub fn describe(&self, gpu_name: &str) -> String {
        let (g, c) =
            (crate::error::format_count(self.gpu.round() as u64), crate::error::format_count(self.cpu.round() as u64));
        let using = if self.gpu_wins() { gpu_name } else { "the CPU" };
        format!("{gpu_name} {g} samples/s, CPU {c}: using {using}")
    }
}

/// Measures `spec` on the CPU and on `gpu` (a `Device::Gpu`) and returns both
/// speeds; `slow` (`"cpu"` or `"gpu"`, for tests of the choice) forces one
/// backend slow: its figure becomes a thousandth of the slower of the two
/// measured speeds, so it loses however far apart the backends really are (a
/// software adapter can be 1,000 times slower than the CPU on a small model).
///
/// # Errors
/// As `samples_per_s`; a GPU failure is the caller's to fall back from.
pub async fn measure(spec: &ModelSpec, train: &Data, gpu: &Device, slow: Option<&str>) -> Result<Speeds> {
    let cpu = samples_per_s(spec, train, &Device::Cpu, BUDGET_S).await?;
    let on_gpu = samples_per_s(spec, train, gpu, BUDGET_S).await?;
    Ok(forced_slow(Speeds { gpu: on_gpu as f32, cpu: cpu as f32 }, slow))
}

/// `speeds` with the backend `slow` names (`"cpu"` or `"gpu"`) at a thousandth
/// of the slower measured figure; unchanged for `None` or another name.
fn forced_slow(speeds: Speeds, slow: Option<&str>) -> Speeds {
    let floor = speeds.gpu.min(speeds.cpu) * 1e-3;
    match slow {
        Some("cpu") => Speeds { cpu: floor, ..speeds },
        Some("gpu") => Speeds { gpu: floor, ..speeds },
        _ => speeds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forced_slow_backend_loses_however_far_apart_the_speeds_are() {
        // The CI run that failed: SwiftShader at 53 samples/s, the CPU at 55,000.
        for (gpu, cpu) in [(53.0, 55_000.0), (55_000.0, 53.0), (100.0, 100.0), (4_100.0, 780.0)] {
            let measured = Speeds { gpu, cpu };
            assert!(forced_slow(measured, Some("cpu")).gpu_wins(), "{measured:?}");
            assert!(!forced_slow(measured, Some("gpu")).gpu_wins(), "{measured:?}");
            assert_eq!(forced_slow(measured, None), measured);
        }
    }
}
