// Package wal is a durable write-ahead log for the Raft core
// (behaviors/raft/core): it persists the log entries, the hard state (term,
// vote, commit) and the newest snapshot that a node must keep across
// crashes, in files under the node's data directory, and keeps an in-memory
// copy of the log and snapshot so that a *WAL serves as the core's Storage.
//
// # Files and records
//
// The log is a sequence of segment files named
// <sequence>-<first index>.wal, both 16 hex digits: the sequence orders the
// segments, the index is that of the first entry the segment was started
// for. A segment is closed (after an fsync) once it reaches
// Options.SegmentSize (64 MiB by default) and a new one is started; a record
// is never split across segments. Each new segment begins with the current
// hard state, if there is one.
//
// Every record is
//
//	length  uint32, little endian: payload bytes (at most MaxRecordSize, 64 MiB)
//	crc     uint32, little endian: CRC-32C (Castagnoli) of type and payload
//	type    byte: 1 = raftpb.Entry, 2 = raftpb.HardState,
//	        3 = compaction (a raftpb.Entry carrying the index and term of
//	        the last compacted entry),
//	        4 = reset to a snapshot (a raftpb.Entry carrying the snapshot's
//	        index and term; the log before it is gone)
//	payload protobuf encoding of the entry or hard state
//
// Log indices start at 1. Records are replayed in order: a hard state
// replaces the previous one, and an entry with index i replaces the log from
// i on (Raft's rule for conflicting entries, which Save applies by appending
// the new entries rather than rewriting files). An entry past the end of the
// log (a gap) is corruption.
//
// # Recovery
//
// Open reads every segment and checks every record. A crash in the middle
// of a write can leave the last segment with a torn tail: a partial header,
// a partial payload, or bytes whose CRC does not match. If the bad record is
// in the last segment and no valid record follows it, the segment is cut at
// the start of that record (and synced), and Recovery reports the bytes
// dropped. After a crash those bytes are a write that no Sync acknowledged,
// so dropping them loses nothing the node promised (damage to a synced last
// record looks the same and is treated the same). Anything else is corruption: a bad record
// followed by a valid one, a bad record in an earlier segment (earlier
// segments are synced before the next is started, so they cannot be torn),
// or an index gap. Open then fails with an error wrapping ErrCorrupt that
// names the file and offset; it never skips a record. The rule is
// conservative: a file system that, after a power failure, shows later
// unsynced blocks but not earlier ones makes Open report corruption rather
// than guess. Record lengths are bounded, so no file content can make Open
// panic or allocate without bound.
//
// # Durability
//
// Save writes to the operating system but does not fsync; Sync fsyncs the
// active segment and, when a segment was created since the last Sync, the
// directory, so the new file's name is durable too. Following the core's
// Ready loop, the caller must Save the Ready's entries and hard state and
// Sync (when Ready.MustSync) before it sends the Ready's messages: a vote or
// an append acknowledgement is a promise about persisted state.
//
// Group commit: several Saves (several Readys, or several nodes' worth of
// work handled together) can share one Sync, which makes all of them
// durable; messages for all of them are sent after that Sync. SaveSync is
// Save followed by Sync for the simple case. BenchmarkSaveSync shows the
// effect: the cost of an fsync is shared by every entry saved before it.
//
// If a Save or Sync fails, the state of the files is unknown: close the WAL
// and Open it again, which recovers what is on disk.
//
// # Compaction
//
// Compact(index), called once a snapshot covering index is durable, writes
// and syncs a compaction record, drops the entries up to index from memory
// and removes the oldest segments that no longer hold anything the log
// needs: whole segments only, so entries just below the new FirstIndex can
// stay on disk until a later Compact. Every entry at or after a segment's
// first index was written in that segment or a later one, so a segment can
// go once a later segment starts at or before index+1. Segments are removed
// oldest first; a crash part-way leaves a log that Open still replays
// correctly, and Open fails (ErrCorrupt) if the first remaining segment does
// not start at index 1 and no compaction record gives the term of the entry
// before it.
//
// # Snapshots
//
// The newest snapshot lives in its own file, <term>-<index>.snap (16 hex
// digits each), holding "RSNP", a CRC-32C of the payload, the payload length
// and the payload, a protobuf raftpb.Snapshot (data and metadata: index,
// term, configuration). A snapshot file is written atomically: to a .tmp
// file, fsynced, renamed to its final name, and the directory fsynced; only
// then is the older snapshot file removed. Open removes leftover .tmp files
// (writes that never finished, so never relied on) and loads the newest
// snapshot file; a damaged one (bad magic, length, CRC or payload, or a name
// that does not match its metadata) is corruption, reported with
// ErrCorrupt, since a renamed file was complete and synced.
//
// CreateSnapshot(i, confState, data) records the application's snapshot of
// its state at applied index i, on any node; Compact(i) then drops the log
// it covers (or call Compact with a smaller index, to keep some entries for
// followers that are only a little behind). Compact only what a durable
// snapshot covers: the core sends followers Snapshot() when they need
// compacted entries, and a restarted node starts from it.
//
// ApplySnapshot installs a snapshot received from the leader (the core's
// Ready.Snapshot): it writes the snapshot file, then closes the active
// segment and starts a new one for the index after the snapshot whose first
// records are the hard state and a reset record (type 4), syncs it, and
// removes all older segments. Replaying a reset record empties the log and
// sets its base to the snapshot's index and term.
//
// A crash between writing a snapshot file and the reset record leaves a
// snapshot that the log does not hold: one past its last index, or whose
// last entry has another term there. Open resets the log to the snapshot, as
// ApplySnapshot would have, and writes and syncs a reset record, so that
// entries appended afterwards replay on top of it. If the log does hold the
// snapshot's last entry, nothing needs doing: the core starts applying after
// the snapshot. TestKillNineWithSnapshots kills a writer that appends,
// snapshots, compacts and installs snapshots at random moments with
// SIGKILL and checks that every acknowledged entry and snapshot survives.
//
// The whole uncompacted log and the newest snapshot are kept in memory,
// like core.MemoryStorage.
package wal
