//! Images: pull from registries into containerd's content store, unpack into
//! snapshots, register in containerd's image store; list, status, remove.
