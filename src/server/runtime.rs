//! CRI `RuntimeService`: translation between CRI messages and the domain.
//! No logic lives here; each handler unpacks, delegates, and packs.

use super::list_stream::{in_batches, ListStream};
use super::{convert, detached, handle, metrics, stats};
use crate::cri::runtime_service_server::RuntimeService;
use crate::cri::*;
use crate::error::Error;
use crate::runtime::introspect::CgroupDriver;
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

    fn pod_sandboxes(&self, filter: &PodSandboxFilter) -> Vec<PodSandbox> {
        self.runtime
            .sandboxes
            .list()
            .iter()
            .filter(|s| convert::sandbox_matches(s, filter))
            .map(|s| convert::pod_sandbox(s))
            .collect()
    }

    fn containers(&self, filter: &ContainerFilter) -> Vec<Container> {
        self.runtime
            .containers
            .list()
            .iter()
            .filter(|c| convert::container_matches(c, filter))
            .map(|c| convert::container(c))
            .collect()
    }
}

type EventStream =
    Pin<Box<dyn futures::Stream<Item = Result<ContainerEventResponse, Status>> + Send>>;

#[tonic::async_trait]
impl RuntimeService for RuntimeServer {
    type GetContainerEventsStream = EventStream;
    type StreamPodSandboxesStream = ListStream<StreamPodSandboxesResponse>;
    type StreamContainersStream = ListStream<StreamContainersResponse>;
    type StreamContainerStatsStream = ListStream<StreamContainerStatsResponse>;
    type StreamPodSandboxStatsStream = ListStream<StreamPodSandboxStatsResponse>;
    type StreamPodSandboxMetricsStream = ListStream<StreamPodSandboxMetricsResponse>;

    async fn get_container_events(
        &self,
        _request: Request<GetEventsRequest>,
    ) -> Result<Response<Self::GetContainerEventsStream>, Status> {
        handle("GetContainerEvents", async {
            let events = super::events::container_event_stream(self.runtime.clone());
            Ok(Box::pin(events) as EventStream)
        })
        .await
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
        request: Request<RunPodSandboxRequest>,
    ) -> Result<Response<RunPodSandboxResponse>, Status> {
        let r = request.into_inner();
        handle("RunPodSandbox", async {
            let config = r
                .config
                .ok_or_else(|| Error::invalid("config is required"))?;
            let rt = self.runtime.clone();
            let pod_sandbox_id =
                detached(async move { rt.run_pod_sandbox(config, &r.runtime_handler).await })
                    .await?;
            Ok(RunPodSandboxResponse { pod_sandbox_id })
        })
        .await
    }

    async fn stop_pod_sandbox(
        &self,
        request: Request<StopPodSandboxRequest>,
    ) -> Result<Response<StopPodSandboxResponse>, Status> {
        let r = request.into_inner();
        handle("StopPodSandbox", async {
            self.runtime.stop_pod_sandbox(&r.pod_sandbox_id).await?;
            Ok(StopPodSandboxResponse {})
        })
        .await
    }

    async fn remove_pod_sandbox(
        &self,
        request: Request<RemovePodSandboxRequest>,
    ) -> Result<Response<RemovePodSandboxResponse>, Status> {
        let r = request.into_inner();
        handle("RemovePodSandbox", async {
            self.runtime.remove_pod_sandbox(&r.pod_sandbox_id).await?;
            Ok(RemovePodSandboxResponse {})
        })
        .await
    }

    async fn pod_sandbox_status(
        &self,
        request: Request<PodSandboxStatusRequest>,
    ) -> Result<Response<PodSandboxStatusResponse>, Status> {
        let r = request.into_inner();
        handle("PodSandboxStatus", async {
            let s = self.runtime.sandboxes.get(&r.pod_sandbox_id)?;
            let containers_statuses = self
                .runtime
                .containers
                .in_sandbox(s.id())
                .iter()
                .map(|c| convert::container_status(c))
                .collect();
            Ok(PodSandboxStatusResponse {
                status: Some(convert::pod_sandbox_status(&s)),
                info: if r.verbose {
                    convert::sandbox_info(&s)
                } else {
                    Default::default()
                },
                containers_statuses,
                timestamp: crate::util::time::now_nanos(),
            })
        })
        .await
    }

    async fn list_pod_sandbox(
        &self,
        request: Request<ListPodSandboxRequest>,
    ) -> Result<Response<ListPodSandboxResponse>, Status> {
        let filter = request.into_inner().filter.unwrap_or_default();
        handle("ListPodSandbox", async {
            Ok(ListPodSandboxResponse {
                items: self.pod_sandboxes(&filter),
            })
        })
        .await
    }

    async fn create_container(
        &self,
        request: Request<CreateContainerRequest>,
    ) -> Result<Response<CreateContainerResponse>, Status> {
        let r = request.into_inner();
        handle("CreateContainer", async {
            let config = r
                .config
                .ok_or_else(|| Error::invalid("config is required"))?;
            let t = std::time::Instant::now();
            let rt = self.runtime.clone();
            let container_id = detached(async move {
                rt.create_container(&r.pod_sandbox_id, config, r.sandbox_config)
                    .await
            })
            .await?;
            crate::metrics::phase("container_create", t);
            Ok(CreateContainerResponse { container_id })
        })
        .await
    }

    async fn start_container(
        &self,
        request: Request<StartContainerRequest>,
    ) -> Result<Response<StartContainerResponse>, Status> {
        let r = request.into_inner();
        handle("StartContainer", async {
            let t = std::time::Instant::now();
            // Detached like the creates: a client deadline must not drop a
            // start between Tasks.Create and the status update.
            let rt = self.runtime.clone();
            detached(async move { rt.start_container(&r.container_id).await }).await?;
            crate::metrics::phase("container_start", t);
            Ok(StartContainerResponse {})
        })
        .await
    }

    async fn stop_container(
        &self,
        request: Request<StopContainerRequest>,
    ) -> Result<Response<StopContainerResponse>, Status> {
        let r = request.into_inner();
        handle("StopContainer", async {
            self.runtime
                .stop_container(&r.container_id, r.timeout)
                .await?;
            Ok(StopContainerResponse {})
        })
        .await
    }

    async fn remove_container(
        &self,
        request: Request<RemoveContainerRequest>,
    ) -> Result<Response<RemoveContainerResponse>, Status> {
        let r = request.into_inner();
        handle("RemoveContainer", async {
            self.runtime.remove_container(&r.container_id).await?;
            Ok(RemoveContainerResponse {})
        })
        .await
    }

    async fn list_containers(
        &self,
        request: Request<ListContainersRequest>,
    ) -> Result<Response<ListContainersResponse>, Status> {
        let filter = request.into_inner().filter.unwrap_or_default();
        handle("ListContainers", async {
            Ok(ListContainersResponse {
                containers: self.containers(&filter),
            })
        })
        .await
    }

    async fn container_status(
        &self,
        request: Request<ContainerStatusRequest>,
    ) -> Result<Response<ContainerStatusResponse>, Status> {
        let r = request.into_inner();
        handle("ContainerStatus", async {
            let c = self.runtime.containers.get(&r.container_id)?;
            Ok(ContainerStatusResponse {
                status: Some(convert::container_status(&c)),
                info: if r.verbose {
                    convert::container_info(&c)
                } else {
                    Default::default()
                },
            })
        })
        .await
    }

    async fn update_container_resources(
        &self,
        request: Request<UpdateContainerResourcesRequest>,
    ) -> Result<Response<UpdateContainerResourcesResponse>, Status> {
        let r = request.into_inner();
        handle("UpdateContainerResources", async {
            let linux = r
                .linux
                .ok_or_else(|| Error::invalid("linux resources are required"))?;
            self.runtime
                .update_container_resources(&r.container_id, linux)
                .await?;
            Ok(UpdateContainerResourcesResponse {})
        })
        .await
    }

    async fn reopen_container_log(
        &self,
        request: Request<ReopenContainerLogRequest>,
    ) -> Result<Response<ReopenContainerLogResponse>, Status> {
        let r = request.into_inner();
        handle("ReopenContainerLog", async {
            self.runtime.reopen_container_log(&r.container_id).await?;
            Ok(ReopenContainerLogResponse {})
        })
        .await
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
        request: Request<ContainerStatsRequest>,
    ) -> Result<Response<ContainerStatsResponse>, Status> {
        let r = request.into_inner();
        handle("ContainerStats", async {
            Ok(ContainerStatsResponse {
                stats: Some(stats::container_stats(&self.runtime, &r.container_id).await?),
            })
        })
        .await
    }

    async fn list_container_stats(
        &self,
        request: Request<ListContainerStatsRequest>,
    ) -> Result<Response<ListContainerStatsResponse>, Status> {
        let f = request.into_inner().filter.unwrap_or_default();
        handle("ListContainerStats", async {
            Ok(ListContainerStatsResponse {
                stats: stats::list_container_stats(&self.runtime, f).await?,
            })
        })
        .await
    }

    async fn pod_sandbox_stats(
        &self,
        request: Request<PodSandboxStatsRequest>,
    ) -> Result<Response<PodSandboxStatsResponse>, Status> {
        let r = request.into_inner();
        handle("PodSandboxStats", async {
            Ok(PodSandboxStatsResponse {
                stats: Some(stats::pod_sandbox_stats(&self.runtime, &r.pod_sandbox_id).await?),
            })
        })
        .await
    }

    async fn list_pod_sandbox_stats(
        &self,
        request: Request<ListPodSandboxStatsRequest>,
    ) -> Result<Response<ListPodSandboxStatsResponse>, Status> {
        let f = request.into_inner().filter.unwrap_or_default();
        handle("ListPodSandboxStats", async {
            Ok(ListPodSandboxStatsResponse {
                stats: stats::list_pod_sandbox_stats(&self.runtime, f).await?,
            })
        })
        .await
    }

    async fn update_runtime_config(
        &self,
        request: Request<UpdateRuntimeConfigRequest>,
    ) -> Result<Response<UpdateRuntimeConfigResponse>, Status> {
        let r = request.into_inner();
        handle("UpdateRuntimeConfig", async {
            let cidr = r
                .runtime_config
                .and_then(|c| c.network_config)
                .map(|n| n.pod_cidr)
                .unwrap_or_default();
            self.runtime.update_pod_cidr(&cidr)?;
            Ok(UpdateRuntimeConfigResponse {})
        })
        .await
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
            let info = if verbose {
                self.runtime.status_info().await
            } else {
                Default::default()
            };
            let runtime_handlers = self
                .runtime
                .handlers
                .list()
                .into_iter()
                .map(|(name, f)| RuntimeHandler {
                    name,
                    features: Some(RuntimeHandlerFeatures {
                        recursive_read_only_mounts: f.recursive_read_only_mounts,
                        user_namespaces: f.user_namespaces,
                    }),
                })
                .collect();
            Ok(StatusResponse {
                status: Some(RuntimeStatus { conditions }),
                info,
                runtime_handlers,
                features: Some(RuntimeFeatures {
                    supplemental_groups_policy: true,
                    user_namespaces_host_network: false,
                }),
            })
        })
        .await
    }

    async fn checkpoint_container(
        &self,
        request: Request<CheckpointContainerRequest>,
    ) -> Result<Response<CheckpointContainerResponse>, Status> {
        let r = request.into_inner();
        handle("CheckpointContainer", async {
            self.runtime.checkpoint_container(&r.container_id)?;
            Ok(CheckpointContainerResponse {})
        })
        .await
    }

    async fn list_metric_descriptors(
        &self,
        _request: Request<ListMetricDescriptorsRequest>,
    ) -> Result<Response<ListMetricDescriptorsResponse>, Status> {
        handle("ListMetricDescriptors", async {
            Ok(ListMetricDescriptorsResponse {
                descriptors: metrics::descriptors(),
            })
        })
        .await
    }

    async fn list_pod_sandbox_metrics(
        &self,
        _request: Request<ListPodSandboxMetricsRequest>,
    ) -> Result<Response<ListPodSandboxMetricsResponse>, Status> {
        handle("ListPodSandboxMetrics", async {
            Ok(ListPodSandboxMetricsResponse {
                pod_metrics: metrics::list_pod_sandbox_metrics(&self.runtime).await?,
            })
        })
        .await
    }

    async fn stream_pod_sandboxes(
        &self,
        request: Request<StreamPodSandboxesRequest>,
    ) -> Result<Response<Self::StreamPodSandboxesStream>, Status> {
        let filter = request.into_inner().filter.unwrap_or_default();
        handle("StreamPodSandboxes", async {
            Ok(in_batches(self.pod_sandboxes(&filter), |pod_sandboxes| {
                StreamPodSandboxesResponse { pod_sandboxes }
            }))
        })
        .await
    }

    async fn stream_containers(
        &self,
        request: Request<StreamContainersRequest>,
    ) -> Result<Response<Self::StreamContainersStream>, Status> {
        let filter = request.into_inner().filter.unwrap_or_default();
        handle("StreamContainers", async {
            Ok(in_batches(self.containers(&filter), |containers| {
                StreamContainersResponse { containers }
            }))
        })
        .await
    }

    async fn stream_container_stats(
        &self,
        request: Request<StreamContainerStatsRequest>,
    ) -> Result<Response<Self::StreamContainerStatsStream>, Status> {
        let f = request.into_inner().filter.unwrap_or_default();
        handle("StreamContainerStats", async {
            let stats = stats::list_container_stats(&self.runtime, f).await?;
            Ok(in_batches(stats, |container_stats| {
                StreamContainerStatsResponse { container_stats }
            }))
        })
        .await
    }

    async fn stream_pod_sandbox_stats(
        &self,
        request: Request<StreamPodSandboxStatsRequest>,
    ) -> Result<Response<Self::StreamPodSandboxStatsStream>, Status> {
        let f = request.into_inner().filter.unwrap_or_default();
        handle("StreamPodSandboxStats", async {
            let stats = stats::list_pod_sandbox_stats(&self.runtime, f).await?;
            Ok(in_batches(stats, |pod_sandbox_stats| {
                StreamPodSandboxStatsResponse { pod_sandbox_stats }
            }))
        })
        .await
    }

    async fn stream_pod_sandbox_metrics(
        &self,
        _request: Request<StreamPodSandboxMetricsRequest>,
    ) -> Result<Response<Self::StreamPodSandboxMetricsStream>, Status> {
        handle("StreamPodSandboxMetrics", async {
            let metrics = metrics::list_pod_sandbox_metrics(&self.runtime).await?;
            Ok(in_batches(metrics, |pod_sandbox_metrics| {
                StreamPodSandboxMetricsResponse {
                    pod_sandbox_metrics,
                }
            }))
        })
        .await
    }

    async fn update_pod_sandbox_resources(
        &self,
        request: Request<UpdatePodSandboxResourcesRequest>,
    ) -> Result<Response<UpdatePodSandboxResourcesResponse>, Status> {
        let r = request.into_inner();
        handle("UpdatePodSandboxResources", async {
            self.runtime
                .update_pod_sandbox_resources(&r.pod_sandbox_id, r.overhead, r.resources)
                .await?;
            Ok(UpdatePodSandboxResourcesResponse {})
        })
        .await
    }

    async fn runtime_config(
        &self,
        _request: Request<RuntimeConfigRequest>,
    ) -> Result<Response<RuntimeConfigResponse>, Status> {
        handle("RuntimeConfig", async {
            let cgroup_driver = match self.runtime.cgroup_driver() {
                CgroupDriver::Cgroupfs => crate::cri::CgroupDriver::Cgroupfs,
                CgroupDriver::Systemd => crate::cri::CgroupDriver::Systemd,
            };
            Ok(RuntimeConfigResponse {
                linux: Some(LinuxRuntimeConfiguration {
                    cgroup_driver: cgroup_driver as i32,
                }),
            })
        })
        .await
    }
}
