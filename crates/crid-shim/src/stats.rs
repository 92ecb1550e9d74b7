//! Stats: the cgroup metrics of a container's init process, in containerd's
//! cgroups v1 or v2 `Metrics` message (hybrid hosts: v1, as runc uses it).

use crate::task::TaskError;
use containerd_shim::cgroup::{collect_metrics, collect_metrics_v2, get_cgroup};
use containerd_shim::protos::protobuf::well_known_types::any::Any;

pub fn of_pid(pid: u32) -> Result<Any, TaskError> {
    let err = |e: containerd_shim::Error| TaskError::Runtime(format!("stats: {e}"));
    let cgroup = get_cgroup(pid).map_err(err)?;
    let any = if cgroup.v2() {
        crate::any::pack(&collect_metrics_v2(&cgroup).map_err(err)?)
    } else {
        crate::any::pack(&collect_metrics(&cgroup).map_err(err)?)
    };
    any.map_err(|e| TaskError::Runtime(format!("stats: {e}")))
}
