//! The containerd adapter: the only module that talks to containerd.
//!
//! One lazily connected gRPC channel (tonic reconnects by itself when
//! containerd restarts), the `containerd-namespace` header on every call and,
//! for pulls, the `containerd-lease` header. Methods are typed and return
//! crid's `Error::Containerd { op, status }` so callers see which call failed.
//! Domain logic does not belong here.

mod containers;
mod content;
mod events;
mod images;
mod introspection;
pub mod labels;
mod leases;
mod local_content;
mod namespaces;
mod snapshots;
mod tasks;

pub use containerd_client::services::v1 as api;
pub use containerd_client::types::{Descriptor, Mount};
pub use containers::Container;
pub use content::{BlobWriter, ContentInfo, WRITE_CHUNK};
pub use events::{Event, EventKind};
pub use images::Image;
pub use introspection::{PluginInfo, PluginState};
pub use labels::{owner_labels, OWNER_LABEL, OWNER_VALUE};
pub use local_content::{LocalContentStore, Published, StagedBlob};
pub use snapshots::SnapshotInfo;
pub use tasks::{ExitStatus, Process, ProcessStatus, TaskIo};

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tonic::metadata::AsciiMetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// Adds the namespace (and optional lease) headers to every request.
#[derive(Clone)]
pub struct Scope {
    namespace: AsciiMetadataValue,
    lease: Option<AsciiMetadataValue>,
}

impl tonic::service::Interceptor for Scope {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let md = req.metadata_mut();
        md.insert("containerd-namespace", self.namespace.clone());
        if let Some(lease) = &self.lease {
            md.insert("containerd-lease", lease.clone());
        }
        Ok(req)
    }
}

pub(crate) type Svc = InterceptedService<Channel, Scope>;

#[derive(Clone)]
pub struct Containerd {
    channel: Channel,
    scope: Scope,
    /// The lease every call is made under (`with_lease`), if any.
    lease: Option<String>,
    address: PathBuf,
    namespace: String,
    snapshotter: String,
}

impl Containerd {
    /// Build a client; no connection is made until the first call, and the
    /// channel reconnects on its own after containerd restarts.
    pub fn new(address: &Path, namespace: &str, snapshotter: &str) -> Result<Self> {
        let channel = crate::util::unix_grpc::connect_lazy(address);
        let ns = namespace
            .parse()
            .map_err(|_| Error::invalid(format!("containerd namespace {namespace:?}")))?;
        Ok(Containerd {
            channel,
            scope: Scope {
                namespace: ns,
                lease: None,
            },
            lease: None,
            address: address.to_path_buf(),
            namespace: namespace.to_string(),
            snapshotter: snapshotter.to_string(),
        })
    }

    /// The same client, with every call made under `lease` (pulls, unpacks).
    pub fn with_lease(&self, lease: &str) -> Self {
        let mut c = self.clone();
        c.scope.lease = lease.parse().ok();
        c.lease = Some(lease.to_string());
        c
    }

    pub fn address(&self) -> &Path {
        &self.address
    }
    pub fn namespace(&self) -> &str {
        &self.namespace
    }
    pub fn snapshotter(&self) -> &str {
        &self.snapshotter
    }

    fn svc(&self) -> Svc {
        InterceptedService::new(self.channel.clone(), self.scope.clone())
    }

    /// containerd's version and revision; doubles as the health check.
    pub async fn version(&self) -> Result<(String, String)> {
        let mut c = api::version_client::VersionClient::new(self.svc());
        let v = c
            .version(())
            .await
            .map_err(|s| Error::containerd("Version", s))?
            .into_inner();
        Ok((v.version, v.revision))
    }

    /// Health check with a short deadline, for `Status`.
    pub async fn healthy(&self) -> std::result::Result<(), String> {
        match tokio::time::timeout(Duration::from_secs(2), self.version()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "containerd at {} did not answer within 2s",
                self.address.display()
            )),
        }
    }
}

/// `prost_types::Any` as containerd wants it: type URL without the
/// `type.googleapis.com/` prefix.
pub fn any(type_url: &str, value: Vec<u8>) -> prost_types::Any {
    prost_types::Any {
        type_url: type_url.to_string(),
        value,
    }
}

pub const SPEC_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";
pub const RUNC_OPTIONS_TYPE_URL: &str = "containerd.runc.v1.Options";

/// containerd's runc shim options (`containerd.runc.v1.Options`), the fields crid sets.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RuncOptions {
    #[prost(bool, tag = "1")]
    pub no_pivot_root: bool,
    #[prost(bool, tag = "2")]
    pub no_new_keyring: bool,
    #[prost(string, tag = "3")]
    pub shim_cgroup: String,
    #[prost(uint32, tag = "4")]
    pub io_uid: u32,
    #[prost(uint32, tag = "5")]
    pub io_gid: u32,
    #[prost(string, tag = "6")]
    pub binary_name: String,
    #[prost(string, tag = "7")]
    pub root: String,
    #[prost(string, tag = "8")]
    pub criu_path: String,
    #[prost(bool, tag = "9")]
    pub systemd_cgroup: bool,
    #[prost(string, tag = "10")]
    pub criu_image_path: String,
    #[prost(string, tag = "11")]
    pub criu_work_path: String,
}

pub fn timestamp_nanos(ts: &Option<prost_types::Timestamp>) -> i64 {
    ts.as_ref()
        .map(|t| {
            t.seconds
                .saturating_mul(1_000_000_000)
                .saturating_add(t.nanos as i64)
        })
        .unwrap_or(0)
}
