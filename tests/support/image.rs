//! Test images built from Debian's busybox-static: layer tars, OCI image
//! layouts, a local CNCF registry, and pushes with skopeo.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

pub fn digest(data: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(data))
}

/// Applets linked in the test image (the ones tests use).
const APPLETS: &[&str] = &[
    "sh", "ls", "cat", "echo", "sleep", "nc", "id", "env", "pwd", "mkdir", "touch", "rm", "wc",
    "head", "tail", "grep", "true", "false", "printf", "dd", "hostname", "ps", "kill", "test",
    "yes", "seq", "chown", "stat", "ip", "ifconfig", "wget", "httpd", "tr", "cut", "sync", "date",
    "uname", "mount", "stty", "tee", "xargs", "find", "ln", "cp", "mv", "chmod", "du", "df",
];

/// One file in a layer.
pub enum Entry {
    Dir(&'static str),
    File(String, Vec<u8>, u32),
    Symlink(String, String),
}

/// A tar of `entries` (uncompressed).
pub fn layer_tar(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        match e {
            Entry::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, p, std::io::empty()).unwrap();
            }
            Entry::File(p, data, mode) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, p, data.as_slice()).unwrap();
            }
            Entry::Symlink(p, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, p, target).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// A layer holding `data/<name>`: `mib` MiB of random bytes (incompressible).
pub fn random_layer(name: &str, mib: usize) -> Vec<u8> {
    use std::io::Read;
    let mut data = vec![0u8; mib << 20];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut data)
        .unwrap();
    layer_tar(&[
        Entry::Dir("data/"),
        Entry::File(format!("data/{name}"), data, 0o644),
    ])
}

/// The layer digests of a built image, bottom first (from its manifest).
pub fn layer_digests(image: &BuiltImage) -> Vec<String> {
    let m: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            image
                .layout
                .join("blobs/sha256")
                .join(&image.manifest_digest[7..]),
        )
        .unwrap(),
    )
    .unwrap();
    m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

/// The base layer: /bin/busybox with applet links, /etc/passwd and /etc/group
/// (user `app` = 1000, group `appgroup` = 3000), empty /tmp /proc /sys /dev.
pub fn busybox_layer() -> Vec<u8> {
    let busybox = std::fs::read("/bin/busybox").expect("busybox-static installed at /bin/busybox");
    let mut entries = vec![
        Entry::Dir("bin/"),
        Entry::Dir("etc/"),
        Entry::Dir("tmp/"),
        Entry::Dir("proc/"),
        Entry::Dir("sys/"),
        Entry::Dir("dev/"),
        Entry::Dir("root/"),
        Entry::Dir("home/"),
        Entry::Dir("home/app/"),
        Entry::File("bin/busybox".into(), busybox, 0o755),
        Entry::File(
            "etc/passwd".into(),
            b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:3000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n".to_vec(),
            0o644,
        ),
        Entry::File(
            "etc/group".into(),
            b"root:x:0:\nappgroup:x:3000:app\nextra:x:4000:app\nnogroup:x:65534:\n".to_vec(),
            0o644,
        ),
    ];
    for a in APPLETS {
        entries.push(Entry::Symlink(format!("bin/{a}"), "busybox".into()));
    }
    layer_tar(&entries)
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A layer as it goes into an image: compressed or not.
pub struct Layer {
    pub tar: Vec<u8>,
    pub gzip: bool,
}

/// What goes into the image config.
#[derive(Clone)]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub user: String,
    pub working_dir: String,
    pub stop_signal: String,
}

impl Default for ImageConfig {
    fn default() -> Self {
        ImageConfig {
            entrypoint: vec![],
            cmd: vec!["/bin/sh".into()],
            env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
            user: String::new(),
            working_dir: String::new(),
            stop_signal: String::new(),
        }
    }
}

/// A built image: an OCI image layout directory.
pub struct BuiltImage {
    pub layout: PathBuf,
    pub tag: String,
    pub manifest_digest: String,
    pub config_digest: String,
    pub diff_ids: Vec<String>,
}

/// Write an OCI image layout at `dir` holding one image tagged `tag`.
pub fn build_layout(
    dir: &Path,
    tag: &str,
    layers: &[Layer],
    cfg: &ImageConfig,
    arch: &str,
) -> BuiltImage {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |data: &[u8]| -> String {
        let hex = sha256_hex(data);
        std::fs::write(blobs.join(&hex), data).unwrap();
        format!("sha256:{hex}")
    };
    let mut diff_ids = vec![];
    let mut layer_descs = vec![];
    for l in layers {
        diff_ids.push(digest(&l.tar));
        let (data, mt) = if l.gzip {
            (gzip(&l.tar), "application/vnd.oci.image.layer.v1.tar+gzip")
        } else {
            (l.tar.clone(), "application/vnd.oci.image.layer.v1.tar")
        };
        let d = put(&data);
        layer_descs.push(serde_json::json!({"mediaType": mt, "digest": d, "size": data.len()}));
    }
    let mut config = serde_json::json!({
        "architecture": arch,
        "os": "linux",
        "config": {
            "Env": cfg.env,
            "Cmd": cfg.cmd,
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [],
    });
    if !cfg.entrypoint.is_empty() {
        config["config"]["Entrypoint"] = serde_json::json!(cfg.entrypoint);
    }
    if !cfg.user.is_empty() {
        config["config"]["User"] = serde_json::json!(cfg.user);
    }
    if !cfg.working_dir.is_empty() {
        config["config"]["WorkingDir"] = serde_json::json!(cfg.working_dir);
    }
    if !cfg.stop_signal.is_empty() {
        config["config"]["StopSignal"] = serde_json::json!(cfg.stop_signal);
    }
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let config_digest = put(&config_bytes);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_bytes.len()},
        "layers": layer_descs,
    });
    let manifest_bytes = serde_json::to_vec(&manifest).unwrap();
    let manifest_digest = put(&manifest_bytes);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest_bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
            "platform": {"architecture": arch, "os": "linux"},
        }],
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    BuiltImage {
        layout: dir.to_path_buf(),
        tag: tag.to_string(),
        manifest_digest,
        config_digest,
        diff_ids,
    }
}

/// The standard test image: busybox, gzip layer, `cfg` config.
pub fn busybox_image(dir: &Path, tag: &str, cfg: &ImageConfig) -> BuiltImage {
    build_layout(
        dir,
        tag,
        &[Layer {
            tar: busybox_layer(),
            gzip: true,
        }],
        cfg,
        "amd64",
    )
}

/// A CNCF distribution registry on 127.0.0.1 (random port), optionally behind
/// htpasswd basic auth; stopped by PID on drop.
pub struct TestRegistry {
    pub dir: tempfile::TempDir,
    pub addr: String,
    /// Serving HTTPS that requires a client certificate: the client's
    /// `certs.d` directory pushes use.
    client_certs: Option<PathBuf>,
    child: Option<Child>,
}

impl TestRegistry {
    pub fn start() -> TestRegistry {
        Self::start_with_auth(None)
    }

    /// `auth`: (user, password) for htpasswd basic auth.
    pub fn start_with_auth(auth: Option<(&str, &str)>) -> TestRegistry {
        let dir = super::short_tempdir("reg");
        let mut auth_cfg = String::new();
        if let Some((user, pass)) = auth {
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, pass])
                .output()
                .expect("htpasswd (apache2-utils) installed");
            std::fs::write(dir.path().join("htpasswd"), out.stdout).unwrap();
            auth_cfg = format!(
                "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                dir.path().join("htpasswd").display()
            );
        }
        Self::start_in(dir, "", &auth_cfg)
    }

    /// A registry on HTTPS (a server certificate from `pki`) that serves
    /// only clients presenting a certificate of `pki`'s CA.
    pub fn start_with_client_certs(pki: &super::tls::TestPki) -> TestRegistry {
        let tls = format!(
            "  tls:\n    certificate: {}\n    key: {}\n    clientcas:\n      - {}\n",
            pki.path("server.cert").display(),
            pki.path("server.key").display(),
            pki.path("ca.crt").display()
        );
        let mut reg = Self::start_in(super::short_tempdir("reg"), &tls, "");
        reg.client_certs = Some(pki.client_dir());
        reg
    }

    /// A registry that accepts only bearer tokens issued by `tokens` (the
    /// Docker token protocol: 401 with a `Bearer realm=…` challenge).
    pub fn start_with_token_auth(tokens: &super::token::TokenServer) -> TestRegistry {
        let dir = super::short_tempdir("reg");
        let auth_cfg = format!(
            "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
            tokens.realm(),
            super::token::SERVICE,
            super::token::ISSUER,
            tokens.cert_path().display()
        );
        Self::start_in(dir, "", &auth_cfg)
    }

    /// `http_cfg`: more of the `http` section; `auth_cfg`: an `auth` section.
    fn start_in(dir: tempfile::TempDir, http_cfg: &str, auth_cfg: &str) -> TestRegistry {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{http_cfg}{auth_cfg}",
            dir.path().join("data").display()
        );
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child =
            Command::new(super::which("docker-registry").expect("docker-registry installed"))
                .args(["serve"])
                .arg(dir.path().join("config.yml"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start registry");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "registry did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        TestRegistry {
            dir,
            addr,
            client_certs: None,
            child: Some(child),
        }
    }

    /// Push an OCI layout's image to `<addr>/<repo>:<tag>` with skopeo.
    pub fn push(
        &self,
        image: &BuiltImage,
        repo: &str,
        tag: &str,
        creds: Option<(&str, &str)>,
    ) -> String {
        self.push_as(image, repo, tag, creds, None)
    }

    /// Push converted to Docker schema2 media types (the manifest digest
    /// changes; config and layer blobs stay).
    pub fn push_docker_v2s2(&self, image: &BuiltImage, repo: &str, tag: &str) -> String {
        self.push_as(image, repo, tag, None, Some("v2s2"))
    }

    fn push_as(
        &self,
        image: &BuiltImage,
        repo: &str,
        tag: &str,
        creds: Option<(&str, &str)>,
        format: Option<&str>,
    ) -> String {
        let dest = format!("docker://{}/{repo}:{tag}", self.addr);
        let mut cmd = Command::new("skopeo");
        cmd.args(["copy", "--quiet"]);
        match &self.client_certs {
            Some(dir) => cmd.arg("--dest-cert-dir").arg(dir),
            None => cmd.arg("--dest-tls-verify=false"),
        };
        match format {
            Some(f) => cmd.args(["--format", f]),
            None => cmd.arg("--preserve-digests"),
        };
        if let Some((u, p)) = creds {
            cmd.arg("--dest-creds").arg(format!("{u}:{p}"));
        }
        cmd.arg(format!("oci:{}:{}", image.layout.display(), image.tag))
            .arg(&dest);
        let out = cmd.output().expect("run skopeo");
        assert!(
            out.status.success(),
            "skopeo push failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        format!("{}/{repo}:{tag}", self.addr)
    }
}

impl TestRegistry {
    /// Stop the registry (by PID) before the test ends: nothing can be pulled.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            super::stop_child(&mut c, Duration::from_secs(5));
        }
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A loopback port that is free now, taken from below the kernel's
/// ephemeral range: a port from `bind(:0)` is released at once and the
/// kernel may hand it to the next process that binds to port 0 (another
/// test's stream server) before the daemon it was meant for binds it.
pub fn free_port() -> u16 {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    for _ in 0..200 {
        let port = rng.gen_range(20000..32000);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Import an OCI layout into a test containerd with `ctr` (a way in that
/// does not depend on crid's pull), under the name `name`.
pub fn ctr_import(containerd: &super::TestContainerd, image: &BuiltImage, name: &str) {
    let tarball = image.layout.with_extension("tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&image.layout)
        .arg("-cf")
        .arg(&tarball)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    containerd.ctr(&[
        "images",
        "import",
        "--no-unpack",
        "--index-name",
        name,
        tarball.to_str().unwrap(),
    ]);
}

/// A multi-platform image: an OCI layout whose tag names an image index.
pub struct BuiltIndex {
    pub layout: PathBuf,
    pub tag: String,
    pub index_digest: String,
    pub images: Vec<(String, BuiltImage)>,
}

/// Write an OCI layout at `dir` whose `tag` is an index over one image per
/// `(arch, layers, config)`.
pub fn build_index_layout(
    dir: &Path,
    tag: &str,
    platforms: Vec<(&str, Vec<Layer>, ImageConfig)>,
) -> BuiltIndex {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let mut images = vec![];
    let mut entries = vec![];
    for (arch, layers, cfg) in platforms {
        let sub = dir.join(format!("sub-{arch}"));
        let img = build_layout(&sub, tag, &layers, &cfg, arch);
        for e in std::fs::read_dir(sub.join("blobs/sha256")).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), blobs.join(e.file_name())).unwrap();
        }
        let size = std::fs::metadata(blobs.join(&img.manifest_digest[7..]))
            .unwrap()
            .len();
        entries.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": img.manifest_digest,
            "size": size,
            "platform": {"architecture": arch, "os": "linux"},
        }));
        images.push((arch.to_string(), img));
    }
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries,
    }))
    .unwrap();
    let index_digest = digest(&index);
    std::fs::write(blobs.join(&index_digest[7..]), &index).unwrap();
    let top = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": index_digest,
            "size": index.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    BuiltIndex {
        layout: dir.to_path_buf(),
        tag: tag.to_string(),
        index_digest,
        images,
    }
}

impl TestRegistry {
    /// Push a multi-platform layout (every platform) to `<addr>/<repo>:<tag>`.
    pub fn push_index(&self, index: &BuiltIndex, repo: &str, tag: &str) -> String {
        let dest = format!("docker://{}/{repo}:{tag}", self.addr);
        let out = Command::new("skopeo")
            .args([
                "copy",
                "--quiet",
                "--all",
                "--dest-tls-verify=false",
                "--preserve-digests",
            ])
            .arg(format!("oci:{}:{}", index.layout.display(), index.tag))
            .arg(&dest)
            .output()
            .expect("run skopeo");
        assert!(
            out.status.success(),
            "skopeo push failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        format!("{}/{repo}:{tag}", self.addr)
    }
}

/// Mount containerd snapshot mounts (bind or overlay) read-only at
/// `target`, as crid mounts image volumes.
pub fn mount_snapshot(mounts: &[crid::containerd::Mount], target: &Path) {
    crid::container::rootfs::mount_read_only(mounts, target).unwrap();
}
