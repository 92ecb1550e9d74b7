//! The CRI v1 bindings crid serves and its tests and tools call, generated
//! by build.rs from proto/runtime/v1/api.proto (CRI of Kubernetes 1.36).

#![allow(clippy::all, missing_docs)]

tonic::include_proto!("runtime.v1");

impl std::fmt::Debug for AuthConfig {
    /// The upstream proto marks the secrets `debug_redact`; so does this.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |s: &str| if s.is_empty() { "" } else { "<redacted>" };
        f.debug_struct("AuthConfig")
            .field("username", &self.username)
            .field("password", &hidden(&self.password))
            .field("auth", &hidden(&self.auth))
            .field("server_address", &self.server_address)
            .field("identity_token", &hidden(&self.identity_token))
            .field("registry_token", &hidden(&self.registry_token))
            .finish()
    }
}

impl KeyValue {
    /// The value as text; bytes that are not UTF-8 become U+FFFD, as Go's
    /// JSON encoding of an OCI spec does.
    pub fn value_str(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.value)
    }
}

/// Serde for `KeyValue.value` (`bytes` since CRI 1.36, a string before):
/// written as a string when it is UTF-8 and as a byte array otherwise, read
/// from either, so records of either shape load.
pub mod bytes_as_text {
    use serde::{de, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(v) {
            Ok(text) => s.serialize_str(text),
            Err(_) => s.collect_seq(v),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct Visit;
        impl<'de> de::Visitor<'de> for Visit {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or a byte array")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<u8>, E> {
                Ok(v.as_bytes().to_vec())
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(b) = seq.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        d.deserialize_any(Visit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values_read_from_records_of_either_shape() {
        let old: KeyValue = serde_json::from_str(r#"{"key":"A","value":"b c"}"#).unwrap();
        assert_eq!(old.value, b"b c");
        let raw = KeyValue {
            key: "B".into(),
            value: vec![0xff, 0x41],
        };
        let json = serde_json::to_string(&raw).unwrap();
        assert_eq!(json, r#"{"key":"B","value":[255,65]}"#);
        assert_eq!(serde_json::from_str::<KeyValue>(&json).unwrap(), raw);
        let text = KeyValue {
            key: "C".into(),
            value: b"x".to_vec(),
        };
        assert_eq!(
            serde_json::to_string(&text).unwrap(),
            r#"{"key":"C","value":"x"}"#
        );
        assert_eq!(raw.value_str(), "\u{fffd}A");
    }

    #[test]
    fn records_without_newer_fields_load_with_defaults() {
        // A container config as crid wrote it against CRI 1.32: no
        // `stop_signal`, and only some fields at all.
        let c: ContainerConfig =
            serde_json::from_str(r#"{"metadata":{"name":"a","attempt":0},"command":["sh"]}"#)
                .unwrap();
        assert_eq!(c.stop_signal, Signal::RuntimeDefault as i32);
        assert_eq!(c.command, ["sh"]);
    }

    #[test]
    fn auth_debug_hides_secrets() {
        let a = AuthConfig {
            username: "u".into(),
            password: "hunter2".into(),
            registry_token: "tok".into(),
            ..Default::default()
        };
        let s = format!("{a:?}");
        assert!(!s.contains("hunter2") && !s.contains("tok\""), "{s}");
        assert!(s.contains("<redacted>") && s.contains("\"u\""));
    }
}
