//! protobuf `Any` values (task events, stats) packed with a type URL named
//! here instead of read from the message's reflection descriptor.
//!
//! The `containerd-shim` crate's `convert_to_any` asks the message for its
//! descriptor, and the first such call builds the reflection tables of the
//! message's proto file and of every file it imports, descriptor.proto
//! included: about a quarter of a MiB of heap that each shim then keeps for
//! its whole life, for one string per message type. The names below are
//! the messages' full protobuf names, as containerd's runc shim sends them;
//! a unit test checks each against the descriptor.

use containerd_shim::protos::cgroups::metrics::Metrics as MetricsV1;
use containerd_shim::protos::cgroups_v2::metrics::Metrics as MetricsV2;
use containerd_shim::protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskOOM, TaskStart,
};
use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::Message;

/// A message with its protobuf full name.
pub trait Named: Message {
    const FULL_NAME: &'static str;
}

macro_rules! named {
    ($($ty:ty => $name:literal,)*) => {
        $(impl Named for $ty {
            const FULL_NAME: &'static str = $name;
        })*
    };
}

named! {
    TaskCreate => "containerd.events.TaskCreate",
    TaskStart => "containerd.events.TaskStart",
    TaskExit => "containerd.events.TaskExit",
    TaskExecAdded => "containerd.events.TaskExecAdded",
    TaskExecStarted => "containerd.events.TaskExecStarted",
    TaskDelete => "containerd.events.TaskDelete",
    TaskOOM => "containerd.events.TaskOOM",
    MetricsV1 => "io.containerd.cgroups.v1.Metrics",
    MetricsV2 => "io.containerd.cgroups.v2.Metrics",
}

/// `message` as an `Any` (type URL = its full name, as containerd's
/// typeurl package reads it).
pub fn pack<M: Named>(message: &M) -> containerd_shim::protos::protobuf::Result<Any> {
    let mut any = Any::new();
    any.type_url = M::FULL_NAME.to_string();
    any.value = message.write_to_bytes()?;
    Ok(any)
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_shim::protos::protobuf::MessageFull;

    fn same_as_descriptor<M: Named + MessageFull>() {
        assert_eq!(M::FULL_NAME, M::descriptor().full_name());
    }

    #[test]
    fn names_match_the_descriptors() {
        same_as_descriptor::<TaskCreate>();
        same_as_descriptor::<TaskStart>();
        same_as_descriptor::<TaskExit>();
        same_as_descriptor::<TaskExecAdded>();
        same_as_descriptor::<TaskExecStarted>();
        same_as_descriptor::<TaskDelete>();
        same_as_descriptor::<TaskOOM>();
        same_as_descriptor::<MetricsV1>();
        same_as_descriptor::<MetricsV2>();
    }

    #[test]
    fn packs_the_message_bytes() {
        let mut ev = TaskExit::new();
        ev.container_id = "c".into();
        ev.exit_status = 137;
        let any = pack(&ev).unwrap();
        assert_eq!(any.type_url, "containerd.events.TaskExit");
        assert_eq!(TaskExit::parse_from_bytes(&any.value).unwrap(), ev);
    }
}
