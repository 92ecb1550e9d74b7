//! Running one CNI plugin: the invocation (command, env, stdin) and the
//! `PluginExec` trait with the real process executor (tokio::process, a
//! timeout that kills the plugin by PID). Tests swap in a recorder.

use super::result::plugin_error;
use crate::error::{Error, Result};
use futures::future::BoxFuture;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
}

impl Command {
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
        }
    }
}

/// Everything one plugin call needs.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub command: Command,
    /// The plugin's `type`: the binary name.
    pub plugin_type: String,
    /// `CNI_*` environment, in order.
    pub env: Vec<(String, String)>,
    pub stdin: Vec<u8>,
}

impl Invocation {
    pub fn env(&self, key: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Runs a plugin and returns its stdout, or the plugin's error.
pub trait PluginExec: Send + Sync {
    fn exec<'a>(&'a self, inv: &'a Invocation) -> BoxFuture<'a, Result<Vec<u8>>>;
}

/// The first executable file named `plugin_type` in `bin_dirs`.
pub fn find_plugin(bin_dirs: &[PathBuf], plugin_type: &str) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    bin_dirs
        .iter()
        .map(|d| d.join(plugin_type))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .ok_or_else(|| {
            Error::precondition(format!(
                "failed to find plugin {plugin_type:?} in path {bin_dirs:?}"
            ))
        })
}

/// The real executor: forks the plugin binary found in `bin_dirs`.
pub struct ProcessExec {
    pub bin_dirs: Vec<PathBuf>,
    pub timeout: Duration,
}

impl PluginExec for ProcessExec {
    fn exec<'a>(&'a self, inv: &'a Invocation) -> BoxFuture<'a, Result<Vec<u8>>> {
        Box::pin(async move {
            let bin = find_plugin(&self.bin_dirs, &inv.plugin_type)?;
            run_plugin(&bin, inv, self.timeout).await
        })
    }
}

fn failed(inv: &Invocation, msg: impl std::fmt::Display) -> Error {
    Error::internal(format!(
        "plugin type={:?} failed ({}): {msg}",
        inv.plugin_type,
        inv.command.as_str().to_lowercase()
    ))
}

async fn run_plugin(bin: &Path, inv: &Invocation, timeout: Duration) -> Result<Vec<u8>> {
    let mut child = tokio::process::Command::new(bin)
        .envs(inv.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Error::io(format!("start CNI plugin {}", bin.display()), e))?;
    let pid = child.id().unwrap_or(0);
    let mut stdin = child.stdin.take();
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let io = async {
        let write = async {
            if let Some(mut s) = stdin.take() {
                // A plugin may exit without reading: EPIPE is not our error.
                let _ = s.write_all(&inv.stdin).await;
            }
        };
        let mut out = Vec::new();
        let mut err = Vec::new();
        let read_out = async {
            if let Some(s) = stdout.as_mut() {
                let _ = s.read_to_end(&mut out).await;
            }
        };
        let read_err = async {
            if let Some(s) = stderr.as_mut() {
                let _ = s.read_to_end(&mut err).await;
            }
        };
        tokio::join!(write, read_out, read_err);
        let status = child.wait().await;
        (status, out, err)
    };
    let finished = tokio::time::timeout(timeout, io).await;
    let (status, out, err) = match finished {
        Ok(r) => r,
        Err(_) => {
            // Kill by PID (tokio sends SIGKILL to this child) and reap it.
            let _ = child.start_kill();
            let _ = child.wait().await;
            return Err(Error::DeadlineExceeded(format!(
                "plugin type={:?} ({}) pid {pid} timed out after {}s and was killed",
                inv.plugin_type,
                inv.command.as_str().to_lowercase(),
                timeout.as_secs()
            )));
        }
    };
    let status = status.map_err(|e| Error::io(format!("wait for CNI plugin {pid}"), e))?;
    if status.success() {
        return Ok(out);
    }
    let msg = match plugin_error(&out) {
        Some((_, msg)) => msg,
        None => {
            let text = String::from_utf8_lossy(if out.is_empty() { &err } else { &out });
            format!("{} ({status})", text.trim())
        }
    };
    Err(failed(inv, msg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &Path, name: &str, body: &str) {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn inv(plugin_type: &str) -> Invocation {
        Invocation {
            command: Command::Add,
            plugin_type: plugin_type.into(),
            env: vec![("CNI_COMMAND".into(), "ADD".into())],
            stdin: b"{\"hello\":1}".to_vec(),
        }
    }

    fn exec(dir: &Path, secs: u64) -> ProcessExec {
        ProcessExec {
            bin_dirs: vec![dir.join("missing"), dir.to_path_buf()],
            timeout: Duration::from_secs(secs),
        }
    }

    #[tokio::test]
    async fn runs_the_binary_with_env_and_stdin() {
        let d = tempfile::tempdir().unwrap();
        script(d.path(), "echoer", "cat; echo \" $CNI_COMMAND\"");
        let out = exec(d.path(), 30).exec(&inv("echoer")).await.unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "{\"hello\":1} ADD\n");
    }

    #[tokio::test]
    async fn a_failing_plugin_reports_its_type_and_message() {
        let d = tempfile::tempdir().unwrap();
        script(
            d.path(),
            "sad",
            r#"echo '{"cniVersion":"1.0.0","code":11,"msg":"no luck","details":"at all"}'; exit 1"#,
        );
        let e = exec(d.path(), 30).exec(&inv("sad")).await.unwrap_err();
        let e = e.to_string();
        assert!(
            e.contains("\"sad\"") && e.contains("no luck; at all"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_missing_plugin_is_named() {
        let d = tempfile::tempdir().unwrap();
        let e = exec(d.path(), 30).exec(&inv("ghost")).await.unwrap_err();
        assert!(e.to_string().contains("ghost"), "{e}");
    }

    #[tokio::test]
    async fn a_hanging_plugin_is_killed_on_timeout() {
        let d = tempfile::tempdir().unwrap();
        let pidfile = d.path().join("pid");
        script(
            d.path(),
            "hang",
            &format!("echo $$ > {}; exec sleep 600", pidfile.display()),
        );
        let e = exec(d.path(), 1).exec(&inv("hang")).await.unwrap_err();
        assert!(matches!(e, Error::DeadlineExceeded(_)), "{e}");
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // Reaped: the PID no longer names our child.
        let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z"))
            .unwrap_or(false);
        assert!(!alive, "plugin {pid} still running");
    }
}
