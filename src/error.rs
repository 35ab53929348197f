//! One typed error for everything a user can get wrong, with messages that say how to fix it.

pub use crate::nn::spec::SpecError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid model: {0}")]
    Spec(#[from] SpecError),
    #[error("model file is not valid JSON: {0}")]
    Json(String),
    #[error("{file}: {message}")]
    Data { file: String, message: String },
    #[error("weights: {0}")]
    Weights(String),
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    #[error("{0}")]
    Input(String),
    #[error(
        "the loss became {value} at step {step}: training diverged. The weights of the last good \
         step are kept; try a smaller learning rate (e.g. {})", lr_text(.suggested_lr)
    )]
    NonFiniteLoss { step: usize, value: f32, suggested_lr: f32 },
    #[error("the GPU failed: {0}. Training can go on on the CPU")]
    Gpu(String),
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
}

impl Error {
    pub fn data(file: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Data { file: file.into(), message: message.into() }
    }
    pub fn io(path: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<crate::nn::model::InvalidModel> for Error {
    fn from(e: crate::nn::model::InvalidModel) -> Self {
        Error::Spec(e.0)
    }
}

fn lr_text(lr: &f32) -> String {
    format_lr(*lr)
}

pub use crate::text::{count_of, format_count, format_whole};

/// A learning rate as people write one: `0.001`, `0.5`, `3`, and in
/// scientific notation outside [0.001, 10000): `1e-4`, `2.5e-5`, `1e35`
/// (never a 38-digit integer).
pub fn format_lr(lr: f32) -> String {
    if lr == 0.0 || !lr.is_finite() || (1e-3..1e4).contains(&lr.abs()) {
        format!("{lr}")
    } else {
        format!("{lr:e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_as_written() {
        assert_eq!(count_of(1, "step"), "1 step");
        assert_eq!(count_of(0, "step"), "0 steps");
        assert_eq!(count_of(1_000, "step"), "1,000 steps");
    }

    #[test]
    fn numbers_read_as_people_write_them() {
        assert_eq!(format_count(0u64), "0");
        assert_eq!(format_count(999u64), "999");
        assert_eq!(format_count(93_322u64), "93,322");
        assert_eq!(format_count(157_000_000u64), "157,000,000");
        assert_eq!(format_whole(896_760.4), "896,760");
        // Past every integer type: still every digit.
        assert_eq!(format_whole(1e30), "1,000,000,000,000,000,019,884,624,838,656");
    }
}
