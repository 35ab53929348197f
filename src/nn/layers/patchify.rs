//! `Patchify`: an image as a sequence of flattened patches (ViT's tokens).

use serde::{Deserialize, Serialize};

use super::SpecError;
use super::{Context, LayerConfig, Limit, Module, Params, Stateless};

/// Image `[C, H, W]` -> tokens `[H/p * W/p, C*p*p]`, patches row-major
/// (Dosovitskiy et al. 2020); each token holds its patch channel by channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Patchify {
    pub patch_size: usize,
}

impl LayerConfig for Patchify {
    fn palette_default() -> Self {
        Patchify { patch_size: 7 }
    }

    fn param_names() -> &'static [&'static str] {
        &["patch_size"]
    }

    fn description() -> &'static str {
        "Cuts the image into square patches of patch_size, one token each, as a vision transformer does: [C, 28, 28] becomes [(28 / p)^2, C x p x p]."
    }

    fn limits(&self) -> Vec<Limit> {
        vec![Limit { field: "patch_size", value: self.patch_size, max: super::MAX_WINDOW }]
    }

    fn infer(&self, cx: &Context) -> Result<Vec<usize>, SpecError> {
        let [c, h, w] = cx.image_input()?;
        let p = self.patch_size;
        if p == 0 || h % p != 0 || w % p != 0 {
            let divisors: Vec<String> =
                (1..=h.min(w)).filter(|d| h % d == 0 && w % d == 0).map(|d| d.to_string()).collect();
            return cx.fail(
                format!("patch_size {p} does not divide the image {h}x{w}; use one of {}", divisors.join(", ")),
                None,
            );
        }
        Ok(vec![(h / p) * (w / p), c * p * p])
    }

    fn build(&self, _input: &[usize], _output: &[usize], _p: &mut Params) -> Box<dyn Module> {
        let p = self.patch_size;
        Box::new(Stateless(move |x: &crate::tensor::Tensor, _: &mut super::Mode, _| {
            // [N, C, H, W] -> [N, H/p, W/p, C, p, p] -> [N, tokens, C*p*p]
            let s = x.shape();
            let (n, c, h, w) = (s[0], s[1], s[2], s[3]);
            x.reshape(&[n, c, h / p, p, w / p, p]).permute(&[0, 2, 4, 1, 3, 5]).reshape(&[
                n,
                (h / p) * (w / p),
                c * p * p,
            ])
        }))
    }
}
