// Package raftpb holds the protobuf forms of the Raft core's inputs and
// outputs (Entry, HardState, Message), generated from raft.proto with `make
// proto`. The actor shell sends Messages between nodes as they are and the
// storage layer persists Entries and HardState as they are; package
// behaviors/raft/core documents what each field means to the protocol.
package raftpb
