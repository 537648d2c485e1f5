// Package wal is a durable write-ahead log for the Raft core
// (behaviors/raft/core): it persists the log entries and the hard state
// (term, vote, commit) that a node must keep across crashes, in segment
// files under the node's data directory, and keeps an in-memory copy of the
// log so that a *WAL serves as the core's Storage.
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
//	        the last compacted entry)
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
// The whole uncompacted log is kept in memory, like core.MemoryStorage.
package wal
