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
//   - Requests from clients: Propose(data) and ReadIndex(requestCtx).
//
// None of these do any I/O. The work they produce accumulates until the
// caller asks for it with Ready (or checks HasReady), and the caller must
// handle a Ready in this order:
//
//  1. Persist Ready.HardState (term, vote, commit) and append Ready.Entries
//     to durable storage, syncing if Ready.MustSync. Entries may replace a
//     persisted suffix from Entries[0].Index on (a follower's conflicting
//     entries being overwritten by its leader). Update the Storage view.
//  2. Only then send Ready.Messages. A vote or an acknowledgement is a
//     promise about persisted state; sending it before the state is durable
//     lets a crash break Election Safety or lose committed entries.
//  3. Apply Ready.CommittedEntries to the state machine, in order. Entries
//     with empty data are a new leader's no-op and change nothing.
//  4. Serve the reads in Ready.ReadStates: each is ready once the committed
//     entries up to its Index are applied, which step 3 guarantees.
//  5. Call Advance(rd). Then the next Ready may be taken.
//
// A node restarted after a crash is a new RawNode over the same persisted
// storage: it recovers its term, vote, log and commit index, and rebuilds its
// state machine by applying the log again (or from Config.Applied, for a
// state machine that survives restarts itself). Whatever had not been handed
// out by Ready and persisted is lost, and the protocol tolerates that.
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
// # Not done yet
//
// These parts of the full design are not implemented in this package yet:
//
//   - Snapshots and log compaction (InstallSnapshot). Storage.FirstIndex is
//     1 and the log grows without bound; ErrCompacted exists so storages can
//     already report compaction.
//   - Membership changes (single-server and joint consensus) and learners.
//     The voters are fixed by Config.Peers, which must be the same on every
//     start. ENTRY_TYPE_CONF_CHANGE is reserved.
//   - Followers grant pre-votes whenever the candidate's log is up to date;
//     refusing them while a leader is heard from needs CheckQuorum.
//
// # Tests
//
// raft_paper_test.go quotes claims of the Raft paper and tests each one.
// sim_test.go runs clusters of three and five nodes over a seeded network
// that drops, delays, reorders and duplicates messages, partitions the
// cluster and crashes and restarts nodes, and checks Election Safety, Log
// Matching, Leader Completeness, State Machine Safety and read
// linearizability after every step. Run more seeds with
// -raft.seeds=N, replay one with -raft.seed=S. Scenario scripts in testdata/
// (run by TestScenarios with github.com/cockroachdb/datadriven) show the
// messages exchanged in elections, PreVote, CheckQuorum, ReadIndex,
// backtracking and leadership transfer; FuzzStep feeds arbitrary messages to
// a leader and a follower.
package core
