//! `GetContainerEvents`: domain container events → CRI event messages, with
//! the pod's status and its containers' statuses as they are when the event
//! is sent.

use super::convert;
use crate::cri::{ContainerEventResponse, ContainerEventType};
use crate::runtime::events::{ContainerEvent, ContainerEventKind};
use crate::runtime::Runtime;
use futures::StreamExt;
use std::sync::Arc;

pub(super) fn container_event_stream(
    rt: Arc<Runtime>,
) -> impl futures::Stream<Item = Result<ContainerEventResponse, tonic::Status>> + Send + 'static {
    rt.events
        .subscribe()
        .map(move |ev| Ok(container_event(&rt, ev)))
}

fn container_event(rt: &Runtime, ev: ContainerEvent) -> ContainerEventResponse {
    let kind = match ev.kind {
        ContainerEventKind::Created => ContainerEventType::ContainerCreatedEvent,
        ContainerEventKind::Started => ContainerEventType::ContainerStartedEvent,
        ContainerEventKind::Stopped => ContainerEventType::ContainerStoppedEvent,
        ContainerEventKind::Deleted => ContainerEventType::ContainerDeletedEvent,
    };
    let sandbox = rt.sandboxes.get(&ev.sandbox_id).ok();
    ContainerEventResponse {
        container_id: ev.container_id,
        container_event_type: kind as i32,
        created_at: ev.created_at,
        pod_sandbox_status: sandbox.as_ref().map(|s| convert::pod_sandbox_status(s)),
        containers_statuses: rt
            .containers
            .in_sandbox(&ev.sandbox_id)
            .iter()
            .map(|c| convert::container_status(c))
            .collect(),
    }
}
