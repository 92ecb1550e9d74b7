//! Pod user namespaces (KEP-127, `hostUsers: false`) on a real containerd:
//! the modes and mappings crid refuses (and that a refusal leaves nothing),
//! and pods in a user namespace of their own, with and without a pause
//! container: the mapping inside, who owns the image's files and the files
//! crid mounts in, a writable host-path volume, and a clean teardown.

mod support;

use crid::cri::*;
use support::pod::PodEnv;
use support::userns::*;
use support::*;

async fn run_pod_error(env: &PodEnv, pod: PodSandboxConfig, handler: &str) -> tonic::Status {
    env.rt()
        .await
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(pod),
            runtime_handler: handler.into(),
        })
        .await
        .unwrap_err()
}

async fn assert_no_sandboxes(env: &PodEnv) {
    let listed = env.sandboxes().await;
    assert!(listed.is_empty(), "sandboxes listed: {listed:?}");
}

/// critest's four refusals (CONTAINER and TARGET modes, two mappings, id 0
/// not mapped), and a pod's own user namespace with the host network: each
/// is InvalidArgument, and nothing is left behind (no sandbox, no netns or
/// other pin, no containerd object, no mount).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_user_namespace_options_are_refused_and_leave_nothing() {
    if missing_tools() {
        return;
    }
    let env = PodEnv::new().await;
    let one = vec![mapping(0, 1000, 100_000)];
    let two = vec![mapping(0, 1000, 100_000), mapping(0, 2000, 100_000)];
    let no_root = vec![mapping(1, 1000, 100_000)];
    let cases = [
        (
            "container",
            UserNamespace {
                mode: NamespaceMode::Container as i32,
                ..Default::default()
            },
        ),
        (
            "target",
            UserNamespace {
                mode: NamespaceMode::Target as i32,
                ..Default::default()
            },
        ),
        ("two-mappings", pod_mode(two.clone(), two)),
        ("no-root", pod_mode(no_root.clone(), no_root)),
        (
            "gid-no-root",
            pod_mode(one.clone(), vec![mapping(1, 1000, 10)]),
        ),
        ("no-mapping", pod_mode(vec![], vec![])),
    ];
    for (name, userns) in cases {
        let mut pod = env.pod_config(name);
        with_userns(&mut pod, userns);
        let err = run_pod_error(&env, pod, "").await;
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{name}: {err:?}");
        assert!(err.message().contains("userns_options"), "{name}: {err:?}");
    }
    let mut host_net = env.host_network_pod_config("hostnet");
    with_userns(&mut host_net, pod_mode(one.clone(), one));
    let err = run_pod_error(&env, host_net, "").await;
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert_no_sandboxes(&env).await;
    env.assert_no_leaks();
}

/// What a container in the pod's user namespace sees, line by line.
const PROBE: &str = "\
echo uid_map $(cat /proc/self/uid_map); \
echo gid_map $(cat /proc/self/gid_map); \
for f in / /bin/busybox /etc/hosts /etc/resolv.conf /etc/hostname /dev/shm /vol /vol/owned /iv/bin/busybox /iv2/data/a.txt /iv2/data/b.txt; do \
  echo owner $f $(stat -c %u:%g $f); done; \
touch /dev/shm/x && echo shm=rw; \
echo again > /dev/stdout && echo stdout=reopened; \
echo again > /dev/stderr && echo stderr=reopened; \
echo hello > /vol/written && echo vol=rw; \
echo host $(hostname); \
echo port_start $(cat /proc/sys/net/ipv4/ip_unprivileged_port_start); \
echo done";

/// A pod in a user namespace of its own, with (`with_pause`) or without a
/// pause container: its containers see the mapping; the image's root-owned
/// files, /etc/hosts, resolv.conf, hostname and /dev/shm are root's inside;
/// so are those of an image volume;
/// a host directory of the host's root (0755) is an idmapped mount: root's
/// inside, writable, and what the pod's root writes there is the host
/// root's; stdout and stderr can be opened again; the hostname (and, with a pause container, a net sysctl) is set
/// in namespaces the pod's user namespace owns. Two containers share one
/// user namespace and one chowned copy of the image. Stop and remove leave
/// nothing.
async fn pod_in_its_own_user_namespace(with_pause: bool, rootfs: Rootfs) {
    let env = PodEnv::with_options(rootfs.options()).await;
    let layered = two_layer_image(&env).await;
    let name = if with_pause {
        "userns-pause"
    } else {
        "userns-nopause"
    };
    let mut pod = if with_pause {
        env.pod_config(name)
    } else {
        env.pod_config_without_shared_pid(name)
    };
    with_userns(&mut pod, pod_userns());
    if with_pause {
        pod.linux
            .as_mut()
            .unwrap()
            .sysctls
            .insert("net.ipv4.ip_unprivileged_port_start".into(), "80".into());
    }
    let sid = env.run_pod(&pod).await;
    let user_pins = std::fs::read_dir(env.crid.state.join("userns"))
        .unwrap()
        .count();
    assert_eq!(user_pins, 1, "the pod's user namespace is pinned");

    // A host directory of the host's root, not writable by others.
    let vol = short_tempdir("vol");
    std::fs::set_permissions(
        vol.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(vol.path().join("owned"), "root's").unwrap();
    let probe = |cname: &str| {
        let mut c = env.container_config(cname, &["/bin/sh", "-c", PROBE]);
        c.mounts = vec![
            Mount {
                container_path: "/vol".into(),
                host_path: vol.path().to_string_lossy().into_owned(),
                ..Default::default()
            },
            // Image volumes: the test image itself (one layer), and one of
            // two layers.
            Mount {
                container_path: "/iv".into(),
                readonly: true,
                image: Some(ImageSpec {
                    image: env.image.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            Mount {
                container_path: "/iv2".into(),
                readonly: true,
                image: Some(ImageSpec {
                    image: layered.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ];
        // The pod's namespace options: its PID mode too (a PID namespace
        // per container without a pause container).
        in_pod_userns(c, &pod)
    };
    let mut texts = vec![];
    let mut ids = vec![];
    for cname in ["a", "b"] {
        let cfg = probe(cname);
        let log = std::path::Path::new(&pod.log_directory).join(&cfg.log_path);
        let cid = env.run(&sid, &pod, cfg).await;
        let st = env.wait_exited(&cid).await;
        let text = env.wait_for_file(&log, "done").await;
        assert_eq!(st.exit_code, 0, "{text}");
        texts.push(text);
        ids.push(cid);
    }
    for text in &texts {
        let want_map = format!("0 {HOST_ID} {SIZE}");
        for want in [
            format!("uid_map {want_map}"),
            format!("gid_map {want_map}"),
            "owner / 0:0".into(),
            "owner /bin/busybox 0:0".into(),
            "owner /etc/hosts 0:0".into(),
            "owner /etc/resolv.conf 0:0".into(),
            "owner /etc/hostname 0:0".into(),
            "owner /dev/shm 0:0".into(),
            "owner /vol 0:0".into(),
            "owner /vol/owned 0:0".into(),
            "owner /iv/bin/busybox 0:0".into(),
            "owner /iv2/data/a.txt 0:0".into(),
            "owner /iv2/data/b.txt 0:0".into(),
            "shm=rw".into(),
            "stdout=reopened".into(),
            "stderr=reopened".into(),
            "vol=rw".into(),
            format!("host {name}"),
        ] {
            assert!(text.contains(&want), "{want:?} in:\n{text}");
        }
    }
    if with_pause {
        assert!(texts[0].contains("port_start 80"), "{}", texts[0]);
    }
    let written = std::fs::metadata(vol.path().join("written")).unwrap();
    use std::os::unix::fs::MetadataExt;
    // Idmapped: the pod's root writes as the host's root.
    assert_eq!((written.uid(), written.gid()), (0, 0));
    // One dir of idmapped mounts per container, and the pod's when its
    // rootfs and image volume layers are idmapped.
    let idmapped_layers = matches!(rootfs, Rootfs::Idmapped);
    assert_eq!(
        std::fs::read_dir(env.crid.state.join("idmap"))
            .map(|d| d.count())
            .unwrap_or(0),
        2 + usize::from(idmapped_layers),
    );

    // One user namespace for the pod (and its pause process).
    let userns_of = |cid: &str| {
        let info = env.containerd.ctr(&["containers", "info", cid]);
        info.contains("\"type\": \"user\"")
    };
    assert!(ids.iter().all(|c| userns_of(c)), "containers join a userns");
    let snaps = env.containerd.ctr(&["snapshots", "ls"]);
    let copies = snaps
        .lines()
        .filter(|l| l.split_whitespace().next().unwrap().contains("-userns-"))
        .count();
    let idmapped = |id: &str| {
        let rootfs = env.crid.state.join("idmap").join(id).join("rootfs");
        mounts_under(&env.crid.state)
            .iter()
            .any(|m| m == rootfs.to_str().unwrap())
    };
    match rootfs {
        Rootfs::Idmapped => {
            assert_eq!(copies, 0, "no chowned copy:\n{snaps}");
            let layers = mounts_under(&env.crid.state.join("idmap").join(&sid));
            assert!(
                layers.iter().any(|m| m.contains("iv-")),
                "the two-layer image volume on idmapped layers: {layers:?}"
            );
            assert!(ids.iter().all(|c| idmapped(c)), "idmapped rootfs");
            assert_eq!(idmapped(&sid), with_pause, "the pause container's too");
        }
        Rootfs::Chowned => {
            // One per image (busybox, the image volume's, and the pause
            // image when there is a pause container), shared by the pod's
            // containers.
            let images = if with_pause { 3 } else { 2 };
            assert_eq!(copies, images, "one chowned copy per image:\n{snaps}");
            assert!(!ids.iter().any(|c| idmapped(c)));
        }
    }
    env.stop_and_remove_pod(&sid).await;
    env.assert_no_leaks();
}

/// How the rootfs of a pod in its own user namespace is made.
#[derive(Clone, Copy)]
enum Rootfs {
    /// An idmapped mount of the snapshot (the default where the kernel
    /// can idmap an overlay, as 6.18 here).
    Idmapped,
    /// A chowned copy of the image (`idmapped_rootfs = false`).
    Chowned,
}

impl Rootfs {
    fn options(self) -> CridOptions {
        match self {
            Rootfs::Idmapped => CridOptions::default(),
            Rootfs::Chowned => CridOptions {
                config_toml: Some("idmapped_rootfs = false\n".into()),
                ..Default::default()
            },
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_user_namespace_with_a_pause_container_idmapped() {
    if missing_tools() {
        return;
    }
    pod_in_its_own_user_namespace(true, Rootfs::Idmapped).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_user_namespace_without_a_pause_container_idmapped() {
    if missing_tools() {
        return;
    }
    pod_in_its_own_user_namespace(false, Rootfs::Idmapped).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_user_namespace_with_a_pause_container_chowned() {
    if missing_tools() {
        return;
    }
    pod_in_its_own_user_namespace(true, Rootfs::Chowned).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_user_namespace_without_a_pause_container_chowned() {
    if missing_tools() {
        return;
    }
    pod_in_its_own_user_namespace(false, Rootfs::Chowned).await;
}

/// NODE mode (and no `userns_options` at all) is the node's user namespace:
/// the container's uid_map is the host's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_mode_is_the_hosts_user_namespace() {
    if missing_tools() {
        return;
    }
    let env = PodEnv::new().await;
    let mut pod = env.pod_config("userns-node");
    with_userns(
        &mut pod,
        UserNamespace {
            mode: NamespaceMode::Node as i32,
            ..Default::default()
        },
    );
    let sid = env.run_pod(&pod).await;
    let cfg = in_pod_userns(
        env.container_config("n", &["/bin/sh", "-c", "cat /proc/self/uid_map; echo done"]),
        &pod,
    );
    let log = std::path::Path::new(&pod.log_directory).join(&cfg.log_path);
    let cid = env.run(&sid, &pod, cfg).await;
    env.wait_exited(&cid).await;
    let text = env.wait_for_file(&log, "done").await;
    let host = std::fs::read_to_string("/proc/self/uid_map").unwrap();
    for line in host.lines() {
        let want = line.split_whitespace().collect::<Vec<_>>().join(" ");
        let seen = text
            .lines()
            .any(|l| l.split_whitespace().skip(3).collect::<Vec<_>>().join(" ") == want);
        assert!(seen, "{want:?} in:\n{text}");
    }
    assert_eq!(
        std::fs::read_dir(env.crid.state.join("userns"))
            .map(|d| d.count())
            .unwrap_or(0),
        0,
        "no user namespace pinned"
    );
    env.stop_and_remove_pod(&sid).await;
    env.assert_no_leaks();
}

/// A container that names another mapping than its pod's, or the node's
/// user namespace in a pod of its own, is refused (InvalidArgument) and
/// leaves nothing; the pod is unharmed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_must_share_its_pods_user_namespace() {
    if missing_tools() {
        return;
    }
    let env = PodEnv::new().await;
    let mut pod = env.pod_config_without_shared_pid("userns-other");
    with_userns(&mut pod, pod_userns());
    let sid = env.run_pod(&pod).await;
    let other = vec![mapping(0, HOST_ID + SIZE, SIZE)];
    for (what, userns) in [
        ("other mapping", pod_mode(other.clone(), other)),
        (
            "node",
            UserNamespace {
                mode: NamespaceMode::Node as i32,
                ..Default::default()
            },
        ),
    ] {
        let mut own = pod.clone();
        with_userns(&mut own, userns);
        let cfg = in_pod_userns(env.container_config("x", &["/bin/true"]), &own);
        let err = env.create_err(&sid, &pod, cfg).await;
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{what}: {err:?}");
    }
    let listed = env.containers().await;
    assert!(listed.is_empty(), "{listed:?}");
    env.stop_and_remove_pod(&sid).await;
    env.assert_no_leaks();
}

/// `Status`: handlers on containerd's runc shim or crid's support user
/// namespaces, and the verbose config names crid's state dir as
/// `stateDir`, where critest probes idmapped mounts (at its parent).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_advertises_user_namespaces_and_the_state_dir() {
    if missing_tools() {
        return;
    }
    let env = PodEnv::new().await;
    let status = env
        .rt()
        .await
        .status(StatusRequest { verbose: true })
        .await
        .unwrap()
        .into_inner();
    for h in &status.runtime_handlers {
        assert!(
            h.features.is_some_and(|f| f.user_namespaces),
            "{:?} supports user namespaces",
            h.name
        );
    }
    let config: serde_json::Value = serde_json::from_str(&status.info["config"]).unwrap();
    assert_eq!(
        config["stateDir"].as_str(),
        Some(env.crid.state.to_str().unwrap()),
        "{config}"
    );
}

/// A pod in its own user namespace survives a crid restart: a container
/// created afterwards joins the same namespace; teardown after the restart
/// leaves nothing. The image's chowned copy is referenced from the image's
/// config blob, and goes (containerd's GC) when the image is removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_the_pods_user_namespace_and_the_copy_goes_with_its_image() {
    if missing_tools() {
        return;
    }
    let mut env = PodEnv::with_options(Rootfs::Chowned.options()).await;
    restart_keeps_the_pods_user_namespace(&mut env, false).await;

    let copies = || {
        env.containerd
            .ctr(&["snapshots", "ls"])
            .lines()
            .filter(|l| l.split_whitespace().next().unwrap().contains("-userns-"))
            .count()
    };
    // A synchronous GC (deleting a lease with --sync) keeps it: the
    // image's config blob references it.
    let lease = env.containerd.ctr(&["leases", "create"]);
    let lease = lease.split_whitespace().next().unwrap().to_string();
    env.containerd.ctr(&["leases", "delete", "--sync", &lease]);
    assert_eq!(copies(), 1, "kept for the next pod with this mapping");
    let content = env.containerd.ctr(&["content", "ls"]);
    assert!(
        content.contains("containerd.io/gc.ref.snapshot.overlayfs/userns-"),
        "{content}"
    );
    env.remove_image(&env.image).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while copies() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "copy not collected:\n{}",
            env.containerd.ctr(&["snapshots", "ls"])
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// The same across a restart with idmapped rootfs mounts and a pause
/// container: they stay mounted for the running containers, and go with
/// the pod.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_an_idmapped_pod() {
    if missing_tools() {
        return;
    }
    let mut env = PodEnv::new().await;
    restart_keeps_the_pods_user_namespace(&mut env, true).await;
}

/// A pod in its own user namespace, a container running in it, a crid
/// restart: the namespace is still pinned, a container created afterwards
/// joins the same one, with root's files root's; teardown after the
/// restart leaves nothing.
async fn restart_keeps_the_pods_user_namespace(env: &mut PodEnv, with_pause: bool) {
    let mut pod = if with_pause {
        env.pod_config("userns-restart")
    } else {
        env.pod_config_without_shared_pid("userns-restart")
    };
    with_userns(&mut pod, pod_userns());
    let sid = env.run_pod(&pod).await;
    let pin = std::fs::read_dir(env.crid.state.join("userns"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let ino =
        |p: &std::path::Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
    let before = ino(&pin);
    let running = in_pod_userns(env.container_config("before", &["sleep", "1000"]), &pod);
    let running = env.run(&sid, &pod, running).await;
    env.crid.stop();
    env.crid.restart();
    assert_eq!(ino(&pin), before, "still pinned");
    let st = env.status(&running).await;
    assert_eq!(st.state, ContainerState::ContainerRunning as i32);
    // An exec joins the container's namespaces, its user namespace too,
    // and can reopen its own stdout.
    let exec = env
        .rt()
        .await
        .exec_sync(ExecSyncRequest {
            container_id: running.clone(),
            cmd: [
                "/bin/sh",
                "-c",
                "id -u; cat /proc/self/uid_map; echo x > /dev/stdout",
            ]
            .map(String::from)
            .to_vec(),
            timeout: 10,
        })
        .await
        .unwrap()
        .into_inner();
    let out = String::from_utf8_lossy(&exec.stdout).to_string();
    assert_eq!(
        exec.exit_code,
        0,
        "{out} {}",
        String::from_utf8_lossy(&exec.stderr)
    );
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(
        words,
        ["0", "0", &HOST_ID.to_string(), &SIZE.to_string(), "x"]
    );

    let script = "echo uid_map $(cat /proc/self/uid_map); readlink /proc/self/ns/user; \
                  echo owner $(stat -c %u:%g /bin/busybox); echo done";
    let cfg = in_pod_userns(
        env.container_config("after", &["/bin/sh", "-c", script]),
        &pod,
    );
    let log = std::path::Path::new(&pod.log_directory).join(&cfg.log_path);
    let cid = env.run(&sid, &pod, cfg).await;
    env.wait_exited(&cid).await;
    let text = env.wait_for_file(&log, "done").await;
    for want in [
        format!("uid_map 0 {HOST_ID} {SIZE}"),
        format!("user:[{before}]"),
        "owner 0:0".into(),
    ] {
        assert!(text.contains(&want), "{want:?} in {text}");
    }
    env.stop_and_remove_pod(&sid).await;
    env.assert_no_leaks();
}

/// An image of two layers (`data/a.txt`, `data/b.txt`, root's), pushed and
/// pulled: an image volume's view of it is an overlay.
async fn two_layer_image(env: &PodEnv) -> String {
    use support::image::{build_layout, layer_tar, Entry, ImageConfig, Layer};
    let dir = short_tempdir("layers");
    let layers = [("a.txt", "first"), ("b.txt", "second")].map(|(name, text)| Layer {
        tar: layer_tar(&[
            Entry::Dir("data/"),
            Entry::File(format!("data/{name}"), text.into(), 0o644),
        ]),
        gzip: false,
    });
    let built = build_layout(
        &dir.path().join("img"),
        "v1",
        &layers,
        &ImageConfig::default(),
        "amd64",
    );
    let name = env.registry.push(&built, "layered", "v1", None);
    env.pull(&name).await
}

/// A container with a terminal, and one with stdin open and no terminal
/// (FIFO stdio), in a pod of its own user namespace: both run, their
/// stdio is the pod root's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminal_and_stdin_containers_in_a_pods_user_namespace() {
    if missing_tools() {
        return;
    }
    let env = PodEnv::new().await;
    let mut pod = env.pod_config_without_shared_pid("userns-tty");
    with_userns(&mut pod, pod_userns());
    let sid = env.run_pod(&pod).await;
    // stat's own stdin and stdout (a command substitution's would be a
    // pipe of the shell's).
    let script = "stat -L -c 'fd0 %u:%g' /proc/self/fd/0; \
                  stat -L -c 'fd1 %u:%g' /proc/self/fd/1; echo done";
    for (name, tty, stdin) in [("tty", true, true), ("stdin", false, true)] {
        let mut cfg = in_pod_userns(env.container_config(name, &["/bin/sh", "-c", script]), &pod);
        cfg.tty = tty;
        cfg.stdin = stdin;
        let log = std::path::Path::new(&pod.log_directory).join(&cfg.log_path);
        let cid = env.run(&sid, &pod, cfg).await;
        let text = env.wait_for_file(&log, "done").await;
        for want in ["fd0 0:", "fd1 0:"] {
            assert!(text.contains(want), "{name}: {want:?} in {text}");
        }
        let _ = env
            .rt()
            .await
            .stop_container(StopContainerRequest {
                container_id: cid,
                timeout: 0,
            })
            .await;
    }
    env.stop_and_remove_pod(&sid).await;
    env.assert_no_leaks();
}
