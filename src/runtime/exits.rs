//! Exit and OOM tracking. Two sources feed one channel: containerd's event
//! stream (`/tasks/exit`, `/tasks/oom`, re-subscribed with backoff when
//! containerd restarts) and a `Tasks.Wait` per started task. The handler in
//! `Runtime::handle_event` is idempotent, so a duplicate exit is harmless.

use crate::containerd::{Containerd, Event, EventKind};
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How long an exit seen by `Tasks.Wait` waits for the event stream to report it first.
const WAIT_SOURCE_DELAY: Duration = Duration::from_millis(500);

pub struct ExitMonitor {
    containerd: Containerd,
    tx: mpsc::UnboundedSender<Event>,
    rx: Mutex<Option<mpsc::UnboundedReceiver<Event>>>,
    waiters: Mutex<HashMap<String, JoinHandle<()>>>,
}

impl ExitMonitor {
    pub fn new(containerd: Containerd) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        ExitMonitor {
            containerd,
            tx,
            rx: Mutex::new(Some(rx)),
            waiters: Mutex::new(HashMap::new()),
        }
    }

    /// The receiving end, taken once by the runtime's event loop.
    pub fn take_receiver(&self) -> Option<mpsc::UnboundedReceiver<Event>> {
        self.rx.lock().unwrap().take()
    }

    /// Keep a subscription to containerd's task events, forever; reconnects
    /// with backoff. `on_reconnect` runs after every (re)subscription so the
    /// caller can reconcile states that changed while the stream was down.
    pub fn spawn_subscription(&self, on_reconnect: mpsc::UnboundedSender<()>) {
        let containerd = self.containerd.clone();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                // Subscribe returns once the first event arrives, so signal
                // readiness by health check instead.
                if containerd.version().await.is_ok() {
                    let _ = on_reconnect.send(());
                }
                match containerd.subscribe_task_events().await {
                    Ok(stream) => {
                        backoff = Duration::from_millis(100);
                        futures::pin_mut!(stream);
                        while let Some(item) = stream.next().await {
                            match item {
                                Ok(ev) => {
                                    if tx.send(ev).is_err() {
                                        return;
                                    }
                                }
                                Err(e) => {
                                    tracing::warn!(error = %e, "containerd event stream broke");
                                    break;
                                }
                            }
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "cannot subscribe to containerd events"),
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        });
    }

    /// Wait for the task `id` to exit (second source of exits).
    pub fn watch(&self, id: &str) {
        let containerd = self.containerd.clone();
        let tx = self.tx.clone();
        let cid = id.to_string();
        let handle = tokio::spawn(async move {
            if let Ok(st) = containerd.wait_task(&cid, "").await {
                // The event stream carries TaskOOM before TaskExit, in order;
                // give it precedence so an OOM kill is not reported as a
                // plain exit. This source only covers missed events.
                tokio::time::sleep(WAIT_SOURCE_DELAY).await;
                let _ = tx.send(Event {
                    container_id: cid,
                    kind: EventKind::Exit {
                        exec_id: String::new(),
                        pid: 0,
                        code: st.code,
                        exited_at: st.exited_at,
                    },
                });
            }
        });
        if let Some(old) = self.waiters.lock().unwrap().insert(id.to_string(), handle) {
            old.abort();
        }
    }

    pub fn forget(&self, id: &str) {
        if let Some(h) = self.waiters.lock().unwrap().remove(id) {
            h.abort();
        }
    }

    /// Inject an exit found by reconciliation.
    pub fn report(&self, ev: Event) {
        let _ = self.tx.send(ev);
    }
}
