//! Container lifecycle events for kubelet's `GetContainerEvents` (evented
//! PLEG). The domain publishes one `ContainerEvent` at each lifecycle point
//! (create, start, exit, remove) of a container or a pod sandbox (whose events
//! carry its id as the container id, as containerd's CRI sends them); any
//! number of subscribers receive them.
//! A broadcast channel decouples them: a subscriber that falls behind loses
//! the oldest events (it is told how many), it never blocks the publisher or
//! other subscribers. Owns no state of its own and knows nothing of gRPC.

use tokio::sync::broadcast;

/// Events kept for a subscriber that has not read them yet.
const CAPACITY: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerEventKind {
    Created,
    Started,
    Stopped,
    Deleted,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ContainerEvent {
    pub kind: ContainerEventKind,
    pub container_id: String,
    pub sandbox_id: String,
    /// Nanoseconds since the epoch.
    pub created_at: i64,
}

pub struct EventBus {
    tx: broadcast::Sender<ContainerEvent>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus {
            tx: broadcast::channel(CAPACITY).0,
        }
    }
}

impl EventBus {
    /// Publish to every current subscriber; with none, the event is dropped.
    pub fn publish(&self, kind: ContainerEventKind, container_id: &str, sandbox_id: &str) {
        let ev = ContainerEvent {
            kind,
            container_id: container_id.to_string(),
            sandbox_id: sandbox_id.to_string(),
            created_at: crate::util::time::now_nanos(),
        };
        tracing::debug!(?kind, container = container_id, "container event");
        let _ = self.tx.send(ev);
    }

    /// A stream of the events published from now on. A subscriber that lags
    /// more than `CAPACITY` events behind skips the oldest, with a warning.
    pub fn subscribe(&self) -> impl futures::Stream<Item = ContainerEvent> + Send + 'static {
        let rx = self.tx.subscribe();
        futures::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(ev) => return Some((ev, rx)),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(
                            skipped = n,
                            "container event subscriber too slow; events skipped"
                        );
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
    }

    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[tokio::test]
    async fn every_subscriber_gets_every_event_in_order() {
        let bus = EventBus::default();
        let a = bus.subscribe();
        let b = bus.subscribe();
        bus.publish(ContainerEventKind::Created, "c1", "s1");
        bus.publish(ContainerEventKind::Started, "c1", "s1");
        for s in [a, b] {
            let got: Vec<_> = s.take(2).map(|e| e.kind).collect().await;
            assert_eq!(
                got,
                vec![ContainerEventKind::Created, ContainerEventKind::Started]
            );
        }
    }

    #[tokio::test]
    async fn a_lagging_subscriber_skips_and_continues() {
        let bus = EventBus::default();
        let slow = bus.subscribe();
        for i in 0..CAPACITY + 10 {
            bus.publish(ContainerEventKind::Created, &format!("c{i}"), "s");
        }
        let first: Vec<_> = slow.take(1).collect().await;
        assert_eq!(first[0].container_id, "c10");
    }
}
