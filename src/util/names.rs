//! Name reservations: a CRI sandbox or container name maps to exactly one id.
//! Reserving is atomic, so a kubelet retry of an in-flight create sees which
//! id holds the name instead of creating a second object.

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
pub struct NameRegistry {
    names: Mutex<HashMap<String, String>>,
}

impl NameRegistry {
    /// Reserve `name` for `id`; reserving the same pair twice is fine.
    pub fn reserve(&self, name: &str, id: &str) -> Result<()> {
        let mut names = self.names.lock().unwrap();
        match names.get(name) {
            Some(holder) if holder == id => Ok(()),
            Some(holder) => Err(Error::AlreadyExists(format!(
                "name {name:?} is reserved for {holder:?}"
            ))),
            None => {
                names.insert(name.to_string(), id.to_string());
                Ok(())
            }
        }
    }

    /// Release `name` if `id` holds it.
    pub fn release(&self, name: &str, id: &str) {
        let mut names = self.names.lock().unwrap();
        if names.get(name).is_some_and(|h| h == id) {
            names.remove(name);
        }
    }

    /// True when some name is reserved for `id` (its create may be in flight).
    pub fn holds_id(&self, id: &str) -> bool {
        self.names.lock().unwrap().values().any(|h| h == id)
    }

    pub fn holder(&self, name: &str) -> Option<String> {
        self.names.lock().unwrap().get(name).cloned()
    }
}

/// A random 64-hex-character id, like containerd's CRI.
pub fn new_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_reservation_names_the_holder() {
        let r = NameRegistry::default();
        r.reserve("pod_ns_uid_0", "a").unwrap();
        r.reserve("pod_ns_uid_0", "a").unwrap();
        let e = r.reserve("pod_ns_uid_0", "b").unwrap_err();
        assert!(e.to_string().contains("\"a\""), "{e}");
        r.release("pod_ns_uid_0", "b");
        assert_eq!(r.holder("pod_ns_uid_0").as_deref(), Some("a"));
        r.release("pod_ns_uid_0", "a");
        r.reserve("pod_ns_uid_0", "b").unwrap();
    }

    #[test]
    fn ids_are_64_hex() {
        let id = new_id();
        assert_eq!(id.len(), 64);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(id, new_id());
    }
}
