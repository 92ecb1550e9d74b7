//! cridctl: a small CRI client for crid's socket (or any CRI endpoint), for
//! demos and debugging where crictl is not installed. Prints JSON.

use clap::{Parser, Subcommand};
use crid::cri::image_service_client::ImageServiceClient;
use crid::cri::runtime_service_client::RuntimeServiceClient;
use crid::cri::*;
use std::collections::HashMap;
use tonic::transport::Channel;

#[derive(Parser)]
#[command(name = "cridctl", version, about = "Minimal CRI client")]
struct Cli {
    /// CRI endpoint, unix:///path.
    #[arg(long, short = 'r', default_value = "unix:///run/crid/crid.sock")]
    runtime_endpoint: String,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    Version,
    Status,
    /// Pull an image.
    Pull {
        image: String,
    },
    Images,
    /// List pod sandboxes.
    Pods,
    /// List containers.
    Ps,
    /// Run a pod with one container: NAME IMAGE -- CMD...
    Run {
        name: String,
        image: String,
        #[arg(long, default_value = "default")]
        namespace: String,
        #[arg(long, default_value = "/var/log/pods")]
        log_root: String,
        #[arg(last = true)]
        cmd: Vec<String>,
    },
    /// Stop and remove a pod sandbox.
    Rmp {
        id: String,
    },
    /// Run a command in a container and print its output.
    Exec {
        id: String,
        #[arg(last = true)]
        cmd: Vec<String>,
    },
    /// Write the layer of crid's built-in pause image (a tar holding
    /// `/pause`) to PATH, to push that image to a registry: crid recognises
    /// it by this layer. Needs no endpoint.
    PauseLayer {
        path: std::path::PathBuf,
    },
}

async fn channel(endpoint: &str) -> anyhow::Result<Channel> {
    Ok(crid::util::unix_grpc::connect(&crid::util::unix_grpc::socket_path(endpoint)).await?)
}

fn print<T: serde::Serialize>(v: &T) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Cmd::PauseLayer { path } = &cli.command {
        std::fs::write(path, crid::image::builtin_pause_layer())?;
        return Ok(());
    }
    let ch = channel(&cli.runtime_endpoint).await?;
    let mut rt = RuntimeServiceClient::new(ch.clone());
    let mut img = ImageServiceClient::new(ch);
    match cli.command {
        Cmd::Version => print(&rt.version(VersionRequest::default()).await?.into_inner()),
        Cmd::Status => print(
            &rt.status(StatusRequest { verbose: false })
                .await?
                .into_inner(),
        ),
        Cmd::Pull { image } => print(
            &img.pull_image(PullImageRequest {
                image: Some(ImageSpec {
                    image,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await?
            .into_inner(),
        ),
        Cmd::Images => print(
            &img.list_images(ListImagesRequest::default())
                .await?
                .into_inner(),
        ),
        Cmd::Pods => print(
            &rt.list_pod_sandbox(ListPodSandboxRequest::default())
                .await?
                .into_inner(),
        ),
        Cmd::Ps => print(
            &rt.list_containers(ListContainersRequest::default())
                .await?
                .into_inner(),
        ),
        Cmd::Run {
            name,
            image,
            namespace,
            log_root,
            cmd,
        } => {
            let uid = format!("{name}-uid");
            let log_directory = format!("{log_root}/{namespace}_{name}_{uid}");
            let pod = PodSandboxConfig {
                metadata: Some(PodSandboxMetadata {
                    name: name.clone(),
                    uid,
                    namespace,
                    attempt: 0,
                }),
                hostname: name.clone(),
                log_directory: log_directory.clone(),
                labels: HashMap::from([("app".to_string(), name.clone())]),
                linux: Some(LinuxPodSandboxConfig::default()),
                ..Default::default()
            };
            let sandbox_id = rt
                .run_pod_sandbox(RunPodSandboxRequest {
                    config: Some(pod.clone()),
                    runtime_handler: String::new(),
                })
                .await?
                .into_inner()
                .pod_sandbox_id;
            let container_id = rt
                .create_container(CreateContainerRequest {
                    pod_sandbox_id: sandbox_id.clone(),
                    config: Some(ContainerConfig {
                        metadata: Some(ContainerMetadata {
                            name: name.clone(),
                            attempt: 0,
                        }),
                        image: Some(ImageSpec {
                            image,
                            ..Default::default()
                        }),
                        command: cmd,
                        log_path: format!("{name}/0.log"),
                        linux: Some(LinuxContainerConfig::default()),
                        ..Default::default()
                    }),
                    sandbox_config: Some(pod),
                })
                .await?
                .into_inner()
                .container_id;
            rt.start_container(StartContainerRequest {
                container_id: container_id.clone(),
            })
            .await?;
            let status = rt
                .pod_sandbox_status(PodSandboxStatusRequest {
                    pod_sandbox_id: sandbox_id.clone(),
                    verbose: false,
                })
                .await?
                .into_inner();
            print(&serde_json::json!({
                "pod_sandbox_id": sandbox_id,
                "container_id": container_id,
                "pod_ip": status.status.and_then(|s| s.network).map(|n| n.ip),
                "log": format!("{log_directory}/{name}/0.log"),
            }));
        }
        Cmd::Rmp { id } => {
            rt.stop_pod_sandbox(StopPodSandboxRequest {
                pod_sandbox_id: id.clone(),
            })
            .await?;
            rt.remove_pod_sandbox(RemovePodSandboxRequest { pod_sandbox_id: id })
                .await?;
        }
        Cmd::Exec { id, cmd } => {
            let r = rt
                .exec_sync(ExecSyncRequest {
                    container_id: id,
                    cmd,
                    timeout: 30,
                })
                .await?
                .into_inner();
            print!("{}", String::from_utf8_lossy(&r.stdout));
            eprint!("{}", String::from_utf8_lossy(&r.stderr));
            std::process::exit(r.exit_code);
        }
        // Written above, without an endpoint.
        Cmd::PauseLayer { .. } => {}
    }
    Ok(())
}
