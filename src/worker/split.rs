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
//! The parts are balanced, too. A helper's part reaches it by a message and
//! its gradients come back by another (together a millisecond or two in
//! Chromium while both cores are busy), so with even parts this worker, done
//! with its own, waits for them: the Seed CNN's 17 ms split step waited 2 ms.
//! `balance` watches that wait and moves a row at a time between this
//! worker's part and the helpers' (`own_extra`) until it is short.

use web_time::Duration;

/// Timed steps each way (after a warm-up step each way).
pub const TIMED: usize = 3;
/// Splitting must be this much faster to be chosen (it ties up more cores).
const MARGIN: f64 = 0.9;
/// Steps after the first choice when both ways are timed again.
pub const REMEASURE: usize = 50;

/// Split steps whose waits `balance` looks at together.
const BALANCE_EVERY: usize = 5;
/// A wait this short (ms) means the helpers' parts were back before this
/// worker's own was done (what remains is the message's handling): this
/// worker's part is the longer, and gives a row away.
const WAIT_FLOOR_MS: f64 = 0.25;

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
    /// Rows this worker's part takes beyond an even share (`own_extra`), the
    /// waits (ms) of the split steps since `balance` last looked, and the
    /// most rows a step had (a whole batch's).
    extra: i64,
    waits: Vec<f64>,
    full_rows: usize,
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

    /// For tests: whether to split, without measuring (`None`: measure), in
    /// even parts (no `balance`). Timings on a test machine decide nothing a
    /// test could rely on, and helpers in the test's own thread are never
    /// faster.
    pub fn force(&mut self, split: Option<bool>) {
        *self = SplitTuner { forced: split, ..Default::default() };
    }

    /// Whether the steps of run `generation` are split, as measured.
    pub fn chosen_split(&self, generation: u64) -> bool {
        self.key.0 == generation && self.key.1 > 0 && self.chosen == Some(true)
    }

    /// Rows this worker's part of a split step takes beyond an even share
    /// (`Trainer::split_step`, which keeps it within half an even share).
    pub fn own_extra(&self) -> i64 {
        self.extra
    }

    /// After a split step of run `generation`: this worker's part of
    /// `own_rows` rows took `own`, then it waited `wait` for the helpers'.
    /// Every `BALANCE_EVERY` such steps, the median of their waits (not
    /// swayed by a step where one side was held up by whatever else ran on
    /// its core) decides: longer than a row of
    /// this worker's takes, beyond the message's handling, and this worker
    /// takes a row more; about nothing, and it gives one to the helpers. Its
    /// part stays within half an even share of even.
    pub fn balance(&mut self, generation: u64, own: Duration, wait: Duration, own_rows: usize, rows: usize) {
        let parts = self.key.1 + 1;
        // An epoch's last, shorter batch says little of the others'.
        self.full_rows = self.full_rows.max(rows);
        let ignored = self.key.0 != generation || self.key.1 == 0 || self.forced.is_some();
        if ignored || own_rows == 0 || rows < 2 * parts || rows < self.full_rows {
            return;
        }
        self.waits.push(wait.as_secs_f64() * 1e3);
        if self.waits.len() < BALANCE_EVERY {
            return;
        }
        self.waits.sort_by(f64::total_cmp);
        let typical = self.waits[self.waits.len() / 2];
        self.waits.clear();
        let per_row = own.as_secs_f64() * 1e3 / own_rows as f64;
        let limit = (rows / parts / 2) as i64;
        if typical > WAIT_FLOOR_MS + per_row {
            self.extra = (self.extra + 1).min(limit);
        } else if typical < WAIT_FLOOR_MS {
            self.extra = (self.extra - 1).max(-limit);
        }
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

    /// Split steps where this worker's part takes `per_row_ms` a row and a
    /// helper's `helper_row_ms` a row plus `latency_ms` for its messages:
    /// this worker's rows after `steps` balanced steps of 64 rows.
    fn balanced(per_row_ms: f64, helper_row_ms: f64, latency_ms: f64, steps: usize) -> Vec<usize> {
        let mut t = SplitTuner::default();
        // Measured first (and split chosen).
        for _ in 0..2 * (TIMED + 1) {
            let s = t.split_next(9, 1);
            t.record(9, s, ms(if s { 10 } else { 50 }), 64);
        }
        let mut own = Vec::new();
        for _ in 0..steps {
            assert!(t.split_next(9, 1));
            // Trainer::split_step's first part of a batch of 64 in 2.
            let mine = (32 + t.own_extra()) as usize;
            let (own_ms, theirs_ms) = (per_row_ms * mine as f64, latency_ms + helper_row_ms * (64 - mine) as f64);
            let wait = (theirs_ms - own_ms).max(0.05);
            t.balance(9, Duration::from_secs_f64(own_ms / 1e3), Duration::from_secs_f64(wait / 1e3), mine, 64);
            own.push(mine);
        }
        own
    }

    #[test]
    fn the_parts_are_balanced_so_that_this_worker_waits_little() {
        // The Seed CNN in Chromium: 0.45 ms a row each, 1.5 ms of messages.
        // Balanced, this worker takes 33 or 34 rows (34: 15.3 ms against the
        // helper's 15.0), and stays there.
        let own = balanced(0.45, 0.45, 1.5, 60);
        assert_eq!(own[0], 32, "even at first");
        assert!(own[40..].iter().all(|&r| (33..=34).contains(&r)), "{own:?}");
        // No latency and a helper as fast: even parts, or a row off.
        let own = balanced(0.45, 0.45, 0.0, 60);
        assert!(own[20..].iter().all(|&r| (31..=32).contains(&r)), "{own:?}");
        // A helper twice as slow: this worker takes more (43 rows: 17.2 ms
        // against 0.5 + 16.8).
        let own = balanced(0.4, 0.8, 0.5, 200);
        assert!(own[150..].iter().all(|&r| (42..=43).contains(&r)), "{own:?}");
        // Ten times as slow: at most half an even share more (48 rows).
        let own = balanced(0.2, 2.0, 0.0, 200);
        assert_eq!(*own.last().unwrap(), 48, "{own:?}");
        // A new run starts even again.
        let mut t = SplitTuner { extra: 5, key: (9, 1), ..Default::default() };
        assert_eq!(t.own_extra(), 5);
        t.split_next(10, 1);
        assert_eq!(t.own_extra(), 0);
    }

    #[test]
    fn an_epochs_short_last_batch_and_forced_splits_are_not_balanced() {
        let long_wait = |t: &mut SplitTuner, rows: usize| {
            for _ in 0..BALANCE_EVERY {
                t.balance(4, ms(14), ms(5), rows / 2, rows);
            }
        };
        let mut t = SplitTuner::default();
        t.split_next(4, 1);
        long_wait(&mut t, 64);
        assert_eq!(t.own_extra(), 1, "a long wait: a row more here");
        // The last batch of an epoch (60,000 = 937 x 64 + 32) is not looked at.
        long_wait(&mut t, 32);
        assert_eq!(t.own_extra(), 1);
        long_wait(&mut t, 64);
        assert_eq!(t.own_extra(), 2);
        // Forced (tests): even parts, whatever the waits.
        let mut t = SplitTuner::default();
        t.force(Some(true));
        assert!(t.split_next(4, 1));
        long_wait(&mut t, 64);
        assert_eq!(t.own_extra(), 0);
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
