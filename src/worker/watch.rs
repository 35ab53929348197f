//! Watching a run for one that is not learning, beyond the non-finite losses
//! the trainer catches: a loss that runs away from where it started, or a
//! model that sits at the chance level (the loss of a uniform guess,
//! `ln(classes)`, and chance accuracy) evaluation after evaluation. Both are
//! what a far too high learning rate does (TensorFlow Playground's users meet
//! it at once); the message says so and suggests a learning rate.

use std::collections::VecDeque;

use crate::error::{format_lr, format_whole};

/// Steps whose mean loss is compared with the start.
const RECENT_STEPS: usize = 20;
/// A run is judged at chance from this step on (evaluations come every 100).
pub const CHANCE_AFTER: usize = 300;

/// What has been seen of the current run.
#[derive(Debug, Default)]
pub struct RunWatch {
    /// The loss of the run's first step (the model as initialised).
    first: Option<f32>,
    recent: VecDeque<f32>,
    /// Mean loss of the steps since the last evaluation.
    since_eval: (f64, usize),
    /// Said once per run: training can go on if the user wants it to.
    reported: bool,
}

impl RunWatch {
    /// Records a step's loss; the message when the loss has run away: its
    /// mean over the last 20 steps is more than three times the first step's
    /// (and 2 above it).
    pub fn on_step(&mut self, loss: f32, lr: f32) -> Option<String> {
        let start = *self.first.get_or_insert(loss) as f64;
        if self.recent.len() == RECENT_STEPS {
            self.recent.pop_front();
        }
        self.recent.push_back(loss);
        self.since_eval.0 += loss as f64;
        self.since_eval.1 += 1;
        if self.reported || self.recent.len() < RECENT_STEPS {
            return None;
        }
        let now = mean(self.recent.iter());
        if now > 3.0 * start && now > start + 2.0 {
            self.reported = true;
            return Some(format!(
                "The loss rose from {} to {}: the model is not learning. The learning rate {} is far too high; try {}. Train goes on if you press it again.",
                figure(start),
                figure(now),
                format_lr(lr),
                format_lr(lr / 10.0)
            ));
        }
        None
    }

    /// At an evaluation after `step` steps: the message when the model is at
    /// the chance level (from step `CHANCE_AFTER`): test accuracy at most 1.5
    /// times chance, and the mean training loss since the last evaluation at
    /// least 90 % of the uniform guess's `ln(classes)`.
    pub fn on_evaluation(&mut self, step: usize, accuracy: f32, classes: usize, lr: f32) -> Option<String> {
        let (sum, n) = std::mem::take(&mut self.since_eval);
        if self.reported || step < CHANCE_AFTER || n == 0 || classes < 2 {
            return None;
        }
        let loss = sum / n as f64;
        let chance_loss = (classes as f64).ln();
        let chance = 1.0 / classes as f32;
        if accuracy > 1.5 * chance || loss < 0.9 * chance_loss {
            return None;
        }
        self.reported = true;
        let advice = if lr >= 1e-2 {
            format!("the learning rate {} is likely far too high; try {}", format_lr(lr), format_lr(lr / 10.0))
        } else if lr < 1e-5 {
            format!("the learning rate {} is likely far too low; try {}", format_lr(lr), format_lr(lr * 100.0))
        } else {
            "check the model's layers and the learning rate".to_string()
        };
        Some(format!(
            "After {step} steps the model is still at the chance level (test accuracy {:.1} %, as guessing among {classes} classes; loss {} near ln({classes}) = {}): it is not learning; {advice}. Train goes on if you press it again.",
            accuracy * 100.0,
            figure(loss),
            figure(chance_loss),
        ))
    }
}

fn mean<'a>(values: impl Iterator<Item = &'a f32>) -> f64 {
    let (sum, n) = values.fold((0.0f64, 0usize), |(s, n), &v| (s + v as f64, n + 1));
    sum / n.max(1) as f64
}

/// A loss as people read one: 3 significant digits, grouped thousands.
fn figure(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format_whole(v)
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loss_that_runs_away_is_reported_once() {
        let mut w = RunWatch::default();
        let mut said = Vec::new();
        for step in 0..100 {
            let loss = if step < 3 { 2.3 } else { 2.3 + step as f32 * 100.0 };
            said.extend(w.on_step(loss, 1e6));
        }
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(said[0].starts_with("The loss rose from 2.30 to "), "{}", said[0]);
        assert!(said[0].contains("The learning rate 1e6 is far too high; try 1e5"), "{}", said[0]);
    }

    #[test]
    fn a_learning_run_is_never_reported() {
        let mut w = RunWatch::default();
        for step in 1..=1000 {
            // Falling with noise, and one early spike.
            let loss = 2.3 * (-(step as f32) / 200.0).exp() + if step == 15 { 9.0 } else { 0.05 };
            assert_eq!(w.on_step(loss, 1e-3), None, "step {step}");
            if step % 100 == 0 {
                assert_eq!(w.on_evaluation(step, 0.5 + step as f32 / 4000.0, 10, 1e-3), None);
            }
        }
    }

    #[test]
    fn a_run_at_chance_is_reported_from_step_300() {
        let mut w = RunWatch::default();
        let mut said = None;
        for step in 1..=400 {
            w.on_step(2.4 + (step % 7) as f32 * 0.1, 10.0);
            if step % 100 == 0 {
                let s = w.on_evaluation(step, 0.11, 10, 10.0);
                if step < CHANCE_AFTER {
                    assert_eq!(s, None);
                }
                said = said.or(s);
            }
        }
        let said = said.expect("reported");
        assert!(
            said.starts_with("After 300 steps the model is still at the chance level (test accuracy 11.0 %"),
            "{said}"
        );
        assert!(said.contains("the learning rate 10 is likely far too high; try 1"), "{said}");
    }

    #[test]
    fn figures_read_as_people_write_them() {
        assert_eq!(figure(896_760.4), "896,760");
        assert_eq!(figure(29_183_670.0), "29,183,670");
        assert_eq!(figure(12.345), "12.3");
        assert_eq!(figure(std::f64::consts::LN_10), "2.30");
    }
}
