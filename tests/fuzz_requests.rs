//! Property test: ≥ 10,000 generated CRI requests, mostly invalid (random
//! and boundary strings, NUL bytes, "../", huge numbers, random ids and
//! enums), thrown at a running crid. Properties: crid never panics and still
//! answers Version; every invalid request gets an error; nothing is created.
//! Seeded (`CRID_FUZZ_SEED`, default fixed) so a failure is reproducible.

mod support;

use crid::cri::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use support::*;

const REQUESTS: usize = 10_000;

struct Gen {
    rng: StdRng,
}

impl Gen {
    fn string(&mut self) -> String {
        match self.rng.gen_range(0..14) {
            0 => String::new(),
            1 => "../../../etc/passwd".into(),
            2 => "a\0b".into(),
            3 => "x".repeat(self.rng.gen_range(254..70_000)),
            4 => "ünï\u{202e}cødé/..".into(),
            5 => self.hex(64),
            6 => {
                let n = self.rng.gen_range(1..12);
                self.hex(n)
            }
            7 => "/abs/path\n/second".into(),
            8 => " ".into(),
            9 => "-".into(),
            10 => "valid-name".into(),
            11 => "kubernetes.io/config.seen".into(),
            12 => "\u{0}\u{0}".into(),
            _ => (0..self.rng.gen_range(1..40))
                .map(|_| self.rng.gen_range(0x20u8..0x7f) as char)
                .collect(),
        }
    }

    fn hex(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from_digit(self.rng.gen_range(0..16), 16).unwrap())
            .collect()
    }

    fn int(&mut self) -> i64 {
        match self.rng.gen_range(0..8) {
            0 => 0,
            1 => -1,
            2 => i64::MAX,
            3 => i64::MIN,
            4 => 262_145,
            5 => 65_536,
            6 => self.rng.gen(),
            _ => self.rng.gen_range(-10..100_000),
        }
    }

    fn int32(&mut self) -> i32 {
        match self.rng.gen_range(0..5) {
            0 => i32::MAX,
            1 => i32::MIN,
            2 => -1,
            3 => 65_536,
            _ => self.rng.gen_range(-5..70_000),
        }
    }

    fn map(&mut self) -> HashMap<String, String> {
        (0..self.rng.gen_range(0..3))
            .map(|_| (self.string(), self.string()))
            .collect()
    }

    fn resources(&mut self) -> LinuxContainerResources {
        LinuxContainerResources {
            cpu_period: self.int(),
            cpu_quota: self.int(),
            cpu_shares: self.int(),
            memory_limit_in_bytes: self.int(),
            oom_score_adj: self.int(),
            cpuset_cpus: self.string(),
            cpuset_mems: self.string(),
            memory_swap_limit_in_bytes: self.int(),
            unified: self.map(),
            ..Default::default()
        }
    }

    /// A pod config with random fields and at least one surely-invalid one.
    fn broken_pod(&mut self) -> PodSandboxConfig {
        let mut c = PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: self.string(),
                uid: self.string(),
                namespace: self.string(),
                attempt: self.rng.gen(),
            }),
            hostname: self.string(),
            log_directory: self.string(),
            labels: self.map(),
            annotations: self.map(),
            port_mappings: vec![PortMapping {
                protocol: self.int32(),
                container_port: self.int32(),
                host_port: self.int32(),
                host_ip: self.string(),
            }],
            linux: Some(LinuxPodSandboxConfig {
                cgroup_parent: self.string(),
                sysctls: self.map(),
                resources: Some(self.resources()),
                ..Default::default()
            }),
            ..Default::default()
        };
        match self.rng.gen_range(0..6) {
            0 => c.metadata = None,
            1 => c.metadata.as_mut().unwrap().name = "a/../b".into(),
            2 => c.log_directory = "relative".into(),
            3 => c.hostname = "h\nx".into(),
            4 => {
                c.linux
                    .as_mut()
                    .unwrap()
                    .sysctls
                    .insert("kernel.panic".into(), "1".into());
            }
            _ => c.metadata.as_mut().unwrap().uid = String::new(),
        }
        c
    }

    fn container(&mut self) -> ContainerConfig {
        ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: self.string(),
                attempt: self.rng.gen(),
            }),
            image: Some(ImageSpec {
                image: self.string(),
                ..Default::default()
            }),
            command: vec![self.string()],
            working_dir: self.string(),
            log_path: self.string(),
            mounts: vec![Mount {
                container_path: self.string(),
                host_path: self.string(),
                propagation: self.int32(),
                ..Default::default()
            }],
            linux: Some(LinuxContainerConfig {
                resources: Some(self.resources()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn id(&mut self) -> String {
        if self.rng.gen_bool(0.5) {
            self.hex(64)
        } else {
            self.string()
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_bad_requests_change_nothing_and_crash_nothing() {
    if missing_tools() {
        return;
    }
    let seed: u64 = std::env::var("CRID_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_c21d);
    let containerd = TestContainerd::start();
    let crid = TestCrid::start(&containerd);
    let mut rt = crid.runtime().await;
    let mut img = crid.images().await;
    // crid imports its own pause image in the background at start: not counted.
    let user_images = |images: Vec<Image>| {
        images
            .into_iter()
            .filter(|i| !i.repo_tags.iter().any(|t| t.contains("pause")))
            .count()
    };
    let images_before = user_images(
        img.list_images(ListImagesRequest::default())
            .await
            .unwrap()
            .into_inner()
            .images,
    );
    let mut g = Gen {
        rng: StdRng::seed_from_u64(seed),
    };
    let mut ok_when_invalid = Vec::new();
    for i in 0..REQUESTS {
        let kind = g.rng.gen_range(0..16);
        // (result is Ok, request may legitimately succeed)
        let (ok, may_succeed, what) = match kind {
            0 => {
                let r = rt
                    .run_pod_sandbox(RunPodSandboxRequest {
                        config: Some(g.broken_pod()),
                        runtime_handler: if g.rng.gen_bool(0.2) {
                            g.string()
                        } else {
                            String::new()
                        },
                    })
                    .await;
                (r.is_ok(), false, "RunPodSandbox")
            }
            1 => {
                let r = rt
                    .create_container(CreateContainerRequest {
                        pod_sandbox_id: g.id(),
                        config: Some(g.container()),
                        sandbox_config: Some(g.broken_pod()),
                    })
                    .await;
                (r.is_ok(), false, "CreateContainer")
            }
            2 => {
                let id = g.id();
                let r = rt
                    .pod_sandbox_status(PodSandboxStatusRequest {
                        pod_sandbox_id: id,
                        verbose: g.rng.gen(),
                    })
                    .await;
                (r.is_ok(), false, "PodSandboxStatus")
            }
            3 => {
                let id = g.id();
                let r = rt
                    .container_status(ContainerStatusRequest {
                        container_id: id,
                        verbose: g.rng.gen(),
                    })
                    .await;
                (r.is_ok(), false, "ContainerStatus")
            }
            4 => {
                let id = g.id();
                // Idempotent: any non-empty id that names nothing succeeds.
                let may_succeed = !id.is_empty();
                let r = rt
                    .stop_pod_sandbox(StopPodSandboxRequest { pod_sandbox_id: id })
                    .await;
                (r.is_ok(), may_succeed, "StopPodSandbox")
            }
            5 => {
                let id = g.id();
                // Idempotent: any non-empty id that names nothing succeeds.
                let may_succeed = !id.is_empty();
                let r = rt
                    .remove_pod_sandbox(RemovePodSandboxRequest { pod_sandbox_id: id })
                    .await;
                (r.is_ok(), may_succeed, "RemovePodSandbox")
            }
            6 => {
                let id = g.id();
                // Idempotent: any non-empty id that names nothing succeeds.
                let may_succeed = !id.is_empty();
                let r = rt
                    .stop_container(StopContainerRequest {
                        container_id: id,
                        timeout: g.int(),
                    })
                    .await;
                (r.is_ok(), may_succeed, "StopContainer")
            }
            7 => {
                let id = g.id();
                // Idempotent: any non-empty id that names nothing succeeds.
                let may_succeed = !id.is_empty();
                let r = rt
                    .remove_container(RemoveContainerRequest { container_id: id })
                    .await;
                (r.is_ok(), may_succeed, "RemoveContainer")
            }
            8 => {
                let r = rt
                    .list_pod_sandbox(ListPodSandboxRequest {
                        filter: Some(PodSandboxFilter {
                            id: g.string(),
                            state: Some(PodSandboxStateValue { state: g.int32() }),
                            label_selector: g.map(),
                        }),
                    })
                    .await;
                let empty = r.as_ref().map(|r| r.get_ref().items.is_empty());
                assert_ne!(empty.ok(), Some(false), "a pod appeared");
                (r.is_ok(), true, "ListPodSandbox")
            }
            9 => {
                let r = rt
                    .list_containers(ListContainersRequest {
                        filter: Some(ContainerFilter {
                            id: g.string(),
                            state: Some(ContainerStateValue { state: g.int32() }),
                            pod_sandbox_id: g.string(),
                            label_selector: g.map(),
                        }),
                    })
                    .await;
                (r.is_ok(), true, "ListContainers")
            }
            10 => {
                let r = img
                    .image_status(ImageStatusRequest {
                        image: Some(ImageSpec {
                            image: g.string(),
                            ..Default::default()
                        }),
                        verbose: g.rng.gen(),
                    })
                    .await;
                if let Ok(r) = &r {
                    assert!(r.get_ref().image.is_none(), "junk ref resolved");
                }
                // CRI: an unknown (well-formed) image is OK with no image.
                (r.is_ok(), true, "ImageStatus")
            }
            11 => {
                let r = rt
                    .exec_sync(ExecSyncRequest {
                        container_id: g.id(),
                        cmd: vec![g.string()],
                        timeout: g.int(),
                    })
                    .await;
                (r.is_ok(), false, "ExecSync")
            }
            12 => {
                let r = rt
                    .update_container_resources(UpdateContainerResourcesRequest {
                        container_id: g.id(),
                        linux: Some(g.resources()),
                        ..Default::default()
                    })
                    .await;
                (r.is_ok(), false, "UpdateContainerResources")
            }
            13 => {
                let r = rt
                    .exec(ExecRequest {
                        container_id: g.id(),
                        cmd: vec![g.string()],
                        stdout: g.rng.gen(),
                        stdin: g.rng.gen(),
                        tty: g.rng.gen(),
                        stderr: g.rng.gen(),
                    })
                    .await;
                (r.is_ok(), false, "Exec")
            }
            14 => {
                let r = rt
                    .port_forward(PortForwardRequest {
                        pod_sandbox_id: g.id(),
                        port: vec![g.int32()],
                    })
                    .await;
                (r.is_ok(), false, "PortForward")
            }
            _ => {
                let r = rt
                    .container_stats(ContainerStatsRequest {
                        container_id: g.id(),
                    })
                    .await;
                (r.is_ok(), false, "ContainerStats")
            }
        };
        if ok && !may_succeed {
            ok_when_invalid.push(format!("#{i} {what}"));
        }
    }
    assert_eq!(
        ok_when_invalid,
        Vec::<String>::new(),
        "invalid requests accepted (seed {seed:#x})"
    );

    // Still alive, still empty.
    let v = rt.version(VersionRequest::default()).await.unwrap();
    assert_eq!(v.into_inner().runtime_name, "crid");
    assert!(rt
        .list_pod_sandbox(ListPodSandboxRequest::default())
        .await
        .unwrap()
        .into_inner()
        .items
        .is_empty());
    assert!(rt
        .list_containers(ListContainersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .containers
        .is_empty());
    let images_after = user_images(
        img.list_images(ListImagesRequest::default())
            .await
            .unwrap()
            .into_inner()
            .images,
    );
    assert_eq!(images_after, images_before);
    let netns = std::fs::read_dir(crid.state.join("netns"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(netns, 0, "netns files appeared");
    let ctr = containerd.ctr(&["containers", "ls", "-q"]);
    assert!(
        ctr.trim().is_empty(),
        "containerd containers appeared: {ctr}"
    );
    assert!(!crid.log().contains("panicked"), "crid panicked");
}
