//! Where one pod-start RPC spends its time. A `PhaseClock` is started when an
//! operation begins; each `mark` charges the time since the previous mark to
//! a named step, and says whether crid was waiting on containerd, on CNI
//! plugins, or working itself. `finish` records every step in the phase
//! histograms and writes one `crid::phases` debug line, which the benchmark
//! reads to separate crid's own time from the time spent in its peers.

use std::fmt::Write;
use std::time::{Duration, Instant};

/// Who the time of a step was spent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spent {
    /// crid itself (validation, spec generation, files, netns, bookkeeping).
    Crid,
    /// Waiting on containerd (and the shim and runc behind it).
    Containerd,
    /// Waiting on CNI plugins.
    Cni,
}

#[derive(Debug)]
pub struct PhaseClock {
    rpc: &'static str,
    started: Instant,
    last: Instant,
    steps: Vec<(&'static str, Spent, Duration)>,
    /// Durations of steps that overlapped marked ones: reported, not summed.
    overlapped: Vec<(&'static str, Duration)>,
}

impl PhaseClock {
    pub fn start(rpc: &'static str) -> Self {
        let now = Instant::now();
        PhaseClock {
            rpc,
            started: now,
            last: now,
            steps: Vec::new(),
            overlapped: Vec::new(),
        }
    }

    /// Charge the time since the previous mark to `step`.
    pub fn mark(&mut self, step: &'static str, spent: Spent) {
        let now = Instant::now();
        self.steps.push((step, spent, now - self.last));
        self.last = now;
    }

    /// Note how long a step that ran concurrently with marked steps took.
    /// It is reported and recorded, but not added to any sum: the marks
    /// already cover that wall time.
    pub fn note(&mut self, step: &'static str, took: Duration) {
        self.overlapped.push((step, took));
    }

    fn sum(&self, pred: impl Fn(Spent) -> bool) -> Duration {
        self.steps
            .iter()
            .filter(|(_, s, _)| pred(*s))
            .map(|(_, _, d)| *d)
            .sum()
    }

    /// Wall time crid spent waiting on containerd or CNI.
    pub fn waiting(&self) -> Duration {
        self.sum(|s| s != Spent::Crid)
    }

    /// Wall time charged to containerd.
    pub fn containerd(&self) -> Duration {
        self.sum(|s| s == Spent::Containerd)
    }

    /// Wall time charged to CNI plugins (beyond what overlapped containerd).
    pub fn cni(&self) -> Duration {
        self.sum(|s| s == Spent::Cni)
    }

    /// `name=µs` for every step, marked and noted, in order.
    pub fn steps_line(&self) -> String {
        let mut out = String::new();
        let marked = self.steps.iter().map(|(name, _, d)| (name, d));
        let noted = self.overlapped.iter().map(|(name, d)| (name, d));
        for (name, d) in marked.chain(noted) {
            if !out.is_empty() {
                out.push(' ');
            }
            let _ = write!(out, "{name}={}", d.as_micros());
        }
        out
    }

    /// Record the steps in the phase histograms and log the breakdown.
    pub fn finish(&self, id: &str) {
        let m = super::global();
        for (name, _, d) in &self.steps {
            m.observe_phase(name, *d);
        }
        for (name, d) in &self.overlapped {
            m.observe_phase(name, *d);
        }
        tracing::debug!(
            target: "crid::phases",
            rpc = self.rpc,
            id,
            total_us = self.started.elapsed().as_micros() as u64,
            wait_us = self.waiting().as_micros() as u64,
            containerd_us = self.containerd().as_micros() as u64,
            cni_us = self.cni().as_micros() as u64,
            steps = %self.steps_line(),
            "phases"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_split_the_time_by_who_spent_it() {
        let mut c = PhaseClock::start("RunPodSandbox");
        c.steps
            .push(("files", Spent::Crid, Duration::from_micros(100)));
        c.steps
            .push(("pause", Spent::Containerd, Duration::from_micros(5000)));
        c.steps
            .push(("cni_wait", Spent::Cni, Duration::from_micros(700)));
        c.note("cni", Duration::from_micros(5600));
        assert_eq!(c.waiting(), Duration::from_micros(5700));
        assert_eq!(c.containerd(), Duration::from_micros(5000));
        assert_eq!(c.cni(), Duration::from_micros(700));
        assert_eq!(c.steps_line(), "files=100 pause=5000 cni_wait=700 cni=5600");
    }

    #[test]
    fn mark_advances_the_clock() {
        let mut c = PhaseClock::start("x");
        c.mark("a", Spent::Crid);
        c.mark("b", Spent::Containerd);
        assert_eq!(c.steps.len(), 2);
        assert!(c.waiting() <= c.started.elapsed());
    }
}
