//! `crid migrate docker`: a dockershim or cri-dockerd node's images and
//! registry settings into crid. Images are imported as the command runs
//! (additive: an image whose tags crid already has with the same id is
//! left alone); registry settings are shown as a diff of hosts.toml files
//! and written only with `--write`. Prints a progress line per image and a
//! summary table.

mod archive;
pub mod engine;
mod images;
mod registry_settings;

use crate::config::Config;
use crate::containerd::Containerd;
use crate::error::{Error, Result};
use crate::image::ImageService;
use crate::migrate::docker::engine::{Docker, ImageSummary};
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args, Debug, Clone)]
pub struct DockerArgs {
    /// dockerd's API socket.
    #[arg(
        long,
        env = "DOCKER_HOST",
        default_value = "unix:///var/run/docker.sock"
    )]
    pub docker_host: String,
    /// Import only these images (docker tag, crid name, or id); all by default.
    #[arg(long, value_name = "NAME", num_args = 1..)]
    pub images: Vec<String>,
    /// Do not import images.
    #[arg(long)]
    pub skip_images: bool,
    /// Do not look at registry settings.
    #[arg(long)]
    pub skip_registry_settings: bool,
    /// dockerd's configuration file.
    #[arg(long, default_value = "/etc/docker/daemon.json")]
    pub daemon_json: PathBuf,
    /// dockerd's registry certificates (`<host>/*.crt`, `*.cert` + `*.key`).
    #[arg(long, default_value = "/etc/docker/certs.d")]
    pub docker_certs_dir: PathBuf,
    /// Write the hosts.toml files (without it, only the diff is shown).
    #[arg(long)]
    pub write: bool,
}

/// How one image went.
#[derive(Debug)]
enum Outcome {
    Imported(images::Imported),
    AlreadyPresent,
    Failed(String),
}

struct Row<'a> {
    image: &'a ImageSummary,
    outcome: Outcome,
    /// Tags crid has on another image, left there: (tag, crid's id).
    kept: Vec<(String, String)>,
}

/// The command: prints to stdout, errors to stderr; exit 1 when an image
/// failed or a setting could not be read.
pub async fn command(config: &Config, args: &DockerArgs) -> std::process::ExitCode {
    let mut out = std::io::stdout();
    match run(config, args, &mut out).await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("crid migrate docker: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Returns whether everything asked for was carried.
pub async fn run(config: &Config, args: &DockerArgs, out: &mut dyn Write) -> Result<bool> {
    let mut ok = true;
    if !args.skip_images {
        ok &= migrate_images(config, args, out).await?;
    }
    if !args.skip_registry_settings {
        ok &= migrate_registry_settings(config, args, out)?;
    }
    Ok(ok)
}

fn say(out: &mut dyn Write, text: std::fmt::Arguments) -> Result<()> {
    out.write_fmt(text)
        .and_then(|_| out.flush())
        .map_err(|e| Error::io("write output", e))
}

fn docker_socket(host: &str) -> Result<PathBuf> {
    match host
        .strip_prefix("unix://")
        .or(host.starts_with('/').then_some(host))
    {
        Some(p) if !p.is_empty() => Ok(PathBuf::from(p)),
        _ => Err(Error::invalid(format!(
            "--docker-host {host:?}: only unix:// sockets are supported"
        ))),
    }
}

async fn migrate_images(config: &Config, args: &DockerArgs, out: &mut dyn Write) -> Result<bool> {
    let docker_error =
        |e: anyhow::Error| Error::Unavailable(format!("dockerd at {}: {e:#}", args.docker_host));
    let docker = Docker::new(docker_socket(&args.docker_host)?)
        .negotiated()
        .await
        .map_err(docker_error)?;
    let all = docker.images().await.map_err(docker_error)?;
    let chosen = images::select(&all, &args.images)?;
    let cd = Containerd::new(
        &config.containerd.address,
        &config.containerd.namespace,
        &config.containerd.snapshotter,
    )?;
    cd.version().await.map_err(|e| {
        Error::Unavailable(format!(
            "containerd at {}: {e}",
            config.containerd.address.display()
        ))
    })?;
    let service = ImageService::new(cd, config);
    say(
        out,
        format_args!(
            "images: {} of dockerd's {} into containerd namespace {:?} (snapshotter {})\n",
            chosen.len(),
            all.len(),
            config.containerd.namespace,
            config.containerd.snapshotter
        ),
    )?;
    let mut rows = vec![];
    for image in chosen {
        let short = short_id(&image.id);
        let check = match images::check_tags(&service, image).await {
            Ok(c) => c,
            Err(e) => {
                let name = display_name(image, &[]);
                say(out, format_args!("{name} ({short}): failed: {e}\n"))?;
                rows.push(Row {
                    image,
                    outcome: Outcome::Failed(e.to_string()),
                    kept: vec![],
                });
                continue;
            }
        };
        let name = display_name(image, &check.kept);
        for (tag, id) in &check.kept {
            say(
                out,
                format_args!(
                    "{name} ({short}): crid has {} on {}: left there\n",
                    images::normalise(tag).unwrap_or_else(|| tag.clone()),
                    short_id(id)
                ),
            )?;
        }
        let outcome = if check.present {
            say(out, format_args!("{name} ({short}): already present\n"))?;
            Outcome::AlreadyPresent
        } else {
            say(out, format_args!("importing {name} ({short}): "))?;
            let started = Instant::now();
            match images::import(&docker, &service, image, &check.take).await {
                Ok(done) => {
                    say(
                        out,
                        format_args!(
                            "{} layer{}, {} ... done in {:.1} s\n",
                            done.layers,
                            if done.layers == 1 { "" } else { "s" },
                            human_bytes(done.bytes),
                            started.elapsed().as_secs_f64()
                        ),
                    )?;
                    Outcome::Imported(done)
                }
                Err(e) => {
                    say(out, format_args!("failed: {e}\n"))?;
                    Outcome::Failed(e.to_string())
                }
            }
        };
        rows.push(Row {
            image,
            outcome,
            kept: check.kept,
        });
    }
    say(out, format_args!("\n{}", summary_table(&rows)))?;
    if rows.iter().any(|r| r.image.digests().next().is_some()) {
        say(
            out,
            format_args!(
                "Repo digests are not carried: a docker archive has none. crid names these \
                 images by tag and id; a pod that names one by digest pulls it.\n"
            ),
        )?;
    }
    Ok(!rows.iter().any(|r| matches!(r.outcome, Outcome::Failed(_))))
}

/// The image's first tag that crid records for it (else its first tag).
fn display_name(image: &ImageSummary, kept: &[(String, String)]) -> String {
    image
        .tags()
        .find(|t| !kept.iter().any(|(k, _)| k == t))
        .or_else(|| image.tags().next())
        .map(|t| images::normalise(t).unwrap_or_else(|| t.to_string()))
        .unwrap_or_else(|| "<untagged>".to_string())
}

/// `sha256:` and the first 12 hex digits, as docker shows ids.
fn short_id(id: &str) -> String {
    let hex = id.trim_start_matches("sha256:");
    format!("sha256:{}", &hex[..hex.len().min(12)])
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "kB", "MB", "GB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn result_cell(r: &Row) -> String {
    let mut cell = match &r.outcome {
        Outcome::Imported(i) => format!(
            "imported ({} layer{}, {})",
            i.layers,
            if i.layers == 1 { "" } else { "s" },
            human_bytes(i.bytes)
        ),
        Outcome::AlreadyPresent => "already present".into(),
        Outcome::Failed(e) => format!("failed: {e}"),
    };
    for (tag, id) in &r.kept {
        cell.push_str(&format!(
            "; {} left on crid's {}",
            images::normalise(tag).unwrap_or_else(|| tag.clone()),
            short_id(id)
        ));
    }
    cell
}

fn summary_table(rows: &[Row]) -> String {
    let header = ["IMAGE", "TAGS", "ID", "RESULT", "REPO DIGESTS NOT CARRIED"];
    let mut cells: Vec<[String; 5]> = vec![header.map(str::to_string)];
    for r in rows {
        let tags: Vec<String> = r
            .image
            .tags()
            .map(|t| images::normalise(t).unwrap_or_else(|| t.to_string()))
            .collect();
        let digests: Vec<&str> = r.image.digests().collect();
        cells.push([
            display_name(r.image, &r.kept),
            if tags.is_empty() {
                "-".into()
            } else {
                tags.join(",")
            },
            short_id(&r.image.id),
            result_cell(r),
            if digests.is_empty() {
                "-".into()
            } else {
                digests.join(",")
            },
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|c| cells.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut s = String::new();
    for row in &cells {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        s.push_str(line.join("  ").trim_end());
        s.push('\n');
    }
    let imported = rows
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Imported(_)))
        .count();
    let present = rows
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::AlreadyPresent))
        .count();
    s.push_str(&format!(
        "{} image(s): {imported} imported, {present} already present, {} failed\n",
        rows.len(),
        rows.len() - imported - present
    ));
    s
}

fn migrate_registry_settings(
    config: &Config,
    args: &DockerArgs,
    out: &mut dyn Write,
) -> Result<bool> {
    let daemon = match std::fs::read_to_string(&args.daemon_json) {
        Ok(t) => registry_settings::DaemonJson::parse(&t)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Default::default(),
        Err(e) => return Err(Error::io(format!("read {}", args.daemon_json.display()), e)),
    };
    let plan = registry_settings::plan(
        &daemon,
        &args.docker_certs_dir,
        &config.registry.config_path,
    )?;
    say(
        out,
        format_args!(
            "\nregistry settings: {} and {} into {}\n",
            args.daemon_json.display(),
            args.docker_certs_dir.display(),
            config.registry.config_path.display()
        ),
    )?;
    let changed: Vec<_> = plan.changed().collect();
    for f in &changed {
        say(out, format_args!("{}", f.diff()))?;
    }
    for n in &plan.notes {
        say(out, format_args!("note: {n}\n"))?;
    }
    if changed.is_empty() {
        say(
            out,
            format_args!(
                "no changes: {} hosts.toml file(s) up to date\n",
                plan.files.len()
            ),
        )?;
    } else if args.write {
        let n = plan.write()?;
        say(out, format_args!("wrote {n} hosts.toml file(s)\n"))?;
    } else {
        say(
            out,
            format_args!(
                "not written: {} hosts.toml file(s) would change; run again with --write\n",
                changed.len()
            ),
        )?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_ids_read_as_docker_shows_them() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(4_200_000), "4.2 MB");
        assert_eq!(
            short_id("sha256:f4c614ef6588c9fe9e32605b78246bc8ca0647808c2f81727118da79e18a2ff2"),
            "sha256:f4c614ef6588"
        );
        assert!(docker_socket("tcp://1.2.3.4:2375").is_err());
        assert!(docker_socket("unix://").is_err());
        assert_eq!(
            docker_socket("/var/run/docker.sock").unwrap(),
            PathBuf::from("/var/run/docker.sock")
        );
        assert_eq!(
            docker_socket("unix:///run/docker.sock").unwrap(),
            PathBuf::from("/run/docker.sock")
        );
    }
}
