//! Checks through the containerd adapter: reachable and its version, its
//! own CRI plugin loaded beside crid, the snapshotter, the sandbox image.
//! Each call has its own deadline, so a containerd that does not answer
//! gives one blocker and the rest skipped, never a hang.

use super::{Finding, Group, Outcome};
use crate::config::Config;
use crate::containerd::{Containerd, PluginInfo};
use std::future::Future;
use std::time::Duration;

const G: Group = Group::Containerd;

/// The namespace containerd's CRI plugin always works in.
const CRI_NAMESPACE: &str = "k8s.io";
/// containerd 1.6 and 1.7 load the CRI as one gRPC plugin; 2.x splits it
/// into that and `io.containerd.cri.v1.{images,runtime}`.
const CRI_PLUGIN_FILTERS: [&str; 2] = [
    "type==io.containerd.grpc.v1,id==cri",
    "type==io.containerd.cri.v1",
];
/// The oldest containerd crid is made for (its gRPC API as of 1.6).
const OLDEST: (u32, u32) = (1, 6);

pub async fn check(config: &Config, timeout: Duration) -> Vec<Finding> {
    let cc = &config.containerd;
    let address = cc.address.display().to_string();
    let cd = match Containerd::new(&cc.address, &cc.namespace, &cc.snapshotter) {
        Ok(cd) => cd,
        Err(e) => {
            return vec![Finding::blocker(
                G,
                "containerd",
                e.to_string(),
                "set [containerd] namespace to a valid containerd namespace (k8s.io)".into(),
            )]
        }
    };
    let mut out = vec![];
    match deadline(timeout, cd.version()).await {
        Ok((version, _)) => out.push(version_finding(&version, &address)),
        Err(e) => {
            let (detail, fix) = if cc.address.exists() {
                (
                    format!("cannot reach containerd at {address}: {e}"),
                    format!("check that containerd serves {address} (journalctl -u containerd), or set [containerd] address in crid's config"),
                )
            } else {
                (
                    format!("no containerd socket at {address}"),
                    "start containerd (systemctl enable --now containerd), or set [containerd] address in crid's config to its socket".to_string(),
                )
            };
            out.push(Finding::blocker(G, "containerd", detail, fix));
            for name in ["cri plugin", "snapshotter", "sandbox image"] {
                out.push(Finding::new(
                    G,
                    name,
                    Outcome::Skipped,
                    "containerd unreachable".into(),
                ));
            }
            return out;
        }
    }
    let filters = CRI_PLUGIN_FILTERS.iter().map(|f| f.to_string()).collect();
    out.push(match deadline(timeout, cd.plugins(filters)).await {
        Ok(plugins) => cri_plugin_finding(&plugins, &cc.namespace),
        Err(e) => failed_call("cri plugin", e),
    });
    let filter = "type==io.containerd.snapshotter.v1".to_string();
    out.push(match deadline(timeout, cd.plugins(vec![filter])).await {
        Ok(plugins) => snapshotter_finding(&plugins, &cc.snapshotter),
        Err(e) => failed_call("snapshotter", e),
    });
    out.push(sandbox_image(&cd, &config.sandbox_image, timeout).await);
    out
}

/// One containerd call, with a deadline.
async fn deadline<T>(
    timeout: Duration,
    call: impl Future<Output = crate::Result<T>>,
) -> Result<T, String> {
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {}s", timeout.as_secs_f32())),
    }
}

fn failed_call(check: &str, error: String) -> Finding {
    Finding::blocker(
        G,
        check,
        error,
        "look at containerd's log: it answered Version but not this call".into(),
    )
}

fn version_finding(version: &str, address: &str) -> Finding {
    let detail = format!("{version} at {address}");
    match major_minor(version) {
        Some(v) if v >= OLDEST => Finding::ok(G, "containerd", detail),
        Some(_) => Finding::warn(
            G,
            "containerd",
            format!("{detail}: older than 1.6, whose API crid uses"),
            "upgrade containerd to 1.6 or later".into(),
        ),
        None => Finding::warn(
            G,
            "containerd",
            format!("{detail}: version not understood"),
            "make sure containerd is 1.6 or later".into(),
        ),
    }
}

/// `1.6.20~ds1`, `v2.3.4` → (1, 6), (2, 3).
fn major_minor(version: &str) -> Option<(u32, u32)> {
    let mut parts = version
        .trim_start_matches('v')
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().ok());
    Some((parts.next()??, parts.next()??))
}

fn cri_plugin_finding(plugins: &[PluginInfo], namespace: &str) -> Finding {
    let loaded: Vec<String> = plugins
        .iter()
        .filter(|p| p.init_error.is_none())
        .map(|p| format!("{}.{}", p.kind, p.id))
        .collect();
    if loaded.is_empty() {
        return Finding::ok(
            G,
            "cri plugin",
            "containerd's own CRI plugin is not loaded".into(),
        );
    }
    let fix = "add disabled_plugins = [\"io.containerd.grpc.v1.cri\"] to /etc/containerd/config.toml \
               (containerd 2.x: also \"io.containerd.cri.v1.images\", \"io.containerd.cri.v1.runtime\") \
               and restart containerd, once no pod of its runs"
        .to_string();
    if namespace == CRI_NAMESPACE {
        Finding::blocker(
            G,
            "cri plugin",
            format!(
                "{} loaded, working in {CRI_NAMESPACE} as crid does: two runtimes on one namespace",
                loaded.join(", ")
            ),
            fix,
        )
    } else {
        Finding::warn(
            G,
            "cri plugin",
            format!(
                "{} loaded (namespace {CRI_NAMESPACE}, crid's is {namespace}): it keeps its pods running and reads the same CNI config",
                loaded.join(", ")
            ),
            fix,
        )
    }
}

fn snapshotter_finding(plugins: &[PluginInfo], wanted: &str) -> Finding {
    let usable: Vec<&str> = plugins
        .iter()
        .filter(|p| p.init_error.is_none())
        .map(|p| p.id.as_str())
        .collect();
    if usable.contains(&wanted) {
        return Finding::ok(G, "snapshotter", format!("{wanted} loaded"));
    }
    let why = match plugins.iter().find(|p| p.id == wanted) {
        Some(PluginInfo {
            init_error: Some(e),
            ..
        }) => format!("{wanted} failed to start in containerd: {e}"),
        _ => format!("{wanted} is not loaded in containerd"),
    };
    let fix = match usable.first() {
        Some(other) => format!(
            "set [containerd] snapshotter = \"{other}\" in crid's config (loaded: {}), or enable {wanted} in containerd",
            usable.join(", ")
        ),
        None => format!("enable the {wanted} snapshotter in containerd's config"),
    };
    Finding::blocker(G, "snapshotter", why, fix)
}

/// Present in containerd's image store, or buildable offline: crid builds
/// its own pause image under this name when it cannot pull it.
async fn sandbox_image(cd: &Containerd, name: &str, timeout: Duration) -> Finding {
    if let Err(e) = crate::image::Reference::parse(name) {
        return Finding::blocker(
            G,
            "sandbox image",
            format!("{name:?} is not an image reference: {e}"),
            "set sandbox_image in crid's config to a reference such as registry.k8s.io/pause:3.9"
                .into(),
        );
    }
    match deadline(timeout, crate::image::find_record(cd, name)).await {
        Ok(Some(image)) => {
            let digest = image.target.map(|t| t.digest).unwrap_or_default();
            Finding::ok(G, "sandbox image", format!("{name} present ({digest})"))
        }
        Ok(None) => Finding::ok(
            G,
            "sandbox image",
            format!(
                "{name} not present: crid pulls it, or builds its own pause image offline at start"
            ),
        ),
        Err(e) => failed_call("sandbox image", e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin(kind: &str, id: &str, init_error: Option<&str>) -> PluginInfo {
        PluginInfo {
            kind: kind.into(),
            id: id.into(),
            exports: Default::default(),
            init_error: init_error.map(str::to_string),
        }
    }

    #[test]
    fn versions_read_as_major_and_minor() {
        assert_eq!(major_minor("1.6.20~ds1"), Some((1, 6)));
        assert_eq!(major_minor("v2.3.4"), Some((2, 3)));
        assert_eq!(major_minor("devel"), None);
        assert_eq!(version_finding("1.5.9", "/s").outcome, Outcome::Warn);
        assert_eq!(version_finding("1.6.20~ds1", "/s").outcome, Outcome::Ok);
    }

    #[test]
    fn the_cri_plugin_blocks_only_on_its_own_namespace() {
        let cri = [plugin("io.containerd.grpc.v1", "cri", None)];
        assert_eq!(cri_plugin_finding(&cri, "k8s.io").outcome, Outcome::Blocker);
        assert_eq!(cri_plugin_finding(&cri, "crid").outcome, Outcome::Warn);
        assert_eq!(cri_plugin_finding(&[], "k8s.io").outcome, Outcome::Ok);
        let failed = [plugin("io.containerd.grpc.v1", "cri", Some("no cni"))];
        assert_eq!(cri_plugin_finding(&failed, "k8s.io").outcome, Outcome::Ok);
    }

    #[test]
    fn a_missing_snapshotter_names_a_loaded_one() {
        let snap = "io.containerd.snapshotter.v1";
        let plugins = [
            plugin(snap, "native", None),
            plugin(snap, "overlayfs", None),
            plugin(snap, "zfs", Some("not a zfs dataset")),
        ];
        assert_eq!(
            snapshotter_finding(&plugins, "overlayfs").outcome,
            Outcome::Ok
        );
        let f = snapshotter_finding(&plugins, "zfs");
        assert_eq!(f.outcome, Outcome::Blocker);
        assert!(f.detail.contains("not a zfs dataset"), "{}", f.detail);
        assert!(f.fix.unwrap().contains("snapshotter = \"native\""));
    }
}
