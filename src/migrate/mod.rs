//! `crid migrate`: carry a node's state from another runtime into crid.
//! Talks to containerd through crid's adapter with crid's configuration;
//! crid itself need not run.

pub mod docker;

/// What to migrate from.
#[derive(clap::Subcommand, Debug)]
pub enum Source {
    /// A dockershim or cri-dockerd node: dockerd's images into crid's
    /// image store (additive, idempotent), and `daemon.json` registry
    /// settings as hosts.toml files (shown as a diff; written with --write).
    Docker(docker::DockerArgs),
}

/// Run a migration (on the caller's tokio runtime); the exit code says
/// whether everything was carried.
pub async fn run(config: &crate::config::Config, source: &Source) -> std::process::ExitCode {
    match source {
        Source::Docker(args) => docker::command(config, args).await,
    }
}
