//! Pods on crid's own shim (`containerd-shim-crid-v1`, runtime type
//! `io.containerd.crid.v1`), chosen by a runtime handler, on a real
//! containerd: exit codes, CRI logs written by the shim itself (no
//! crid-logger process), exec, one shim process per pod, and nothing left
//! behind.

mod support;

use crid::cri::*;
use std::path::Path;
use support::pod::{attach_url, in_own_pid_namespace, log_contents, log_path, parse_log, PodEnv};
use support::*;

const SHIM: &str = CRID_SHIM;
const HANDLER: &str = "crid-shim";

/// A node whose containerd finds crid's shim on its PATH, and whose crid
/// has a `crid-shim` runtime handler for it. The returned dir holds the
/// shim's link; keep it while the node runs.
async fn node() -> (PodEnv, tempfile::TempDir) {
    let bin = crid_shim_bin_dir();
    let containerd = TestContainerd::start_with_path_first(bin.path());
    let opts = CridOptions {
        // Both shims, by handler name; a pod without one is on runc's.
        config_toml: Some(format!(
            "[containerd]\ndefault_runtime = \"runc\"\n\
             [containerd.runtimes.runc]\nruntime_type = \"io.containerd.runc.v2\"\n\
             [containerd.runtimes.{HANDLER}]\nruntime_type = \"io.containerd.crid.v1\"\n"
        )),
        ..Default::default()
    };
    (PodEnv::on_containerd(containerd, opts).await, bin)
}

fn entry(stream: &str, tag: &str, content: &str) -> (String, String, String) {
    (stream.into(), tag.into(), content.into())
}

/// crid-logger processes on the machine writing into `dir`.
fn loggers_writing_under(dir: &Path) -> Vec<u32> {
    let needle = dir.to_string_lossy().into_owned();
    pids_whose_cmdline(|args| {
        let cmd = String::from_utf8_lossy(&args.join(&b' ')).into_owned();
        cmd.contains("crid-logger") && cmd.contains(&needle)
    })
}

/// The socket a shim serves on (its `-socket unix://…` argument).
fn shim_socket(pid: u32) -> std::path::PathBuf {
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let args: Vec<String> = cmd
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let at = args.iter().position(|a| a == "-socket").unwrap();
    args[at + 1].trim_start_matches("unix://").into()
}

/// How containerd took `start`'s reply for the tasks `ids` served by the
/// shim `pid`. containerd 2.x sent `BootstrapParams` and got the versioned
/// result: its `bootstrap.json` (what it parsed, and reconnects with
/// after a restart) says task API 3 over ttrpc, at a socket in its
/// `socket_dir`. containerd 1.6 got the plain address (2.x would have
/// recorded version 2 for it). Either way the bundle's `address` file,
/// which the shim's `delete` reads, holds the plain address.
fn assert_started_for_this_containerd(env: &PodEnv, pid: u32, ids: &[&str]) {
    let socket = shim_socket(pid);
    let address = format!("unix://{}", socket.display());
    let containerd = &env.containerd;
    for id in ids {
        let bundle = containerd.task_bundle(id);
        let written = std::fs::read_to_string(bundle.join("address")).unwrap();
        assert_eq!(written, address, "{id}'s address file");
        let bootstrap = std::fs::read(bundle.join("bootstrap.json"));
        if containerd.is_containerd2() {
            let parsed: serde_json::Value = serde_json::from_slice(&bootstrap.unwrap()).unwrap();
            assert_eq!(
                parsed,
                serde_json::json!({"version": 3, "address": address, "protocol": "ttrpc"}),
                "{id}"
            );
        } else {
            assert!(
                bootstrap.is_err(),
                "containerd 1.6 writes no bootstrap.json"
            );
        }
    }
    let socket_dir = match containerd.is_containerd2() {
        true => containerd.shim_socket_dir(),
        false => Path::new("/run/containerd/s").to_path_buf(),
    };
    assert_eq!(socket.parent(), Some(socket_dir.as_path()));
}

/// Stop and remove the pods; then no shim, no leak of any kind is left.
async fn remove_and_check(env: &PodEnv, sids: &[&str]) {
    for sid in sids {
        env.stop_and_remove_pod(sid).await;
    }
    assert_eq!(wait_no_shims(env).await, Vec::<u32>::new(), "shim left");
    env.assert_no_leaks();
}

/// Shim processes gone, within a bounded wait (containerd shuts the shim
/// down right after the last task's delete).
async fn wait_no_shims(env: &PodEnv) -> Vec<u32> {
    for _ in 0..100 {
        let left = env.containerd.shim_pids_of(SHIM);
        if left.is_empty() {
            return left;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    env.containerd.shim_pids_of(SHIM)
}

async fn exec_sync(env: &PodEnv, cid: &str, cmd: &[&str]) -> ExecSyncResponse {
    env.rt()
        .await
        .exec_sync(ExecSyncRequest {
            container_id: cid.to_string(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: 20,
        })
        .await
        .expect("ExecSync")
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_on_crids_shim_logs_exits_and_execs_in_one_shim_process() {
    if missing_tools() {
        return;
    }
    let (env, _bin) = node().await;
    let pod = env.pod_config("onshim");
    let sid = env.run_pod_on(&pod, HANDLER).await;

    // Output straight into the CRI log, a 40 KiB line split at 16 KiB, the
    // exit code as the process gave it.
    let cfg = env.container_config(
        "fails",
        &[
            "/bin/sh",
            "-c",
            "echo to-stdout; echo to-stderr >&2; head -c 40960 /dev/zero | tr '\\0' x; echo; exit 3",
        ],
    );
    let path = log_path(&pod, &cfg);
    let failed = env.run(&sid, &pod, cfg).await;
    let st = env.wait_exited(&failed).await;
    assert_eq!((st.exit_code, st.reason.as_str()), (3, "Error"));
    // The shim publishes the exit after the output reached the log.
    let lines = parse_log(&std::fs::read_to_string(&path).unwrap());
    assert!(
        lines.contains(&entry("stdout", "F", "to-stdout")),
        "{lines:?}"
    );
    assert!(
        lines.contains(&entry("stderr", "F", "to-stderr")),
        "{lines:?}"
    );
    let long: Vec<_> = lines.iter().filter(|l| l.2.starts_with('x')).collect();
    let tags: Vec<&str> = long.iter().map(|l| l.1.as_str()).collect();
    assert_eq!(tags, ["P", "P", "F"]);
    assert_eq!(long[0].2.len(), 16 * 1024);
    let joined: String = long.iter().map(|l| l.2.as_str()).collect();
    assert_eq!(joined, "x".repeat(40960));

    // A long-running container: exec with its output and exit code.
    let cfg = env.container_config("sleeper", &["sleep", "3600"]);
    let sleeper = env.run(&sid, &pod, cfg).await;
    let r = exec_sync(
        &env,
        &sleeper,
        &["sh", "-c", "echo out; echo err >&2; exit 4"],
    )
    .await;
    assert_eq!(
        (r.stdout.as_slice(), r.stderr.as_slice(), r.exit_code),
        (&b"out\n"[..], &b"err\n"[..], 4)
    );
    let r = exec_sync(&env, &sleeper, &["cat", "/proc/1/cmdline"]).await;
    assert_eq!(r.exit_code, 0);

    // Update, stats and pids through the shim.
    env.rt()
        .await
        .update_container_resources(UpdateContainerResourcesRequest {
            container_id: sleeper.clone(),
            linux: Some(LinuxContainerResources {
                memory_limit_in_bytes: 96 << 20,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("UpdateContainerResources");
    let limit = "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max";
    let r = exec_sync(&env, &sleeper, &["sh", "-c", limit]).await;
    assert_eq!(
        String::from_utf8_lossy(&r.stdout).trim(),
        (96u64 << 20).to_string()
    );
    let metrics = env.containerd.ctr(&["tasks", "metrics", &sleeper]);
    assert!(metrics.contains("memory"), "{metrics}");
    let ps = env.containerd.ctr(&["tasks", "ps", &sleeper]);
    assert!(ps.lines().skip(1).any(|l| !l.trim().is_empty()), "{ps}");

    // Pause, the failed container and the sleeper: one shim process, and
    // no crid-logger anywhere for this pod's logs.
    let shims = env.containerd.shim_pids_of(SHIM);
    let cmdlines: Vec<String> = shims
        .iter()
        .map(|p| {
            String::from_utf8_lossy(
                &std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default(),
            )
            .replace('\0', " ")
        })
        .collect();
    assert_eq!(shims.len(), 1, "one shim for the pod: {cmdlines:?}");
    // The pause container's `start` spawned it, the sleeper's found it
    // (the failed container's task and bundle are gone).
    assert_started_for_this_containerd(&env, shims[0], &[&sid, &sleeper]);
    // The streams, control sockets and OOM watches of its containers are
    // tasks on the shim's one thread; tokio's blocking pool may add one
    // more for a moment.
    let threads = std::fs::read_dir(format!("/proc/{}/task", shims[0]))
        .unwrap()
        .count();
    assert!(threads <= 2, "{threads} threads in the pod's shim");
    assert_eq!(
        env.containerd.shim_pids_of("containerd-shim-runc-v2"),
        Vec::<u32>::new()
    );
    assert_eq!(
        loggers_writing_under(Path::new(&pod.log_directory)),
        Vec::<u32>::new()
    );

    // Stop: SIGTERM, SIGKILL after the grace period.
    env.rt()
        .await
        .stop_container(StopContainerRequest {
            container_id: sleeper.clone(),
            timeout: 1,
        })
        .await
        .expect("StopContainer");
    let st = env.wait_exited(&sleeper).await;
    assert!(matches!(st.exit_code, 137 | 143), "{st:?}");

    remove_and_check(&env, &[&sid]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pods_get_two_shims_and_the_default_handler_stays_runc() {
    if missing_tools() {
        return;
    }
    let (env, _bin) = node().await;
    let a = env.pod_config("shima");
    let b = env.pod_config("shimb");
    let c = env.pod_config("runcpod");
    let sa = env.run_pod_on(&a, HANDLER).await;
    let sb = env.run_pod_on(&b, HANDLER).await;
    let sc = env.run_pod(&c).await;
    for (sid, pod) in [(&sa, &a), (&sb, &b), (&sc, &c)] {
        let cfg = env.container_config("main", &["sleep", "3600"]);
        env.run(sid, pod, cfg).await;
    }
    assert_eq!(env.containerd.shim_pids_of(SHIM).len(), 2);
    // The pod without a handler is on containerd's runc shim, as before.
    assert_eq!(
        env.containerd.shim_pids_of("containerd-shim-runc-v2").len(),
        1
    );
    remove_and_check(&env, &[&sa, &sb, &sc]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oom_rotation_and_a_crid_restart_on_crids_shim() {
    if missing_tools() {
        return;
    }
    let (mut env, _bin) = node().await;
    let pod = env.pod_config("shimlog");
    let sid = env.run_pod_on(&pod, HANDLER).await;

    // The shim's TaskOOM reaches crid (it logs "OOM event") before the exit.
    let mut cfg = env.container_config(
        "hog",
        &["/bin/sh", "-c", "x=a; while true; do x=$x$x; done"],
    );
    cfg.linux.as_mut().unwrap().resources = Some(LinuxContainerResources {
        memory_limit_in_bytes: 16 * 1024 * 1024,
        ..Default::default()
    });
    let hog = env.run(&sid, &pod, cfg).await;
    let st = env.wait_exited(&hog).await;
    assert_eq!((st.exit_code, st.reason.as_str()), (137, "OOMKilled"));
    assert!(
        env.crid
            .log()
            .lines()
            .any(|l| l.contains("OOM event") && l.contains(&hog)),
        "no TaskOOM from the shim"
    );

    // ReopenContainerLog through the shim's control socket; logs keep
    // flowing while crid is down.
    let cfg = env.container_config(
        "writer",
        &[
            "/bin/sh",
            "-c",
            "i=0; while [ $i -lt 300 ]; do echo n-$i; i=$((i+1)); sleep 0.02; done; sleep 3600",
        ],
    );
    let path = log_path(&pod, &cfg);
    let writer = env.run(&sid, &pod, cfg).await;
    env.wait_for_file(&path, "n-20").await;
    let rotated = env.rotate_log(&path, &writer).await;
    env.crid.stop();
    env.wait_for_file(&path, "n-150").await;
    env.crid.restart();
    env.wait_for_file(&path, "n-299").await;
    let all = log_contents(&[&rotated, &path]);
    let expected: Vec<String> = (0..300).map(|i| format!("n-{i}")).collect();
    assert_eq!(all, expected);
    assert_eq!(
        env.status(&writer).await.state,
        ContainerState::ContainerRunning as i32
    );

    remove_and_check(&env, &[&sid]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_streams_output_from_crids_shim_while_the_log_keeps_it() {
    if missing_tools() {
        return;
    }
    let (env, _bin) = node().await;
    let pod = env.pod_config("shimattach");
    let sid = env.run_pod_on(&pod, HANDLER).await;
    let cfg = env.container_config(
        "main",
        &[
            "sh",
            "-c",
            "sleep 1; i=0; while [ $i -lt 5 ]; do echo tick-$i; i=$((i+1)); sleep 0.2; done",
        ],
    );
    let log = log_path(&pod, &cfg);
    let cid = env.run(&sid, &pod, cfg).await;
    let url = attach_url(&mut env.rt().await, &cid, false).await;
    // The attach ends when the container's output ends.
    let r = support::spdy::spdy_exec(&url, None).await;
    let out = String::from_utf8_lossy(&r.stdout);
    assert!(out.contains("tick-4"), "{out}");
    env.wait_for_file(&log, "tick-4").await;
    remove_and_check(&env, &[&sid]).await;
}

/// A field of a process's smaps_rollup (`Pss`, `Pss_Anon`…), in KiB.
fn smaps_kib(pid: u32, field: &str) -> u64 {
    let prefix = format!("{field}:");
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Runtime memory per pod: the PSS of the shim processes (and of the
/// crid-logger processes, on containerd's runc shim) for 10 pods of one
/// `sleep` container each, per handler. A measurement, not a check:
/// `cargo test --test shim memory -- --ignored --nocapture`
/// (`CRID_SHIM_BINARY=target/release/containerd-shim-crid-v1` to measure a
/// release build, `CRID_MEM_HANDLERS=crid-shim` for one handler only,
/// `CRID_MEM_PODS=N` pods instead of 10, `CRID_MEM_LOG_LINES=N` for
/// containers that log N lines first, `CRID_MEM_HOLD=SECONDS` to keep the
/// pods that long for a look at the processes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; prints figures"]
async fn memory_per_pod_by_handler() {
    if missing_tools() {
        return;
    }
    let pods: usize = std::env::var("CRID_MEM_PODS").map_or(10, |n| n.parse().unwrap());
    let (env, _bin) = node().await;
    let only = std::env::var("CRID_MEM_HANDLERS").ok();
    // CRID_MEM_LOG_LINES=N: each container writes N lines to its log before
    // it sleeps (the memory of pods that log).
    let logging = std::env::var("CRID_MEM_LOG_LINES").ok().map(|n| {
        let n: u32 = n.parse().unwrap();
        format!("i=0; while [ $i -lt {n} ]; do echo log line $i; i=$((i+1)); done; sleep 3600")
    });
    for (handler, shim) in [("runc", "containerd-shim-runc-v2"), (HANDLER, SHIM)] {
        if only
            .as_ref()
            .is_some_and(|o| !o.split(',').any(|h| h == handler))
        {
            continue;
        }
        let mut sids = Vec::new();
        for i in 0..pods {
            let pod = env.pod_config(&format!("mem{handler}{i}"));
            let sid = env.run_pod_on(&pod, handler).await;
            let cfg = match &logging {
                Some(script) => env.container_config("main", &["sh", "-c", script]),
                None => env.container_config("main", &["sleep", "3600"]),
            };
            env.run(&sid, &pod, cfg).await;
            sids.push(sid);
        }
        let shims = env.containerd.shim_pids_of(shim);
        let loggers = loggers_writing_under(env.log_dir.path());
        let per_pod = |pids: &[u32], field: &str| {
            pids.iter().map(|p| smaps_kib(*p, field)).sum::<u64>() as f64 / 1024.0 / pods as f64
        };
        let (shim_mib, logger_mib) = (per_pod(&shims, "Pss"), per_pod(&loggers, "Pss"));
        println!(
            "{handler}: {} shim processes, {} crid-logger processes; PSS per pod: \
             shims {shim_mib:.2} MiB (anon {:.2}) + loggers {logger_mib:.2} MiB (anon {:.2}) \
             = {:.2} MiB",
            shims.len(),
            loggers.len(),
            per_pod(&shims, "Pss_Anon"),
            per_pod(&loggers, "Pss_Anon"),
            shim_mib + logger_mib,
        );
        if let Ok(secs) = std::env::var("CRID_MEM_HOLD") {
            eprintln!("holding for {secs} s: shims {shims:?}");
            tokio::time::sleep(std::time::Duration::from_secs(secs.parse().unwrap())).await;
        }
        for sid in &sids {
            env.stop_and_remove_pod(sid).await;
        }
    }
    assert_eq!(wait_no_shims(&env).await, Vec::<u32>::new(), "shim left");
    env.assert_no_leaks();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_without_pause_runs_its_containers_in_one_shim() {
    if missing_tools() {
        return;
    }
    let (env, _bin) = node().await;
    // No shared PID namespace, no sysctls: crid pins the namespaces itself
    // and the first container starts the pod's shim.
    let pod = env.pod_config_without_shared_pid("nopause");
    let sid = env.run_pod_on(&pod, HANDLER).await;
    assert_eq!(env.containerd.shim_pids_of(SHIM), Vec::<u32>::new());
    let sleeper = |name| in_own_pid_namespace(env.container_config(name, &["sleep", "3600"]));
    let a = env.run(&sid, &pod, sleeper("a")).await;
    let b = env.run(&sid, &pod, sleeper("b")).await;
    let shims = env.containerd.shim_pids_of(SHIM);
    assert_eq!(shims.len(), 1);
    assert_started_for_this_containerd(&env, shims[0], &[&a, &b]);
    for cid in [&a, &b] {
        let r = exec_sync(&env, cid, &["hostname"]).await;
        assert_eq!((r.exit_code, r.stdout.as_slice()), (0, &b"nopause\n"[..]));
    }
    remove_and_check(&env, &[&sid]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_shim_is_cleaned_up_and_containerd_restart_reconnects() {
    if missing_tools() {
        return;
    }
    let (mut env, _bin) = node().await;
    let mut pods = Vec::new();
    for name in ["shimkilled", "shimrestart"] {
        let pod = env.pod_config(name);
        let sid = env.run_pod_on(&pod, HANDLER).await;
        let cfg = env.container_config("main", &["sleep", "3600"]);
        let cid = env.run(&sid, &pod, cfg).await;
        let before = env.containerd.shim_pids_of(SHIM);
        pods.push((sid, cid, before));
    }
    let killed = pods[0].2[0];
    let shims = env.containerd.shim_pids_of(SHIM);
    assert_eq!(shims.len(), 2);

    // A shim dies: containerd runs `shim delete` (runtime delete --force,
    // rootfs unmounted, the dead socket removed) and reports exit 137.
    let socket = shim_socket(killed);
    assert!(socket.exists(), "{}", socket.display());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(killed as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let st = env.wait_exited(&pods[0].1).await;
    assert_eq!(st.exit_code, 137, "{st:?}");
    assert!(!socket.exists(), "the dead shim's socket is removed");

    // containerd comes back and finds the other shim through the bundle's
    // address file.
    env.containerd.start_again();
    let r = exec_sync(&env, &pods[1].1, &["echo", "still"]).await;
    assert_eq!((r.exit_code, r.stdout.as_slice()), (0, &b"still\n"[..]));
    let left: Vec<u32> = shims.into_iter().filter(|p| *p != killed).collect();
    assert_eq!(env.containerd.shim_pids_of(SHIM), left);
    remove_and_check(&env, &[&pods[0].0, &pods[1].0]).await;
}

/// `kubectl run -i` on crid's shim: the container keeps crid's log URI (no
/// FIFOs, no crid-logger) and still reads what the first attach sends,
/// then EOF.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_feeds_stdin_once_on_crids_shim_without_a_logger_process() {
    if missing_tools() {
        return;
    }
    let (env, _bin) = node().await;
    let pod = env.pod_config("shimstdin");
    let sid = env.run_pod_on(&pod, HANDLER).await;
    let mut cfg = env.container_config("main", &["sh"]);
    cfg.stdin = true;
    cfg.stdin_once = true;
    let log = log_path(&pod, &cfg);
    let cid = env.run(&sid, &pod, cfg).await;
    assert_eq!(
        env.status(&cid).await.state,
        ContainerState::ContainerRunning as i32,
        "the shell waits on its stdin"
    );
    assert_eq!(
        loggers_writing_under(Path::new(&pod.log_directory)),
        Vec::<u32>::new()
    );
    let url = attach_url(&mut env.rt().await, &cid, true).await;
    let r = support::spdy::spdy_exec(&url, Some(b"echo said-$((6*7)); echo to-stderr >&2\n")).await;
    let out = String::from_utf8_lossy(&r.stdout);
    assert!(out.contains("said-42"), "{out} / error stream: {}", r.error);
    let status = env.wait_exited(&cid).await;
    assert_eq!(status.exit_code, 0, "EOF on stdin ends the shell");
    let text = env.wait_for_file(&log, "to-stderr").await;
    assert!(text.contains(" stdout F said-42"), "{text}");
    assert!(text.contains(" stderr F to-stderr"), "{text}");
    remove_and_check(&env, &[&sid]).await;
}

/// A pod in a user namespace of its own (`hostUsers: false`) on crid's
/// shim: the handler advertises user namespaces; the stdio the shim gives
/// a container (pipes into the CRI log, stdin) and an exec (crid's FIFOs)
/// belongs to the pod's root, as with containerd's runc shim (`io_uid`,
/// `io_gid`), so each can open its own stdout and stderr again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_belongs_to_the_pods_root_in_its_user_namespace_on_crids_shim() {
    use support::userns::{in_pod_userns, pod_userns, with_userns};
    if missing_tools() {
        return;
    }
    let (env, _bin) = node().await;
    let status = env
        .rt()
        .await
        .status(StatusRequest { verbose: false })
        .await
        .unwrap()
        .into_inner();
    let features = status
        .runtime_handlers
        .iter()
        .find(|h| h.name == HANDLER)
        .and_then(|h| h.features);
    assert!(
        features.is_some_and(|f| f.user_namespaces),
        "{:?}",
        status.runtime_handlers
    );

    let mut pod = env.pod_config("shimuserns");
    with_userns(&mut pod, pod_userns());
    let sid = env.run_pod_on(&pod, HANDLER).await;
    // stat's own fds (not a command substitution's pipe).
    let probe = "for fd in 0 1 2; do stat -L -c \"fd$fd %u:%g\" /proc/self/fd/$fd; done; \
                 echo again > /dev/stdout && echo stdout=reopened; \
                 echo again > /dev/stderr && echo stderr=reopened; echo done";
    let mut cfg = in_pod_userns(
        env.container_config("main", &["/bin/sh", "-c", &format!("{probe}; sleep 1000")]),
        &pod,
    );
    cfg.stdin = true;
    let log = log_path(&pod, &cfg);
    let cid = env.run(&sid, &pod, cfg).await;
    let text = env.wait_for_file(&log, "done").await;
    for want in [
        "fd0 0:0",
        "fd1 0:0",
        "fd2 0:0",
        "stdout=reopened",
        "stderr=reopened",
    ] {
        assert!(text.contains(want), "{want:?} in {text}");
    }

    let r = exec_sync(&env, &cid, &["/bin/sh", "-c", probe]).await;
    let out = String::from_utf8_lossy(&r.stdout);
    assert_eq!(
        r.exit_code,
        0,
        "{out} {}",
        String::from_utf8_lossy(&r.stderr)
    );
    for want in ["fd1 0:0", "fd2 0:0", "stdout=reopened", "stderr=reopened"] {
        assert!(out.contains(want), "{want:?} in {out}");
    }
    remove_and_check(&env, &[&sid]).await;
}
