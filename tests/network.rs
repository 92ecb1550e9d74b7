//! Pod networking with the real CNI plugins (/usr/lib/cni) and real network
//! namespaces; no containerd. Needs root. Every test owns a unique bridge,
//! subnet (10.200.X.0/24) and temp dir, and removes what it created.

use crid::config::CniConfig;
use crid::network::cni::{Cni, PodNetwork, PortMapping};
use crid::network::netns::{connect_tcp_in, run_in, NetNs};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

const CNI_BIN: &str = "/usr/lib/cni";

fn skip() -> bool {
    let missing = !nix::unistd::Uid::effective().is_root()
        || ["bridge", "host-local", "portmap", "loopback"]
            .iter()
            .any(|p| !Path::new(CNI_BIN).join(p).exists());
    if missing {
        eprintln!("skipping: needs root and CNI plugins in {CNI_BIN}");
    }
    missing
}

/// A distinct third octet per test in this process, from a random base.
fn next_subnet_octet() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        rand::random::<u32>() % 200,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    NEXT.fetch_add(1, Ordering::SeqCst) % 250 + 1
}

/// One test's network: bridge, subnet, conf/cache/ipam/netns dirs.
struct TestNet {
    tmp: tempfile::TempDir,
    bridge: String,
    network: String,
    octet: u32,
    cni: Cni,
}

impl TestNet {
    fn new() -> TestNet {
        Self::with_conflist(|net| net.conflist())
    }

    fn with_conflist(conflist: impl FnOnce(&TestNet) -> String) -> TestNet {
        let tmp = tempfile::tempdir().unwrap();
        let hex = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
        let conf_dir = tmp.path().join("net.d");
        std::fs::create_dir_all(&conf_dir).unwrap();
        let config = CniConfig {
            conf_dir: conf_dir.clone(),
            bin_dirs: vec![CNI_BIN.into()],
            plugin_timeout_secs: 60,
        };
        let cni = Cni::new(&config, tmp.path().join("cache"));
        let net = TestNet {
            bridge: format!("crt{hex}"),
            network: format!("crt-net-{hex}"),
            octet: next_subnet_octet(),
            tmp,
            cni,
        };
        std::fs::write(conf_dir.join("10-test.conflist"), conflist(&net)).unwrap();
        net
    }

    fn conflist(&self) -> String {
        self.conflist_with_subnet(&self.subnet())
    }

    fn conflist_with_subnet(&self, subnet: &str) -> String {
        serde_json::json!({
            "cniVersion": "1.0.0",
            "name": self.network,
            "plugins": [
                {"type": "bridge", "bridge": self.bridge, "isGateway": true, "ipMasq": false,
                 "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]],
                          "dataDir": self.ipam_dir()}},
                {"type": "portmap", "capabilities": {"portMappings": true}},
                {"type": "loopback"}
            ]
        })
        .to_string()
    }

    fn subnet(&self) -> String {
        format!("10.200.{}.0/24", self.octet)
    }
    fn ipam_dir(&self) -> PathBuf {
        self.tmp.path().join("ipam")
    }
    fn netns_dir(&self) -> PathBuf {
        self.tmp.path().join("netns")
    }
    fn cache_dir(&self) -> PathBuf {
        self.tmp.path().join("cache")
    }

    fn pod(&self, ns: &NetNs, n: usize) -> PodNetwork {
        PodNetwork {
            id: format!("{}-sb{n}", self.bridge),
            netns: ns.path().to_path_buf(),
            name: format!("pod{n}"),
            namespace: "default".into(),
            uid: format!("uid-{n}"),
            port_mappings: vec![],
            annotations: Default::default(),
        }
    }

    /// IPs host-local has allocated (files named like an address).
    fn allocations(&self) -> Vec<String> {
        let dir = self.ipam_dir().join(&self.network);
        let Ok(rd) = std::fs::read_dir(dir) else {
            return vec![];
        };
        rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.parse::<std::net::IpAddr>().is_ok())
            .collect()
    }

    fn netns_files(&self) -> usize {
        std::fs::read_dir(self.netns_dir()).map_or(0, |rd| rd.count())
    }

    fn cache_entries(&self) -> usize {
        std::fs::read_dir(self.cache_dir()).map_or(0, |rd| rd.count())
    }

    /// Mounts of this test's temp dir still in /proc/self/mountinfo.
    fn mounts(&self) -> usize {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let dir = self.tmp.path().to_str().unwrap();
        info.lines().filter(|l| l.contains(dir)).count()
    }

    /// veth links enslaved to this test's bridge.
    fn bridge_ports(&self) -> usize {
        let out = std::process::Command::new("ip")
            .args(["-o", "link", "show", "master", &self.bridge])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).lines().count()
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        if let Ok(rd) = std::fs::read_dir(self.netns_dir()) {
            for e in rd.flatten() {
                let _ = NetNs::remove(&e.path());
            }
        }
        // Only the bridge this test created.
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.bridge])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// `ip -o addr show dev eth0` run inside the namespace.
fn eth0_addrs(ns: &Path) -> String {
    run_in(ns, || {
        std::process::Command::new("ip")
            .args(["-o", "addr", "show", "dev", "eth0"])
            .output()
            .unwrap()
    })
    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    .unwrap()
}

/// Accept one connection (bounded: 200 polls of 50 ms) and greet it.
fn serve_once(listener: TcpListener, greeting: &'static [u8]) -> std::thread::JoinHandle<bool> {
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        for _ in 0..200 {
            match listener.accept() {
                Ok((mut s, _)) => {
                    s.set_nonblocking(false).unwrap();
                    return s.write_all(greeting).is_ok();
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        false
    })
}

fn read_greeting(mut s: TcpStream) -> String {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    buf
}

#[tokio::test]
async fn pod_gets_ip_from_bridge_and_is_reachable_then_released() {
    if skip() {
        return;
    }
    let net = TestNet::new();
    net.cni.status().unwrap();
    let ns = NetNs::create(&net.netns_dir(), "pod-a").unwrap();

    // lo is up from creation: port-forward's path works before CNI ran.
    let lo = run_in(ns.path(), || TcpListener::bind("127.0.0.1:0").unwrap()).unwrap();
    let port = lo.local_addr().unwrap().port();
    let server = serve_once(lo, b"from lo");
    assert_eq!(
        read_greeting(connect_tcp_in(ns.path(), port).unwrap()),
        "from lo"
    );
    assert!(server.join().unwrap());

    let pod = net.pod(&ns, 0);
    let res = net.cni.setup(&pod).await.unwrap();
    let prefix = format!("10.200.{}.", net.octet);
    assert!(res.ip.starts_with(&prefix), "{res:?}");
    assert_eq!(net.allocations(), vec![res.ip.clone()]);
    assert!(eth0_addrs(ns.path()).contains(&format!("inet {}/24", res.ip)));
    assert_eq!(net.cni.cached_result(&pod.id).unwrap(), res);

    // The host reaches a listener inside the pod through the bridge.
    let ip: std::net::IpAddr = res.ip.parse().unwrap();
    let listener = run_in(ns.path(), || TcpListener::bind((ip, 0)).unwrap()).unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = serve_once(listener, b"hello from the pod");
    let stream =
        TcpStream::connect_timeout(&SocketAddr::new(ip, port), Duration::from_secs(10)).unwrap();
    assert_eq!(read_greeting(stream), "hello from the pod");
    assert!(server.join().unwrap());

    net.cni.check(&pod).await.unwrap();
    net.cni.teardown(&pod).await.unwrap();
    assert!(net.allocations().is_empty());
    assert_eq!(net.cache_entries(), 0);
    assert!(net.cni.cached_result(&pod.id).is_none());
    net.cni.teardown(&pod).await.unwrap();

    NetNs::remove(ns.path()).unwrap();
    assert!(!ns.path().exists());
    assert_eq!(net.mounts(), 0);
    NetNs::remove(ns.path()).unwrap();
}

#[tokio::test]
async fn missing_plugin_fails_setup_with_its_message_and_leaks_nothing() {
    if skip() {
        return;
    }
    let net = TestNet::with_conflist(|n| {
        let mut v: serde_json::Value = serde_json::from_str(&n.conflist()).unwrap();
        v["plugins"]
            .as_array_mut()
            .unwrap()
            .insert(1, serde_json::json!({"type": "crt-no-such-plugin"}));
        v.to_string()
    });
    assert!(net.cni.status().unwrap_err().contains("crt-no-such-plugin"));
    let ns = NetNs::create(&net.netns_dir(), "pod-b").unwrap();
    let e = net
        .cni
        .setup(&net.pod(&ns, 0))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("crt-no-such-plugin"), "{e}");
    assert!(net.allocations().is_empty(), "{:?}", net.allocations());
    assert_eq!(net.cache_entries(), 0);
    assert_eq!(net.bridge_ports(), 0);
    NetNs::remove(ns.path()).unwrap();
}

#[tokio::test]
async fn invalid_subnet_fails_setup_with_the_plugin_message_and_leaks_nothing() {
    if skip() {
        return;
    }
    let net = TestNet::with_conflist(|n| n.conflist_with_subnet("10.200.300.0/24"));
    let ns = NetNs::create(&net.netns_dir(), "pod-c").unwrap();
    let e = net
        .cni
        .setup(&net.pod(&ns, 0))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("plugin type=\"bridge\"") && e.contains("10.200.300.0"),
        "{e}"
    );
    assert!(net.allocations().is_empty());
    assert_eq!(net.cache_entries(), 0);
    NetNs::remove(ns.path()).unwrap();
    assert_eq!(net.mounts(), 0);
}

#[tokio::test]
async fn twenty_setup_teardown_cycles_leak_nothing_even_when_the_netns_goes_first() {
    if skip() {
        return;
    }
    let net = TestNet::new();
    let mut ips = Vec::new();
    for n in 0..20 {
        let ns = NetNs::create(&net.netns_dir(), &format!("pod-{n}")).unwrap();
        let pod = net.pod(&ns, n);
        ips.push(net.cni.setup(&pod).await.unwrap().ip);
        assert_eq!(net.allocations().len(), 1);
        if n % 2 == 0 {
            net.cni.teardown(&pod).await.unwrap();
            NetNs::remove(ns.path()).unwrap();
        } else {
            // The namespace may be gone before the network is torn down.
            NetNs::remove(ns.path()).unwrap();
            net.cni.teardown(&pod).await.unwrap();
        }
    }
    assert_eq!(ips.len(), 20);
    assert_eq!(net.allocations().len(), 0);
    assert_eq!(net.netns_files(), 0);
    assert_eq!(net.mounts(), 0);
    assert_eq!(net.cache_entries(), 0);
    // A veth whose namespace was removed first goes when the kernel finishes
    // destroying that namespace, which it does asynchronously.
    for _ in 0..100 {
        if net.bridge_ports() == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(net.bridge_ports(), 0);
}

/// NAT rules in the host that name `id` (portmap tags its rules with it).
fn nat_rules_naming(id: &str) -> usize {
    let out = std::process::Command::new("iptables-save")
        .args(["-t", "nat"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(id))
        .count()
}

#[tokio::test]
async fn port_mappings_reach_portmap_and_are_removed_on_teardown() {
    if skip() {
        return;
    }
    let net = TestNet::new();
    let ns = NetNs::create(&net.netns_dir(), "pod-pm").unwrap();
    let host_port = 20000 + (rand::random::<u16>() % 20000);
    let mut pod = net.pod(&ns, 0);
    pod.port_mappings.push(PortMapping {
        host_port: host_port as i32,
        container_port: 8080,
        protocol: "TCP".into(),
        host_ip: String::new(),
    });
    let res = net.cni.setup(&pod).await.unwrap();
    assert!(nat_rules_naming(&pod.id) > 0, "portmap added no rules");

    // The gateway address is local to the host: OUTPUT DNAT sends it on.
    let ip: std::net::IpAddr = res.ip.parse().unwrap();
    let listener = run_in(ns.path(), || TcpListener::bind((ip, 8080)).unwrap()).unwrap();
    let server = serve_once(listener, b"via hostPort");
    let gateway: std::net::IpAddr = format!("10.200.{}.1", net.octet).parse().unwrap();
    let stream = TcpStream::connect_timeout(
        &SocketAddr::new(gateway, host_port),
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(read_greeting(stream), "via hostPort");
    assert!(server.join().unwrap());

    net.cni.teardown(&pod).await.unwrap();
    assert_eq!(nat_rules_naming(&pod.id), 0);
    assert!(net.allocations().is_empty());
    NetNs::remove(ns.path()).unwrap();
}
