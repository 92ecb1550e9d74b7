//! (5) image pull: every pulling system pulls the large image once per
//! round (rotating order) and removes it again.

use super::workload::{charge, cpu_of, order, Options, Results, System};
use anyhow::{anyhow, Result};
use std::time::{Duration, Instant};

pub async fn run(systems: &[System], o: &Options, image: &str, r: &mut Results) -> Result<()> {
    let pullers: Vec<&System> = systems.iter().filter(|s| s.pulls).collect();
    for round in 0..o.pull_rounds {
        for i in order(pullers.len(), round) {
            let s = pullers[i];
            let _ = s.backend.remove_image(image).await;
            if !s.backend.is_docker() {
                // containerd shares blobs between namespaces: wait until
                // the previous pull's blobs are collected.
                let deadline = Instant::now() + Duration::from_secs(15);
                while o.pull_blobs.iter().any(|b| b.exists()) && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                if o.pull_blobs.iter().any(|b| b.exists()) {
                    r.notes.push(format!("{} pull round {round}: layer blobs were still in containerd's content store (warm pull)", s.name));
                }
            }
            let before = cpu_of(s);
            let v = s
                .backend
                .pull(image)
                .await
                .map_err(|e| anyhow!("{}: pull: {e:#}", s.name))?;
            charge(r, s, "pull", &before);
            r.add(&s.name, "pull/PullImage", v);
            s.backend
                .remove_image(image)
                .await
                .map_err(|e| anyhow!("{}: remove image: {e:#}", s.name))?;
        }
    }
    eprintln!("crid-bench: pull done");
    Ok(())
}
