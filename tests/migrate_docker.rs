//! `crid migrate docker` (issue #24 part 2) against a real dockerd 20.10 of
//! the test's own: its images (one with two tags, one of two layers built
//! offline with `docker build`) are streamed into the test's containerd;
//! crid lists them with docker's tags and ids, runs a pod from one with its
//! registry stopped, and a second run imports nothing. daemon.json and
//! certs.d become hosts.toml files: a diff first, written with --write,
//! no diff after.

mod support;

use crid::cri::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;
use support::image::busybox_layer;
use support::pod::PodEnv;
use support::*;

/// A dockerd of the test's own: data root, exec root, socket and pid file
/// under a temp dir; no bridge, no iptables. Stopped by PID.
struct TestDockerd {
    dir: tempfile::TempDir,
    socket: PathBuf,
    child: Option<Child>,
}

impl TestDockerd {
    /// `None` (with a SKIP line) when dockerd or the docker CLI is missing.
    fn start() -> Option<TestDockerd> {
        let (Some(dockerd), Some(_)) = (which("dockerd"), which("docker")) else {
            eprintln!("SKIP: dockerd or docker not installed (make test installs docker.io)");
            return None;
        };
        let dir = short_tempdir("dkd");
        let d = dir.path();
        let socket = d.join("d.sock");
        let log = d.join("dockerd.log");
        let mut cmd = Command::new(dockerd);
        cmd.arg("--data-root")
            .arg(d.join("data"))
            .arg("--exec-root")
            .arg(d.join("x"))
            .arg("--host")
            .arg(format!("unix://{}", socket.display()))
            .arg("--pidfile")
            .arg(d.join("pid"))
            .args(["--bridge", "none", "--iptables=false"]);
        let mut child = spawn_in_own_session(&mut cmd, &log);
        wait_for_socket(&socket, &mut child, "dockerd", &log);
        Some(TestDockerd {
            dir,
            socket,
            child: Some(child),
        })
    }

    fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// The docker CLI against this dockerd; panics on failure.
    fn docker(&self, args: &[&str]) -> String {
        let out = Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", self.host())
            .env("DOCKER_BUILDKIT", "0")
            .env("DOCKER_CONFIG", self.dir.path().join("cli"))
            .stdin(Stdio::null())
            .output()
            .expect("run docker");
        assert!(
            out.status.success(),
            "docker {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }

    /// The image id of `name`, `sha256:<hex>`.
    fn image_id(&self, name: &str) -> String {
        self.docker(&["image", "inspect", "--format", "{{.Id}}", name])
            .trim()
            .to_string()
    }

    /// Stop dockerd by PID, unmount what it left under its dirs; returns
    /// the processes still running from its dirs (its containerd).
    fn stop(&mut self) -> Vec<u32> {
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c, Duration::from_secs(20));
        }
        umount_under(self.dir.path());
        processes_mentioning(self.dir.path())
    }
}

impl Drop for TestDockerd {
    fn drop(&mut self) {
        for pid in self.stop() {
            // Started by the dockerd this test started (its containerd).
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        umount_under(self.dir.path());
    }
}

fn processes_mentioning(dir: &Path) -> Vec<u32> {
    let needle = dir.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(&needle))
                .unwrap_or(false)
        })
        .collect()
}

/// `crid [crid's flags] migrate docker ARGS`, with an empty config file.
fn migrate(dir: &Path, containerd: &Path, hosts_dir: &Path, args: &[&str]) -> Output {
    let config = dir.join("empty-config.toml");
    std::fs::write(&config, "").unwrap();
    Command::new(env!("CARGO_BIN_EXE_crid"))
        .arg("--config")
        .arg(&config)
        .arg("--containerd-address")
        .arg(containerd)
        .arg("--registry-config-path")
        .arg(hosts_dir)
        .args(["migrate", "docker"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run crid migrate docker")
}

fn stdout_ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "crid migrate docker failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn sorted_lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(str::to_string).collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_images_are_carried_and_run_without_a_registry() {
    if missing_tools() {
        return;
    }
    let Some(mut dockerd) = TestDockerd::start() else {
        return;
    };
    // dockerd's images, made offline: an import of the busybox rootfs with
    // two tags, and a build on it that adds a layer and a CMD.
    let work = short_tempdir("mig");
    let layer = work.path().join("rootfs.tar");
    std::fs::write(&layer, busybox_layer()).unwrap();
    dockerd.docker(&["import", layer.to_str().unwrap(), "migtest/base:v1"]);
    dockerd.docker(&["tag", "migtest/base:v1", "migtest/base:also"]);
    let ctx = work.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("hello.txt"), "hello from dockerd\n").unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM migtest/base:v1\nCOPY hello.txt /hello.txt\nCMD [\"/bin/cat\", \"/hello.txt\"]\n",
    )
    .unwrap();
    dockerd.docker(&[
        "build",
        "-q",
        "-t",
        "migtest/multi:v2",
        ctx.to_str().unwrap(),
    ]);
    let base_id = dockerd.image_id("migtest/base:v1");
    let multi_id = dockerd.image_id("migtest/multi:v2");

    let mut env = PodEnv::new().await;
    // A tag crid already gives another image (the registry's busybox,
    // pulled by PodEnv) stays there: the migration is additive.
    let pulled_id = env.image_id(&env.image).await;
    dockerd.docker(&["tag", "migtest/base:v1", &env.image]);
    let hosts_dir = env.crid.dir.path().join("certs.d");
    let host = dockerd.host();
    let args = ["--docker-host", host.as_str(), "--skip-registry-settings"];
    let out = stdout_ok(&migrate(
        work.path(),
        &env.containerd.address,
        &hosts_dir,
        &args,
    ));
    println!("first run:\n{out}");
    let short = |id: &str| id[..19].to_string();
    assert!(
        out.contains(&format!(
            "importing docker.io/migtest/multi:v2 ({}): 2 layers",
            short(&multi_id)
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("({}): 1 layer,", short(&base_id))),
        "{out}"
    );
    assert!(
        out.contains("2 image(s): 2 imported, 0 already present, 0 failed"),
        "{out}"
    );

    // crid lists them with docker's tags and ids.
    let listed = env.list_images().await;
    let base = listed
        .iter()
        .find(|i| i.id == base_id)
        .expect("base listed");
    let mut tags = base.repo_tags.clone();
    tags.sort();
    assert_eq!(
        tags,
        ["docker.io/migtest/base:also", "docker.io/migtest/base:v1"]
    );
    assert!(
        out.contains(&format!(
            "crid has {} on {}: left there",
            env.image,
            short(&pulled_id)
        )),
        "{out}"
    );
    assert_eq!(env.image_id(&env.image).await, pulled_id);
    let multi = listed
        .iter()
        .find(|i| i.id == multi_id)
        .expect("multi listed");
    assert_eq!(multi.repo_tags, ["docker.io/migtest/multi:v2"]);

    // A second run imports nothing: the store is as it was.
    let content = env.containerd.ctr(&["content", "ls", "-q"]);
    let images = env.containerd.ctr(&["images", "ls", "-q"]);
    let again = stdout_ok(&migrate(
        work.path(),
        &env.containerd.address,
        &hosts_dir,
        &args,
    ));
    println!("second run:\n{again}");
    assert!(!again.contains("importing"), "{again}");
    assert!(
        again.contains(&format!(
            "docker.io/migtest/multi:v2 ({}): already present",
            short(&multi_id)
        )),
        "{again}"
    );
    assert!(
        again.contains("0 imported, 2 already present, 0 failed"),
        "{again}"
    );
    assert_eq!(
        sorted_lines(&env.containerd.ctr(&["content", "ls", "-q"])),
        sorted_lines(&content)
    );
    assert_eq!(
        sorted_lines(&env.containerd.ctr(&["images", "ls", "-q"])),
        sorted_lines(&images)
    );
    assert_eq!(
        env.containerd.ctr(&["leases", "ls", "-q"]).trim(),
        "",
        "the import's leases are gone"
    );

    // dockerd's insecure registry setting, written into crid's hosts dir,
    // is what a pull from the test's (plain HTTP) registry goes through:
    // HTTPS without verification first, then HTTP.
    let daemon_json = work.path().join("daemon.json");
    std::fs::write(
        &daemon_json,
        serde_json::json!({ "insecure-registries": [env.registry.addr] }).to_string(),
    )
    .unwrap();
    let settings = [
        "--skip-images",
        "--daemon-json",
        daemon_json.to_str().unwrap(),
        "--docker-certs-dir",
        "/nonexistent",
        "--write",
    ];
    let wrote = stdout_ok(&migrate(
        work.path(),
        &env.containerd.address,
        &hosts_dir,
        &settings,
    ));
    assert!(wrote.contains("wrote 1 hosts.toml file(s)"), "{wrote}");
    assert!(hosts_dir
        .join(&env.registry.addr)
        .join("hosts.toml")
        .is_file());
    env.remove_image(&env.image).await;
    assert_eq!(env.pull(&env.image).await, pulled_id);
    let tried = env.crid.log();
    assert!(
        tried
            .lines()
            .any(|l| l.contains("endpoint failed") && l.contains(&env.registry.addr)),
        "the pull tried HTTPS first, as the written hosts.toml says:\n{tried}"
    );

    // dockerd goes, the registry goes: the pod runs from what was carried.
    let left = dockerd.stop();
    assert_eq!(left, Vec::<u32>::new(), "processes left by dockerd");
    assert_eq!(mounts_under(dockerd.dir.path()), Vec::<String>::new());
    env.registry.stop();
    // As kubelet does before creating a container: ImageStatus finds it.
    assert_eq!(env.image_id("migtest/multi:v2").await, multi_id);
    let pod = env.pod_config("migrated");
    let sid = env.run_pod(&pod).await;
    let mut config = env.container_config("hello", &[]);
    config.image = Some(ImageSpec {
        image: "migtest/multi:v2".into(),
        ..Default::default()
    });
    let cid = env.create(&sid, &pod, config).await;
    env.start(&cid).await;
    let exited = env.wait_exited(&cid).await;
    assert_eq!(exited.exit_code, 0, "{exited:?}");
    let log = std::fs::read_to_string(&exited.log_path).unwrap_or_default();
    assert!(log.contains("hello from dockerd"), "container log: {log:?}");
    let crid_log = env.crid.log();
    assert!(
        !crid_log
            .lines()
            .any(|l| l.contains("pulling") && l.contains("migtest")),
        "crid pulled a migrated image:\n{crid_log}"
    );
    env.stop_and_remove_pod(&sid).await;
    env.assert_no_leaks();
}

/// A stand-in for dockerd that lists one image and then sends a `docker
/// save` archive cut off in its second layer: the transfer failing midway,
/// which a real dockerd cannot be made to do on cue.
fn serve_cut_off_archive(socket: &Path) -> (String, std::thread::JoinHandle<()>) {
    use std::io::{Read, Write};
    let good = vec![7u8; 64 << 10];
    let cut = vec![9u8; 1 << 20];
    let digest = |d: &[u8]| support::image::digest(d);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [digest(&good), digest(&cut)]},
    }))
    .unwrap();
    let id = digest(&config);
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, path, data).unwrap();
    };
    add("aaa/layer.tar", &good);
    add("bbb/layer.tar", &cut);
    let mut archive = b.into_inner().unwrap();
    // Cut 8 KiB into the second layer's data.
    archive.truncate(512 + good.len() + 512 + 8192);
    let list = serde_json::json!([{"Id": id, "RepoTags": ["broken/app:v1"], "RepoDigests": null}])
        .to_string();
    let listener = std::os::unix::net::UnixListener::bind(socket).unwrap();
    listener.set_nonblocking(true).unwrap();
    let server = std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let mut served_archive = false;
        while !served_archive && std::time::Instant::now() < deadline {
            let Ok((mut conn, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            };
            conn.set_nonblocking(false).unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let (body, kind): (&[u8], &str) = if head.contains("/images/get") {
                served_archive = true;
                (&archive, "application/x-tar")
            } else if head.contains("/images/json") {
                (list.as_bytes(), "application/json")
            } else {
                (br#"{"ApiVersion":"1.41"}"#, "application/json")
            };
            // Close-delimited: the archive just stops.
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nConnection: close\r\n\r\n"
            );
            let _ = conn.write_all(body);
        }
    });
    (id, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_that_fails_midway_leaves_nothing() {
    if missing_tools() {
        return;
    }
    let containerd = TestContainerd::start();
    let dir = short_tempdir("migfail");
    let socket = dir.path().join("docker.sock");
    let (id, server) = serve_cut_off_archive(&socket);
    let host = format!("unix://{}", socket.display());
    let address = containerd.address.clone();
    let hosts = dir.path().join("hosts");
    let out = tokio::task::spawn_blocking(move || {
        migrate(
            dir.path(),
            &address,
            &hosts,
            &["--docker-host", &host, "--skip-registry-settings"],
        )
    })
    .await
    .unwrap();
    server.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "importing docker.io/broken/app:v1 ({}): failed:",
            &id[..19]
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("1 image(s): 0 imported, 0 already present, 1 failed"),
        "{stdout}"
    );
    // Nothing of it stays: blobs, ingests, leases, records, snapshots.
    for what in [
        &["content", "ls", "-q"][..],
        &["content", "active"],
        &["leases", "ls", "-q"],
        &["images", "ls", "-q"],
        &["snapshots", "ls"],
    ] {
        let left = containerd.ctr(what);
        let rows: Vec<&str> = left
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with("KEY") && !l.starts_with("REF"))
            .collect();
        assert_eq!(
            rows,
            Vec::<&str>::new(),
            "ctr {what:?} after a failed import"
        );
    }
}

#[test]
fn registry_settings_are_a_diff_until_written() {
    let dir = short_tempdir("migreg");
    let d = dir.path();
    let certs = d.join("certs.d");
    let secure = certs.join("secure.example:5443");
    std::fs::create_dir_all(&secure).unwrap();
    for f in ["ca.crt", "client.cert", "client.key"] {
        std::fs::write(secure.join(f), "test file\n").unwrap();
    }
    let daemon_json = d.join("daemon.json");
    std::fs::write(
        &daemon_json,
        r#"{
  "registry-mirrors": ["https://mirror.example.com", "http://127.0.0.1:5999/"],
  "insecure-registries": ["registry.internal:5000", "10.20.0.0/16"],
  "log-driver": "json-file"
}"#,
    )
    .unwrap();
    let hosts = d.join("hosts");
    let args = [
        "--skip-images",
        "--daemon-json",
        daemon_json.to_str().unwrap(),
        "--docker-certs-dir",
        certs.to_str().unwrap(),
    ];
    // crid's containerd is not needed for settings: no such socket here.
    let nowhere = d.join("no-containerd.sock");

    let shown = stdout_ok(&migrate(d, &nowhere, &hosts, &args));
    println!("without --write:\n{shown}");
    let hub = hosts.join("docker.io/hosts.toml");
    let internal = hosts.join("registry.internal:5000/hosts.toml");
    let secure_toml = hosts.join("secure.example:5443/hosts.toml");
    for f in [&hub, &internal, &secure_toml] {
        assert!(shown.contains(&format!("+++ {}", f.display())), "{shown}");
    }
    assert!(
        shown.contains("+[host.\"https://mirror.example.com\"]"),
        "{shown}"
    );
    assert!(
        shown.contains("+[host.\"http://registry.internal:5000\"]"),
        "{shown}"
    );
    assert!(shown.contains("+  skip_verify = true"), "{shown}");
    assert!(
        shown.contains("10.20.0.0/16"),
        "the CIDR is reported:\n{shown}"
    );
    assert!(shown.contains("not written"), "{shown}");
    assert!(!hosts.exists(), "nothing written without --write");

    let mut write_args = args.to_vec();
    write_args.push("--write");
    let written = stdout_ok(&migrate(d, &nowhere, &hosts, &write_args));
    println!("with --write:\n{written}");
    assert!(written.contains("wrote 3 hosts.toml file(s)"), "{written}");
    let secure_text = std::fs::read_to_string(&secure_toml).unwrap();
    assert!(
        secure_text.contains(&secure.join("ca.crt").display().to_string())
            && secure_text.contains(&secure.join("client.key").display().to_string()),
        "{secure_text}"
    );
    assert!(std::fs::read_to_string(&hub)
        .unwrap()
        .contains("server = \"https://registry-1.docker.io\""));

    let again = stdout_ok(&migrate(d, &nowhere, &hosts, &write_args));
    println!("again:\n{again}");
    assert!(!again.contains("+++"), "{again}");
    assert!(
        again.contains("no changes: 3 hosts.toml file(s) up to date"),
        "{again}"
    );
}
