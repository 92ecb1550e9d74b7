//! (5) image pull: after one untimed round, every pulling system pulls the
//! large image once per round (rotating order) and removes it again through
//! its own API (CRI RemoveImage, `docker rmi`). Every timed pull is meant to
//! be cold: before a containerd-based system pulls, containerd's GC is run
//! synchronously and the image's layers must be gone from every namespace;
//! dockerd keeps its own layer store, and its pull reports layers it already
//! had. Whatever a pull found is recorded as its `PullState`.

use super::cold::{Collector, ImageLayers};
use super::workload::{charge, cpu_of, order, Options, Results, System};
use anyhow::{anyhow, Result};
use std::time::Duration;

/// How long to keep collecting before a pull is recorded as warm.
const PATIENCE: Duration = Duration::from_secs(15);

/// Whether one timed pull was cold.
#[derive(Debug, Clone)]
pub struct PullState {
    pub system: String,
    pub round: usize,
    /// What the pull could have found; empty: cold.
    pub warm: Vec<String>,
    /// How coldness was established; `None`: it was not checked.
    pub checked: Option<&'static str>,
}

/// What makes a pull cold: the image's layers and containerd to collect in.
#[derive(Default)]
pub struct ColdCheck {
    pub layers: ImageLayers,
    pub collector: Option<Collector>,
}

impl std::fmt::Debug for ColdCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ColdCheck")
            .field("layers", &self.layers)
            .field("collector", &self.collector.is_some())
            .finish()
    }
}

pub async fn run(systems: &[System], o: &Options, image: &str, r: &mut Results) -> Result<()> {
    let pullers: Vec<&System> = systems.iter().filter(|s| s.pulls).collect();
    // One untimed round first. The pulls follow the concurrent starts, and
    // the first timed pull (crid's, the first system) otherwise took the
    // tail of that workload and the registry's first reads: crid's first
    // round was its slowest by 190–330 ms in three of runs 6–9.
    for s in &pullers {
        let _ = s.backend.remove_image(image).await;
        s.backend
            .pull(image)
            .await
            .map_err(|e| anyhow!("{}: warm-up pull: {e:#}", s.name))?;
        s.backend
            .remove_image(image)
            .await
            .map_err(|e| anyhow!("{}: remove image: {e:#}", s.name))?;
    }
    eprintln!("crid-bench: pull warm-up round done (untimed)");
    let cold = &o.pull_cold;
    for round in 0..o.pull_rounds {
        for i in order(pullers.len(), round) {
            let s = pullers[i];
            // Left over from an aborted run; removing nothing is fine.
            let _ = s.backend.remove_image(image).await;
            let mut state = PullState {
                system: s.name.clone(),
                round,
                warm: vec![],
                checked: None,
            };
            if s.backend.is_docker() {
                if s.backend.has_image(image).await? {
                    state.warm.push("the image was still in dockerd".into());
                }
            } else if let Some(c) = &cold.collector {
                state.warm = c.collect(&cold.layers, PATIENCE).await?;
                state.checked = Some(
                    "before each pull, after a synchronous containerd GC, no layer (content record or blob file) or snapshot of the image was left in any containerd namespace",
                );
            }
            let before = cpu_of(s);
            let pulled = s
                .backend
                .pull(image)
                .await
                .map_err(|e| anyhow!("{}: pull: {e:#}", s.name))?;
            charge(r, s, "pull", &before);
            r.add(&s.name, "pull/PullImage", pulled.ms);
            if let Some(n) = pulled.layers_present {
                state.checked = Some(
                    "the image was gone from dockerd before each pull, and dockerd downloaded every layer: none reported as 'Already exists'",
                );
                if n > 0 {
                    state
                        .warm
                        .push(format!("dockerd reported {n} layer(s) 'Already exists'"));
                }
            }
            s.backend
                .remove_image(image)
                .await
                .map_err(|e| anyhow!("{}: remove image: {e:#}", s.name))?;
            r.pulls.push(state);
        }
        eprintln!("crid-bench: pull round {}/{}", round + 1, o.pull_rounds);
    }
    let notes = notes(&r.pulls);
    for n in &notes {
        eprintln!("crid-bench: {n}");
    }
    r.notes.extend(notes);
    Ok(())
}

/// One line per system: cold in every round, or which rounds were warm and why.
pub fn notes(states: &[PullState]) -> Vec<String> {
    let mut systems: Vec<&str> = vec![];
    for s in states {
        if !systems.contains(&s.system.as_str()) {
            systems.push(&s.system);
        }
    }
    let mut out = vec![];
    for sys in systems {
        let mine: Vec<&PullState> = states.iter().filter(|s| s.system == sys).collect();
        let n = mine.len();
        let unchecked = mine.iter().filter(|s| s.checked.is_none()).count();
        let warm: Vec<&&PullState> = mine.iter().filter(|s| !s.warm.is_empty()).collect();
        if unchecked > 0 {
            out.push(format!(
                "{sys} pulls: cold state not checked in {unchecked} of {n} rounds (no containerd address given)"
            ));
        }
        if warm.is_empty() && unchecked < n {
            let how = mine.iter().find_map(|s| s.checked).unwrap_or("");
            out.push(format!("{sys} pulls: cold in all {n} rounds — {how}"));
        }
        for s in warm {
            out.push(format!(
                "{sys} pull round {}: **warm** — {}",
                s.round,
                s.warm.join("; ")
            ));
        }
    }
    out
}

/// `cold (n/n rounds each)`, `warm in k of n pulls` or `not checked`.
pub fn summary(states: &[PullState]) -> String {
    if states.is_empty() {
        return "no pulls".into();
    }
    let warm = states.iter().filter(|s| !s.warm.is_empty()).count();
    let unchecked = states.iter().filter(|s| s.checked.is_none()).count();
    if warm > 0 {
        format!("warm in {warm} of {} pulls", states.len())
    } else if unchecked > 0 {
        format!(
            "cold state not checked in {unchecked} of {} pulls",
            states.len()
        )
    } else {
        "cold in every round".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(system: &str, round: usize, warm: &[&str], checked: bool) -> PullState {
        PullState {
            system: system.into(),
            round,
            warm: warm.iter().map(|w| w.to_string()).collect(),
            checked: checked.then_some("checked"),
        }
    }

    #[test]
    fn notes_say_cold_or_name_the_warm_rounds() {
        let all_cold = [st("crid", 0, &[], true), st("crid", 1, &[], true)];
        assert_eq!(
            notes(&all_cold),
            vec!["crid pulls: cold in all 2 rounds — checked"]
        );
        assert_eq!(summary(&all_cold), "cold in every round");
        let one_warm = [
            st("crid", 0, &[], true),
            st("docker", 0, &["namespace k8s.io had 1/6 layers"], true),
        ];
        let n = notes(&one_warm);
        assert_eq!(n.len(), 2);
        assert!(n[1].starts_with("docker pull round 0: **warm** — namespace k8s.io had"));
        assert_eq!(summary(&one_warm), "warm in 1 of 2 pulls");
        let unchecked = [st("crid", 0, &[], false)];
        assert_eq!(
            summary(&unchecked),
            "cold state not checked in 1 of 1 pulls"
        );
        assert_eq!(notes(&unchecked).len(), 1);
    }
}
