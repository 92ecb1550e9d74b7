//! containerd `Events` service: task exits and OOMs, decoded into crid's `Event`.

use super::{api, Containerd};
use crate::error::{Error, Result};
use containerd_client::events::{TaskExit, TaskOom};
use futures::{Stream, StreamExt};
use prost::Message;

#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// A process exited; `exec_id` empty (or equal to the container id) for the main process.
    Exit {
        exec_id: String,
        pid: u32,
        code: u32,
        exited_at: i64,
    },
    Oom,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub container_id: String,
    pub kind: EventKind,
}

impl Containerd {
    /// Subscribe to task exits and OOMs. The call returns only once containerd
    /// sends the first event: run it from its own task.
    pub async fn subscribe_task_events(&self) -> Result<impl Stream<Item = Result<Event>>> {
        let mut c = api::events_client::EventsClient::new(self.svc());
        let ns = self.namespace().to_string();
        let stream = c
            .subscribe(api::SubscribeRequest {
                filters: vec![
                    format!("namespace=={ns},topic==\"/tasks/exit\""),
                    format!("namespace=={ns},topic==\"/tasks/oom\""),
                ],
            })
            .await
            .map_err(|s| Error::containerd("Events.Subscribe", s))?
            .into_inner();
        Ok(stream.filter_map(|item| async move {
            match item {
                Err(s) => Some(Err(Error::containerd("Events.Subscribe", s))),
                Ok(env) => decode(env.event.as_ref()?).map(Ok),
            }
        }))
    }
}

fn decode(any: &prost_types::Any) -> Option<Event> {
    let name = any.type_url.rsplit('/').next().unwrap_or(&any.type_url);
    match name {
        "containerd.events.TaskExit" => {
            let e = TaskExit::decode(any.value.as_slice()).ok()?;
            let exec_id = if e.id == e.container_id {
                String::new()
            } else {
                e.id
            };
            Some(Event {
                container_id: e.container_id,
                kind: EventKind::Exit {
                    exec_id,
                    pid: e.pid,
                    code: e.exit_status,
                    exited_at: super::timestamp_nanos(&e.exited_at),
                },
            })
        }
        "containerd.events.TaskOOM" => {
            let e = TaskOom::decode(any.value.as_slice()).ok()?;
            Some(Event {
                container_id: e.container_id,
                kind: EventKind::Oom,
            })
        }
        _ => None,
    }
}
