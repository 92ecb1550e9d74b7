//! `crid adopt`: take over the pods and containers that containerd's own CRI
//! plugin ran, without restarting them, so that kubelet pointed at crid
//! finds the same ids in the same states.
//!
//! Why an explicit subcommand rather than something crid does on start:
//! the operator picks the moment (after containerd was restarted with the
//! plugin disabled, before crid starts), sees what will happen first (the
//! default is a dry run that prints a table and changes nothing), and
//! crid's normal start path never reads another runtime's records.
//!
//! `--apply` turns each adoptable object into crid's own records — the
//! labels, metadata extension, status file, sandbox directory and CNI cache
//! entry crid writes for its own pods — with the same ids, netns path, log
//! path, IPs, timestamps, attempts, labels and annotations. crid's restart
//! recovery and every RPC then treat them as crid's own: there is no
//! "adopted" path through the RPCs. The plugin's `io.cri-containerd.*`
//! label and metadata extension are removed from each record (kubelet never
//! sees them), and its status files, sandbox directories and libcni cache
//! entries go once their content is in crid's records: one owner per object,
//! so a CRI plugin enabled again by mistake does not load and fight over
//! them. There is no way back to the plugin.
//!
//! Output: the plugin read each container's stdout and stderr FIFOs inside
//! containerd; nobody reads them once it is disabled, and a chatty
//! container blocks when they fill. For every running container `--apply`
//! starts crid-logger on the existing FIFOs, appending to the existing log
//! file, detached, with its control socket where crid's recovery, attach
//! and ReopenContainerLog find it (as for crid's own FIFO containers).
//!
//! Owns: reading the plugin's records (`cri_plugin`), the plan and its
//! table (`plan`), the conversion and clean-up (`apply`). Every containerd
//! call goes through `crate::containerd`. It refuses to run while the CRI
//! plugin is loaded, while the objects are in another namespace than
//! crid's, or while crid serves.

pub mod apply;
pub mod cri_plugin;
pub mod plan;

use crate::containerd::PluginState;
use crate::error::{Error, Result};
use crate::runtime::Runtime;
use std::path::{Path, PathBuf};

pub use plan::{Action, Plan};

/// Where containerd keeps its files, when `crid adopt` is not told.
pub const DEFAULT_CONTAINERD_STATE: &str = "/run/containerd";

/// Options of `crid adopt`.
#[derive(Debug, Clone, Default)]
pub struct AdoptOptions {
    /// containerd's `root` (default: found from the snapshotter's root).
    pub containerd_root: Option<PathBuf>,
    /// containerd's `state` (default: found from the tasks' FIFO paths,
    /// else `/run/containerd`).
    pub containerd_state: Option<PathBuf>,
    /// libcni's cache dir (default `/var/lib/cni`).
    pub cni_cache_dir: Option<PathBuf>,
}

/// `crid adopt`: print the plan; with `apply`, carry it out and print what
/// was done. `Ok(false)` when some object failed.
pub async fn run(
    config: crate::config::Config,
    opts: &AdoptOptions,
    apply: bool,
    out: &mut impl std::io::Write,
) -> Result<bool> {
    let runtime = Runtime::new(config).await?;
    runtime.adopt_preflight().await?;
    let plan = runtime.adopt_plan(opts).await?;
    let io = |e| Error::io("write the table", e);
    write!(out, "{}", plan.table()).map_err(io)?;
    if !apply {
        writeln!(
            out,
            "dry run: nothing changed; `crid adopt --apply` does the above"
        )
        .map_err(io)?;
        return Ok(true);
    }
    let libcni = opts
        .cni_cache_dir
        .clone()
        .unwrap_or_else(|| cri_plugin::LIBCNI_CACHE_DIR.into());
    let done = runtime.adopt_apply(&plan, &libcni).await;
    for line in &done.lines {
        writeln!(out, "{line}").map_err(io)?;
    }
    writeln!(
        out,
        "adopted {}, cleaned up {}, left alone {}, failed {}",
        done.adopted, done.cleaned, done.left, done.failed
    )
    .map_err(io)?;
    Ok(done.failed == 0)
}

impl Runtime {
    /// Refuse to adopt while another runtime could act on the same objects.
    pub async fn adopt_preflight(&self) -> Result<()> {
        let socket = self
            .config
            .listen_path()
            .map_err(|e| Error::invalid(e.to_string()))?;
        if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
            return Err(Error::precondition(format!(
                "crid is serving on {}: stop it first; adopt runs with crid stopped",
                socket.display()
            )));
        }
        match self
            .containerd
            .plugin_state(cri_plugin::PLUGIN_TYPE, cri_plugin::PLUGIN_ID)
            .await?
        {
            PluginState::Loaded => {
                return Err(Error::precondition(
                    "containerd still runs its CRI plugin (io.containerd.grpc.v1.cri): add \
                     `disabled_plugins = [\"io.containerd.grpc.v1.cri\"]` to containerd's \
                     config.toml and restart containerd (running containers keep running)",
                ))
            }
            PluginState::Absent | PluginState::Failed(_) => {}
        }
        let ours = self.containerd.namespace().to_string();
        let kind = cri_kind_filter();
        for ns in self.containerd.list_namespaces().await? {
            if ns == ours {
                continue;
            }
            let found = self
                .containerd
                .in_namespace(&ns)?
                .list_containers(vec![kind.clone()])
                .await?;
            if !found.is_empty() {
                return Err(Error::precondition(format!(
                    "{} CRI plugin object(s) are in containerd namespace {ns:?}, crid uses \
                     {ours:?}: containerd cannot move them; set `[containerd] namespace = \
                     \"{ns}\"` in crid's config (or --containerd-namespace {ns})",
                    found.len()
                )));
            }
        }
        Ok(())
    }

    /// containerd's root and state directories, as `opts` gives them or
    /// as found.
    pub(crate) async fn containerd_dirs(
        &self,
        opts: &AdoptOptions,
    ) -> Result<cri_plugin::PluginDirs> {
        let root = match &opts.containerd_root {
            Some(r) => r.clone(),
            None => self
                .containerd
                .snapshotter_root()
                .await?
                .and_then(|r| Path::new(&r).parent().map(Path::to_path_buf))
                .ok_or_else(|| {
                    Error::precondition(
                        "cannot tell containerd's root directory: pass --containerd-root",
                    )
                })?,
        };
        let state = match &opts.containerd_state {
            Some(s) => s.clone(),
            None => self
                .containerd
                .list_tasks()
                .await?
                .iter()
                .find_map(|t| state_of_fifo(&t.stdout))
                .unwrap_or_else(|| DEFAULT_CONTAINERD_STATE.into()),
        };
        Ok(cri_plugin::PluginDirs::new(&root, &state))
    }
}

/// The containerd filter for records of the CRI plugin.
fn cri_kind_filter() -> String {
    format!("labels.\"{}\"", cri_plugin::KIND_LABEL)
}

/// containerd's state dir from a CRI task FIFO path
/// (`<state>/io.containerd.grpc.v1.cri/containers/…`).
fn state_of_fifo(path: &str) -> Option<PathBuf> {
    let marker = format!("/{}/containers/", cri_plugin::PLUGIN_DIR);
    path.find(&marker).map(|i| PathBuf::from(&path[..i]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_dir_is_found_from_a_fifo_path() {
        assert_eq!(
            state_of_fifo("/run/containerd/io.containerd.grpc.v1.cri/containers/ab/io/1/ab-stdout"),
            Some(PathBuf::from("/run/containerd"))
        );
        assert_eq!(state_of_fifo("binary:///x?log=y"), None);
    }
}
