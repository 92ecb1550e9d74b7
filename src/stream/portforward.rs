//! Port-forward's backend: TCP connections to `127.0.0.1:<port>` inside a
//! pod's network namespace. The connect happens on a dedicated OS thread that enters the
//! namespace (`setns`) and then exits; the socket keeps its namespace.

use crate::error::{Error, Result};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

/// Connect to `127.0.0.1:port` inside the network namespace at `netns`, or
/// in crid's own (the node's) for a host-network pod (`None`).
pub async fn connect_in_netns(netns: Option<&Path>, port: u16) -> Result<tokio::net::TcpStream> {
    let Some(netns) = netns else {
        return tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| Error::io(format!("connect to 127.0.0.1:{port} on the node"), e));
    };
    let netns: PathBuf = netns.to_path_buf();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("crid-netns-connect".into())
        .spawn(move || {
            let r = (|| -> std::io::Result<std::net::TcpStream> {
                let f = std::fs::File::open(&netns)?;
                nix::sched::setns(f.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(std::io::Error::from)?;
                let s = std::net::TcpStream::connect(("127.0.0.1", port))?;
                s.set_nonblocking(true)?;
                Ok(s)
            })();
            let _ = tx.send(r);
        })
        .map_err(|e| Error::io("spawn netns thread", e))?;
    let s = rx
        .await
        .map_err(|_| Error::internal("netns connect thread died"))?
        .map_err(|e| Error::io(format!("connect to 127.0.0.1:{port} in pod network"), e))?;
    tokio::net::TcpStream::from_std(s).map_err(|e| Error::io("register socket", e))
}
