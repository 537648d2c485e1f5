// Package core is the Raft consensus algorithm as a pure state machine: no
// goroutines, no clock, no I/O. It decides; the caller (the actor shell in
// behaviors/raft, or a test) does everything else: it keeps time, moves
// messages between nodes, writes to disk and applies commands.
//
// # The loop
//
// A node is a RawNode created from a Config and a Storage, the read-only view
// of what the node has persisted. The caller feeds it three kinds of input:
//
//   - Tick, called at a fixed interval. Election timeouts and heartbeats are
//     counted in ticks (Config.ElectionTick, Config.HeartbeatTick).
//   - Step, with every message received from a peer.
//   - Requests from clients: Propose(data), ReadIndex(requestCtx), and
//     membership changes, ProposeConfChange(cc).
//
// None of these do any I/O. The work they produce accumulates until the
// caller asks for it with Ready (or checks HasReady), and the caller must
// handle a Ready in this order:
//
//  1. If Ready.Snapshot is set (a snapshot from the leader), persist it
//     first: it replaces the whole log (MemoryStorage.ApplySnapshot,
//     wal.WAL.ApplySnapshot). Then persist Ready.HardState (term, vote,
//     commit) and append Ready.Entries to durable storage, syncing if
//     Ready.MustSync. Entries may replace a persisted suffix from
//     Entries[0].Index on (a follower's conflicting entries being
//     overwritten by its leader). Update the Storage view.
//  2. Only then send Ready.Messages. A vote or an acknowledgement is a
//     promise about persisted state; sending it before the state is durable
//     lets a crash break Election Safety or lose committed entries.
//  3. If Ready.Snapshot is set, restore the state machine from its data.
//     Then apply Ready.CommittedEntries, in order. Entries with empty data
//     are a new leader's no-op and change nothing; an entry of type
//     ENTRY_TYPE_CONF_CHANGE holds a raftpb.ConfChange to pass to
//     ApplyConfChange.
//  4. Serve the reads in Ready.ReadStates: each is ready once the committed
//     entries up to its Index are applied, which step 3 guarantees.
//  5. Call Advance(rd). Then the next Ready may be taken.
//
// A node restarted after a crash is a new RawNode over the same persisted
// storage: it recovers its term, vote, log and commit index, and its
// configuration (from the storage's snapshot, or Config.Peers if there is
// none). It rebuilds its state machine from the snapshot (Storage.Snapshot)
// and by applying the log after it again (or from Config.Applied, for a
// state machine that survives restarts itself), membership changes
// included. Whatever had not been handed out by Ready and persisted is
// lost, and the protocol tolerates that.
//
// Log indices start at 1; index 0 with term 0 is the empty prefix.
//
// # What the algorithm does
//
// Elections follow §5.2 of the Raft paper: a follower that hears from no
// leader for a randomized timeout in [ElectionTick, 2*ElectionTick) ticks
// (drawn from a source seeded by Config.RandSeed, so runs replay) becomes a
// candidate, and a candidate with votes from a majority becomes leader. A
// voter grants one vote per term, to a candidate whose log is at least as
// up-to-date as its own (§5.4.1). With Config.PreVote a node first asks
// whether it could win before raising its term, so a node returning from a
// partition with a stale log does not depose a working leader. With
// Config.CheckQuorum a leader steps down when it has not heard from a quorum
// for an election timeout, and a follower that has heard from its leader
// within the election timeout ignores vote requests.
//
// Replication follows §5.3. The leader tracks a Progress per follower: in
// probe state it sends one append at a time until it finds where the logs
// match; in replicate state it streams appends, batching entries up to
// Config.MaxSizePerMsg bytes per message, with at most
// Config.MaxInflightMsgs messages and Config.MaxInflightBytes bytes
// unacknowledged. A follower that rejects an append says where its log ends,
// or which term conflicts and where that term starts, so the leader skips a
// whole term per round trip instead of one entry. An entry is committed when
// a majority holds it and it belongs to the leader's current term; earlier
// entries are then committed with it (§5.4.2, Figure 8). A new leader appends
// an empty entry at once so that it can commit.
//
// Proposals made on a follower are forwarded to the leader it knows; without
// a known leader Propose returns ErrProposalDropped. An accepted proposal
// can still be lost if leadership changes: the caller recognises its entries
// among CommittedEntries and retries after a timeout (deduplicating).
//
// ReadIndex gives linearizable reads without writing to the log (§6.4 of the
// Raft thesis): the leader records its commit index, confirms with a round of
// heartbeats that a majority still follows it, and then answers; a follower
// forwards the request to the leader and gets the index back. A leader
// answers only after it has committed an entry of its own term. The answer
// is a ReadState carrying the request's context, emitted once the node has
// applied up to the read index. Requests can be lost with a leader change;
// the caller retries them.
//
// With Config.ReadOnlyLeaseBased (which needs CheckQuorum) a leader skips
// the heartbeat round while it holds a lease: a quorum acknowledged a
// heartbeat sent less than an election timeout (minus a margin of two ticks)
// ago, and each of those followers refuses votes for an election timeout
// after hearing from it, so no other leader can exist yet. This assumes all
// nodes tick at the same rate; a leader that has sent TIMEOUT_NOW stops
// trusting its lease for the rest of its term, and a node that just started
// refuses votes for an election timeout. Off by default.
//
// TransferLeader hands leadership to another voter (§3.10 of the thesis):
// the leader stops taking proposals (ErrTransferring), brings the target's
// log up to date and sends it TIMEOUT_NOW; the target campaigns at once,
// without a pre-vote and past the voters' CheckQuorum lease, and wins the
// next term. A transfer that has not finished within an election timeout is
// abandoned. Only the leader accepts the request (ErrNotLeader otherwise).
//
// # Log compaction and snapshots
//
// The log does not grow without bound (§7 of the paper, chapter 5 of the
// thesis). Each node compacts on its own: once its state machine has
// applied up to index i, the application stores a snapshot of it with the
// configuration then in effect (MemoryStorage.CreateSnapshot(i, confState,
// data), wal.WAL.CreateSnapshot) and discards the log up to i, or a little
// less to spare slow followers a snapshot (Compact). Storage.Snapshot returns
// the newest snapshot, and Storage.FirstIndex moves past the compacted
// prefix.
//
// A leader that must send a follower entries it has compacted sends the
// snapshot instead (InstallSnapshot, Figure 13), in SNAP messages of at
// most Config.MaxSnapshotChunkSize bytes each, at most four of them
// unacknowledged. Every chunk carries the snapshot's metadata and its byte
// offset; the follower assembles them in order, acknowledges each with the
// number of bytes it holds (SNAP_RESP), refuses a chunk past that (the
// leader then resends from where the follower is), and after the last one
// restores the snapshot: it replaces its log and configuration and hands the
// snapshot out in Ready.Snapshot. A snapshot whose last entry the follower's
// log already holds only advances its commit index. The leader sends no
// appends to a follower while its snapshot is in flight (Progress state
// ProgressSnapshot); once the follower acknowledges the snapshot's index,
// replication resumes from there. A partial snapshot belongs to one leader
// and one term: it is dropped when the term changes, and a new leader starts
// from offset 0. Lost chunks are resent from the last acknowledged offset
// when no acknowledgement arrived within an election timeout while the
// follower still answers heartbeats; RawNode.ReportSnapshot(id,
// SnapshotFailure) abandons a transfer at once, and it is started afresh
// (from the newest snapshot) when the follower next answers.
//
// # Membership changes
//
// The configuration is a ConfState: voters, learners, and while joint the
// outgoing voters. A change is a raftpb.ConfChange proposed with
// ProposeConfChange; it is replicated and committed like any entry, and takes
// effect on each node when the application, applying the committed entry,
// passes it to ApplyConfChange, which returns the new ConfState (to be
// stored with the next snapshot). The leader accepts a change only when the
// previous one is applied (ErrConfChangePending) and only if it applies to
// the current configuration (ErrInvalidConfChange); a node does not
// campaign while a committed change is unapplied.
//
//   - A single change with the AUTO transition is a single-server change
//     (thesis §4.1): add a voter, remove a node, add a learner, promote a
//     learner (ADD_NODE on a learner) or demote a voter (ADD_LEARNER_NODE on
//     a voter). Any majority of the old voters overlaps any majority of the
//     new ones, so no joint configuration is needed.
//   - Several changes, or a JOINT_IMPLICIT or JOINT_EXPLICIT transition, use
//     joint consensus (§6 of the paper, thesis §4.3): the configuration
//     becomes joint, and elections, commitment, CheckQuorum, ReadIndex and
//     leases all need a majority of the incoming voters and, separately, a
//     majority of the outgoing ones. An empty ConfChange leaves the joint
//     configuration; with AUTO and JOINT_IMPLICIT the leader proposes it by
//     itself as soon as the entering change is applied.
//   - Learners receive the log (and snapshots) but never vote, never count
//     towards a quorum and never campaign; a voter demoted while joint stays
//     a voter of the outgoing half until the joint configuration is left.
//   - A leader that is no longer a voter once a change is applied stops
//     taking proposals and reads, brings the most up-to-date voter of the new
//     configuration up to date and sends it TIMEOUT_NOW, retrying every
//     election timeout; it becomes a follower when that voter's election
//     reaches it. (Simply stepping down could leave the remaining voters,
//     which may not know yet that the change is committed, needing its vote
//     to elect anyone.)
//
// Config.Peers is the configuration at log index 0: the voters the cluster
// was bootstrapped with. Give the same list to every node, including nodes
// added later (for which it does not contain their own id); a node added to
// a running cluster starts with an empty log and learns the changes from the
// leader's log or snapshot. A restarted node takes its configuration from
// its storage's snapshot, if it has one, and re-applies the changes after
// it; Config.Peers may then be empty.
//
// # Not done yet
//
//   - Followers grant pre-votes whenever the candidate's log is up to date;
//     refusing them while a leader is heard from needs CheckQuorum.
//   - A follower assembles a snapshot in memory, without a bound on its size
//     other than the leader's: the data of a snapshot is held whole on both
//     sides (as Storage.Snapshot returns it).
//   - A node removed from the configuration is not told so; it stops
//     hearing from the leader and, without PreVote and CheckQuorum, may
//     disrupt the cluster with elections until the application stops it.
//
// # Tests
//
// raft_paper_test.go quotes claims of the Raft paper and tests each one;
// snapshot_test.go and confchange_test.go do the same for compaction (§7)
// and membership changes (§6, thesis chapter 4). sim_test.go runs clusters
// of three and five nodes over a seeded network that drops, delays,
// reorders and duplicates messages, partitions the cluster and crashes and
// restarts nodes, while nodes snapshot and compact their logs at random (so
// that lagging and restarted nodes catch up through chunked snapshots) and,
// in the membership runs, voters and learners are added, promoted, demoted
// and removed among the cluster and two spare nodes, singly and through
// joint configurations. After every step it checks Election Safety, Log
// Matching, Leader Completeness and State Machine Safety (over compacted
// logs: a snapshot must match the committed entry at its index and the
// state every node computed there) and read linearizability. Run more seeds
// with -raft.seeds=N, replay one with -raft.seed=S (-raft.trace=N shows more
// of the failing run). Scenario scripts in testdata/ (run by TestScenarios
// with github.com/cockroachdb/datadriven) show the messages exchanged in
// elections, PreVote, CheckQuorum, ReadIndex, backtracking, leadership
// transfer, snapshots (lost chunks included) and membership changes;
// FuzzStep feeds arbitrary messages, snapshot chunks included, to a leader
// and a follower.
package core
