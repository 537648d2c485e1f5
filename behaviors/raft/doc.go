// Package raft runs Raft consensus as supervised actors: each member of a
// group is an actor on its node, fed by the pure algorithm in
// behaviors/raft/core and persisted by the write-ahead log in
// behaviors/raft/wal, and a Client finds the leader and retries. It
// implements the replicated-log interface of behaviors/replog, so any state
// machine written against it — the key-value store of behaviors/kv — runs
// on it.
//
// # Members
//
// Start (or ChildSpec, for a supervisor of your own) runs a member on a
// node: an actor registered as ActorName(group, id), under a one_for_one
// supervisor. Members address each other with actor.NamedPID(nodeAddress,
// ActorName(group, id)), so a member killed and restarted by its supervisor, or a
// node restarted from its data directory at the same address, is reached
// again without anyone learning a new PID.
//
// The member handles ticks, peer messages (raftpb.Message, protobuf over
// the cluster transport) and client requests one at a time. After a batch of
// messages — everything that queued while it worked — it takes the core's
// Ready and:
//
//  1. persists a received snapshot, the hard state and new entries to the
//     WAL, with one fsync for the whole batch (group commit);
//  2. only then sends the batch's messages (a vote or an acknowledgement is
//     a promise about persisted state);
//  3. applies committed entries to the state machine and answers the
//     clients waiting for them, then the linearizable reads whose read
//     index is applied.
//
// A write is acknowledged only once a majority has it on disk and the
// leader has applied it. Every Config.SnapshotEntries applied entries the
// member snapshots its state machine (with the members' addresses) and
// compacts its log; a follower too far behind receives the snapshot in
// chunks (InstallSnapshot).
//
// A restarted member (its actor killed, or its node crashed) opens its WAL
// (a torn tail from a crash is cut, any other damage is an error), restores
// the latest snapshot, and replays the log after it, so it rebuilds the
// state it had acknowledged.
//
// # Clients
//
// Client sends ProposeRequest and ReadRequest messages to the member it
// believes leads, follows Redirect answers, and retries elsewhere with
// exponential backoff and full jitter until its context ends. A write that
// gives up without knowing its outcome returns an error wrapping
// replog.ErrOutcomeUnknown; behaviors/kv's sessions make retrying it safe.
// Reads go through the leader's ReadIndex: the leader confirms with a quorum
// that it still leads, then answers once it has applied everything
// committed before the read. ClientOptions.StaleReads reads from any member
// instead — for demonstrations of the difference (examples/consistency_demo).
//
// Membership changes are single-server changes proposed through the leader:
// Client.AddLearner, AddVoter (also promotes a learner) and RemoveMember; a
// new member is started with Config.Join and receives the log or a snapshot.
//
// # Faults
//
// Kill the member actor (actor.System.Kill on WhereIs(ActorName(group, id))): its
// supervisor restarts it from its log. Crash the node (cluster.Node.Crash)
// and start it again with the same data directory and actor-transport
// address. Partition, delay or drop traffic with cluster.Faults. The tests
// do all of these while clients record histories that porcupine checks for
// linearizability: go test ./behaviors/raft -run Linearizability (longer with
// -raft.soak=1m).
//
// # Metrics
//
// On the node's registry, labelled group and node_id: raft_log_entries_total,
// consensus_round_duration_seconds (proposal to result, on the leader),
// raft_fsync_duration_seconds, raft_term, raft_commit_index,
// raft_applied_index, raft_is_leader, raft_leader_changes_total,
// raft_snapshots_total, raft_invalid_messages_total and
// raft_unroutable_messages_total; and, on the leader only,
// replication_lag_seconds{shard=group, replica=id}: the age of the oldest
// entry each follower does not have yet.
package raft
