//! Gathers what the pause container's spec needs (node facts, sandbox files)
//! and calls the pure spec generator.

use crate::error::Result;
use crate::image::Loaded;
use crate::runtime::Runtime;
use crate::sandbox::files::SandboxFiles;
use crate::sandbox::spec::{sandbox_spec, SandboxSpecInput};
use crate::sandbox::store::SandboxMetadata;

pub(crate) fn pause_spec(
    rt: &Runtime,
    meta: &SandboxMetadata,
    image: &Loaded,
    files: &SandboxFiles,
) -> Result<oci_spec::runtime::Spec> {
    sandbox_spec(&SandboxSpecInput {
        id: &meta.id,
        config: &meta.config,
        image: &image.config,
        netns_path: meta.netns_path.as_deref(),
        hostname_path: &files.hostname,
        hosts_path: &files.hosts,
        resolv_path: &files.resolv,
        shm_path: (!crate::sandbox::pod::host_ipc(&meta.config)).then_some(files.shm.as_path()),
        userns: meta.pod_userns(),
        cgroup_driver: &rt.config.cgroup_driver,
        oom_score_adj_min: crate::util::platform::oom_score_adj_min(),
        cgroups: crate::util::platform::cgroups::Cgroups::host(),
        pause_program: rt.config.minimal_pause_seccomp && crate::image::is_builtin_pause(image),
        seccomp_default_when_empty: rt.config.seccomp_default_when_empty,
    })
}
