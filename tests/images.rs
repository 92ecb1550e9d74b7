//! Images (issue #3): PullImage from a real registry into a real containerd,
//! ImageStatus / ListImages / RemoveImage / ImageFsInfo, auth, mirrors,
//! singleflight, the locally built pause image, resolve of ctr imports;
//! pulls interrupted (crid killed, client gone) and pulls sharing layers.

mod support;

use crid::cri::*;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};
use support::gated::GatedRegistry;
use support::image::*;
use support::*;

fn spec(image: &str) -> Option<ImageSpec> {
    Some(ImageSpec {
        image: image.to_string(),
        ..Default::default()
    })
}

/// A test registry holding the busybox test image as `repo:tag`: the
/// registry, the directory the image was built in (keep it alive), the image
/// and the name it was pushed as.
fn registry_with_busybox(
    repo: &str,
    tag: &str,
) -> (TestRegistry, tempfile::TempDir, BuiltImage, String) {
    let reg = TestRegistry::start();
    let tmp = short_tempdir("img");
    let img = busybox_image(&tmp.path().join("bb"), "v1", &ImageConfig::default());
    let name = reg.push(&img, repo, tag, None);
    (reg, tmp, img, name)
}

async fn pull(
    client: &mut ImageClient,
    image: &str,
    auth: Option<AuthConfig>,
) -> Result<String, tonic::Status> {
    client
        .pull_image(PullImageRequest {
            image: spec(image),
            auth,
            sandbox_config: None,
        })
        .await
        .map(|r| r.into_inner().image_ref)
}

async fn status(client: &mut ImageClient, image: &str) -> Option<Image> {
    client
        .image_status(ImageStatusRequest {
            image: spec(image),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner()
        .image
}

async fn list(client: &mut ImageClient) -> Vec<Image> {
    client
        .list_images(ListImagesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .images
}

async fn remove(client: &mut ImageClient, image: &str) -> Result<(), tonic::Status> {
    client
        .remove_image(RemoveImageRequest { image: spec(image) })
        .await
        .map(|_| ())
}

fn adapter(ctd: &TestContainerd) -> crid::containerd::Containerd {
    crid::containerd::Containerd::new(&ctd.address, "k8s.io", "overlayfs").unwrap()
}

/// Mount a read-only view of snapshot `chain` and return whether `path` exists in it.
async fn exists_in_snapshot(ctd: &TestContainerd, chain: &str, paths: &[&str]) -> Vec<bool> {
    let cd = adapter(ctd);
    let key = format!("test-view-{}", rand_suffix());
    let mounts = cd
        .view_snapshot(&key, chain, Default::default())
        .await
        .unwrap();
    let target = ctd.dir.path().join(&key);
    std::fs::create_dir_all(&target).unwrap();
    mount_snapshot(&mounts, &target);
    let found = paths.iter().map(|p| target.join(p).exists()).collect();
    nix::mount::umount2(&target, nix::mount::MntFlags::MNT_DETACH).unwrap();
    cd.remove_snapshot(&key).await.unwrap();
    found
}

/// `<crid's registry config dir>/<host>/hosts.toml` with `content`.
fn write_hosts_toml(crid: &TestCrid, host: &str, content: &str) {
    let dir = crid.dir.path().join("certs.d").join(host);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("hosts.toml"), content).unwrap();
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn chain_id(diff_ids: &[String]) -> String {
    let mut chain = diff_ids[0].clone();
    for d in &diff_ids[1..] {
        chain = digest(format!("{chain} {d}").as_bytes());
    }
    chain
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_by_tag_and_by_digest_records_every_name() {
    if missing_tools() {
        return;
    }
    let (reg, _tmp, img, name) = registry_with_busybox("busybox", "latest");
    let ctd = TestContainerd::start();
    let crid = TestCrid::start(&ctd);
    let mut c = crid.images().await;

    let id = pull(&mut c, &name, None).await.unwrap();
    assert_eq!(id, img.config_digest);
    let st = status(&mut c, &name).await.expect("image present");
    assert_eq!(st.id, id);
    assert!(st.repo_tags.contains(&name), "{:?}", st.repo_tags);
    let by_digest = format!("{}/busybox@{}", reg.addr, img.manifest_digest);
    assert!(
        st.repo_digests.contains(&by_digest),
        "{:?}",
        st.repo_digests
    );
    assert!(st.size > 0);
    assert!(!st.pinned);
    assert_eq!(st.uid, None);
    assert_eq!(status(&mut c, &id).await.unwrap().id, id);
    assert_eq!(status(&mut c, &id[7..]).await.unwrap().id, id);

    // By digest: the same image, no new id.
    assert_eq!(pull(&mut c, &by_digest, None).await.unwrap(), id);
    assert_eq!(status(&mut c, &by_digest).await.unwrap().id, id);

    let listed = list(&mut c).await;
    assert_eq!(listed.iter().filter(|i| i.id == id).count(), 1);
    let filtered = c
        .list_images(ListImagesRequest {
            filter: Some(ImageFilter { image: spec(&name) }),
        })
        .await
        .unwrap()
        .into_inner()
        .images;
    assert_eq!(filtered.len(), 1);

    // containerd sees the records, the unpacked snapshot and its files.
    let ls = ctd.ctr(&["images", "ls", "-q"]);
    for n in [name.as_str(), by_digest.as_str(), id.as_str()] {
        assert!(
            ls.lines().any(|l| l == n),
            "{n} not in ctr images ls:\n{ls}"
        );
    }
    let chain = chain_id(&img.diff_ids);
    assert!(ctd.ctr(&["snapshots", "ls"]).contains(&chain));
    assert_eq!(
        exists_in_snapshot(&ctd, &chain, &["bin/busybox", "etc/passwd", "nope"]).await,
        vec![true, true, false]
    );

    // Nothing is left leased once the pull is done.
    let leases = ctd.ctr(&["leases", "ls", "-q"]);
    assert!(
        !leases.lines().any(|l| l.starts_with("crid-")),
        "leftover leases: {leases}"
    );

    let fs = c
        .image_fs_info(ImageFsInfoRequest::default())
        .await
        .unwrap()
        .into_inner();
    let u = &fs.image_filesystems[0];
    assert!(u
        .fs_id
        .as_ref()
        .unwrap()
        .mountpoint
        .ends_with("io.containerd.snapshotter.v1.overlayfs"));
    assert!(u.used_bytes.as_ref().unwrap().value > 1_000_000);
    assert!(u.inodes_used.as_ref().unwrap().value > 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_arch_index_resolves_to_linux_amd64() {
    if missing_tools() {
        return;
    }
    let reg = TestRegistry::start();
    let tmp = short_tempdir("img");
    let other = layer_tar(&[Entry::File("arm".into(), b"arm64".to_vec(), 0o644)]);
    let index = build_index_layout(
        &tmp.path().join("multi"),
        "v1",
        vec![
            (
                "arm64",
                vec![Layer {
                    tar: other,
                    gzip: true,
                }],
                ImageConfig::default(),
            ),
            (
                "amd64",
                vec![Layer {
                    tar: busybox_layer(),
                    gzip: true,
                }],
                ImageConfig::default(),
            ),
        ],
    );
    let name = reg.push_index(&index, "multi", "v1");
    let amd64 = &index.images.iter().find(|(a, _)| a == "amd64").unwrap().1;
    let ctd = TestContainerd::start();
    let crid = TestCrid::start(&ctd);
    let mut c = crid.images().await;
    let id = pull(&mut c, &name, None).await.unwrap();
    assert_eq!(id, amd64.config_digest);
    let st = status(&mut c, &name).await.unwrap();
    let by_digest = format!("{}/multi@{}", reg.addr, index.index_digest);
    assert!(
        st.repo_digests.contains(&by_digest),
        "{:?}",
        st.repo_digests
    );
    assert_eq!(
        exists_in_snapshot(&ctd, &chain_id(&amd64.diff_ids), &["bin/busybox", "arm"]).await,
        vec![true, false]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_layer_image_with_gzip_and_plain_layers_unpacks_in_order() {
    if missing_tools() {
        return;
    }
    let reg = TestRegistry::start();
    let tmp = short_tempdir("img");
    let extra = layer_tar(&[
        Entry::Dir("etc/"),
        Entry::File("etc/hello".into(), b"hello\n".to_vec(), 0o644),
    ]);
    let img = build_layout(
        &tmp.path().join("ml"),
        "v1",
        &[
            Layer {
                tar: busybox_layer(),
                gzip: true,
            },
            Layer {
                tar: extra,
                gzip: false,
            },
        ],
        &ImageConfig::default(),
        "amd64",
    );
    let name = reg.push(&img, "layers", "v1", None);
    let ctd = TestContainerd::start();
    let crid = TestCrid::start(&ctd);
    let mut c = crid.images().await;
    assert_eq!(pull(&mut c, &name, None).await.unwrap(), img.config_digest);
    let chain = chain_id(&img.diff_ids);
    assert_eq!(
        exists_in_snapshot(&ctd, &chain, &["bin/busybox", "etc/hello", "etc/passwd"]).await,
        vec![true, true, true]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_with_user_1000_reports_uid() {
    if missing_tools() {
        return;
    }
    let reg = TestRegistry::start();
    let tmp = short_tempdir("img");
    let cfg = ImageConfig {
        user: "1000".into(),
        ..Default::default()
    };
    let img = busybox_image(&tmp.path().join("u"), "v1", &cfg);
    let name = reg.push(&img, "user", "v1", None);
    let named = busybox_image(
        &tmp.path().join("n"),
        "v1",
        &ImageConfig {
            user: "app:appgroup".into(),
            ..Default::default()
        },
    );
    let name2 = reg.push(&named, "named", "v1", None);
    let ctd = TestContainerd::start();
    let crid = TestCrid::start(&ctd);
    let mut c = crid.images().await;
    pull(&mut c, &name, None).await.unwrap();
    let st = status(&mut c, &name).await.unwrap();
    assert_eq!(st.uid, Some(Int64Value { value: 1000 }));
    assert_eq!(st.username, "");
    pull(&mut c, &name2, None).await.unwrap();
    let st = status(&mut c, &name2).await.unwrap();
    assert_eq!(st.uid, None);
    assert_eq!(st.username, "app");

    let verbose = c
        .image_status(ImageStatusRequest {
            image: spec(&name),
            verbose: true,
        })
        .await
        .unwrap()
        .into_inner();
    let info: serde_json::Value = serde_json::from_str(&verbose.info["info"]).unwrap();
    assert_eq!(info["imageSpec"]["config"]["User"], "1000");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_goes_through_a_mirror_from_hosts_toml() {
    if missing_tools() {
        return;
    }
    let (reg, _tmp, img, _name) = registry_with_busybox("team/busybox", "1.0");
    let ctd = TestContainerd::start();
    let crid = TestCrid::start(&ctd);
    write_hosts_toml(
        &crid,
        "mirror.test",
        &format!(
            "server = \"https://mirror.test\"\n\n[host.\"http://{}\"]\n  capabilities = [\"pull\", \"resolve\"]\n",
            reg.addr
        ),
    );
    let mut c = crid.images().await;
    let id = pull(&mut c, "mirror.test/team/busybox:1.0", None)
        .await
        .unwrap();
    assert_eq!(id, img.config_digest);
    let st = status(&mut c, "mirror.test/team/busybox:1.0")
        .await
        .unwrap();
    assert!(st
        .repo_tags
        .contains(&"mirror.test/team/busybox:1.0".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_goes_through_a_mirror_whose_api_root_has_a_path() {
    if missing_tools() {
        return;
    }
    // The mirror's API root is <registry>/v2/mirror (override_path), so the
    // registry sees every repository under `mirror/`; the image exists
    // only there and the server is unreachable.
    let (reg, _tmp, img, _name) = registry_with_busybox("mirror/team/busybox", "1.0");
    let ctd = TestContainerd::start();
    let crid = TestCrid::start(&ctd);
    write_hosts_toml(
        &crid,
        "pathed.test",
        &format!(
            "server = \"http://127.0.0.1:1\"\n\n[host.\"http://{}/v2/mirror\"]\n  capabilities = [\"pull\", \"resolve\"]\n  override_path = true\n",
            reg.addr
        ),
    );
    let mut c = crid.images().await;
    let id = pull(&mut c, "pathed.test/team/busybox:1.0", None)
        .await
        .unwrap();
    assert_eq!(id, img.config_digest);
    assert!(status(&mut c, "pathed.test/team/busybox:1.0")
        .await
        .is_some());
    assert_eq!(
        exists_in_snapshot(&ctd, &chain_id(&img.diff_ids), &["bin/busybox"]).await,
        vec![true]
    );
}

/// hosts.toml `[header]`s go with every request to their host: several
/// values of one header, each as its own header line, as containerd sends
/// them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_toml_headers_go_with_every_request_to_their_host() {
    if missing_tools() {
        return;
    }
    let tmp = short_tempdir("img");
    let img = busybox_image(&tmp.path().join("bb"), "v1", &ImageConfig::default());
    let reg = GatedRegistry::serve(&[("team/busybox", &img.layout)]);
    let ctd = TestContainerd::start();
    let crid = TestCrid::start(&ctd);
    write_hosts_toml(
        &crid,
        "headers.test",
        &format!(
            "server = \"http://127.0.0.1:1\"\n\n[host.\"http://{addr}\"]\n  capabilities = [\"pull\", \"resolve\"]\n  [host.\"http://{addr}\".header]\n    x-crid-test = [\"a\", \"b\"]\n    x-mirror-key = \"k\"\n",
            addr = reg.addr
        ),
    );
    let mut c = crid.images().await;
    let id = pull(&mut c, "headers.test/team/busybox:v1", None)
        .await
        .unwrap();
    assert_eq!(id, img.config_digest);
    let seen = reg.header_values("x-crid-test");
    assert!(seen.len() >= 3, "manifest, config and layer: {seen:?}");
    for (line, values) in &seen {
        assert_eq!(values, &["a", "b"], "{line}");
    }
    for (line, values) in reg.header_values("x-mirror-key") {
        assert_eq!(values, ["k"], "{line}");
    }
}

/// A registry on HTTPS that requires a client certificate: hosts.toml's
/// `ca` makes its server certificate trusted and `client` gives the
/// certificate to present. Without either, the pull fails on the TLS
/// handshake and leaves nothing behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_registry_with_hosts_toml_ca_and_client_certificate() {
    if missing_tools() {
        return;
    }
    let pki = support::tls::TestPki::new();
    let reg = TestRegistry::start_with_client_certs(&pki);
    let tmp = short_tempdir("img");
    let img = busybox_image(&tmp.path().join("bb"), "v1", &ImageConfig::default());
    reg.push(&img, "team/busybox", "v1", None);
    let ctd = TestContainerd::start();
    let crid = TestCrid::start(&ctd);
    let certs = |host: &str, lines: &str| {
        pki.copy_client_files(&crid.dir.path().join("certs.d").join(host));
        write_hosts_toml(
            &crid,
            host,
            &format!("server = \"https://{}\"\n{lines}", reg.addr),
        );
    };
    certs("no-client.test", "ca = \"ca.crt\"\n");
    certs(
        "no-ca.test",
        "client = [[\"client.cert\", \"client.key\"]]\n",
    );
    certs(
        "tls.test",
        "ca = \"ca.crt\"\nclient = [[\"client.cert\", \"client.key\"]]\n",
    );
    let mut c = crid.images().await;
    for refused in ["no-client.test", "no-ca.test"] {
        let name = format!("{refused}/team/busybox:v1");
        let err = pull(&mut c, &name, None).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unavailable, "{refused}: {err:?}");
        assert!(status(&mut c, &name).await.is_none());
    }
    assert!(!ctd.ctr(&["images", "ls", "-q"]).contains("team/busybox"));

    let id = pull(&mut c, "tls.test/team/busybox:v1", None)
        .await
        .unwrap();
    assert_eq!(id, img.config_digest);
    assert_eq!(
        exists_in_snapshot(&ctd, &chain_id(&img.diff_ids), &["bin/busybox"]).await,
        vec![true]
    );
}

/// The busybox test image pushed as `private:v1` with alice's credentials.
fn push_private(reg: &TestRegistry) -> (tempfile::TempDir, BuiltImage, String) {
    let tmp = short_tempdir("img");
    let img = busybox_image(&tmp.path().join("bb"), "v1", &ImageConfig::default());
    let name = reg.push(&img, "private", "v1", Some(("alice", "s3cret")));
    (tmp, img, name)
}

fn creds(user: &str, pass: &str) -> AuthConfig {
    AuthConfig {
        username: user.into(),
        password: pass.into(),
        ..Default::default()
    }
}

/// No credentials and a wrong password both give Unauthenticated, and
/// leave no image behind.
async fn refused_without_the_password(c: &mut ImageClient, ctd: &TestContainerd, name: &str) {
    let err = pull(c, name, None).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err:?}");
    let err = pull(c, name, Some(creds("alice", "wrong")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err:?}");
    assert!(status(c, name).await.is_none());
    assert!(!ctd.ctr(&["images", "ls", "-q"]).contains("private"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_registry_needs_the_right_password() {
    if missing_tools() {
        return;
    }
    let reg = TestRegistry::start_with_auth(Some(("alice", "s3cret")));
    let (_tmp, img, name) = push_private(&reg);
    let ctd = TestContainerd::start();
    let crid = TestCrid::start(&ctd);
    let mut c = crid.images().await;

    refused_without_the_password(&mut c, &ctd, &name).await;

    let id = pull(&mut c, &name, Some(creds("alice", "s3cret")))
        .await
        .unwrap();
    assert_eq!(id, img.config_digest);
    remove(&mut c, &id).await.unwrap();
    // The same credentials as a base64 `auth`.
    let auth = AuthConfig {
        auth: "YWxpY2U6czNjcmV0".into(), // alice:s3cret
        ..Default::default()
    };
    assert_eq!(pull(&mut c, &name, Some(auth)).await.unwrap(), id);
}

/// The token protocol (Docker Hub's and most private registries'): the
/// registry challenges with `Bearer realm=…`, crid asks the token service
/// with the CRI credentials, then retries with the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_auth_registry_gets_a_token_for_the_right_password_or_identity_token() {
    if missing_tools() {
        return;
    }
    let tokens = support::token::TokenServer::start("alice", "s3cret", "private");
    let reg = TestRegistry::start_with_token_auth(&tokens);
    let (_tmp, img, name) = push_private(&reg);
    let ctd = TestContainerd::start();
    let crid = TestCrid::start(&ctd);
    let mut c = crid.images().await;

    let refused = tokens.refused();
    refused_without_the_password(&mut c, &ctd, &name).await;
    assert!(
        tokens.refused() >= refused + 2,
        "the token service was asked"
    );

    let granted = tokens.granted().len();
    let id = pull(&mut c, &name, Some(creds("alice", "s3cret")))
        .await
        .unwrap();
    assert_eq!(id, img.config_digest);
    let asked: Vec<String> = tokens.granted()[granted..].to_vec();
    assert!(
        asked
            .iter()
            .any(|q| q.contains("repository%3Aprivate%3Apull")
                || q.contains("repository:private:pull")),
        "crid asked for a pull token on the repository: {asked:?}"
    );
    assert!(
        asked.iter().all(|q| q.contains(support::token::SERVICE)),
        "{asked:?}"
    );
    // The image is usable: its layer is unpacked.
    assert_eq!(
        exists_in_snapshot(&ctd, &chain_id(&img.diff_ids), &["bin/busybox"]).await,
        vec![true]
    );

    // An identity token (OAuth2 refresh token) is exchanged at the token
    // service for an access token (POST, grant_type=refresh_token).
    remove(&mut c, &id).await.unwrap();
    let identity = |token: &str| AuthConfig {
        identity_token: token.into(),
        ..Default::default()
    };
    let err = pull(&mut c, &name, Some(identity("not-the-token")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err:?}");
    assert!(err.message().contains("identity token"), "{err:?}");
    let granted = tokens.granted().len();
    let refresh = tokens.refresh_token().to_string();
    assert_eq!(
        pull(&mut c, &name, Some(identity(&refresh))).await.unwrap(),
        id
    );
    let asked: Vec<String> = tokens.granted()[granted..].to_vec();
    assert!(
        asked.iter().any(|f| f.contains("grant_type=refresh_token")
            && f.contains("scope=repository%3Aprivate%3Apull")),
        "{asked:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pulls_of_one_image_share_the_download() {
    if missing_tools() {
        return;
    }
    let (_reg, _tmp, img, name) = registry_with_busybox("busybox", "shared");
    let ctd = TestContainerd::start();
    let crid = TestCrid::start(&ctd);
    let c = crid.images().await;
    let pulls = (0..10).map(|_| {
        let mut c = c.clone();
        let name = name.clone();
        tokio::spawn(async move { pull(&mut c, &name, None).await })
    });
    let ids: Vec<String> = futures::future::join_all(pulls)
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();
    assert!(ids.iter().all(|i| *i == img.config_digest), "{ids:?}");
    let log = crid.log();
    assert_eq!(
        log.matches("layer stored").count(),
        1,
        "the layer was stored more than once:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_then_pull_again() {
    if missing_tools() {
        return;
    }
    let (_reg, _tmp, img, name) = registry_with_busybox("busybox", "rm");
    let ctd = TestContainerd::start();
    let crid = TestCrid::start(&ctd);
    let mut c = crid.images().await;

    // Missing image: not an error.
    remove(&mut c, "127.0.0.1:1/never/pulled:v1").await.unwrap();
    remove(&mut c, &img.config_digest).await.unwrap();

    let id = pull(&mut c, &name, None).await.unwrap();
    remove(&mut c, &name).await.unwrap();
    assert!(status(&mut c, &name).await.is_none());
    assert!(status(&mut c, &id).await.is_none());
    let ls = ctd.ctr(&["images", "ls", "-q"]);
    assert!(!ls.contains("busybox"), "{ls}");
    assert!(!ls.contains(&id), "{ls}");

    assert_eq!(pull(&mut c, &name, None).await.unwrap(), id);
    assert!(status(&mut c, &name).await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_image_is_built_locally_pinned_and_removable() {
    if missing_tools() {
        return;
    }
    let ctd = TestContainerd::start();
    let sandbox = "127.0.0.1:1/crid/pause:test";
    let crid = TestCrid::start_with(
        &ctd,
        CridOptions {
            config_toml: Some(format!("sandbox_image = \"{sandbox}\"\n")),
            ..Default::default()
        },
    );
    let mut c = crid.images().await;
    // Built in the background at start-up: wait for it (no network needed).
    let deadline = Instant::now() + Duration::from_secs(60);
    let st = loop {
        if let Some(st) = status(&mut c, sandbox).await {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "no sandbox image:\n{}",
            crid.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(st.pinned);
    assert!(st.repo_tags.contains(&sandbox.to_string()));
    // ListImages says pinned too (kubelet's image GC reads it there).
    let listed = list(&mut c).await;
    let mine = listed.iter().find(|i| i.id == st.id).expect("listed");
    assert!(mine.pinned, "{mine:?}");

    // The unpacked image holds a static /pause.
    let cd = adapter(&ctd);
    let info = c
        .image_status(ImageStatusRequest {
            image: spec(sandbox),
            verbose: true,
        })
        .await
        .unwrap()
        .into_inner();
    let v: serde_json::Value = serde_json::from_str(&info.info["info"]).unwrap();
    let chain = v["chainID"].as_str().unwrap().to_string();
    assert!(cd.stat_snapshot(&chain).await.unwrap().is_some());
    assert_eq!(
        exists_in_snapshot(&ctd, &chain, &["pause"]).await,
        vec![true]
    );
    assert_eq!(v["imageSpec"]["config"]["Entrypoint"][0], "/pause");

    // Pinned is no bar to RemoveImage, as in containerd's CRI.
    remove(&mut c, sandbox)
        .await
        .expect("remove the sandbox image");
    assert!(status(&mut c, sandbox).await.is_none());
    assert!(status(&mut c, &st.id).await.is_none());
    let listed = list(&mut c).await;
    assert!(listed.iter().all(|i| i.id != st.id), "{listed:?}");
    // Gone already: not an error.
    remove(&mut c, &st.id).await.expect("remove again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_unpacks_an_image_imported_without_unpacking() {
    if missing_tools() {
        return;
    }
    let ctd = TestContainerd::start();
    let tmp = short_tempdir("img");
    let img = busybox_image(&tmp.path().join("bb"), "v1", &ImageConfig::default());
    ctr_import(&ctd, &img, "docker.io/library/imported:v1");
    let chain = chain_id(&img.diff_ids);
    let cd = adapter(&ctd);
    assert!(cd.stat_snapshot(&chain).await.unwrap().is_none());

    let config = crid::config::Config::default();
    let images = crid::image::ImageService::new(cd.clone(), &config);
    // A short name, normalised as Docker does.
    let rec = images.resolve("imported:v1").await.unwrap();
    assert_eq!(rec.id, img.config_digest);
    assert_eq!(rec.chain_id, chain);
    assert!(cd.stat_snapshot(&chain).await.unwrap().is_some());
    assert!(images.resolve(&img.config_digest).await.is_ok());
    let err = images.resolve("not-there:v1").await.unwrap_err();
    assert!(err.is_not_found());
    // Not crid's record: removing leaves it alone.
    images.remove("imported:v1").await.unwrap();
    assert!(ctd
        .ctr(&["images", "ls", "-q"])
        .contains("docker.io/library/imported:v1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removal_lets_gc_collect_only_what_nothing_else_references() {
    if missing_tools() {
        return;
    }
    let reg = TestRegistry::start();
    let tmp = short_tempdir("img");
    let extra = layer_tar(&[Entry::File("extra".into(), b"x".to_vec(), 0o644)]);
    let keep = build_layout(
        &tmp.path().join("keep"),
        "v1",
        &[
            Layer {
                tar: busybox_layer(),
                gzip: true,
            },
            Layer {
                tar: extra,
                gzip: true,
            },
        ],
        &ImageConfig::default(),
        "amd64",
    );
    let gone = busybox_image(
        &tmp.path().join("gone"),
        "v1",
        &ImageConfig {
            user: "1000".into(),
            ..Default::default()
        },
    );
    let keep_name = reg.push(&keep, "keep", "v1", None);
    let gone_name = reg.push(&gone, "gone", "v1", None);
    let ctd = TestContainerd::start();
    let crid = TestCrid::start(&ctd);
    let mut c = crid.images().await;
    pull(&mut c, &keep_name, None).await.unwrap();
    pull(&mut c, &gone_name, None).await.unwrap();
    remove(&mut c, &gone_name).await.unwrap();

    // containerd collects in the background: wait for the removed image's
    // own blobs to go.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let content = ctd.ctr(&["content", "ls", "-q"]);
        if !content.contains(&gone.config_digest) && !content.contains(&gone.manifest_digest) {
            break;
        }
        assert!(Instant::now() < deadline, "not collected:\n{content}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // What the other image references stays: blobs (the shared base layer
    // included) and snapshots.
    let content = ctd.ctr(&["content", "ls", "-q"]);
    for d in [&keep.config_digest, &keep.manifest_digest] {
        assert!(content.contains(d.as_str()), "{d} collected:\n{content}");
    }
    let snapshots = ctd.ctr(&["snapshots", "ls"]);
    assert!(snapshots.contains(&chain_id(&keep.diff_ids)), "{snapshots}");
    assert!(snapshots.contains(&keep.diff_ids[0]), "{snapshots}");
    assert!(status(&mut c, &keep_name).await.is_some());
    // Both layer blobs of the kept image stay, labelled with their diff ids.
    let layers = ctd.ctr(&["content", "ls"]);
    for diff_id in &keep.diff_ids {
        let label = format!("containerd.io/uncompressed={diff_id}");
        assert!(layers.contains(&label), "no {label}:\n{layers}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_without_progress_fails_with_a_clear_error() {
    if missing_tools() {
        return;
    }
    // A "registry" that accepts connections and never answers.
    let stall = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = stall.local_addr().unwrap();
    let holder = std::thread::spawn(move || {
        let mut held = vec![];
        for conn in stall.incoming().take(4) {
            held.push(conn);
        }
        std::thread::sleep(Duration::from_secs(30));
    });
    let ctd = TestContainerd::start();
    let crid = TestCrid::start_with(
        &ctd,
        CridOptions {
            config_toml: Some("[registry]\npull_progress_timeout_secs = 1\n".into()),
            ..Default::default()
        },
    );
    let mut c = crid.images().await;
    let err = pull(&mut c, &format!("{addr}/stalled:v1"), None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::DeadlineExceeded, "{err:?}");
    assert!(err.message().contains("no progress"), "{err:?}");
    drop(holder);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_schema2_images_pull_like_oci_ones() {
    if missing_tools() {
        return;
    }
    let reg = TestRegistry::start();
    let tmp = short_tempdir("img");
    let img = busybox_image(&tmp.path().join("bb"), "v1", &ImageConfig::default());
    let name = reg.push_docker_v2s2(&img, "docker", "v1");
    let ctd = TestContainerd::start();
    let crid = TestCrid::start(&ctd);
    let mut c = crid.images().await;
    let id = pull(&mut c, &name, None).await.unwrap();
    let st = status(&mut c, &id).await.unwrap();
    assert!(st.repo_tags.contains(&name));
    let manifest_digest = st.repo_digests[0].split('@').nth(1).unwrap().to_string();
    let cd = adapter(&ctd);
    let manifest: serde_json::Value =
        serde_json::from_slice(&cd.read_content(&manifest_digest).await.unwrap()).unwrap();
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(
        exists_in_snapshot(&ctd, &chain_id(&img.diff_ids), &["bin/busybox"]).await,
        vec![true]
    );
}

/// busybox under `n` layers of `mib` MiB of random data each (plain tars:
/// random data does not compress, and they are quick to build).
fn big_image(dir: &std::path::Path, n: usize, mib: usize) -> BuiltImage {
    let mut layers = vec![Layer {
        tar: busybox_layer(),
        gzip: true,
    }];
    for i in 0..n {
        layers.push(Layer {
            tar: random_layer(&format!("blob{i}"), mib),
            gzip: false,
        });
    }
    build_layout(dir, "v1", &layers, &ImageConfig::default(), "amd64")
}

/// crid's pull leases in the test containerd.
fn pull_leases(ctd: &TestContainerd) -> Vec<String> {
    ctd.ctr(&["leases", "ls", "-q"])
        .lines()
        .filter(|l| l.starts_with("crid-pull-"))
        .map(str::to_string)
        .collect()
}

/// Where crid stages the layers it writes into the test containerd's
/// content store itself (namespace `k8s.io`).
fn staging_dir(ctd: &TestContainerd) -> std::path::PathBuf {
    ctd.dir
        .path()
        .join("root/io.containerd.content.v1.content/crid-staging/k8s.io")
}

/// Names of the files crid has staged in the test containerd's store.
fn staged_files(ctd: &TestContainerd) -> Vec<String> {
    std::fs::read_dir(staging_dir(ctd))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Where the test containerd keeps blob `digest`.
fn content_blob(ctd: &TestContainerd, digest: &str) -> std::path::PathBuf {
    ctd.dir
        .path()
        .join("root/io.containerd.content.v1.content/blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

/// Bytes of layer `digest` staged for a direct write (0 if none).
fn staged_bytes(ctd: &TestContainerd, digest: &str) -> u64 {
    let hex = digest.trim_start_matches("sha256:");
    std::fs::read_dir(staging_dir(ctd))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(hex))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .max()
        .unwrap_or(0)
}

/// Wait until the pull of `img` stands at the gate on its top layer: every
/// layer below is unpacked already (unpacking does not wait for the last
/// download) and the top layer's bytes are arriving (staged for a direct
/// write into the store, or in a streamed ingest).
async fn wait_at_gate(ctd: &TestContainerd, crid: &TestCrid, img: &BuiltImage, top: &str) {
    let cd = adapter(ctd);
    let below = chain_id(&img.diff_ids[..img.diff_ids.len() - 1]);
    let ingest = format!("layer-{top}");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let unpacked = cd.stat_snapshot(&below).await.unwrap().is_some();
        let offset =
            cd.ingest_offset(&ingest).await.unwrap().unwrap_or(0) as u64 + staged_bytes(ctd, top);
        if unpacked && offset > 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "pull never stood at the gate (lower layers unpacked: {unpacked}, top layer bytes: {offset}):\n{}",
            crid.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Neither CRI nor containerd shows the image, by name or by id.
async fn assert_not_visible(c: &mut ImageClient, ctd: &TestContainerd, name: &str, id: &str) {
    assert!(status(c, name).await.is_none(), "{name} visible");
    assert!(status(c, id).await.is_none(), "{id} visible");
    let listed = list(c).await;
    assert!(listed.iter().all(|i| i.id != id), "{listed:?}");
    let ls = ctd.ctr(&["images", "ls", "-q"]);
    assert!(!ls.contains(name) && !ls.contains(id), "{ls}");
}

/// Mount a read-only view of snapshot `chain` and read `paths` in it.
async fn read_in_snapshot(
    ctd: &TestContainerd,
    chain: &str,
    paths: &[&str],
) -> Vec<Option<Vec<u8>>> {
    let cd = adapter(ctd);
    let key = format!("test-read-{}", rand_suffix());
    let mounts = cd
        .view_snapshot(&key, chain, Default::default())
        .await
        .unwrap();
    let target = ctd.dir.path().join(&key);
    std::fs::create_dir_all(&target).unwrap();
    mount_snapshot(&mounts, &target);
    let found = paths
        .iter()
        .map(|p| std::fs::read(target.join(p)).ok())
        .collect();
    nix::mount::umount2(&target, nix::mount::MntFlags::MNT_DETACH).unwrap();
    cd.remove_snapshot(&key).await.unwrap();
    found
}

/// The image's files are all there: busybox from the bottom layer, the
/// random file of the top one, whole.
async fn assert_unpacked(ctd: &TestContainerd, img: &BuiltImage, top_file: &str, mib: usize) {
    let got = read_in_snapshot(ctd, &chain_id(&img.diff_ids), &["etc/passwd", top_file]).await;
    assert!(got[0].as_ref().unwrap().starts_with(b"root:"));
    assert_eq!(got[1].as_ref().map(Vec::len), Some(mib << 20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_killed_midway_leaves_no_half_image() {
    if missing_tools() {
        return;
    }
    let tmp = short_tempdir("img");
    let img = big_image(&tmp.path().join("big"), 3, 16);
    let top = layer_digests(&img).pop().unwrap();
    let reg = GatedRegistry::serve(&[("gated/big", &img.layout)]);
    reg.hold(&top);
    let name = format!("{}/gated/big:v1", reg.addr);
    let ctd = TestContainerd::start();
    let mut crid = TestCrid::start(&ctd);
    let mut c = crid.images().await;
    let pulling = {
        let (mut c, name) = (c.clone(), name.clone());
        tokio::spawn(async move { pull(&mut c, &name, None).await })
    };
    wait_at_gate(&ctd, &crid, &img, &top).await;
    assert_not_visible(&mut c, &ctd, &name, &img.config_digest).await;
    assert!(!pull_leases(&ctd).is_empty(), "the pull runs under a lease");

    crid.kill9();
    assert!(pulling.await.unwrap().is_err());
    let ls = ctd.ctr(&["images", "ls", "-q"]);
    assert!(!ls.contains(&name), "{ls}");

    // Restarted on the same state: still no image, and the dead pull's
    // lease is gone (recovery deletes crid's leftover pull leases).
    crid.restart();
    let mut c = crid.images().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !pull_leases(&ctd).is_empty() {
        assert!(
            Instant::now() < deadline,
            "leftover pull leases {:?}:\n{}",
            pull_leases(&ctd),
            crid.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_not_visible(&mut c, &ctd, &name, &img.config_digest).await;
    // What the dead crid staged of the held layer is cleared too.
    while !staged_files(&ctd).is_empty() {
        assert!(
            Instant::now() < deadline,
            "staged files left {:?}:\n{}",
            staged_files(&ctd),
            crid.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The same image pulls whole, and its snapshot serves its files.
    reg.release();
    assert_eq!(pull(&mut c, &name, None).await.unwrap(), img.config_digest);
    assert!(status(&mut c, &name).await.is_some());
    assert_unpacked(&ctd, &img, "data/blob2", 16).await;
    assert!(pull_leases(&ctd).is_empty(), "{:?}", pull_leases(&ctd));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_pull_rpc_leaves_no_half_image_and_a_later_pull_succeeds() {
    if missing_tools() {
        return;
    }
    let tmp = short_tempdir("img");
    let img = big_image(&tmp.path().join("big"), 2, 16);
    let top = layer_digests(&img).pop().unwrap();
    let reg = GatedRegistry::serve(&[("gated/cancel", &img.layout)]);
    reg.hold(&top);
    let name = format!("{}/gated/cancel:v1", reg.addr);
    let ctd = TestContainerd::start();
    let crid = TestCrid::start(&ctd);
    let mut c = crid.images().await;
    let pulling = {
        let (mut c, name) = (c.clone(), name.clone());
        tokio::spawn(async move { pull(&mut c, &name, None).await })
    };
    wait_at_gate(&ctd, &crid, &img, &top).await;
    // The client goes away mid-pull: its request future is dropped.
    pulling.abort();
    assert!(pulling.await.unwrap_err().is_cancelled());
    assert_not_visible(&mut c, &ctd, &name, &img.config_digest).await;

    // crid may finish the pull detached or abort it: either way nothing
    // half-done shows, and a new pull succeeds.
    reg.release();
    assert_eq!(pull(&mut c, &name, None).await.unwrap(), img.config_digest);
    assert_unpacked(&ctd, &img, "data/blob1", 16).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !pull_leases(&ctd).is_empty() {
        assert!(Instant::now() < deadline, "leases {:?}", pull_leases(&ctd));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_sharing_a_layer_pull_concurrently_and_store_it_once() {
    if missing_tools() {
        return;
    }
    let tmp = short_tempdir("img");
    let shared = random_layer("shared", 8);
    let build = |dir: &str, own: &str| {
        build_layout(
            &tmp.path().join(dir),
            "v1",
            &[
                Layer {
                    tar: busybox_layer(),
                    gzip: true,
                },
                Layer {
                    tar: shared.clone(),
                    gzip: false,
                },
                Layer {
                    tar: layer_tar(&[Entry::File(own.into(), own.as_bytes().to_vec(), 0o644)]),
                    gzip: true,
                },
            ],
            &ImageConfig::default(),
            "amd64",
        )
    };
    let (a, b) = (build("a", "only-a"), build("b", "only-b"));
    let shared_digest = layer_digests(&a)[1].clone();
    assert_eq!(layer_digests(&b)[1], shared_digest);
    let reg = GatedRegistry::serve(&[("two/a", &a.layout), ("two/b", &b.layout)]);
    reg.hold(&shared_digest);
    let ctd = TestContainerd::start();
    let crid = TestCrid::start(&ctd);
    let c = crid.images().await;
    let start = |repo: &str| {
        let (mut c, name) = (c.clone(), format!("{}/{repo}:v1", reg.addr));
        tokio::spawn(async move { pull(&mut c, &name, None).await })
    };
    let pull_a = start("two/a");
    let pull_b = start("two/b");
    // One pull downloads the shared layer (held half-way); the other finds
    // its ingest locked and waits for it instead of failing.
    let deadline = Instant::now() + Duration::from_secs(120);
    while !crid.log().contains("layer being stored by another pull") {
        assert!(
            Instant::now() < deadline,
            "no pull waited for the other:\n{}",
            crid.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    reg.release();
    assert_eq!(pull_a.await.unwrap().unwrap(), a.config_digest);
    assert_eq!(pull_b.await.unwrap().unwrap(), b.config_digest);
    let stored = crid
        .log()
        .lines()
        .filter(|l| l.contains("layer stored") && l.contains(&shared_digest))
        .count();
    assert_eq!(stored, 1, "the shared layer was stored {stored} times");
    let got = read_in_snapshot(&ctd, &chain_id(&a.diff_ids), &["only-a", "data/shared"]).await;
    assert_eq!(got[0].as_deref(), Some(&b"only-a"[..]));
    assert_eq!(got[1].as_ref().map(Vec::len), Some(8 << 20));
    let got = read_in_snapshot(&ctd, &chain_id(&b.diff_ids), &["only-b", "only-a"]).await;
    assert_eq!(got[0].as_deref(), Some(&b"only-b"[..]));
    assert!(got[1].is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layer_that_does_not_match_its_digest_is_refused_and_nothing_is_kept() {
    if missing_tools() {
        return;
    }
    let (reg, _tmp, img, name) = registry_with_busybox("busybox", "bad");
    // Corrupt the stored layer in the registry's own storage, same size.
    let layer = layer_digests(&img).pop().unwrap();
    let hex = layer.trim_start_matches("sha256:");
    let blob = reg
        .dir
        .path()
        .join("data/docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data");
    let good = std::fs::read(&blob).unwrap();
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    std::fs::write(&blob, &bad).unwrap();

    let ctd = TestContainerd::start();
    let crid = TestCrid::start(&ctd);
    let mut c = crid.images().await;
    let err = pull(&mut c, &name, None).await.unwrap_err();
    assert!(
        err.message().contains("corrupt") && err.message().contains(hex),
        "{err:?}"
    );
    assert!(status(&mut c, &name).await.is_none());
    let content = ctd.ctr(&["content", "ls", "-q"]);
    assert!(!content.contains(hex), "{content}");
    let ingests = ctd.ctr(&["content", "active"]);
    assert!(!ingests.contains(hex), "{ingests}");
    assert_eq!(staged_files(&ctd), Vec::<String>::new());
    assert!(!content_blob(&ctd, &layer).exists());

    // Repaired upstream, the same pull succeeds.
    std::fs::write(&blob, &good).unwrap();
    pull(&mut c, &name, None).await.unwrap();
    assert!(status(&mut c, &name).await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_left_half_way_in_containerd_is_resumed() {
    if missing_tools() {
        return;
    }
    let (_reg, _tmp, img, name) = registry_with_busybox("busybox", "resume");
    let ctd = TestContainerd::start();
    // An ingest as an interrupted pull leaves it: the first MiB of the layer
    // (one full write chunk) under crid's ingest ref for that layer.
    let layer = layer_digests(&img).pop().unwrap();
    let bytes = std::fs::read(
        img.layout
            .join("blobs/sha256")
            .join(layer.trim_start_matches("sha256:")),
    )
    .unwrap();
    let chunk = crid::containerd::WRITE_CHUNK;
    assert!(bytes.len() > chunk, "the layer spans more than one chunk");
    {
        let cd = adapter(&ctd);
        let mut w = cd
            .blob_writer(&format!("layer-{layer}"), bytes.len() as i64, &layer)
            .await
            .unwrap()
            .expect("not in the store yet");
        w.write(&bytes[..chunk]).await.unwrap();
    }
    let crid = TestCrid::start(&ctd);
    let mut c = crid.images().await;
    pull(&mut c, &name, None).await.unwrap();
    assert!(status(&mut c, &name).await.is_some());
    assert!(
        crid.log().contains("resuming an interrupted download"),
        "{}",
        crid.log()
    );
    // containerd verified the whole blob (its first MiB written earlier).
    let content = ctd.ctr(&["content", "ls", "-q"]);
    assert!(content.contains(&layer), "{content}");
}

/// containerd shares content between namespaces: a blob another namespace
/// pulled is reported as a complete ingest, not as "already exists". A crid
/// in a second namespace commits it without downloading it again (it used
/// to ask the registry for the bytes past the end, and got 416).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_of_layers_another_namespace_holds_commits_them() {
    if missing_tools() {
        return;
    }
    let (_reg, _tmp, _img, name) = registry_with_busybox("busybox", "shared");
    let ctd = TestContainerd::start();
    let first = TestCrid::start(&ctd);
    let id = pull(&mut first.images().await, &name, None).await.unwrap();
    let second = TestCrid::start_with(
        &ctd,
        CridOptions {
            extra_args: vec!["--containerd-namespace".into(), "second".into()],
            ..Default::default()
        },
    );
    let mut c = second.images().await;
    assert_eq!(pull(&mut c, &name, None).await.unwrap(), id);
    assert!(status(&mut c, &name).await.is_some());
}

/// By default crid writes layers into containerd's content store itself
/// (staged, verified, renamed read-only into `blobs/sha256`) and records
/// them with a data-less `Content.Write`: containerd lists them with their
/// GC labels, unpacks them, and nothing stays staged. With
/// `direct_layer_writes = false` every byte is streamed instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layers_go_straight_into_containerds_store_unless_turned_off() {
    if missing_tools() {
        return;
    }
    let (reg, _tmp, img, name) = registry_with_busybox("busybox", "direct");
    let layers = layer_digests(&img);
    let ctd = TestContainerd::start();
    let crid = TestCrid::start(&ctd);
    let mut c = crid.images().await;
    assert_eq!(pull(&mut c, &name, None).await.unwrap(), img.config_digest);
    let log = crid.log();
    for (layer, diff_id) in layers.iter().zip(&img.diff_ids) {
        assert!(
            log.lines()
                .any(|l| l.contains("layer stored directly") && l.contains(layer.as_str())),
            "{layer} not stored directly:\n{log}"
        );
        let blob = content_blob(&ctd, layer);
        let mode = std::fs::metadata(&blob).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o444, "{}", blob.display());
        let info = ctd.ctr(&["content", "ls"]);
        let line = info
            .lines()
            .find(|l| l.starts_with(layer.as_str()))
            .unwrap();
        assert!(
            line.contains(&format!("containerd.io/uncompressed={diff_id}")),
            "{line}"
        );
    }
    assert_eq!(staged_files(&ctd), Vec::<String>::new());
    assert!(ctd.ctr(&["content", "active"]).lines().count() <= 1);
    // Unpacked from those blobs: a container of the image runs.
    let got = read_in_snapshot(&ctd, &chain_id(&img.diff_ids), &["etc/passwd"]).await;
    assert!(got[0].as_ref().unwrap().starts_with(b"root:"));

    // Turned off: the same image into a fresh containerd, streamed.
    let ctd2 = TestContainerd::start();
    let crid2 = TestCrid::start_with(
        &ctd2,
        CridOptions {
            config_toml: Some("[containerd]\ndirect_layer_writes = false\n".into()),
            ..Default::default()
        },
    );
    let mut c2 = crid2.images().await;
    assert_eq!(pull(&mut c2, &name, None).await.unwrap(), img.config_digest);
    let log = crid2.log();
    assert!(!log.contains("layer stored directly"), "{log}");
    for layer in &layers {
        assert!(
            log.lines()
                .any(|l| l.contains("layer stored") && l.contains(layer.as_str())),
            "{layer} not streamed:\n{log}"
        );
    }
    assert!(!staging_dir(&ctd2).exists());
    drop(reg);
}

/// A crid whose view of containerd's content store is not containerd's (here
/// a tmpfs over it, in crid's own mount namespace) finds that containerd does
/// not see the blob it wrote: it streams that layer and every later one, and
/// the pull succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_containerd_does_not_see_falls_back_to_streaming() {
    if missing_tools() {
        return;
    }
    let (_reg, _tmp, img, name) = registry_with_busybox("busybox", "fallback");
    let ctd = TestContainerd::start();
    // containerd creates its content directory on start.
    let content = ctd.dir.path().join("root/io.containerd.content.v1.content");
    assert!(content.is_dir());
    let script = format!(
        "mount -t tmpfs crid-test-view {} && exec \"$@\"",
        content.display()
    );
    let crid = TestCrid::start_with(
        &ctd,
        CridOptions {
            command_prefix: vec![
                "unshare".into(),
                "--mount".into(),
                "--propagation".into(),
                "private".into(),
                "sh".into(),
                "-c".into(),
                script,
                "sh".into(),
            ],
            ..Default::default()
        },
    );
    let mut c = crid.images().await;
    assert_eq!(pull(&mut c, &name, None).await.unwrap(), img.config_digest);
    let log = crid.log();
    assert!(
        log.contains("containerd does not see the blobs crid writes"),
        "{log}"
    );
    assert!(!log.contains("layer stored directly"), "{log}");
    let listed = ctd.ctr(&["content", "ls", "-q"]);
    for layer in layer_digests(&img) {
        assert!(listed.contains(&layer), "{listed}");
        assert!(content_blob(&ctd, &layer).exists());
    }
    // The tmpfs stayed in crid's mount namespace.
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(!mounts.contains("crid-test-view"), "{mounts}");
    let got = read_in_snapshot(&ctd, &chain_id(&img.diff_ids), &["etc/passwd"]).await;
    assert!(got[0].as_ref().unwrap().starts_with(b"root:"));
}

/// containerd's `isolated` content policy: a namespace gets a blob only by
/// writing it. A crid that finds that policy never writes into the store;
/// one that found `shared` and then meets a containerd restarted with
/// `isolated` sees its first blob refused, streams from then on, and the
/// pull succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_content_policy_turns_direct_writes_off() {
    if missing_tools() {
        return;
    }
    const ISOLATED: &str =
        "[plugins.\"io.containerd.metadata.v1.bolt\"]\n  content_sharing_policy = \"isolated\"";
    let (_reg, _tmp, img, name) = registry_with_busybox("busybox", "isolated");
    let layers = layer_digests(&img);

    let ctd = TestContainerd::start_with_config(ISOLATED);
    let crid = TestCrid::start(&ctd);
    let mut c = crid.images().await;
    assert_eq!(pull(&mut c, &name, None).await.unwrap(), img.config_digest);
    let log = crid.log();
    assert!(log.contains("not shared between namespaces"), "{log}");
    assert!(!log.contains("layer stored directly"), "{log}");
    assert!(!staging_dir(&ctd).exists());

    let ctd = TestContainerd::start();
    let crid = TestCrid::start(&ctd);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !crid.log().contains("pulls write layers straight") {
        assert!(Instant::now() < deadline, "{}", crid.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut ctd = ctd;
    ctd.extra_config = ISOLATED.into();
    let ctd = ctd.restart();
    let mut c = crid.images().await;
    assert_eq!(pull(&mut c, &name, None).await.unwrap(), img.config_digest);
    let log = crid.log();
    assert!(
        log.contains("containerd does not see the blobs crid writes"),
        "{log}"
    );
    let listed = ctd.ctr(&["content", "ls", "-q"]);
    for layer in &layers {
        assert!(listed.contains(layer.as_str()), "{listed}");
    }
    let got = read_in_snapshot(&ctd, &chain_id(&img.diff_ids), &["etc/passwd"]).await;
    assert!(got[0].as_ref().unwrap().starts_with(b"root:"));
}
