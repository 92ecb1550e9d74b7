//! The container process: argv (kubelet/Docker rules), environment, cwd.

use crate::cri::ContainerConfig;
use crate::error::{Error, Result};
use oci_spec::image::Config as ImageConfig;

/// `command` set → command + args (image ENTRYPOINT and CMD ignored);
/// else image ENTRYPOINT + (args if set, else image CMD).
pub fn args(config: &ContainerConfig, image: Option<&ImageConfig>) -> Result<Vec<String>> {
    let img_entry = image
        .and_then(|c| c.entrypoint().clone())
        .unwrap_or_default();
    let img_cmd = image.and_then(|c| c.cmd().clone()).unwrap_or_default();
    let mut argv = if !config.command.is_empty() {
        config.command.clone()
    } else {
        img_entry
    };
    if !config.args.is_empty() {
        argv.extend(config.args.iter().cloned());
    } else if config.command.is_empty() {
        argv.extend(img_cmd);
    }
    if argv.is_empty() {
        return Err(Error::invalid(
            "command: no command specified and the image has no ENTRYPOINT or CMD",
        ));
    }
    Ok(argv)
}

/// The PATH a container gets when its image sets none (an image made by
/// `docker import` has no config at all): containerd's and docker's default.
pub const DEFAULT_PATH_ENV: &str =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Image env (after the default PATH when the image has none), then config
/// envs; a config key replaces the image's value in place.
pub fn env(config: &ContainerConfig, image: Option<&ImageConfig>) -> Vec<String> {
    let mut out: Vec<String> = image.and_then(|c| c.env().clone()).unwrap_or_default();
    if !out.iter().any(|e| e.starts_with("PATH=")) {
        out.insert(0, DEFAULT_PATH_ENV.to_string());
    }
    for kv in &config.envs {
        let entry = format!("{}={}", kv.key, kv.value_str());
        let prefix = format!("{}=", kv.key);
        match out
            .iter_mut()
            .find(|e| e.starts_with(&prefix) || **e == kv.key)
        {
            Some(slot) => *slot = entry,
            None => out.push(entry),
        }
    }
    out
}

/// config working_dir, else image WorkingDir, else `/`.
pub fn cwd(config: &ContainerConfig, image: Option<&ImageConfig>) -> String {
    if !config.working_dir.is_empty() {
        return config.working_dir.clone();
    }
    image
        .and_then(|c| c.working_dir().clone())
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cri::KeyValue;
    use oci_spec::image::ConfigBuilder;

    fn image(entry: &[&str], cmd: &[&str]) -> ImageConfig {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        ConfigBuilder::default()
            .entrypoint(v(entry))
            .cmd(v(cmd))
            .env(v(&["PATH=/bin", "A=img"]))
            .working_dir("/srv")
            .build()
            .unwrap()
    }

    fn cfg(command: &[&str], a: &[&str]) -> ContainerConfig {
        ContainerConfig {
            command: command.iter().map(|s| s.to_string()).collect(),
            args: a.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn argv_follows_kubelet_rules() {
        let img = image(&["/ep"], &["c1"]);
        let i = Some(&img);
        assert_eq!(args(&cfg(&[], &[]), i).unwrap(), ["/ep", "c1"]);
        assert_eq!(args(&cfg(&[], &["a"]), i).unwrap(), ["/ep", "a"]);
        assert_eq!(args(&cfg(&["/bin/sh"], &[]), i).unwrap(), ["/bin/sh"]);
        assert_eq!(
            args(&cfg(&["/bin/sh"], &["-c", "x"]), i).unwrap(),
            ["/bin/sh", "-c", "x"]
        );
        let none = image(&[], &[]);
        assert!(matches!(
            args(&cfg(&[], &[]), Some(&none)),
            Err(Error::InvalidArgument(_))
        ));
        assert_eq!(args(&cfg(&[], &["only"]), Some(&none)).unwrap(), ["only"]);
    }

    #[test]
    fn config_env_overrides_image_env_and_cwd_falls_back() {
        let img = image(&[], &[]);
        let mut c = cfg(&[], &[]);
        c.envs = vec![
            KeyValue {
                key: "A".into(),
                value: "cfg".into(),
            },
            KeyValue {
                key: "B".into(),
                value: "b".into(),
            },
        ];
        assert_eq!(env(&c, Some(&img)), ["PATH=/bin", "A=cfg", "B=b"]);
        assert_eq!(env(&c, None), [DEFAULT_PATH_ENV, "A=cfg", "B=b"]);
        assert_eq!(cwd(&c, Some(&img)), "/srv");
        assert_eq!(cwd(&c, None), "/");
        c.working_dir = "/w".into();
        assert_eq!(cwd(&c, Some(&img)), "/w");
    }
}
