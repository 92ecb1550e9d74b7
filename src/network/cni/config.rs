//! CNI network configuration: picking and parsing the config file (libcni's
//! rules), and building each plugin's stdin (name, cniVersion, prevResult,
//! runtimeConfig for declared capabilities). Pure functions, no I/O but reads.

use crate::error::{Error, Result};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

/// A network configuration list, as loaded (a `.conf` is wrapped into one).
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkConfigList {
    pub name: String,
    pub cni_version: String,
    pub disable_check: bool,
    /// Each plugin's raw config object (has a string `type`).
    pub plugins: Vec<Map<String, Value>>,
    /// The file it came from (empty when it came from the cache).
    pub source: PathBuf,
}

/// The lexically first `.conflist`/`.conf`/`.json` file in `dir`.
pub fn first_config_file(dir: &Path) -> std::result::Result<PathBuf, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read CNI config dir {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("conf" | "conflist" | "json")
            ) && p.is_file()
        })
        .collect();
    files.sort();
    files
        .into_iter()
        .next()
        .ok_or_else(|| format!("no network config found in {}", dir.display()))
}

/// Load the network config crid uses from `dir`.
pub fn load_dir(dir: &Path) -> Result<NetworkConfigList> {
    let file = first_config_file(dir).map_err(Error::precondition)?;
    load_file(&file)
}

pub fn load_file(file: &Path) -> Result<NetworkConfigList> {
    let bytes =
        std::fs::read(file).map_err(|e| Error::io(format!("read {}", file.display()), e))?;
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|e| Error::precondition(format!("invalid CNI config {}: {e}", file.display())))?;
    let is_list = file.extension().and_then(|e| e.to_str()) == Some("conflist")
        || value.get("plugins").is_some();
    let list = if is_list {
        value
    } else {
        // A single-plugin `.conf`: wrap it the way libcni does.
        json!({
            "cniVersion": value.get("cniVersion").cloned().unwrap_or(Value::Null),
            "name": value.get("name").cloned().unwrap_or(Value::Null),
            "plugins": [value],
        })
    };
    let mut list = from_value(&list)
        .map_err(|e| Error::precondition(format!("invalid CNI config {}: {e}", file.display())))?;
    list.source = file.to_path_buf();
    Ok(list)
}

/// Parse a config list object (from a file or the cache).
pub fn from_value(v: &Value) -> std::result::Result<NetworkConfigList, String> {
    let obj = v.as_object().ok_or("not a JSON object")?;
    let name = obj
        .get("name")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or("missing network name")?
        .to_string();
    let cni_version = obj
        .get("cniVersion")
        .and_then(Value::as_str)
        .unwrap_or("0.1.0")
        .to_string();
    let disable_check = obj
        .get("disableCheck")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let plugins = obj
        .get("plugins")
        .and_then(Value::as_array)
        .filter(|p| !p.is_empty())
        .ok_or("no plugins in network config")?;
    let plugins = plugins
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let p = p
                .as_object()
                .ok_or_else(|| format!("plugin {i} is not an object"))?;
            match p.get("type").and_then(Value::as_str) {
                Some(t) if !t.is_empty() && !t.contains('/') => Ok(p.clone()),
                _ => Err(format!("plugin {i} has no valid 'type'")),
            }
        })
        .collect::<std::result::Result<Vec<_>, String>>()?;
    Ok(NetworkConfigList {
        name,
        cni_version,
        disable_check,
        plugins,
        source: PathBuf::new(),
    })
}

impl NetworkConfigList {
    /// The list as JSON (what the result cache stores).
    pub fn to_value(&self) -> Value {
        json!({
            "cniVersion": self.cni_version,
            "name": self.name,
            "disableCheck": self.disable_check,
            "plugins": self.plugins,
        })
    }

    /// Replace `usePodCidr` in host-local style ipam sections with `cidr`.
    pub fn substitute_pod_cidr(&mut self, cidr: &str) {
        fn walk(v: &mut Value, cidr: &str) {
            match v {
                Value::Object(m) => {
                    for (k, v) in m.iter_mut() {
                        if k == "subnet" && v.as_str() == Some("usePodCidr") {
                            *v = Value::String(cidr.to_string());
                        } else {
                            walk(v, cidr);
                        }
                    }
                }
                Value::Array(a) => a.iter_mut().for_each(|v| walk(v, cidr)),
                _ => {}
            }
        }
        for p in &mut self.plugins {
            if let Some(ipam) = p.get_mut("ipam") {
                walk(ipam, cidr);
            }
        }
    }
}

pub fn plugin_type(plugin: &Map<String, Value>) -> &str {
    plugin.get("type").and_then(Value::as_str).unwrap_or("")
}

/// What the runtime may hand to plugins through `runtimeConfig`, keyed by
/// capability name (`portMappings`, `bandwidth`, ...).
pub type RuntimeConfig = Map<String, Value>;

/// The stdin of one plugin invocation.
pub fn plugin_stdin(
    list: &NetworkConfigList,
    plugin: &Map<String, Value>,
    prev_result: Option<&Value>,
    runtime: &RuntimeConfig,
) -> Value {
    let mut conf = plugin.clone();
    conf.insert("name".into(), Value::String(list.name.clone()));
    conf.insert("cniVersion".into(), Value::String(list.cni_version.clone()));
    if let Some(prev) = prev_result {
        conf.insert("prevResult".into(), prev.clone());
    }
    let declared: Vec<&String> = plugin
        .get("capabilities")
        .and_then(Value::as_object)
        .map(|caps| {
            caps.iter()
                .filter(|(_, on)| on.as_bool() == Some(true))
                .map(|(k, _)| k)
                .collect()
        })
        .unwrap_or_default();
    let injected: Map<String, Value> = runtime
        .iter()
        .filter(|(k, _)| declared.contains(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !injected.is_empty() {
        conf.insert("runtimeConfig".into(), Value::Object(injected));
    }
    Value::Object(conf)
}

/// `(major, minor, patch)` of a CNI version string; unparsable parts are 0.
pub fn version(v: &str) -> (u32, u32, u32) {
    let mut it = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
    )
}

/// True when the version passes prevResult to DEL and supports CHECK.
pub fn at_least_040(v: &str) -> bool {
    version(v) >= (0, 4, 0)
}

/// A Kubernetes quantity (`10M`, `1Mi`, `500k`, `1.5G`, `1000`) as a number.
pub fn parse_quantity(q: &str) -> Result<u64> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    let mult: f64 = match suffix {
        "" => 1.0,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(Error::invalid(format!("invalid quantity {q:?}"))),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| Error::invalid(format!("invalid quantity {q:?}")))?;
    Ok((n * mult).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, body: &str) {
        std::fs::write(dir.join(name), body).unwrap();
    }

    #[test]
    fn picks_the_lexically_first_config_file() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "20-b.conflist",
            r#"{"cniVersion":"1.0.0","name":"b","plugins":[{"type":"bridge"}]}"#,
        );
        write(
            d.path(),
            "10-a.conflist",
            r#"{"cniVersion":"1.0.0","name":"a","plugins":[{"type":"bridge"}]}"#,
        );
        write(d.path(), "00-ignored.txt", "not a config");
        let l = load_dir(d.path()).unwrap();
        assert_eq!(l.name, "a");
        assert_eq!(l.source, d.path().join("10-a.conflist"));
    }

    #[test]
    fn a_single_plugin_conf_is_wrapped_into_a_list() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "10-net.conf",
            r#"{"cniVersion":"0.4.0","name":"n","type":"bridge","bridge":"cni0"}"#,
        );
        let l = load_dir(d.path()).unwrap();
        assert_eq!((l.name.as_str(), l.cni_version.as_str()), ("n", "0.4.0"));
        assert_eq!(l.plugins.len(), 1);
        assert_eq!(plugin_type(&l.plugins[0]), "bridge");
        assert_eq!(l.plugins[0]["bridge"], "cni0");
    }

    #[test]
    fn invalid_json_names_the_file() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "10-bad.conflist", "{ nope");
        let e = load_dir(d.path()).unwrap_err().to_string();
        assert!(e.contains("10-bad.conflist"), "{e}");
    }

    #[test]
    fn a_plugin_without_type_is_invalid() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "1.conflist",
            r#"{"name":"n","plugins":[{"bridge":"x"}]}"#,
        );
        let e = load_dir(d.path()).unwrap_err().to_string();
        assert!(e.contains("type") && e.contains("1.conflist"), "{e}");
    }

    #[test]
    fn empty_dir_is_not_ready() {
        let d = tempfile::tempdir().unwrap();
        assert!(first_config_file(d.path())
            .unwrap_err()
            .contains("no network config"));
    }

    #[test]
    fn stdin_injects_name_version_prev_result_and_declared_capabilities_only() {
        let list = from_value(&json!({"cniVersion":"1.0.0","name":"net","plugins":[
            {"type":"bridge"},
            {"type":"portmap","capabilities":{"portMappings":true,"bandwidth":false}}
        ]}))
        .unwrap();
        let mut rt = RuntimeConfig::new();
        rt.insert("portMappings".into(), json!([{"hostPort":8080}]));
        rt.insert("bandwidth".into(), json!({"ingressRate":1}));
        let prev = json!({"ips":[]});

        let bridge = plugin_stdin(&list, &list.plugins[0], None, &rt);
        assert_eq!(bridge["name"], "net");
        assert_eq!(bridge["cniVersion"], "1.0.0");
        assert!(bridge.get("prevResult").is_none());
        assert!(bridge.get("runtimeConfig").is_none());

        let pm = plugin_stdin(&list, &list.plugins[1], Some(&prev), &rt);
        assert_eq!(pm["prevResult"], prev);
        assert_eq!(
            pm["runtimeConfig"],
            json!({"portMappings":[{"hostPort":8080}]})
        );
    }

    #[test]
    fn pod_cidr_replaces_use_pod_cidr() {
        let mut l = from_value(&json!({"name":"n","plugins":[{"type":"bridge",
            "ipam":{"type":"host-local","ranges":[[{"subnet":"usePodCidr"}]]}}]}))
        .unwrap();
        l.substitute_pod_cidr("10.9.0.0/24");
        assert_eq!(
            l.plugins[0]["ipam"]["ranges"][0][0]["subnet"],
            "10.9.0.0/24"
        );
    }

    #[test]
    fn quantities_convert_to_numbers() {
        assert_eq!(parse_quantity("10M").unwrap(), 10_000_000);
        assert_eq!(parse_quantity("1Mi").unwrap(), 1_048_576);
        assert_eq!(parse_quantity("500k").unwrap(), 500_000);
        assert_eq!(parse_quantity("1.5G").unwrap(), 1_500_000_000);
        assert_eq!(parse_quantity("1000").unwrap(), 1000);
        assert!(parse_quantity("10X").is_err());
    }

    #[test]
    fn versions_compare() {
        assert!(at_least_040("0.4.0") && at_least_040("1.0.0"));
        assert!(!at_least_040("0.3.1"));
    }
}
