// Package journal is the durable, append-only log under the saga
// coordinator (behaviors/saga): every saga event is a record here before the
// coordinator acts on it, so that a coordinator restarted after a kill or a
// node crash resumes exactly where the log says.
//
// # Files and records
//
// Records live in segment files named <sequence>.log (16 hex digits) in one
// directory, normally <node data dir>/saga. A segment is synced and closed
// once it would grow past Options.SegmentSize, and the next is started; a
// record is never split across segments. Every record is
//
//	length  uint32, little endian: payload bytes, 1..MaxRecordSize (1 MiB);
//	        the top bit marks a base record (see Compaction)
//	crc     uint32, little endian: CRC-32C (Castagnoli) of the length word
//	        and the payload
//	payload the record (for the saga package, a protobuf sagapb.Event)
//
// A zero length is invalid (except for a base record), so a tail of zeros
// (a preallocated block that was never written) is recognised as damage,
// not as empty records. The length word is checksummed, so no flipped bit
// can make an ordinary record a base record.
//
// # Group commit
//
// Append does not write: it queues the record for a single writer
// goroutine and returns. The writer takes everything queued (up to
// Options.MaxBatch), writes it with one write and one fsync, and then calls
// each record's done callback in append order. Under load, many sagas share
// one fsync; with one appender at a time, it costs one fsync per record as
// it must. Options.NoGroupCommit turns batching off (one write and fsync per
// record), which the benchmarks use to measure what group commit saves.
// A record is acknowledged only after the fsync that covers it.
//
// If a write or fsync fails, the state of the file is unknown: that batch
// and every later append fail with the error; close and Open again, which
// recovers what is on disk.
//
// # Recovery
//
// Open replays every record of every segment in order. A crash in the
// middle of a write can leave the last segment with a torn tail: a partial
// header, a partial payload, or bytes whose checksum does not match. If the
// bad record is in the last segment and no valid record starts after it,
// the segment is cut at the start of that record (and synced), and Recovery
// reports the bytes dropped: they were never acknowledged. Anything else is
// corruption (a bad record followed by a valid one, or a bad record in an
// earlier segment, which was synced before the next one started): Open
// fails with an error wrapping ErrCorrupt that names the file and offset.
// It never skips a record.
//
// # Compaction
//
// Compact replaces the journal's contents with the records its caller
// still needs (the saga package keeps the unfinished sagas and the recently
// finished ones). It runs on the writer goroutine between batches, so it
// sees every earlier append and no later one. The records are written to a
// temporary file, fsynced, and renamed to a new segment whose first record
// is an empty base record; then the older segments are deleted. Open
// deletes segments older than the last base segment (left over from a crash
// between the rename and the deletions) and temporary files (left over
// from a crash before the rename), so a crash at any point leaves either
// the old contents or the new.
package journal
