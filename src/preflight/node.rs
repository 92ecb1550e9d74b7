//! Checks of what crid may do on the node: CAP_SYS_RESOURCE (and the
//! oom_score_adj clamp without it), and writing container logs under the
//! pod log directory.

use super::{Finding, Group};
use std::path::Path;

const G: Group = Group::Node;

pub fn check(pod_log_dir: &Path) -> Vec<Finding> {
    vec![oom_score_adj(), pod_logs(pod_log_dir)]
}

fn oom_score_adj() -> Finding {
    let check = "CAP_SYS_RESOURCE";
    if crate::util::platform::has_cap_sys_resource() {
        return Finding::ok(G, check, "held: oom_score_adj down to -1000".into());
    }
    let min = crate::util::platform::oom_score_adj_min();
    Finding::warn(
        G,
        check,
        format!(
            "missing: oom_score_adj requests below {min} (kubelet's -997 for Guaranteed pods, -998 for sandboxes) are clamped to {min}"
        ),
        "run crid as root with CAP_SYS_RESOURCE (not in a user namespace or a container that drops it); until then pods run with the clamped value".into(),
    )
}

/// Container logs go to `<dir>/<ns>_<name>_<uid>/<container>/<n>.log`,
/// written by crid-logger as root. kubelet creates the directory when it
/// is missing, so a missing one is judged by its nearest existing parent.
fn pod_logs(dir: &Path) -> Finding {
    let check = "pod log dir";
    let shown = dir.display();
    let fix = format!(
        "make {shown} a writable directory on a read-write filesystem (kubelet writes pod logs there)"
    );
    let Some(existing) = dir.ancestors().find(|a| a.symlink_metadata().is_ok()) else {
        return Finding::blocker(G, check, format!("no parent of {shown} exists"), fix);
    };
    let probe = existing.join(format!(".crid-check-{}", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe);
    match written {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            let detail = if existing == dir {
                format!("{shown} writable")
            } else {
                format!(
                    "{shown} absent, {} writable: kubelet creates it",
                    existing.display()
                )
            };
            Finding::ok(G, check, detail)
        }
        Err(e) => Finding::blocker(
            G,
            check,
            format!("cannot write in {}: {e}", existing.display()),
            fix,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Outcome;
    use super::*;

    #[test]
    fn pod_log_dir_is_probed_and_left_as_found() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(pod_logs(tmp.path()).outcome, Outcome::Ok);
        let absent = tmp.path().join("var/log/pods");
        let f = pod_logs(&absent);
        assert_eq!(f.outcome, Outcome::Ok);
        assert!(f.detail.contains("kubelet creates it"), "{}", f.detail);
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
        let file = tmp.path().join("file");
        std::fs::write(&file, "").unwrap();
        let f = pod_logs(&file.join("pods"));
        assert_eq!(f.outcome, Outcome::Blocker);
        assert!(f.fix.is_some());
    }
}
