use super::Controller::*;
use super::*;

/// A fake cgroup tree: directories with the given files, and the mount
/// table lines that describe them.
struct Tree {
    dir: tempfile::TempDir,
    mountinfo: String,
}

impl Tree {
    fn new() -> Tree {
        let dir = tempfile::tempdir().unwrap();
        let mountinfo = format!(
            "31 23 0:28 / {} rw,relatime - tmpfs tmpfs rw,mode=755\n",
            dir.path().display()
        );
        Tree { dir, mountinfo }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Mount `fstype` (`cgroup` or `cgroup2`) with `options` at `<root>/<sub>`
    /// holding `files`.
    fn mount(&mut self, sub: &str, fstype: &str, options: &str, files: &[&str]) -> &mut Self {
        let point = self.root().join(sub);
        std::fs::create_dir_all(&point).unwrap();
        for f in files {
            let p = point.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "").unwrap();
        }
        self.mountinfo.push_str(&format!(
            "40 31 0:40 / {} rw,nosuid,nodev,noexec,relatime shared:9 - {fstype} cgroup rw,{options}\n",
            point.display()
        ));
        self
    }

    fn detect(&self, self_cgroup: &str) -> Cgroups {
        Cgroups::detect(self.root(), &self.mountinfo, self_cgroup)
    }
}

fn missing(c: &Cgroups) -> Vec<Controller> {
    Controller::ALL.into_iter().filter(|k| !c.has(*k)).collect()
}

const V1_SELF: &str = "4:memory:/user.slice\n1:name=systemd:/user.slice\n";

#[test]
fn v1_host_with_every_hierarchy_has_all_but_v2_files() {
    let mut t = Tree::new();
    t.mount(
        "cpu,cpuacct",
        "cgroup",
        "cpu,cpuacct",
        &["cpu.cfs_quota_us", "cpu.rt_runtime_us", "cpu.shares"],
    )
    .mount(
        "memory",
        "cgroup",
        "memory",
        &["memory.memsw.limit_in_bytes"],
    )
    .mount("hugetlb", "cgroup", "hugetlb", &[])
    .mount("pids", "cgroup", "pids", &[])
    .mount("cpuset", "cgroup", "cpuset", &[])
    .mount("blkio", "cgroup", "blkio", &[])
    .mount("rdma", "cgroup", "rdma", &[])
    .mount("misc", "cgroup", "misc", &[])
    .mount("systemd", "cgroup", "xattr,name=systemd", &[]);
    let c = t.detect(V1_SELF);
    assert_eq!(c.mode, Mode::V1);
    assert_eq!(missing(&c), vec![Unified]);
    assert!(c.unified_key_lacks("memory.high").is_some());
}

/// This host's layout: v1 hierarchies without hugetlb (which only the
/// unified mount lists), no memsw, cgroup2 at `<root>/unified`.
#[test]
fn hybrid_host_counts_v1_hierarchies_only() {
    let mut t = Tree::new();
    t.mount(
        "cpu",
        "cgroup",
        "cpu",
        &["cpu.cfs_quota_us", "cpu.rt_runtime_us"],
    )
    .mount("cpuacct", "cgroup", "cpuacct", &[])
    .mount("cpuset", "cgroup", "cpuset", &[])
    .mount("memory", "cgroup", "memory", &["memory.limit_in_bytes"])
    .mount("blkio", "cgroup", "blkio", &[])
    .mount("pids", "cgroup", "pids", &[])
    .mount("systemd", "cgroup", "name=systemd", &[])
    .mount("unified", "cgroup2", "nsdelegate", &[]);
    std::fs::write(t.root().join("unified/cgroup.controllers"), "hugetlb\n").unwrap();
    let c = t.detect("0::/user.slice\n");
    assert_eq!(c.mode, Mode::Hybrid);
    assert_eq!(
        missing(&c),
        vec![Hugetlb, MemorySwap, Rdma, Misc, Unified],
        "{c:?}"
    );
    let (kind, why) = c.unified_key_lacks("hugetlb.2MB.max").unwrap();
    assert_eq!(kind, Unified, "{why}");
}

#[test]
fn v1_without_the_cpu_files_lacks_cfs_and_realtime() {
    let mut t = Tree::new();
    t.mount("cpu", "cgroup", "cpu", &["cpu.shares"])
        .mount("memory", "cgroup", "memory", &[]);
    let c = t.detect(V1_SELF);
    assert!(!c.has(CpuQuota) && !c.has(CpuRealtime) && !c.has(MemorySwap));
    assert!(!c.has(Pids) && !c.has(Hugetlb));
}

#[test]
fn v2_host_reads_the_root_controllers_and_its_own_cgroup_for_swap() {
    let mut t = Tree::new();
    t.mountinfo.clear();
    t.mount("", "cgroup2", "nsdelegate,memory_recursiveprot", &[]);
    std::fs::write(
        t.root().join("cgroup.controllers"),
        "cpuset cpu io memory pids\n",
    )
    .unwrap();
    let own = t.root().join("system.slice/crid.service");
    std::fs::create_dir_all(&own).unwrap();
    std::fs::write(t.root().join("system.slice/memory.swap.max"), "max").unwrap();
    let c = t.detect("0::/system.slice/crid.service\n");
    assert_eq!(c.mode, Mode::V2);
    assert_eq!(missing(&c), vec![Hugetlb, CpuRealtime, Rdma, Misc]);
    assert_eq!(c.unified_key_lacks("memory.high"), None);
    assert_eq!(c.unified_key_lacks("cgroup.freeze"), None);
    assert_eq!(c.unified_key_lacks("memory.swap.max"), None);
    assert_eq!(c.unified_key_lacks("hugetlb.2MB.max").unwrap().0, Hugetlb);
    let (kind, why) = c.unified_key_lacks("blkcg.x").unwrap();
    assert_eq!((kind, why.as_str()), (Unified, "the blkcg controller"));
}

#[test]
fn v2_without_swap_files_lacks_swap_accounting() {
    let mut t = Tree::new();
    t.mountinfo.clear();
    t.mount("", "cgroup2", "nsdelegate", &[]);
    std::fs::write(t.root().join("cgroup.controllers"), "memory hugetlb\n").unwrap();
    std::fs::create_dir_all(t.root().join("init.scope")).unwrap();
    let c = t.detect("0::/\n");
    assert!(c.has(Hugetlb) && !c.has(MemorySwap) && !c.has(CpuQuota));
    assert_eq!(
        c.unified_key_lacks("memory.swap.max").unwrap().0,
        MemorySwap
    );
    // In the root cgroup, any child's file will do.
    std::fs::write(t.root().join("init.scope/memory.swap.max"), "max").unwrap();
    assert!(t.detect("0::/\n").has(MemorySwap));
}

#[test]
fn the_last_mount_over_the_root_decides_the_mode() {
    let mut t = Tree::new();
    t.mount("", "cgroup2", "", &[]);
    assert_eq!(t.detect("").mode, Mode::V2);
    // A tmpfs mounted over it, with v1 hierarchies.
    t.mountinfo.push_str(&format!(
        "50 40 0:50 / {} rw - tmpfs tmpfs rw\n",
        t.root().display()
    ));
    t.mount("pids", "cgroup", "pids", &[]);
    let c = t.detect("");
    assert_eq!(c.mode, Mode::V1);
    assert!(c.has(Pids));
}

#[test]
fn no_cgroup_mounts_means_nothing_to_apply() {
    let t = Tree::new();
    let c = t.detect("");
    assert_eq!(c.mode, Mode::V1);
    assert_eq!(missing(&c), Controller::ALL.to_vec());
}

#[test]
fn mount_points_are_unescaped() {
    let m = mounts(
        "40 31 0:40 / /sys/fs/my\\040cgroups/pids rw - cgroup cgroup rw,pids\n\
         41 31 0:41 / /proc rw - proc proc rw\n",
    );
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].point, Path::new("/sys/fs/my cgroups/pids"));
    assert!(m[0].is_v1() && m[0].options.contains(&"pids".to_string()));
    assert!(!m[1].is_v1() && !m[1].is_v2());
}
