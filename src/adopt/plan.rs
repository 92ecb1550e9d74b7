//! What `crid adopt` found and what it will do with each object: read from
//! containerd (records, tasks) and the CRI plugin's files, changing nothing,
//! and printed as a table.

use super::cri_plugin::{self, PluginDirs};
use crate::containerd::{Container as Record, Process, ProcessStatus};
use crate::error::Result;
use crate::runtime::Runtime;
use std::fmt::Write as _;

/// What happens to one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Becomes crid's, untouched otherwise.
    Adopt,
    /// Cannot be adopted and is removed (like crid's own orphans).
    CleanUp(String),
    /// Cannot be adopted and is left alone (the reason says what to do).
    Cannot(String),
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Adopt => f.write_str("adopt"),
            Action::CleanUp(why) => write!(f, "clean up: {why}"),
            Action::Cannot(why) => write!(f, "cannot: {why}"),
        }
    }
}

/// The state a container is adopted in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FoundState {
    Created,
    Running {
        pid: u32,
    },
    Exited {
        code: i32,
        finished_at: i64,
        reason: String,
        message: String,
    },
    Unknown,
}

#[derive(Debug, Clone)]
pub struct PodPlan {
    pub record: Record,
    pub meta: Option<cri_plugin::SandboxMetadata>,
    pub pause: Option<Process>,
    /// The crid runtime handler the pod gets.
    pub handler: String,
    pub action: Action,
    pub containers: Vec<ContainerPlan>,
}

#[derive(Debug, Clone)]
pub struct ContainerPlan {
    pub record: Record,
    pub meta: Option<cri_plugin::ContainerMetadata>,
    pub status: Option<cri_plugin::ContainerStatus>,
    pub task: Option<Process>,
    pub state: FoundState,
    pub action: Action,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub dirs: PluginDirs,
    pub pods: Vec<PodPlan>,
    /// Containers whose sandbox record is gone.
    pub strays: Vec<ContainerPlan>,
}

impl Plan {
    /// One row per pod and container: id, kind, pod, name, state, action.
    pub fn table(&self) -> String {
        let mut rows = vec![[
            "ID".to_string(),
            "KIND".into(),
            "POD".into(),
            "NAME".into(),
            "STATE".into(),
            "ACTION".into(),
        ]];
        for p in &self.pods {
            let pod = p
                .meta
                .as_ref()
                .and_then(|m| m.config.as_ref())
                .and_then(|c| c.metadata.as_ref());
            let pod_name = pod
                .map(|m| format!("{}/{}", m.namespace, m.name))
                .unwrap_or("?".into());
            let state = match &p.pause {
                Some(t) if t.status == ProcessStatus::Running as i32 => "ready",
                _ => "notready",
            };
            rows.push([
                short(&p.record.id),
                "sandbox".into(),
                pod_name.clone(),
                "-".into(),
                state.into(),
                p.action.to_string(),
            ]);
            for c in &p.containers {
                rows.push(container_row(c, &pod_name));
            }
        }
        for c in &self.strays {
            rows.push(container_row(c, "?"));
        }
        let widths: Vec<usize> = (0..5)
            .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
            .collect();
        let mut out = String::new();
        for r in &rows {
            for (i, w) in widths.iter().enumerate() {
                let _ = write!(out, "{:<w$}  ", r[i], w = *w);
            }
            let _ = writeln!(out, "{}", r[5]);
        }
        out
    }

    /// Every object, each once: (id, action).
    pub fn actions(&self) -> Vec<(&str, &Action)> {
        let mut v = Vec::new();
        for p in &self.pods {
            v.push((p.record.id.as_str(), &p.action));
            for c in &p.containers {
                v.push((c.record.id.as_str(), &c.action));
            }
        }
        for c in &self.strays {
            v.push((c.record.id.as_str(), &c.action));
        }
        v
    }
}

fn container_row(c: &ContainerPlan, pod: &str) -> [String; 6] {
    let name = c
        .meta
        .as_ref()
        .and_then(|m| m.config.as_ref())
        .and_then(|c| c.metadata.as_ref())
        .map(|m| format!("{} (attempt {})", m.name, m.attempt))
        .unwrap_or("?".into());
    let state = match &c.state {
        FoundState::Created => "created".to_string(),
        FoundState::Running { .. } => "running".into(),
        FoundState::Exited { code, .. } => format!("exited ({code})"),
        FoundState::Unknown => "unknown".into(),
    };
    [
        short(&c.record.id),
        "container".into(),
        pod.to_string(),
        name,
        state,
        c.action.to_string(),
    ]
}

/// The first 13 characters, as crictl shows ids.
fn short(id: &str) -> String {
    id.chars().take(13).collect()
}

impl Runtime {
    /// Read what the CRI plugin left in crid's namespace; changes nothing.
    pub async fn adopt_plan(&self, opts: &super::AdoptOptions) -> Result<Plan> {
        let dirs = self.containerd_dirs(opts).await?;
        let records = self
            .containerd
            .list_containers(vec![super::cri_kind_filter()])
            .await?;
        let (sandboxes, containers): (Vec<_>, Vec<_>) = records.into_iter().partition(|r| {
            r.labels.get(cri_plugin::KIND_LABEL).map(String::as_str) == Some("sandbox")
        });
        let mut pods = Vec::new();
        for record in sandboxes {
            pods.push(self.plan_pod(record).await?);
        }
        pods.sort_by_key(|p| crate::containerd::timestamp_nanos(&p.record.created_at));
        let mut strays = Vec::new();
        for record in containers {
            let meta = decode(
                &record,
                cri_plugin::CONTAINER_METADATA,
                cri_plugin::ContainerMetadata::decode,
            );
            let sandbox_id = meta.as_ref().ok().map(|m| m.sandbox_id.clone());
            let pod = sandbox_id.and_then(|s| pods.iter_mut().find(|p| p.record.id == s));
            let sandbox_action = pod.as_ref().map(|p| p.action.clone());
            let plan = self
                .plan_container(record, meta, sandbox_action, &dirs)
                .await?;
            match pod {
                Some(p) => p.containers.push(plan),
                None => strays.push(plan),
            }
        }
        for p in &mut pods {
            p.containers
                .sort_by_key(|c| crate::containerd::timestamp_nanos(&c.record.created_at));
        }
        Ok(Plan { dirs, pods, strays })
    }

    async fn plan_pod(&self, record: Record) -> Result<PodPlan> {
        let pause = self.containerd.get_task(&record.id).await?;
        let mut plan = PodPlan {
            meta: None,
            pause,
            handler: String::new(),
            action: Action::Adopt,
            containers: vec![],
            record,
        };
        let meta = match decode(
            &plan.record,
            cri_plugin::SANDBOX_METADATA,
            cri_plugin::SandboxMetadata::decode,
        ) {
            Ok(m) => m,
            Err(e) => {
                plan.action = Action::CleanUp(e);
                return Ok(plan);
            }
        };
        plan.action = if meta.config.is_none() {
            Action::CleanUp("its metadata has no pod config".into())
        } else if let Err(e) = self.adopt_handler(&meta.runtime_handler, &plan.record) {
            Action::Cannot(format!("{e}; configure it in crid"))
        } else if !plan.record.snapshotter.is_empty()
            && plan.record.snapshotter != self.containerd.snapshotter()
        {
            Action::Cannot(format!(
                "snapshotter {:?}, crid uses {:?}; set `[containerd] snapshotter`",
                plan.record.snapshotter,
                self.containerd.snapshotter()
            ))
        } else {
            match &plan.pause {
                None => Action::CleanUp("its pause task is gone or never started".into()),
                Some(t) if t.status != ProcessStatus::Running as i32 => {
                    Action::CleanUp(format!("its pause task is {}", status_name(t.status)))
                }
                Some(_)
                    if !meta.netns_path.is_empty()
                        && !crate::network::netns::is_pinned(std::path::Path::new(
                            &meta.netns_path,
                        )) =>
                {
                    Action::CleanUp(format!("its netns {} is gone", meta.netns_path))
                }
                Some(_) => Action::Adopt,
            }
        };
        if let Ok(name) = self.adopt_handler(&meta.runtime_handler, &plan.record) {
            plan.handler = name;
        }
        plan.meta = Some(meta);
        Ok(plan)
    }

    /// The crid handler a plugin pod keeps: see `pick_handler`.
    fn adopt_handler(&self, named: &str, record: &Record) -> Result<String> {
        let runtime = record.runtime.as_ref().map_or("", |r| r.name.as_str());
        pick_handler(
            named,
            &self.config.containerd.default_runtime,
            &self.config.containerd.runtimes,
            runtime,
        )
    }

    async fn plan_container(
        &self,
        record: Record,
        meta: std::result::Result<cri_plugin::ContainerMetadata, String>,
        sandbox: Option<Action>,
        dirs: &PluginDirs,
    ) -> Result<ContainerPlan> {
        let task = self.containerd.get_task(&record.id).await?;
        let status = std::fs::read(dirs.status_file(&record.id))
            .map_err(|e| e.to_string())
            .and_then(|b| cri_plugin::ContainerStatus::decode(&b));
        let (state, found) = found_state(status.as_ref().ok(), task.as_ref());
        let action = match (&meta, sandbox) {
            (Err(e), _) => Action::CleanUp(e.clone()),
            (_, None) => Action::CleanUp("its pod sandbox is gone".into()),
            (_, Some(Action::CleanUp(_))) => {
                Action::CleanUp("its pod sandbox is cleaned up".into())
            }
            (_, Some(Action::Cannot(_))) => {
                Action::Cannot("its pod sandbox cannot be adopted".into())
            }
            (Ok(m), _) if m.config.is_none() => {
                Action::CleanUp("its metadata has no container config".into())
            }
            (Ok(_), Some(Action::Adopt)) => match (found, &status) {
                (Ok(()), _) => Action::Adopt,
                (Err(why), Err(e)) => Action::CleanUp(format!("{why}; status file: {e}")),
                (Err(why), Ok(_)) => Action::CleanUp(why),
            },
        };
        Ok(ContainerPlan {
            record,
            meta: meta.ok(),
            status: status.ok(),
            task,
            state,
            action,
        })
    }
}

/// The state to adopt a container in, from the plugin's status file and the
/// task; `Err(why)` when it cannot be adopted.
fn found_state(
    status: Option<&cri_plugin::ContainerStatus>,
    task: Option<&Process>,
) -> (FoundState, std::result::Result<(), String>) {
    let Some(s) = status else {
        return (
            FoundState::Unknown,
            Err("it has no readable status file".into()),
        );
    };
    // The plugin records only an OOM kill's reason; for other exits it
    // derives it from the code when asked, as crid records it.
    let exited = |code: i32, finished_at: i64, reason: &str, message: &str| FoundState::Exited {
        code,
        finished_at,
        reason: match reason {
            "" if code == 0 => "Completed".into(),
            "" => "Error".into(),
            r => r.to_string(),
        },
        message: message.to_string(),
    };
    if s.finished() {
        return (
            exited(s.exit_code, s.finished_at, &s.reason, &s.message),
            Ok(()),
        );
    }
    if !s.started() {
        return match task {
            None => (FoundState::Created, Ok(())),
            Some(_) => (
                FoundState::Unknown,
                Err("it was never started but has a task".into()),
            ),
        };
    }
    match task {
        Some(t) if t.status == ProcessStatus::Running as i32 => {
            (FoundState::Running { pid: t.pid }, Ok(()))
        }
        // It exited while nobody watched: adopted as exited, with its code.
        Some(t) if t.status == ProcessStatus::Stopped as i32 => {
            let at = crate::containerd::timestamp_nanos(&t.exited_at);
            let reason = if t.exit_status == 0 {
                "Completed"
            } else {
                "Error"
            };
            (
                exited(t.exit_status as i32, at.max(s.started_at), reason, ""),
                Ok(()),
            )
        }
        Some(t) => (
            FoundState::Unknown,
            Err(format!("its task is {}", status_name(t.status))),
        ),
        None => (
            FoundState::Unknown,
            Err("it was running and its task is gone".into()),
        ),
    }
}

fn status_name(status: i32) -> String {
    ProcessStatus::try_from(status)
        .map(|s| s.as_str_name().to_lowercase())
        .unwrap_or_else(|_| format!("in state {status}"))
}

fn decode<T>(
    record: &Record,
    extension: &str,
    decode: fn(&[u8]) -> std::result::Result<T, String>,
) -> std::result::Result<T, String> {
    let any = record
        .extensions
        .get(extension)
        .ok_or_else(|| format!("it has no {extension} extension"))?;
    decode(&any.value).map_err(|e| format!("its metadata does not parse: {e}"))
}

/// The crid runtime handler an adopted pod keeps: the one its metadata
/// names, or for none crid's default, as long as it runs the containerd
/// runtime the pod's record runs (`runtime`). A pod the plugin ran on its
/// default runc while crid's default is another shim (crid's own, say)
/// keeps a handler of the record's runtime, `runc` first, so the pod's
/// later containers join its shim.
fn pick_handler(
    named: &str,
    default: &str,
    handlers: &std::collections::BTreeMap<String, crate::config::RuntimeHandler>,
    runtime: &str,
) -> Result<String> {
    use crate::error::Error;
    let name = if named.is_empty() { default } else { named };
    let handler = handlers
        .get(name)
        .ok_or_else(|| Error::invalid(format!("runtime handler {name:?} is not configured")))?;
    if runtime.is_empty() || handler.runtime_type == runtime {
        return Ok(name.to_string());
    }
    if !named.is_empty() {
        return Err(Error::invalid(format!(
            "runtime handler {name:?} runs {:?}, the pod runs {runtime:?}",
            handler.runtime_type
        )));
    }
    let runs_it = |n: &&String| handlers[*n].runtime_type == runtime;
    handlers
        .keys()
        .filter(runs_it)
        .find(|n| n.as_str() == "runc")
        .or_else(|| handlers.keys().find(runs_it))
        .cloned()
        .ok_or_else(|| {
            Error::invalid(format!(
                "no runtime handler runs {runtime:?}, the pod's runtime"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(started: i64, finished: i64) -> cri_plugin::ContainerStatus {
        cri_plugin::ContainerStatus::decode(
            format!(r#"{{"Version":"v1","CreatedAt":1,"StartedAt":{started},"FinishedAt":{finished},"ExitCode":3,"Reason":"Error"}}"#)
                .as_bytes(),
        )
        .unwrap()
    }

    fn task(status: ProcessStatus) -> Process {
        Process {
            pid: 7,
            status: status as i32,
            exit_status: 137,
            ..Default::default()
        }
    }

    #[test]
    fn running_container_needs_its_running_task() {
        let s = status(2, 0);
        assert_eq!(
            found_state(Some(&s), Some(&task(ProcessStatus::Running))).0,
            FoundState::Running { pid: 7 }
        );
        assert!(found_state(Some(&s), None).1.is_err());
        let (state, ok) = found_state(Some(&s), Some(&task(ProcessStatus::Stopped)));
        assert!(ok.is_ok());
        assert!(matches!(state, FoundState::Exited { code: 137, .. }));
    }

    #[test]
    fn exited_and_created_come_from_the_status_file() {
        let (state, ok) = found_state(Some(&status(2, 5)), None);
        assert!(ok.is_ok());
        assert_eq!(
            state,
            FoundState::Exited {
                code: 3,
                finished_at: 5,
                reason: "Error".into(),
                message: String::new()
            }
        );
        assert_eq!(
            found_state(Some(&status(0, 0)), None).0,
            FoundState::Created
        );
        assert!(found_state(None, Some(&task(ProcessStatus::Running)))
            .1
            .is_err());
    }

    #[test]
    fn table_has_a_row_per_object() {
        let plan = Plan {
            dirs: PluginDirs::new("/r".as_ref(), "/s".as_ref()),
            pods: vec![],
            strays: vec![ContainerPlan {
                record: Record {
                    id: "0123456789abcdef".into(),
                    ..Default::default()
                },
                meta: None,
                status: None,
                task: None,
                state: FoundState::Unknown,
                action: Action::CleanUp("its pod sandbox is gone".into()),
            }],
        };
        let t = plan.table();
        assert!(t.starts_with("ID "));
        assert!(t.contains("0123456789abc  container"));
        assert!(t.contains("clean up: its pod sandbox is gone"));
    }

    #[test]
    fn an_adopted_pod_keeps_a_handler_of_its_own_runtime() {
        use crate::config::RuntimeHandler;
        let h = |t: &str| RuntimeHandler {
            runtime_type: t.into(),
            ..Default::default()
        };
        let handlers: std::collections::BTreeMap<String, RuntimeHandler> = [
            ("crun".to_string(), h("io.containerd.runc.v2")),
            ("runc".to_string(), h("io.containerd.runc.v2")),
            ("crid-shim".to_string(), h("io.containerd.crid.v1")),
        ]
        .into();
        let runc = "io.containerd.runc.v2";
        let pick = |named, default, runtime| pick_handler(named, default, &handlers, runtime);
        assert_eq!(pick("", "runc", runc).unwrap(), "runc");
        assert_eq!(pick("", "crid-shim", runc).unwrap(), "runc");
        assert_eq!(pick("crun", "crid-shim", runc).unwrap(), "crun");
        assert_eq!(pick("", "crid-shim", "").unwrap(), "crid-shim");
        assert!(pick("crid-shim", "runc", runc).is_err());
        assert!(pick("", "runc", "io.containerd.kata.v2").is_err());
        assert!(pick("gvisor", "runc", runc).is_err());
    }
}
