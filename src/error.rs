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

/// A whole number with its thousands grouped, as people write one: `93,322`,
/// `29,183,670`.
pub fn format_count(n: u64) -> String {
    group_thousands(&n.to_string())
}

/// `n` and the noun, singular for one: `1 step`, `2 steps`, `1,000 steps`.
pub fn count_of(n: usize, noun: &str) -> String {
    format!("{} {noun}{}", format_count(n as u64), if n == 1 { "" } else { "s" })
}

/// A figure (a loss, which may be far past any integer type) rounded to a
/// whole number, its thousands grouped: `896,760`.
pub fn format_whole(v: f64) -> String {
    let digits = format!("{:.0}", v.abs());
    format!("{}{}", if v < 0.0 && digits != "0" { "-" } else { "" }, group_thousands(&digits))
}

/// `digits` (ASCII digits) with a comma before each group of three from the right.
fn group_thousands(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

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
        assert_eq!(format_count(0), "0");
        assert_eq!(format_count(999), "999");
        assert_eq!(format_count(93_322), "93,322");
        assert_eq!(format_count(157_000_000), "157,000,000");
        assert_eq!(format_whole(896_760.4), "896,760");
        // Past every integer type: still every digit.
        assert_eq!(format_whole(1e30), "1,000,000,000,000,000,019,884,624,838,656");
    }
}
