//! containerd `Tasks` service: the running process of a container and its execs.

use super::{api, Containerd};
use crate::error::{Error, Result};
use api::tasks_client::TasksClient;
pub use containerd_client::types::v1::{Process, Status as ProcessStatus};

/// Where a task's stdio goes: FIFO paths or `binary://`/`file://` URIs.
#[derive(Debug, Clone, Default)]
pub struct TaskIo {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitStatus {
    pub code: u32,
    /// Unix nanoseconds.
    pub exited_at: i64,
}

impl Containerd {
    fn tasks(&self) -> TasksClient<super::Svc> {
        TasksClient::new(self.svc())
    }

    /// Create the task of a container whose rootfs is its snapshot (containerd
    /// mounts `snapshot_key`); returns the pid.
    pub async fn create_task(
        &self,
        container_id: &str,
        rootfs: Vec<super::Mount>,
        io: TaskIo,
        options: Option<prost_types::Any>,
    ) -> Result<u32> {
        let resp = self
            .tasks()
            .create(api::CreateTaskRequest {
                container_id: container_id.into(),
                rootfs,
                stdin: io.stdin,
                stdout: io.stdout,
                stderr: io.stderr,
                terminal: io.terminal,
                checkpoint: None,
                options,
                runtime_path: String::new(),
            })
            .await
            .map_err(|s| Error::containerd("Tasks.Create", s))?;
        Ok(resp.into_inner().pid)
    }

    /// Start the task (`exec_id` empty) or one of its execs.
    pub async fn start_task(&self, container_id: &str, exec_id: &str) -> Result<u32> {
        let resp = self
            .tasks()
            .start(api::StartRequest {
                container_id: container_id.into(),
                exec_id: exec_id.into(),
            })
            .await
            .map_err(|s| Error::containerd("Tasks.Start", s))?;
        Ok(resp.into_inner().pid)
    }

    /// The task's process, `None` when the container has no task.
    pub async fn get_task(&self, container_id: &str) -> Result<Option<Process>> {
        self.get_process(container_id, "").await
    }

    pub async fn get_process(&self, container_id: &str, exec_id: &str) -> Result<Option<Process>> {
        match self
            .tasks()
            .get(api::GetRequest {
                container_id: container_id.into(),
                exec_id: exec_id.into(),
            })
            .await
        {
            Ok(r) => Ok(r.into_inner().process),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(s) => Err(Error::containerd("Tasks.Get", s)),
        }
    }

    pub async fn list_tasks(&self) -> Result<Vec<Process>> {
        let resp = self
            .tasks()
            .list(api::ListTasksRequest {
                filter: String::new(),
            })
            .await
            .map_err(|s| Error::containerd("Tasks.List", s))?;
        Ok(resp.into_inner().tasks)
    }

    /// Send `signal`; a task or process that is gone is not an error.
    pub async fn kill_task(
        &self,
        container_id: &str,
        exec_id: &str,
        signal: u32,
        all: bool,
    ) -> Result<()> {
        match self
            .tasks()
            .kill(api::KillRequest {
                container_id: container_id.into(),
                exec_id: exec_id.into(),
                signal,
                all,
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
            Err(s) => Err(Error::containerd("Tasks.Kill", s)),
        }
    }

    /// Delete the task; returns its exit status, `None` when there was no task.
    pub async fn delete_task(&self, container_id: &str) -> Result<Option<ExitStatus>> {
        match self
            .tasks()
            .delete(api::DeleteTaskRequest {
                container_id: container_id.into(),
            })
            .await
        {
            Ok(r) => {
                let r = r.into_inner();
                Ok(Some(ExitStatus {
                    code: r.exit_status,
                    exited_at: super::timestamp_nanos(&r.exited_at),
                }))
            }
            Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(s) => Err(Error::containerd("Tasks.Delete", s)),
        }
    }

    pub async fn delete_process(&self, container_id: &str, exec_id: &str) -> Result<()> {
        match self
            .tasks()
            .delete_process(api::DeleteProcessRequest {
                container_id: container_id.into(),
                exec_id: exec_id.into(),
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
            Err(s) => Err(Error::containerd("Tasks.DeleteProcess", s)),
        }
    }

    /// Block until the task (or exec) exits.
    pub async fn wait_task(&self, container_id: &str, exec_id: &str) -> Result<ExitStatus> {
        let resp = self
            .tasks()
            .wait(api::WaitRequest {
                container_id: container_id.into(),
                exec_id: exec_id.into(),
            })
            .await
            .map_err(|s| Error::containerd("Tasks.Wait", s))?
            .into_inner();
        Ok(ExitStatus {
            code: resp.exit_status,
            exited_at: super::timestamp_nanos(&resp.exited_at),
        })
    }

    /// Add an exec process (an OCI `Process` as JSON) to a running task.
    pub async fn exec_process(
        &self,
        container_id: &str,
        exec_id: &str,
        process_json: Vec<u8>,
        io: TaskIo,
    ) -> Result<()> {
        self.tasks()
            .exec(api::ExecProcessRequest {
                container_id: container_id.into(),
                stdin: io.stdin,
                stdout: io.stdout,
                stderr: io.stderr,
                terminal: io.terminal,
                spec: Some(super::any(
                    "types.containerd.io/opencontainers/runtime-spec/1/Process",
                    process_json,
                )),
                exec_id: exec_id.into(),
            })
            .await
            .map_err(|s| Error::containerd("Tasks.Exec", s))?;
        Ok(())
    }

    pub async fn resize_pty(
        &self,
        container_id: &str,
        exec_id: &str,
        width: u32,
        height: u32,
    ) -> Result<()> {
        self.tasks()
            .resize_pty(api::ResizePtyRequest {
                container_id: container_id.into(),
                exec_id: exec_id.into(),
                width,
                height,
            })
            .await
            .map_err(|s| Error::containerd("Tasks.ResizePty", s))?;
        Ok(())
    }

    /// Close the process's stdin (EOF).
    pub async fn close_stdin(&self, container_id: &str, exec_id: &str) -> Result<()> {
        self.tasks()
            .close_io(api::CloseIoRequest {
                container_id: container_id.into(),
                exec_id: exec_id.into(),
                stdin: true,
            })
            .await
            .map_err(|s| Error::containerd("Tasks.CloseIO", s))?;
        Ok(())
    }

    /// Apply new resources (an OCI `LinuxResources` as JSON) to a running task.
    pub async fn update_task(&self, container_id: &str, resources_json: Vec<u8>) -> Result<()> {
        self.tasks()
            .update(api::UpdateTaskRequest {
                container_id: container_id.into(),
                resources: Some(super::any(
                    "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources",
                    resources_json,
                )),
                annotations: Default::default(),
            })
            .await
            .map_err(|s| Error::containerd("Tasks.Update", s))?;
        Ok(())
    }

    /// Raw cgroup metrics for the given containers (`id==x` filters).
    pub async fn task_metrics(
        &self,
        filters: Vec<String>,
    ) -> Result<Vec<containerd_client::types::Metric>> {
        let resp = self
            .tasks()
            .metrics(api::MetricsRequest { filters })
            .await
            .map_err(|s| Error::containerd("Tasks.Metrics", s))?;
        Ok(resp.into_inner().metrics)
    }

    pub async fn list_pids(&self, container_id: &str) -> Result<Vec<u32>> {
        let resp = self
            .tasks()
            .list_pids(api::ListPidsRequest {
                container_id: container_id.into(),
            })
            .await
            .map_err(|s| Error::containerd("Tasks.ListPids", s))?;
        Ok(resp
            .into_inner()
            .processes
            .into_iter()
            .map(|p| p.pid)
            .collect())
    }
}
