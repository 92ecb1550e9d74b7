//! Container edits: gathering those of the devices a container gets, taking
//! what a device node leaves out from the host, and applying them to the
//! OCI spec crid generated, the way the Go CDI library (containerd's,
//! CRI-O's) does.

use super::spec::{ContainerEdits, DeviceNode};
use oci_spec::runtime::{
    Hook, Hooks, Linux, LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType, LinuxIntelRdt,
    LinuxNetDevice, LinuxResources, Mount, Process, Spec,
};
use std::path::Path;

impl ContainerEdits {
    /// Adds `other` after these; its intelRdt, if any, replaces ours.
    pub fn append(&mut self, other: &ContainerEdits) {
        self.env.extend(other.env.iter().cloned());
        self.device_nodes.extend(other.device_nodes.iter().cloned());
        self.net_devices.extend(other.net_devices.iter().cloned());
        self.hooks.extend(other.hooks.iter().cloned());
        self.mounts.extend(other.mounts.iter().cloned());
        self.additional_gids.extend(other.additional_gids.iter());
        if other.intel_rdt.is_some() {
            self.intel_rdt.clone_from(&other.intel_rdt);
        }
    }

    /// The same edits with every device node's type, major and minor
    /// filled from the host node where the spec leaves them out; fails on
    /// a node missing from the host (error: the node, why).
    pub fn with_host_nodes(&self) -> Result<ContainerEdits, (String, String)> {
        let mut filled = self.clone();
        for node in &mut filled.device_nodes {
            fill_from_host(node).map_err(|why| (node.host_path().to_string(), why))?;
        }
        Ok(filled)
    }

    /// Applies the edits (their device nodes already filled from the host)
    /// to `spec`: env (replacing a variable of the same name), device nodes
    /// with a cgroup rule allowing each block or character device (a node
    /// at the same path is replaced), net devices, mounts (one at the same
    /// container path is replaced), hooks, intelRdt and additional GIDs.
    pub fn apply(&self, spec: &mut Spec) {
        let mut process = spec.process().clone().unwrap_or_default();
        let mut linux = spec.linux().clone().unwrap_or_default();
        set_env(&mut process, &self.env);
        for node in &self.device_nodes {
            add_device_node(&mut linux, &process, node);
        }
        if !self.net_devices.is_empty() {
            let nets = linux.net_devices_mut().get_or_insert_with(Default::default);
            for d in &self.net_devices {
                let mut net = LinuxNetDevice::default();
                net.set_name(Some(d.name.clone()));
                nets.insert(d.host_interface_name.clone(), net);
            }
        }
        if let Some(rdt) = &self.intel_rdt {
            let mut oci = LinuxIntelRdt::default();
            oci.set_clos_id(rdt.clos_id.clone());
            oci.set_l3_cache_schema(rdt.l3_cache_schema.clone());
            oci.set_mem_bw_schema(rdt.mem_bw_schema.clone());
            oci.set_schemata(rdt.schemata.clone());
            oci.set_enable_monitoring(rdt.enable_monitoring);
            #[allow(deprecated)]
            {
                oci.set_enable_cmt(rdt.enable_cmt);
                oci.set_enable_mbm(rdt.enable_mbm);
            }
            linux.set_intel_rdt(Some(oci));
        }
        if !self.additional_gids.is_empty() {
            let user = process.user_mut();
            let mut gids = user.additional_gids().clone().unwrap_or_default();
            for gid in &self.additional_gids {
                if *gid > 0 && !gids.contains(gid) {
                    gids.push(*gid);
                }
            }
            user.set_additional_gids(Some(gids));
        }
        spec.set_process(Some(process));
        spec.set_linux(Some(linux));

        if !self.mounts.is_empty() {
            let mounts = spec.mounts_mut().get_or_insert_with(Vec::new);
            for m in &self.mounts {
                mounts.retain(|have| have.destination() != Path::new(&m.container_path));
                let mut mount = Mount::default();
                mount.set_source(Some(m.host_path.clone().into()));
                mount.set_destination(m.container_path.clone().into());
                mount.set_typ(m.typ.clone().filter(|t| !t.is_empty()));
                mount.set_options(m.options.clone());
                mounts.push(mount);
            }
        }
        if !self.hooks.is_empty() {
            let hooks = spec.hooks_mut().get_or_insert_with(Hooks::default);
            for h in &self.hooks {
                let mut hook = Hook::default();
                hook.set_path(h.path.clone().into());
                hook.set_args(h.args.clone());
                hook.set_env(h.env.clone());
                hook.set_timeout(h.timeout.map(i64::from));
                let list = match h.hook_name.as_str() {
                    "prestart" =>
                    {
                        #[allow(deprecated)]
                        hooks.prestart_mut()
                    }
                    "createRuntime" => hooks.create_runtime_mut(),
                    "createContainer" => hooks.create_container_mut(),
                    "startContainer" => hooks.start_container_mut(),
                    "poststart" => hooks.poststart_mut(),
                    // The spec's check allows no other name.
                    _ => hooks.poststop_mut(),
                };
                list.get_or_insert_with(Vec::new).push(hook);
            }
        }
    }
}

/// A CDI variable replaces the container's of the same name in place;
/// others are added at the end.
fn set_env(process: &mut Process, env: &[String]) {
    if env.is_empty() {
        return;
    }
    let vars = process.env_mut().get_or_insert_with(Vec::new);
    let name = |e: &str| e.split_once('=').map_or(e, |(k, _)| k).to_string();
    for e in env {
        let key = name(e);
        match vars.iter_mut().find(|v| name(v) == key) {
            Some(have) => have.clone_from(e),
            None => vars.push(e.clone()),
        }
    }
}

fn add_device_node(linux: &mut Linux, process: &Process, node: &DeviceNode) {
    let typ = match node.typ.as_deref() {
        Some("b") => LinuxDeviceType::B,
        Some("u") => LinuxDeviceType::U,
        Some("p") => LinuxDeviceType::P,
        _ => LinuxDeviceType::C,
    };
    let (major, minor) = (node.major.unwrap_or(0), node.minor.unwrap_or(0));
    let mut dev = LinuxDevice::default();
    dev.set_path(node.path.clone().into());
    dev.set_typ(typ);
    dev.set_major(major);
    dev.set_minor(minor);
    dev.set_file_mode(node.file_mode);
    // Owned by the container's user unless the spec says otherwise.
    let user = process.user();
    dev.set_uid(node.uid.or((user.uid() > 0).then_some(user.uid())));
    dev.set_gid(node.gid.or((user.gid() > 0).then_some(user.gid())));
    let devices = linux.devices_mut().get_or_insert_with(Vec::new);
    devices.retain(|d| d.path() != dev.path());
    devices.push(dev);

    if matches!(typ, LinuxDeviceType::B | LinuxDeviceType::C) {
        let access = match node.permissions.as_deref() {
            None | Some("") => "rwm",
            Some("none") => "",
            Some(p) => p,
        };
        let mut rule = LinuxDeviceCgroup::default();
        rule.set_allow(true);
        rule.set_typ(Some(typ));
        rule.set_major(Some(major));
        rule.set_minor(Some(minor));
        rule.set_access(Some(access.to_string()));
        linux
            .resources_mut()
            .get_or_insert_with(LinuxResources::default)
            .devices_mut()
            .get_or_insert_with(Vec::new)
            .push(rule);
    }
}

/// Type, major and minor from the host node, where the spec leaves them
/// out: a node with a type and a major (or a FIFO) is taken as given; a
/// type given must match the host's.
fn fill_from_host(node: &mut DeviceNode) -> Result<(), String> {
    if node.typ.as_deref() == Some("") {
        node.typ = None;
    }
    if let Some(t) = node.typ.as_deref() {
        if node.major.is_some() || t == "p" {
            return Ok(());
        }
    }
    let md = std::fs::metadata(node.host_path()).map_err(|e| e.to_string())?;
    let (host_typ, major, minor) =
        crate::container::spec::security::node_numbers(&md).ok_or("not a device node")?;
    let host_typ = host_typ.to_string();
    match node.typ.as_deref() {
        None => node.typ = Some(host_typ),
        Some(t) if t != host_typ => {
            return Err(format!(
                "the spec says type {t}, the host node is {host_typ}"
            ));
        }
        Some(_) => {}
    }
    if node.major.is_none() && node.typ.as_deref() != Some("p") {
        node.major = Some(major);
        node.minor = Some(minor);
    }
    Ok(())
}
