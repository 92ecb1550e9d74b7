//! An index of objects by id with crictl-style unique-prefix lookup; the
//! shared core of the sandbox and container stores (`sandbox::store`,
//! `container::store`), which is why it lives below both.

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

pub struct IdIndex<T> {
    by_id: RwLock<HashMap<String, Arc<T>>>,
    /// What the objects are, for messages ("pod sandbox", "container").
    kind: &'static str,
    /// The request field ids come from, for validation messages.
    field: &'static str,
}

impl<T> IdIndex<T> {
    pub fn new(kind: &'static str, field: &'static str) -> Self {
        IdIndex {
            by_id: RwLock::new(HashMap::new()),
            kind,
            field,
        }
    }

    pub fn insert(&self, id: &str, object: Arc<T>) {
        self.by_id.write().unwrap().insert(id.to_string(), object);
    }

    pub fn remove(&self, id: &str) -> Option<Arc<T>> {
        self.by_id.write().unwrap().remove(id)
    }

    /// By full id or unique prefix: InvalidArgument for an empty or
    /// ambiguous id, NotFound when nothing matches. A string that cannot be
    /// an id (not hex, too long) names nothing: NotFound, so that the
    /// idempotent Stop/Remove calls succeed for it as the CRI asks.
    pub fn get(&self, id: &str) -> Result<Arc<T>> {
        if let Err(e) = crate::cri::validate::id(self.field, id) {
            if id.is_empty() {
                return Err(e);
            }
            return Err(Error::not_found(format!(
                "{} {:?}",
                self.kind,
                crate::cri::validate::truncate(id)
            )));
        }
        let map = self.by_id.read().unwrap();
        if let Some(o) = map.get(id) {
            return Ok(o.clone());
        }
        let mut matches = map.iter().filter(|(k, _)| k.starts_with(id));
        match (matches.next(), matches.next()) {
            (Some((_, o)), None) => Ok(o.clone()),
            (Some(_), Some(_)) => Err(Error::invalid(format!(
                "{} id prefix {id:?} is ambiguous",
                self.kind
            ))),
            _ => Err(Error::not_found(format!("{} {id:?}", self.kind))),
        }
    }

    pub fn list(&self) -> Vec<Arc<T>> {
        self.by_id.read().unwrap().values().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.by_id.read().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_lookup_is_unique_or_refused() {
        let idx = IdIndex::new("container", "container_id");
        idx.insert("abc123", Arc::new(1));
        idx.insert("abd456", Arc::new(2));
        assert_eq!(*idx.get("abc").unwrap(), 1);
        assert!(idx.get("ab").unwrap_err().to_string().contains("ambiguous"));
        assert!(idx.get("ffff").unwrap_err().is_not_found());
        // Not an id at all (a UUID): nothing by that name.
        let uuid = "7e75bfa3-0a0f-435f-95f3-6128f5418415";
        assert!(idx.get(uuid).unwrap_err().is_not_found());
        assert!(idx.get(&"a".repeat(65)).unwrap_err().is_not_found());
        assert!(matches!(idx.get(""), Err(Error::InvalidArgument(_))));
        assert_eq!(idx.remove("abc123").map(|v| *v), Some(1));
        assert_eq!(idx.len(), 1);
    }
}
