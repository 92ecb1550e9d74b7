//! The ttrpc task service containerd calls: unpacks each request, calls the
//! domain (`task`), maps its errors to ttrpc status codes once.

use crate::task::{CreateSpec, ProcState, TaskError, Tasks};
use async_trait::async_trait;
use containerd_shim::protos::api;
use containerd_shim::protos::protobuf::well_known_types::empty::Empty;
use containerd_shim::protos::shim_async::Task;
use containerd_shim::protos::ttrpc::{self, r#async::TtrpcContext, Code};

pub struct TaskService {
    tasks: Tasks,
}

impl TaskService {
    pub fn new(tasks: Tasks) -> TaskService {
        TaskService { tasks }
    }
}

type TtrpcResult<T> = ttrpc::Result<T>;

fn status(e: TaskError) -> ttrpc::Error {
    let code = match &e {
        TaskError::NotFound(_) => Code::NOT_FOUND,
        TaskError::AlreadyExists(_) => Code::ALREADY_EXISTS,
        TaskError::Precondition(_) => Code::FAILED_PRECONDITION,
        TaskError::InvalidArgument(_) => Code::INVALID_ARGUMENT,
        TaskError::Runtime(_) => Code::UNKNOWN,
    };
    ttrpc::Error::RpcStatus(ttrpc::get_status(code, e.to_string()))
}

fn any_value(
    a: &containerd_shim::protos::protobuf::MessageField<
        containerd_shim::protos::protobuf::well_known_types::any::Any,
    >,
) -> Option<&[u8]> {
    a.as_ref().map(|a| a.value.as_slice())
}

#[async_trait]
impl Task for TaskService {
    async fn create(
        &self,
        _ctx: &TtrpcContext,
        req: api::CreateTaskRequest,
    ) -> TtrpcResult<api::CreateTaskResponse> {
        let pid = self
            .tasks
            .create(CreateSpec {
                id: &req.id,
                bundle: &req.bundle,
                rootfs: &req.rootfs,
                terminal: req.terminal,
                stdio: (&req.stdin, &req.stdout, &req.stderr),
                options: any_value(&req.options),
            })
            .await
            .map_err(status)?;
        let mut resp = api::CreateTaskResponse::new();
        resp.pid = pid;
        Ok(resp)
    }

    async fn start(
        &self,
        _ctx: &TtrpcContext,
        req: api::StartRequest,
    ) -> TtrpcResult<api::StartResponse> {
        let pid = self
            .tasks
            .start(&req.id, &req.exec_id)
            .await
            .map_err(status)?;
        let mut resp = api::StartResponse::new();
        resp.pid = pid;
        Ok(resp)
    }

    async fn state(
        &self,
        _ctx: &TtrpcContext,
        req: api::StateRequest,
    ) -> TtrpcResult<api::StateResponse> {
        let c = self.tasks.get(&req.id).map_err(status)?;
        let p = c.process(&req.exec_id).map_err(status)?;
        let st = p.status();
        let mut resp = api::StateResponse::new();
        resp.id = if req.exec_id.is_empty() {
            req.id.clone()
        } else {
            req.exec_id.clone()
        };
        resp.bundle = c.bundle.to_string_lossy().into_owned();
        resp.pid = st.pid;
        resp.status = st.state.to_api().into();
        resp.stdin = p.stdin.clone();
        resp.stdout = p.stdout.clone();
        resp.stderr = p.stderr.clone();
        resp.terminal = p.io.terminal;
        resp.exit_status = st.exit_status;
        resp.exited_at = st.exited_at.into();
        resp.exec_id = req.exec_id;
        Ok(resp)
    }

    async fn wait(
        &self,
        _ctx: &TtrpcContext,
        req: api::WaitRequest,
    ) -> TtrpcResult<api::WaitResponse> {
        let c = self.tasks.get(&req.id).map_err(status)?;
        let p = c.process(&req.exec_id).map_err(status)?;
        let st = p.wait().await;
        let mut resp = api::WaitResponse::new();
        resp.exit_status = st.exit_status;
        resp.exited_at = st.exited_at.into();
        Ok(resp)
    }

    async fn kill(&self, _ctx: &TtrpcContext, req: api::KillRequest) -> TtrpcResult<Empty> {
        self.tasks
            .kill(&req.id, &req.exec_id, req.signal, req.all)
            .await
            .map_err(status)?;
        Ok(Empty::new())
    }

    async fn delete(
        &self,
        _ctx: &TtrpcContext,
        req: api::DeleteRequest,
    ) -> TtrpcResult<api::DeleteResponse> {
        let st = self
            .tasks
            .delete(&req.id, &req.exec_id)
            .await
            .map_err(status)?;
        let mut resp = api::DeleteResponse::new();
        resp.pid = st.pid;
        resp.exit_status = st.exit_status;
        resp.exited_at = st.exited_at.into();
        Ok(resp)
    }

    async fn exec(&self, _ctx: &TtrpcContext, req: api::ExecProcessRequest) -> TtrpcResult<Empty> {
        let spec = any_value(&req.spec).unwrap_or_default();
        self.tasks
            .exec(
                &req.id,
                &req.exec_id,
                req.terminal,
                (&req.stdin, &req.stdout, &req.stderr),
                spec,
            )
            .await
            .map_err(status)?;
        Ok(Empty::new())
    }

    async fn pids(
        &self,
        _ctx: &TtrpcContext,
        req: api::PidsRequest,
    ) -> TtrpcResult<api::PidsResponse> {
        let pids = self.tasks.pids(&req.id).await.map_err(status)?;
        let mut resp = api::PidsResponse::new();
        resp.processes = pids
            .into_iter()
            .map(|pid| {
                let mut info = api::ProcessInfo::new();
                info.pid = pid;
                info
            })
            .collect();
        Ok(resp)
    }

    async fn resize_pty(
        &self,
        _ctx: &TtrpcContext,
        req: api::ResizePtyRequest,
    ) -> TtrpcResult<Empty> {
        let c = self.tasks.get(&req.id).map_err(status)?;
        let p = c.process(&req.exec_id).map_err(status)?;
        p.io.resize(req.width, req.height)
            .map_err(|e| status(TaskError::Runtime(format!("resize: {e}"))))?;
        Ok(Empty::new())
    }

    async fn close_io(&self, _ctx: &TtrpcContext, req: api::CloseIORequest) -> TtrpcResult<Empty> {
        let c = self.tasks.get(&req.id).map_err(status)?;
        let p = c.process(&req.exec_id).map_err(status)?;
        if req.stdin {
            p.io.close_stdin();
        }
        Ok(Empty::new())
    }

    async fn update(&self, _ctx: &TtrpcContext, req: api::UpdateTaskRequest) -> TtrpcResult<Empty> {
        let res = any_value(&req.resources).unwrap_or_default();
        self.tasks.update(&req.id, res).await.map_err(status)?;
        Ok(Empty::new())
    }

    async fn stats(
        &self,
        _ctx: &TtrpcContext,
        req: api::StatsRequest,
    ) -> TtrpcResult<api::StatsResponse> {
        let c = self.tasks.get(&req.id).map_err(status)?;
        let st = c.init.status();
        if st.state != ProcState::Running {
            return Err(status(TaskError::NotFound(format!(
                "container {} is not running",
                req.id
            ))));
        }
        let any = crate::stats::of_pid(st.pid).map_err(status)?;
        let mut resp = api::StatsResponse::new();
        resp.stats = Some(any).into();
        Ok(resp)
    }

    async fn connect(
        &self,
        _ctx: &TtrpcContext,
        req: api::ConnectRequest,
    ) -> TtrpcResult<api::ConnectResponse> {
        let mut resp = api::ConnectResponse::new();
        resp.shim_pid = std::process::id();
        if let Ok(c) = self.tasks.get(&req.id) {
            resp.task_pid = c.init.status().pid;
        }
        Ok(resp)
    }

    async fn shutdown(
        &self,
        _ctx: &TtrpcContext,
        _req: api::ShutdownRequest,
    ) -> TtrpcResult<Empty> {
        self.tasks.shutdown();
        Ok(Empty::new())
    }
}
