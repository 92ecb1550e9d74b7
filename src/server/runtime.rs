//! CRI `RuntimeService`: translation between CRI messages and the domain.
//! No logic lives here; each handler unpacks, delegates, and packs.

use super::{handle, unimplemented};
use crate::cri::runtime_service_server::RuntimeService;
use crate::cri::*;
use crate::runtime::Runtime;
use std::pin::Pin;
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub struct RuntimeServer {
    runtime: Arc<Runtime>,
}

impl RuntimeServer {
    pub fn new(runtime: Arc<Runtime>) -> Self {
        RuntimeServer { runtime }
    }
}

type EventStream =
    Pin<Box<dyn futures::Stream<Item = Result<ContainerEventResponse, Status>> + Send>>;

#[tonic::async_trait]
impl RuntimeService for RuntimeServer {
    type GetContainerEventsStream = EventStream;

    async fn get_container_events(
        &self,
        _request: Request<GetEventsRequest>,
    ) -> Result<Response<Self::GetContainerEventsStream>, Status> {
        unimplemented("GetContainerEvents")
    }

    async fn version(
        &self,
        _request: Request<VersionRequest>,
    ) -> Result<Response<VersionResponse>, Status> {
        handle("Version", async {
            Ok(VersionResponse {
                version: "0.1.0".into(),
                runtime_name: crate::RUNTIME_NAME.into(),
                runtime_version: crate::VERSION.into(),
                runtime_api_version: crate::RUNTIME_API_VERSION.into(),
            })
        })
        .await
    }

    async fn run_pod_sandbox(
        &self,
        _request: Request<RunPodSandboxRequest>,
    ) -> Result<Response<RunPodSandboxResponse>, Status> {
        unimplemented("RunPodSandbox")
    }

    async fn stop_pod_sandbox(
        &self,
        _request: Request<StopPodSandboxRequest>,
    ) -> Result<Response<StopPodSandboxResponse>, Status> {
        unimplemented("StopPodSandbox")
    }

    async fn remove_pod_sandbox(
        &self,
        _request: Request<RemovePodSandboxRequest>,
    ) -> Result<Response<RemovePodSandboxResponse>, Status> {
        unimplemented("RemovePodSandbox")
    }

    async fn pod_sandbox_status(
        &self,
        _request: Request<PodSandboxStatusRequest>,
    ) -> Result<Response<PodSandboxStatusResponse>, Status> {
        unimplemented("PodSandboxStatus")
    }

    async fn list_pod_sandbox(
        &self,
        _request: Request<ListPodSandboxRequest>,
    ) -> Result<Response<ListPodSandboxResponse>, Status> {
        unimplemented("ListPodSandbox")
    }

    async fn create_container(
        &self,
        _request: Request<CreateContainerRequest>,
    ) -> Result<Response<CreateContainerResponse>, Status> {
        unimplemented("CreateContainer")
    }

    async fn start_container(
        &self,
        _request: Request<StartContainerRequest>,
    ) -> Result<Response<StartContainerResponse>, Status> {
        unimplemented("StartContainer")
    }

    async fn stop_container(
        &self,
        _request: Request<StopContainerRequest>,
    ) -> Result<Response<StopContainerResponse>, Status> {
        unimplemented("StopContainer")
    }

    async fn remove_container(
        &self,
        _request: Request<RemoveContainerRequest>,
    ) -> Result<Response<RemoveContainerResponse>, Status> {
        unimplemented("RemoveContainer")
    }

    async fn list_containers(
        &self,
        _request: Request<ListContainersRequest>,
    ) -> Result<Response<ListContainersResponse>, Status> {
        unimplemented("ListContainers")
    }

    async fn container_status(
        &self,
        _request: Request<ContainerStatusRequest>,
    ) -> Result<Response<ContainerStatusResponse>, Status> {
        unimplemented("ContainerStatus")
    }

    async fn update_container_resources(
        &self,
        _request: Request<UpdateContainerResourcesRequest>,
    ) -> Result<Response<UpdateContainerResourcesResponse>, Status> {
        unimplemented("UpdateContainerResources")
    }

    async fn reopen_container_log(
        &self,
        _request: Request<ReopenContainerLogRequest>,
    ) -> Result<Response<ReopenContainerLogResponse>, Status> {
        unimplemented("ReopenContainerLog")
    }

    async fn exec_sync(
        &self,
        request: Request<ExecSyncRequest>,
    ) -> Result<Response<ExecSyncResponse>, Status> {
        handle(
            "ExecSync",
            super::streaming::exec_sync(&self.runtime, request.into_inner()),
        )
        .await
    }

    async fn exec(&self, request: Request<ExecRequest>) -> Result<Response<ExecResponse>, Status> {
        handle(
            "Exec",
            super::streaming::exec(&self.runtime, request.into_inner()),
        )
        .await
    }

    async fn attach(
        &self,
        request: Request<AttachRequest>,
    ) -> Result<Response<AttachResponse>, Status> {
        handle(
            "Attach",
            super::streaming::attach(&self.runtime, request.into_inner()),
        )
        .await
    }

    async fn port_forward(
        &self,
        request: Request<PortForwardRequest>,
    ) -> Result<Response<PortForwardResponse>, Status> {
        handle(
            "PortForward",
            super::streaming::port_forward(&self.runtime, request.into_inner()),
        )
        .await
    }

    async fn container_stats(
        &self,
        _request: Request<ContainerStatsRequest>,
    ) -> Result<Response<ContainerStatsResponse>, Status> {
        unimplemented("ContainerStats")
    }

    async fn list_container_stats(
        &self,
        _request: Request<ListContainerStatsRequest>,
    ) -> Result<Response<ListContainerStatsResponse>, Status> {
        unimplemented("ListContainerStats")
    }

    async fn pod_sandbox_stats(
        &self,
        _request: Request<PodSandboxStatsRequest>,
    ) -> Result<Response<PodSandboxStatsResponse>, Status> {
        unimplemented("PodSandboxStats")
    }

    async fn list_pod_sandbox_stats(
        &self,
        _request: Request<ListPodSandboxStatsRequest>,
    ) -> Result<Response<ListPodSandboxStatsResponse>, Status> {
        unimplemented("ListPodSandboxStats")
    }

    async fn update_runtime_config(
        &self,
        _request: Request<UpdateRuntimeConfigRequest>,
    ) -> Result<Response<UpdateRuntimeConfigResponse>, Status> {
        unimplemented("UpdateRuntimeConfig")
    }

    async fn status(
        &self,
        request: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        let verbose = request.into_inner().verbose;
        handle("Status", async {
            let conditions = self
                .runtime
                .conditions()
                .await
                .into_iter()
                .map(|c| RuntimeCondition {
                    r#type: c.kind.to_string(),
                    status: c.ready,
                    reason: c.reason,
                    message: c.message,
                })
                .collect();
            let mut info = std::collections::HashMap::new();
            if verbose {
                let config = serde_json::to_string(&self.runtime.config).unwrap_or_default();
                info.insert("config".to_string(), config);
            }
            Ok(StatusResponse {
                status: Some(RuntimeStatus { conditions }),
                info,
                ..Default::default()
            })
        })
        .await
    }

    async fn checkpoint_container(
        &self,
        _request: Request<CheckpointContainerRequest>,
    ) -> Result<Response<CheckpointContainerResponse>, Status> {
        unimplemented("CheckpointContainer")
    }

    async fn list_metric_descriptors(
        &self,
        _request: Request<ListMetricDescriptorsRequest>,
    ) -> Result<Response<ListMetricDescriptorsResponse>, Status> {
        unimplemented("ListMetricDescriptors")
    }

    async fn list_pod_sandbox_metrics(
        &self,
        _request: Request<ListPodSandboxMetricsRequest>,
    ) -> Result<Response<ListPodSandboxMetricsResponse>, Status> {
        unimplemented("ListPodSandboxMetrics")
    }

    async fn runtime_config(
        &self,
        _request: Request<RuntimeConfigRequest>,
    ) -> Result<Response<RuntimeConfigResponse>, Status> {
        unimplemented("RuntimeConfig")
    }
}
