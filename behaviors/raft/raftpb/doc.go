// Package raftpb holds the protobuf forms of the Raft core's inputs and
// outputs, generated from raft.proto with `make proto`: log entries
// (Entry), the hard state (HardState), messages between nodes (Message,
// InstallSnapshot chunks included), snapshots (Snapshot, SnapshotMetadata),
// configurations (ConfState) and membership changes (ConfChange). The actor
// shell sends Messages between nodes as they are and the storage layer
// persists Entries, HardState and Snapshots as they are; package
// behaviors/raft/core documents what each field means to the protocol.
package raftpb
