package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/distributed-go/distributed/behaviors/raft/core"
	"github.com/distributed-go/distributed/behaviors/raft/raftpb"
	"google.golang.org/protobuf/proto"
)

var _ core.Storage = (*WAL)(nil)

// DefaultSegmentSize is the size at which a segment is closed and a new one
// started when Options.SegmentSize is zero.
const DefaultSegmentSize = 64 << 20

// MaxRecordSize bounds the payload of one record. A length field above it
// is treated as corruption, so a damaged file cannot make Open allocate
// without bound.
const MaxRecordSize = 64 << 20

// headerSize is the framing before each payload: length (4), CRC-32C (4),
// type (1).
const headerSize = 9

// Record types.
const (
	recEntry     byte = 1
	recHardState byte = 2
	// recCompact marks a compaction: its payload is an Entry whose Index
	// and Term are those of the last compacted entry.
	recCompact byte = 3
	// recSnapshot marks the log reset to a snapshot received from the
	// leader: its payload is an Entry carrying the snapshot's index and
	// term; every entry before it is gone.
	recSnapshot byte = 4
)

const segmentExt = ".wal"

// ErrCorrupt is wrapped by the errors Open returns for damage that is not a
// torn tail: a bad record followed by valid ones, a bad record in a segment
// other than the last, or a gap in the entry indices.
var ErrCorrupt = errors.New("wal: corrupt log")

// ErrClosed is returned by operations on a closed WAL.
var ErrClosed = errors.New("wal: closed")

type segInfo struct {
	path  string
	first uint64
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Options configure a WAL. The zero value is usable.
type Options struct {
	// SegmentSize is the size in bytes after which a new segment file is
	// started (DefaultSegmentSize if zero). A record is never split; a
	// record larger than SegmentSize gets a segment of its own.
	SegmentSize int64
	// OnSync, if set, is called after every successful fsync with the path
	// synced (a segment file or the directory). Tests use it to count
	// fsyncs.
	OnSync func(path string)
}

// Recovery describes what Open found.
type Recovery struct {
	// Segments is the number of segment files read.
	Segments int
	// Records is the number of valid records read.
	Records int
	// DroppedBytes is the number of bytes cut from the end of the last
	// segment because they held a torn or corrupt tail (0 if none).
	DroppedBytes int64
	// TruncatedFile is the segment that was cut, and TruncatedAt the offset
	// it was cut at (empty and 0 if nothing was dropped).
	TruncatedFile string
	TruncatedAt   int64
}

// WAL is a durable, segmented write-ahead log of Raft entries and hard
// states, with an in-memory copy of the log that serves core.Storage. It is
// safe for concurrent use.
type WAL struct {
	mu   sync.Mutex
	dir  string
	opts Options

	f        *os.File // active (last) segment, opened for appending
	fpath    string
	fsize    int64
	seq      uint64 // sequence number of the active segment
	dirDirty bool   // a segment was created since the last directory fsync
	fdirty   bool   // the active segment has writes not yet fsynced
	closed   bool
	err      error // first write or fsync failure; the WAL refuses writes after it

	hs       *raftpb.HardState
	base     uint64          // index of the last compacted entry (0 if none)
	baseTerm uint64          // its term
	ents     []*raftpb.Entry // ents[i] has index base+1+i
	buf      []byte
	segs     []segInfo // live segments, oldest first; the last is active

	// snap is the newest snapshot (empty, index 0, if none); oldSnaps the
	// snapshot files on disk, removed when a newer one is written.
	snap     *raftpb.Snapshot
	oldSnaps []string

	// Replay state.
	baseKnown bool

	rec Recovery
}

// Open opens (creating if needed) the log in dir and recovers it: every
// segment is read in order and every record's CRC checked. A torn or
// corrupt tail of the last segment (a partial record, or bad records with no
// valid record after them) is cut off, and Recovery reports how many bytes
// were dropped. Any other damage is an error wrapping ErrCorrupt that names
// the file and offset; nothing is skipped silently.
func Open(dir string, opts Options) (*WAL, error) {
	if opts.SegmentSize <= 0 {
		opts.SegmentSize = DefaultSegmentSize
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("wal: create %s: %w", dir, err)
	}
	w := &WAL{dir: dir, opts: opts, hs: &raftpb.HardState{}}
	snap, older, err := loadSnapshot(dir)
	if err != nil {
		return nil, err
	}
	w.snap = snap
	w.oldSnaps = older
	if snap.Metadata.Index > 0 {
		w.oldSnaps = append(w.oldSnaps, snapName(snap.Metadata.Term, snap.Metadata.Index))
	}
	names, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	for i, name := range names {
		_, first, _ := parseSegmentName(name)
		path := filepath.Join(dir, name)
		if i == 0 {
			w.base = first - 1
			w.baseKnown = first == 1
		}
		last := i == len(names)-1
		if err := w.replay(path, last); err != nil {
			return nil, err
		}
		w.segs = append(w.segs, segInfo{path: path, first: first})
	}
	si, sterm := snap.Metadata.Index, snap.Metadata.Term
	if len(names) > 0 && !w.baseKnown && si != w.base {
		if si < w.base {
			return nil, fmt.Errorf("%w: %s: no compaction record or snapshot gives the term of index %d", ErrCorrupt, dir, w.base)
		}
	} else if !w.baseKnown && si == w.base {
		w.baseTerm, w.baseKnown = sterm, true
	}
	w.rec.Segments = len(names)
	if len(names) == 0 {
		if err := w.newSegment(si + 1); err != nil {
			return nil, err
		}
		if si > 0 {
			// Only a snapshot survives: the log restarts after it.
			if err := w.appendRecord(recSnapshot, &raftpb.Entry{Index: si, Term: sterm}); err != nil {
				w.f.Close()
				return nil, err
			}
			if err := w.flush(); err != nil {
				w.f.Close()
				return nil, err
			}
			w.base, w.baseTerm = si, sterm
		}
		if err := w.syncLocked(); err != nil {
			w.f.Close()
			return nil, err
		}
		return w, nil
	}
	lastName := names[len(names)-1]
	w.seq, _, _ = parseSegmentName(lastName)
	w.fpath = filepath.Join(dir, lastName)
	f, err := os.OpenFile(w.fpath, os.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("wal: open %s: %w", w.fpath, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("wal: stat %s: %w", w.fpath, err)
	}
	w.f, w.fsize = f, st.Size()
	if w.rec.DroppedBytes > 0 {
		if err := f.Truncate(w.rec.TruncatedAt); err != nil {
			f.Close()
			return nil, fmt.Errorf("wal: truncate %s at offset %d: %w", w.fpath, w.rec.TruncatedAt, err)
		}
		w.fsize = w.rec.TruncatedAt
		w.fdirty = true
		if err := w.syncLocked(); err != nil {
			f.Close()
			return nil, err
		}
	}
	if _, err := f.Seek(w.fsize, 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("wal: seek %s: %w", w.fpath, err)
	}
	if err := w.reconcile(); err != nil {
		f.Close()
		return nil, err
	}
	return w, nil
}

// reconcile brings the log in line with a snapshot that the log does not
// hold: one past the last index, or whose last entry has another term than
// the log's entry at that index. A crash between writing the snapshot file
// and the record that resets the log (ApplySnapshot) leaves that behind.
// The log then diverged from (or falls short of) the committed state the
// snapshot holds, and is reset to the snapshot, as ApplySnapshot would have
// done; the reset is written and synced, so that later appends replay on
// top of it. A snapshot whose last entry the log holds needs nothing: the
// log covers it (the core starts applying after the snapshot).
func (w *WAL) reconcile() error {
	si, st := w.snap.Metadata.Index, w.snap.Metadata.Term
	if si <= w.base {
		return nil
	}
	last := w.base + uint64(len(w.ents))
	typ := recSnapshot
	if si <= last && w.ents[si-w.base-1].Term == st {
		if w.baseKnown {
			return nil
		}
		// The term of the entry before the first one is unknown (its
		// compaction record is gone): compact up to the snapshot, whose
		// term is known.
		typ = recCompact
	}
	w.buf = w.buf[:0]
	if err := w.appendRecord(typ, &raftpb.Entry{Index: si, Term: st}); err != nil {
		return err
	}
	if err := w.flush(); err != nil {
		return err
	}
	if err := w.syncLocked(); err != nil {
		return err
	}
	if typ == recCompact {
		w.ents = append([]*raftpb.Entry(nil), w.ents[si-w.base:]...)
	} else {
		w.ents = nil
	}
	w.base, w.baseTerm, w.baseKnown = si, st, true
	return nil
}

func segmentName(seq, firstIndex uint64) string {
	return fmt.Sprintf("%016x-%016x%s", seq, firstIndex, segmentExt)
}

func parseSegmentName(name string) (seq, firstIndex uint64, ok bool) {
	if !strings.HasSuffix(name, segmentExt) {
		return 0, 0, false
	}
	n, err := fmt.Sscanf(strings.TrimSuffix(name, segmentExt), "%016x-%016x", &seq, &firstIndex)
	if err != nil || n != 2 || len(name) != 33+len(segmentExt) {
		return 0, 0, false
	}
	return seq, firstIndex, true
}

func listSegments(dir string) ([]string, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("wal: read dir %s: %w", dir, err)
	}
	var names []string
	for _, de := range des {
		if de.Type().IsRegular() {
			if _, first, ok := parseSegmentName(de.Name()); ok {
				if first == 0 {
					return nil, fmt.Errorf("%w: %s: segment name gives first index 0", ErrCorrupt, filepath.Join(dir, de.Name()))
				}
				names = append(names, de.Name())
			}
		}
	}
	sort.Strings(names) // fixed-width hex sequence first: sorts by sequence
	return names, nil
}

// parseRecord decodes the record at data[off:]. It returns the record type,
// payload and total size, or an error describing why the bytes are not a
// valid record.
func parseRecord(data []byte, off int64) (typ byte, payload []byte, n int64, err error) {
	rest := data[off:]
	if len(rest) < headerSize {
		return 0, nil, 0, fmt.Errorf("partial header (%d bytes)", len(rest))
	}
	length := binary.LittleEndian.Uint32(rest[0:4])
	sum := binary.LittleEndian.Uint32(rest[4:8])
	typ = rest[8]
	if length > MaxRecordSize {
		return 0, nil, 0, fmt.Errorf("record length %d exceeds limit %d", length, MaxRecordSize)
	}
	if typ != recEntry && typ != recHardState && typ != recCompact && typ != recSnapshot {
		return 0, nil, 0, fmt.Errorf("unknown record type %d", typ)
	}
	if int64(len(rest)-headerSize) < int64(length) {
		return 0, nil, 0, fmt.Errorf("partial record (%d of %d payload bytes)", len(rest)-headerSize, length)
	}
	if crc32.Checksum(rest[8:headerSize+int(length)], crcTable) != sum {
		return 0, nil, 0, errors.New("CRC mismatch")
	}
	return typ, rest[headerSize : headerSize+int(length)], headerSize + int64(length), nil
}

// validRecordAfter reports whether a record that parses and checks out
// starts anywhere in data after off.
func validRecordAfter(data []byte, off int64) (int64, bool) {
	for p := off + 1; p+headerSize <= int64(len(data)); p++ {
		typ, payload, _, err := parseRecord(data, p)
		if err != nil {
			continue
		}
		if decode(typ, payload) == nil {
			return p, true
		}
	}
	return 0, false
}

func decode(typ byte, payload []byte) error {
	switch typ {
	case recEntry:
		return proto.Unmarshal(payload, &raftpb.Entry{})
	case recHardState:
		return proto.Unmarshal(payload, &raftpb.HardState{})
	case recCompact, recSnapshot:
		return proto.Unmarshal(payload, &raftpb.Entry{})
	}
	return fmt.Errorf("unknown record type %d", typ)
}

// replay reads one segment into memory.
func (w *WAL) replay(path string, last bool) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("wal: read %s: %w", path, err)
	}
	var off int64
	for off < int64(len(data)) {
		typ, payload, n, perr := parseRecord(data, off)
		if perr == nil {
			perr = w.apply(typ, payload)
			if errors.Is(perr, ErrCorrupt) {
				return fmt.Errorf("%s at offset %d: %w", path, off, perr)
			}
		}
		if perr != nil {
			if !last {
				return fmt.Errorf("%w: %s at offset %d: %v (not the last segment)", ErrCorrupt, path, off, perr)
			}
			if p, ok := validRecordAfter(data, off); ok {
				return fmt.Errorf("%w: %s at offset %d: %v, followed by a valid record at offset %d", ErrCorrupt, path, off, perr, p)
			}
			w.rec.DroppedBytes = int64(len(data)) - off
			w.rec.TruncatedFile = path
			w.rec.TruncatedAt = off
			return nil
		}
		w.rec.Records++
		off += n
	}
	return nil
}

// apply replays one decoded record. Errors wrapping ErrCorrupt are damage
// that a valid record cannot explain (an index gap); other errors mean the
// payload did not decode.
func (w *WAL) apply(typ byte, payload []byte) error {
	switch typ {
	case recEntry:
		e := &raftpb.Entry{}
		if err := proto.Unmarshal(payload, e); err != nil {
			return err
		}
		last := w.base + uint64(len(w.ents))
		if e.Index == 0 || e.Index > last+1 {
			return fmt.Errorf("%w: entry index %d after last index %d", ErrCorrupt, e.Index, last)
		}
		if e.Index <= w.base {
			// The first segments were removed by a compaction: this entry
			// replaced everything from its index on, so the replayed log
			// restarts here (a later compaction record fixes the base).
			w.ents = append(w.ents[:0], e)
			w.base, w.baseKnown = e.Index-1, e.Index == 1
			w.baseTerm = 0
			return nil
		}
		w.ents = append(w.ents[:e.Index-w.base-1], e)
	case recHardState:
		hs := &raftpb.HardState{}
		if err := proto.Unmarshal(payload, hs); err != nil {
			return err
		}
		w.hs = hs
	case recCompact:
		m := &raftpb.Entry{}
		if err := proto.Unmarshal(payload, m); err != nil {
			return err
		}
		if m.Index < w.base {
			return nil // an older compaction
		}
		last := w.base + uint64(len(w.ents))
		if m.Index > last {
			return fmt.Errorf("%w: compaction at index %d after last index %d", ErrCorrupt, m.Index, last)
		}
		w.ents = append([]*raftpb.Entry(nil), w.ents[m.Index-w.base:]...)
		w.base, w.baseTerm, w.baseKnown = m.Index, m.Term, true
	case recSnapshot:
		m := &raftpb.Entry{}
		if err := proto.Unmarshal(payload, m); err != nil {
			return err
		}
		if m.Index < w.base {
			return fmt.Errorf("%w: log reset to snapshot %d before the first index %d", ErrCorrupt, m.Index, w.base+1)
		}
		w.ents = nil
		w.base, w.baseTerm, w.baseKnown = m.Index, m.Term, true
	}
	return nil
}

// newSegment creates a new active segment whose first entry will be
// firstIndex. The previous segment, if any, must already be synced and
// closed.
func (w *WAL) newSegment(firstIndex uint64) error {
	if w.f != nil {
		w.seq++
	}
	path := filepath.Join(w.dir, segmentName(w.seq, firstIndex))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("wal: create %s: %w", path, err)
	}
	w.f, w.fpath, w.fsize = f, path, 0
	w.dirDirty = true
	w.segs = append(w.segs, segInfo{path: path, first: firstIndex})
	return nil
}

// fail records the first write failure: after it the files are in an
// unknown state, and the WAL must be closed and opened again.
func (w *WAL) fail(err error) error {
	if w.err == nil {
		w.err = err
	}
	return err
}

// appendRecord frames msg into w.buf.
func (w *WAL) appendRecord(typ byte, msg proto.Message) error {
	start := len(w.buf)
	w.buf = append(w.buf, make([]byte, headerSize)...)
	var err error
	w.buf, err = proto.MarshalOptions{}.MarshalAppend(w.buf, msg)
	if err != nil {
		w.buf = w.buf[:start]
		return fmt.Errorf("wal: marshal: %w", err)
	}
	length := len(w.buf) - start - headerSize
	if length > MaxRecordSize {
		w.buf = w.buf[:start]
		return fmt.Errorf("wal: record of %d bytes exceeds limit %d", length, MaxRecordSize)
	}
	h := w.buf[start:]
	binary.LittleEndian.PutUint32(h[0:4], uint32(length))
	h[8] = typ
	binary.LittleEndian.PutUint32(h[4:8], crc32.Checksum(h[8:], crcTable))
	return nil
}

// flush writes w.buf to the active segment.
func (w *WAL) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	n, err := w.f.Write(w.buf)
	w.fsize += int64(n)
	w.fdirty = true
	w.buf = w.buf[:0]
	if err != nil {
		return w.fail(fmt.Errorf("wal: write %s at offset %d: %w", w.fpath, w.fsize, err))
	}
	return nil
}

// maybeRoll starts a new segment if adding a record of about recSize bytes
// would take the active one past SegmentSize. The full segment is synced
// before it is left, so only the last segment can ever hold a torn tail.
func (w *WAL) maybeRoll(recSize int, firstIndex uint64) error {
	if w.fsize+int64(len(w.buf)) == 0 || w.fsize+int64(len(w.buf)+recSize) <= w.opts.SegmentSize {
		return nil
	}
	if err := w.flush(); err != nil {
		return err
	}
	if err := w.syncFile(); err != nil {
		return err
	}
	if err := w.f.Close(); err != nil {
		return w.fail(fmt.Errorf("wal: close %s: %w", w.fpath, err))
	}
	if err := w.newSegment(firstIndex); err != nil {
		return w.fail(err)
	}
	// Each segment starts with the current hard state, so the latest one
	// never lives only in an older segment.
	if w.hs.Term != 0 || w.hs.Vote != 0 || w.hs.Commit != 0 {
		return w.appendRecord(recHardState, w.hs)
	}
	return nil
}

// Save appends entries and then hs (if non-nil) to the log, without
// syncing. Entries must be contiguous, and the first must have an index in
// [1, LastIndex()+1]: if it is not past the end, the persisted suffix from
// that index on is replaced (Raft's rule for conflicting entries). The
// entries and hs are kept by reference and must not be modified afterwards.
//
// The data is written to the operating system at once but is durable only
// after Sync. To group-commit, call Save for every pending batch and then
// Sync once; no message that depends on the saved state may be sent before
// that Sync returns.
func (w *WAL) Save(hs *raftpb.HardState, entries []*raftpb.Entry) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	if w.err != nil {
		return w.err
	}
	if len(entries) > 0 {
		first := entries[0].Index
		last := w.base + uint64(len(w.ents))
		if first <= w.base && first != 0 {
			return fmt.Errorf("wal: entry index %d: %w", first, core.ErrCompacted)
		}
		if first == 0 || first > last+1 {
			return fmt.Errorf("wal: entry index %d out of range [%d, %d]", first, w.base+1, last+1)
		}
		for i, e := range entries {
			if e.Index != first+uint64(i) {
				return fmt.Errorf("wal: entries not contiguous: index %d at position %d, want %d", e.Index, i, first+uint64(i))
			}
			if n := proto.Size(e); n > MaxRecordSize {
				return fmt.Errorf("wal: entry %d of %d bytes exceeds limit %d", e.Index, n, MaxRecordSize)
			}
		}
	}
	w.buf = w.buf[:0]
	for _, e := range entries {
		if err := w.maybeRoll(headerSize+proto.Size(e), e.Index); err != nil {
			return err
		}
		if err := w.appendRecord(recEntry, e); err != nil {
			return err
		}
	}
	if hs != nil {
		// A new segment starts after the entries saved here (still in the
		// buffer, not yet in w.ents): naming it after the old last index
		// would let a compaction remove the segment that holds them while
		// replay still expects them.
		next := w.base + uint64(len(w.ents)) + 1
		if len(entries) > 0 {
			next = entries[len(entries)-1].Index + 1
		}
		if err := w.maybeRoll(headerSize+proto.Size(hs), next); err != nil {
			return err
		}
		if err := w.appendRecord(recHardState, hs); err != nil {
			return err
		}
	}
	if err := w.flush(); err != nil {
		return err
	}
	if len(entries) > 0 {
		w.ents = append(w.ents[:entries[0].Index-w.base-1], entries...)
	}
	if hs != nil {
		w.hs = hs
	}
	return nil
}

// Sync makes everything saved so far durable: it fsyncs the active segment
// and, if a segment was created since the last Sync, the directory. It does
// nothing if there is nothing to sync.
func (w *WAL) Sync() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	if w.err != nil {
		return w.err
	}
	return w.syncLocked()
}

// SaveSync is Save followed by Sync.
func (w *WAL) SaveSync(hs *raftpb.HardState, entries []*raftpb.Entry) error {
	if err := w.Save(hs, entries); err != nil {
		return err
	}
	return w.Sync()
}

func (w *WAL) syncLocked() error {
	if err := w.syncFile(); err != nil {
		return err
	}
	return w.syncDir()
}

func (w *WAL) syncFile() error {
	if !w.fdirty {
		return nil
	}
	if err := w.f.Sync(); err != nil {
		return w.fail(fmt.Errorf("wal: fsync %s at size %d: %w", w.fpath, w.fsize, err))
	}
	w.fdirty = false
	if w.opts.OnSync != nil {
		w.opts.OnSync(w.fpath)
	}
	return nil
}

// Close syncs and closes the log.
func (w *WAL) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	err := w.err
	if err == nil {
		err = w.syncLocked()
	}
	if cerr := w.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("wal: close %s: %w", w.fpath, cerr)
	}
	return err
}

// Recovery reports what Open found and repaired.
func (w *WAL) Recovery() Recovery {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rec
}

// Dir returns the directory holding the segments.
func (w *WAL) Dir() string { return w.dir }

// HardState returns the last saved hard state (zero if none).
func (w *WAL) HardState() *raftpb.HardState {
	w.mu.Lock()
	defer w.mu.Unlock()
	return proto.Clone(w.hs).(*raftpb.HardState)
}

// InitialState implements core.Storage.
func (w *WAL) InitialState() (*raftpb.HardState, error) { return w.HardState(), nil }

// Entries implements core.Storage: the entries in [lo, hi), at least one if
// lo < hi and then as many as fit in maxSize bytes (counting len(Data)+24
// per entry, as core does).
func (w *WAL) Entries(lo, hi, maxSize uint64) ([]*raftpb.Entry, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if lo <= w.base {
		return nil, core.ErrCompacted
	}
	if hi > w.base+uint64(len(w.ents))+1 {
		return nil, core.ErrUnavailable
	}
	if lo >= hi {
		return nil, nil
	}
	src := w.ents[lo-w.base-1 : hi-w.base-1]
	size := uint64(len(src[0].Data)) + 24
	n := 1
	for ; n < len(src); n++ {
		size += uint64(len(src[n].Data)) + 24
		if size > maxSize {
			break
		}
	}
	return append([]*raftpb.Entry(nil), src[:n]...), nil
}

// Term implements core.Storage, for i in [FirstIndex()-1, LastIndex()].
// Term(0) is 0.
func (w *WAL) Term(i uint64) (uint64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if i < w.base {
		return 0, core.ErrCompacted
	}
	if i == w.base {
		return w.baseTerm, nil
	}
	if i > w.base+uint64(len(w.ents)) {
		return 0, core.ErrUnavailable
	}
	return w.ents[i-w.base-1].Term, nil
}

// LastIndex implements core.Storage.
func (w *WAL) LastIndex() (uint64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.base + uint64(len(w.ents)), nil
}

// FirstIndex implements core.Storage: 1, or the index after the last
// Compact.
func (w *WAL) FirstIndex() (uint64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.base + 1, nil
}

// Compact discards the log up to and including index, which must be in
// [FirstIndex(), LastIndex()] and covered by a snapshot the caller has made
// durable: afterwards FirstIndex is index+1 and Term(index) still answers.
// It writes and syncs a compaction record, then removes the oldest segment
// files that are no longer needed (whole segments only, so some entries
// before index may stay on disk until a later Compact), then syncs the
// directory. A crash at any point leaves a log that Open recovers.
func (w *WAL) Compact(index uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	if w.err != nil {
		return w.err
	}
	last := w.base + uint64(len(w.ents))
	if index <= w.base {
		return core.ErrCompacted
	}
	if index > last {
		return core.ErrUnavailable
	}
	term := w.ents[index-w.base-1].Term
	w.buf = w.buf[:0]
	m := &raftpb.Entry{Index: index, Term: term}
	if err := w.maybeRoll(headerSize+proto.Size(m), last+1); err != nil {
		return err
	}
	if err := w.appendRecord(recCompact, m); err != nil {
		return err
	}
	if err := w.flush(); err != nil {
		return err
	}
	if err := w.syncLocked(); err != nil {
		return err
	}
	w.ents = append([]*raftpb.Entry(nil), w.ents[index-w.base:]...)
	w.base, w.baseTerm = index, term

	// Every entry at or after segs[k].first in the log was written in
	// segment k or later, so segments before the last k with
	// first <= index+1 hold nothing the log still needs. Remove them oldest
	// first: any prefix removed still replays correctly.
	k := 0
	for j := len(w.segs) - 1; j > 0; j-- {
		if w.segs[j].first <= index+1 {
			k = j
			break
		}
	}
	if k == 0 {
		return nil
	}
	for j := 0; j < k; j++ {
		if err := os.Remove(w.segs[j].path); err != nil {
			w.segs = w.segs[j:]
			return fmt.Errorf("wal: remove %s: %w", w.segs[0].path, err)
		}
	}
	w.segs = append([]segInfo(nil), w.segs[k:]...)
	w.dirDirty = true
	return w.syncLocked()
}
