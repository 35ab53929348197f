//! Whether splitting a run's steps across the helper workers pays, measured.
//! A part of a batch travels to a helper with every weight and comes back
//! with every gradient: for a model whose step takes a millisecond (the MLP)
//! that costs more than it saves, and the step is three times slower split
//! across two workers; for the Seed CNN two workers train 1.5 times faster.
//! So, as Auto does for the GPU, the run's first steps are timed both ways
//! (`TIMED` steps each, after one warm-up step each way: whole first, then
//! split) and the faster is used; `REMEASURE` steps later they are timed
//! again and that choice is kept (a helper that has just started runs cold
//! code at first: the browser compiles WebAssembly in tiers). A new run, or
//! another number of helpers, is measured afresh.
//!
//! The parts balance themselves: the batch is cut into chunks that the
//! workers take as they go (`train::parallel`), so a worker held up by
//! whatever else runs on its core leaves more of them to the others.

use web_time::Duration;

/// Timed steps each way (after a warm-up step each way).
pub const TIMED: usize = 3;
/// Splitting must be this much faster to be chosen (it ties up more cores).
const MARGIN: f64 = 0.9;
/// Steps after the first choice when both ways are timed again.
pub const REMEASURE: usize = 50;

/// The measurement for one run and number of helpers.
#[derive(Debug, Default)]
pub struct SplitTuner {
    /// The run (`Session::generation`) and helpers measured.
    key: (u64, usize),
    /// Step times, warm-up first: whole steps, then split ones.
    whole: Vec<Duration>,
    split: Vec<Duration>,
    /// The choice, once both are measured.
    chosen: Option<bool>,
    /// Measurements made (the second is final), and steps since the first.
    rounds: usize,
    since: usize,
    /// What `split_next` asked for last (a batch of one example cannot be
    /// split: such a step is not counted).
    asked: bool,
    /// For tests (`Session::force_split`): split or not, unmeasured.
    forced: Option<bool>,
}

/// What was measured: samples per second in one worker and split across
/// `workers` (for `Event::WorkerSpeeds`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Measured {
    pub workers: usize,
    pub one: f32,
    pub split: f32,
    /// `workers` when splitting was chosen, else 1.
    pub using: usize,
}

/// The fastest of `times`: what the step takes when nothing else (the page
/// drawing, the browser) holds a core, which a few steps' median was not
/// (the page's e2e run once measured the Seed CNN's split no faster that
/// way, though it trains 1.5 times faster).
fn fastest(times: &[Duration]) -> f64 {
    times.iter().map(Duration::as_secs_f64).fold(f64::INFINITY, f64::min)
}

impl SplitTuner {
    /// Whether the next step of run `generation` is split across `helpers`
    /// helpers (none ready: never).
    pub fn split_next(&mut self, generation: u64, helpers: usize) -> bool {
        if self.key != (generation, helpers) {
            *self = SplitTuner { key: (generation, helpers), forced: self.forced, ..Default::default() };
        }
        if helpers == 0 {
            return false;
        }
        if let Some(split) = self.forced {
            (self.chosen, self.asked) = (Some(split), split);
            return split;
        }
        if self.rounds == 1 && self.since >= REMEASURE {
            self.whole.clear();
            self.split.clear();
            (self.chosen, self.since) = (None, 0);
        }
        self.asked = self.chosen.unwrap_or(self.whole.len() > TIMED);
        self.asked
    }

    /// For tests: whether to split, without measuring (`None`: measure).
    /// Timings on a test machine decide nothing a
    /// test could rely on, and helpers in the test's own thread are never
    /// faster.
    pub fn force(&mut self, split: Option<bool>) {
        *self = SplitTuner { forced: split, ..Default::default() };
    }

    /// Whether the steps of run `generation` are split, as measured.
    pub fn chosen_split(&self, generation: u64) -> bool {
        self.key.0 == generation && self.key.1 > 0 && self.chosen == Some(true)
    }

    /// Records a step of run `generation` (`split` or whole) that took
    /// `time` for `rows` examples; once both ways are measured, the choice
    /// and the speeds it rests on.
    pub fn record(&mut self, generation: u64, split: bool, time: Duration, rows: usize) -> Option<Measured> {
        if self.key.0 != generation || self.key.1 == 0 {
            return None;
        }
        if self.chosen.is_some() {
            self.since += 1;
            return None;
        }
        if split != self.asked {
            return None;
        }
        match split {
            true => self.split.push(time),
            false => self.whole.push(time),
        }
        if self.split.len() <= TIMED {
            return None;
        }
        let (whole, split) = (fastest(&self.whole[1..]), fastest(&self.split[1..]));
        let chosen = split < MARGIN * whole;
        (self.chosen, self.rounds, self.since) = (Some(chosen), self.rounds + 1, 0);
        let speed = |secs: f64| (rows as f64 / secs.max(1e-9)) as f32;
        let workers = self.key.1 + 1;
        Some(Measured { workers, one: speed(whole), split: speed(split), using: if chosen { workers } else { 1 } })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Runs the measurement with whole steps of `whole` ms and split ones of
    /// `split` ms; the steps split, and what was measured.
    fn measure(whole: u64, split: u64) -> (Vec<bool>, Option<Measured>) {
        let mut t = SplitTuner::default();
        let (mut pattern, mut measured) = (Vec::new(), None);
        for _ in 0..2 * (TIMED + 1) + 2 {
            let s = t.split_next(7, 1);
            pattern.push(s);
            measured = measured.or(t.record(7, s, ms(if s { split } else { whole }), 64));
        }
        (pattern, measured)
    }

    #[test]
    fn the_faster_way_is_measured_then_kept() {
        // Whole first (a warm-up and three timed), then split, then the choice.
        let (pattern, m) = measure(50, 30);
        assert_eq!(pattern, [false, false, false, false, true, true, true, true, true, true]);
        assert_eq!(m, Some(Measured { workers: 2, one: 1280.0, split: (64.0f64 / 0.03) as f32, using: 2 }));
        let (pattern, m) = measure(2, 6);
        assert_eq!(pattern[8..], [false, false], "the MLP: splitting is slower");
        assert_eq!(m.map(|m| (m.workers, m.using)), Some((2, 1)));
        // Barely faster is not enough.
        assert_eq!(measure(50, 48).0[8..], [false, false]);
    }

    #[test]
    fn the_choice_is_measured_again_once_the_helpers_are_warm() {
        // Cold helpers: splitting looked slower at first; 50 steps on, it is
        // faster, and that choice is kept.
        let mut t = SplitTuner::default();
        let mut measured = Vec::new();
        let mut pattern = Vec::new();
        for step in 0..2 * (TIMED + 1) + REMEASURE + 2 * (TIMED + 1) + 20 {
            let s = t.split_next(3, 1);
            pattern.push(s);
            let split_ms = if step < 2 * (TIMED + 1) { 60 } else { 30 };
            measured.extend(t.record(3, s, ms(if s { split_ms } else { 50 }), 64));
        }
        assert_eq!(measured.iter().map(|m| m.using).collect::<Vec<_>>(), [1, 2]);
        let first = 2 * (TIMED + 1);
        assert!(pattern[first..first + REMEASURE].iter().all(|s| !s), "whole after the first choice");
        let second = first + REMEASURE;
        assert_eq!(pattern[second..second + 2 * (TIMED + 1)], [false, false, false, false, true, true, true, true]);
        assert!(pattern[second + 2 * (TIMED + 1)..].iter().all(|s| *s), "split from the second choice on");
    }

    #[test]
    fn a_step_that_could_not_be_split_is_not_counted() {
        // A batch of one example: split was asked for, the step ran whole.
        let mut t = SplitTuner::default();
        for _ in 0..TIMED + 1 {
            let s = t.split_next(5, 1);
            t.record(5, s, ms(10), 1);
        }
        assert!(t.split_next(5, 1));
        assert_eq!(t.record(5, false, ms(10), 1), None);
        assert_eq!(t.whole.len(), TIMED + 1, "not filed as a whole step");
    }

    #[test]
    fn no_helpers_never_split_and_a_new_run_is_measured_again() {
        let mut t = SplitTuner::default();
        assert!(!t.split_next(1, 0));
        assert_eq!(t.record(1, false, ms(5), 64), None, "nothing measured without helpers");
        for _ in 0..2 * (TIMED + 1) {
            let s = t.split_next(1, 1);
            t.record(1, s, ms(if s { 10 } else { 50 }), 64);
        }
        assert!(t.split_next(1, 1), "measured: split");
        assert!(!t.split_next(2, 1), "a new run starts with whole steps again");
        assert!(!t.split_next(2, 3), "and so does another number of helpers");
    }
}
