//! `MaxPool2D` and `AveragePool2D`: pooling over windows of `[channels, h, w]`.

use serde::{Deserialize, Serialize};

use super::{Context, LayerConfig, Limit, Module, Params, Size2, Stateless};
use super::{Fix, SpecError};

macro_rules! pooling_layer {
    ($($(#[$doc:meta])* $name:ident => $op:ident: $description:literal,)*) => {$(
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            pub pool_size: Size2,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub strides: Option<Size2>,
        }

        impl $name {
            /// The strides as given (default: the pool size, as Keras).
            pub fn stride_size(&self) -> Size2 {
                self.strides.unwrap_or(self.pool_size)
            }

            /// `[sh, sw]`.
            pub fn strides(&self) -> [usize; 2] {
                self.stride_size().hw()
            }
        }

        impl LayerConfig for $name {
            fn palette_default() -> Self {
                $name { pool_size: Size2::Square(2), strides: None }
            }

            fn param_names() -> &'static [&'static str] {
                &["pool_size", "strides"]
            }

            fn description() -> &'static str {
                $description
            }

            fn limits(&self) -> Vec<Limit> {
                let mut limits = Limit::window("pool_size", Some(self.pool_size));
                limits.extend(Limit::window("strides", self.strides));
                limits
            }

            fn infer(&self, cx: &Context) -> Result<Vec<usize>, SpecError> {
                infer_pool(cx, self.pool_size.hw(), self.strides())
            }

            fn build(&self, _input: &[usize], _output: &[usize], _p: &mut Params) -> Box<dyn Module> {
                let (size, stride) = (self.pool_size.hw(), self.strides());
                Box::new(Stateless(move |x: &crate::tensor::Tensor, _: &mut super::Mode, _| x.$op(size, stride)))
            }
        }
    )*};
}

pooling_layer! {
    /// The maximum of each window (PyTorch `nn.MaxPool2d`, no padding): input
    /// `[c, h, w]`, output `[c, (h - ph) / sh + 1, (w - pw) / sw + 1]`.
    MaxPool2D => max_pool2d: "Keeps the largest value of each pool_size window: [C, H, W] becomes [C, H/2, W/2] with the default 2.",
    /// The mean of each window (PyTorch `nn.AvgPool2d`, no padding).
    AveragePool2D => avg_pool2d: "Averages each pool_size window: [C, H, W] becomes [C, H/2, W/2] with the default 2.",
}

fn infer_pool(cx: &Context, [ph, pw]: [usize; 2], [sh, sw]: [usize; 2]) -> Result<Vec<usize>, SpecError> {
    let [c, h, w] = cx.image_input()?;
    if ph == 0 || pw == 0 || sh == 0 || sw == 0 {
        return cx
            .fail(format!("pool_size and strides must be at least 1, got pool {ph}x{pw}, strides {sh}x{sw}"), None);
    }
    if ph > h || pw > w {
        return cx.fail(
            format!("pool {ph}x{pw} is larger than its input {h}x{w} (input shape {:?}); use a smaller pool_size or remove this layer", cx.input),
            Some(Fix::Remove { index: cx.index }),
        );
    }
    Ok(vec![c, (h - ph) / sh + 1, (w - pw) / sw + 1])
}
