//! `Reshape`: the same values in another shape.

use serde::{Deserialize, Serialize};

use super::SpecError;
use super::{Context, LayerConfig, LayerSpec, Module, Params, Stateless};

/// One example's values in `target_shape`, in memory order; one size may be
/// `-1` for "the rest" (Keras's `Reshape`, which also excludes the batch axis).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reshape {
    pub target_shape: Vec<i64>,
}

/// A `Reshape` layer to `target_shape` (the fix messages offer).
pub fn to(target_shape: Vec<i64>) -> LayerSpec {
    LayerSpec::Reshape(Reshape { target_shape })
}

impl LayerConfig for Reshape {
    fn palette_default() -> Self {
        Reshape { target_shape: vec![28, 28] }
    }

    fn param_names() -> &'static [&'static str] {
        &["target_shape"]
    }

    fn description() -> &'static str {
        "Reads the same values as another shape (target_shape; -1 for one axis to infer), e.g. an image [1, 28, 28] as 28 rows [28, 28] for an RNN."
    }

    fn infer(&self, cx: &Context) -> Result<Vec<usize>, SpecError> {
        let total: usize = cx.input.iter().product();
        resolve(&self.target_shape, total).map_err(|m| {
            cx.error(
                format!(
                    "cannot reshape {:?} ({} values) to {:?}: {m}",
                    cx.input,
                    crate::text::format_count(total as u64),
                    self.target_shape
                ),
                None,
            )
        })
    }

    fn build(&self, _input: &[usize], output: &[usize], _p: &mut Params) -> Box<dyn Module> {
        let shape = output.to_vec();
        Box::new(Stateless(move |x: &crate::tensor::Tensor, _: &mut super::Mode, _| {
            let mut s = vec![x.shape()[0]];
            s.extend_from_slice(&shape);
            x.reshape(&s)
        }))
    }
}

/// `target` with its `-1` resolved, for an input of `total` values.
fn resolve(target: &[i64], total: usize) -> Result<Vec<usize>, String> {
    if target.is_empty() {
        return Err("target_shape is empty".into());
    }
    let unknown = target.iter().filter(|&&d| d == -1).count();
    if unknown > 1 || target.iter().any(|&d| d == 0 || d < -1) {
        return Err("every size must be positive, with at most one -1 for \"the rest\"".into());
    }
    let known = target
        .iter()
        .filter(|&&d| d > 0)
        .fold(1usize, |a, &d| a.saturating_mul(usize::try_from(d).unwrap_or(usize::MAX)));
    let mut out: Vec<usize> = target.iter().map(|&d| usize::try_from(d.max(0)).unwrap_or(usize::MAX)).collect();
    if unknown == 1 {
        if total % known != 0 {
            return Err(format!("{total} is not divisible by {known}"));
        }
        *out.iter_mut().find(|d| **d == 0).unwrap() = total / known;
    } else if known != total {
        return Err(format!("the target holds {known} values"));
    }
    Ok(out)
}
