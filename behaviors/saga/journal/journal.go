package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// MaxRecordSize bounds a record's payload (1 MiB). A length field above it
// is treated as damage, so no file content can make Open allocate without
// bound.
const MaxRecordSize = 1 << 20

// DefaultSegmentSize is the size at which a segment is closed and a new one
// started (16 MiB).
const DefaultSegmentSize = 16 << 20

// DefaultMaxBatch is the default number of appends one fsync may cover.
const DefaultMaxBatch = 1024

const (
	headerSize = 8
	segmentExt = ".log"
)

// ErrCorrupt is matched by the error Open returns for damage that a torn
// write cannot explain.
var ErrCorrupt = errors.New("journal: corrupt")

// ErrClosed is returned for appends to a closed journal.
var ErrClosed = errors.New("journal: closed")

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Options configures a Journal. The zero value is usable.
type Options struct {
	// SegmentSize is the size in bytes at which the active segment is
	// synced and closed and a new one started. Default DefaultSegmentSize.
	SegmentSize int64
	// NoGroupCommit makes every append pay for its own write and fsync, one
	// after the other. It exists to measure what group commit saves.
	NoGroupCommit bool
	// MaxBatch bounds how many pending appends share one write and fsync.
	// Default DefaultMaxBatch.
	MaxBatch int
	// QueueSize is the capacity of the queue of pending appends; Append
	// blocks while it is full. Default 4096.
	QueueSize int
}

// Recovery says what Open found.
type Recovery struct {
	// Segments is the number of segment files read.
	Segments int
	// Records is the number of valid records replayed.
	Records int
	// TruncatedFile is the segment whose torn tail was cut ("" if none).
	TruncatedFile string
	// TruncatedBytes is how many bytes were cut from it.
	TruncatedBytes int64
}

// Stats are running totals since Open.
type Stats struct {
	Appends uint64 // records made durable
	Syncs   uint64 // fsyncs of segment files
	Bytes   uint64 // bytes written, headers included
}

type request struct {
	payload []byte
	done    func(error)
	// compact, if set, makes this a compaction (see Compact).
	compact func() ([][]byte, error)
	stats   *CompactStats
}

// CompactStats says what a compaction did.
type CompactStats struct {
	Kept            int   // records written to the new base segment
	RemovedSegments int   // older segments deleted
	Bytes           int64 // size of the new base segment
}

// Journal is an append-only log of records in segment files. It is safe for
// concurrent use.
type Journal struct {
	dir  string
	opts Options

	mu     sync.RWMutex // guards closed against sends on reqs
	closed bool
	reqs   chan request
	quit   chan struct{}
	exited chan struct{}

	// owned by the writer goroutine after Open
	f       *os.File
	seq     uint64
	size    int64
	failure error
	buf     []byte

	recovery Recovery
	appends  atomic.Uint64
	syncs    atomic.Uint64
	bytes    atomic.Uint64
}

// Open reads every segment in dir (created if missing), calling replay for
// each valid record in order, cuts a torn tail off the last segment, and
// returns a journal that appends after the last record. replay may keep the
// payload slice. An error from replay aborts Open and is returned.
func Open(dir string, opts Options, replay func(payload []byte) error) (*Journal, error) {
	if opts.SegmentSize <= 0 {
		opts.SegmentSize = DefaultSegmentSize
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 4096
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	if err := removeTemp(dir); err != nil {
		return nil, err
	}
	names, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	// A base segment (written by Compact) supersedes every earlier one:
	// they are left over from a crash in the middle of a compaction.
	for i := len(names) - 1; i > 0; i-- {
		if isBase(names[i]) {
			for _, old := range names[:i] {
				if err := os.Remove(old); err != nil {
					return nil, fmt.Errorf("journal: remove superseded segment: %w", err)
				}
			}
			if err := syncDir(dir); err != nil {
				return nil, err
			}
			names = names[i:]
			break
		}
	}
	j := &Journal{dir: dir, opts: opts}
	for i, name := range names {
		if err := j.replay(name, i == len(names)-1, replay); err != nil {
			return nil, err
		}
	}
	j.recovery.Segments = len(names)
	if len(names) == 0 {
		if err := j.newSegment(1); err != nil {
			return nil, err
		}
	} else {
		last := names[len(names)-1]
		seq, _ := parseSegmentName(filepath.Base(last))
		f, err := os.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return nil, fmt.Errorf("journal: %w", err)
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("journal: %w", err)
		}
		j.f, j.seq, j.size = f, seq, st.Size()
	}
	j.reqs = make(chan request, opts.QueueSize)
	j.quit = make(chan struct{})
	j.exited = make(chan struct{})
	go j.writer()
	return j, nil
}

// isBase reports whether the segment starts with a valid base record.
func isBase(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var h [headerSize]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		return false
	}
	_, base, _, err := parseRecord(h[:], 0)
	return err == nil && base
}

const tempExt = ".tmp"

// removeTemp deletes the temporary files of a compaction that did not
// finish.
func removeTemp(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return fmt.Errorf("journal: %w", err)
	}
	for _, e := range ents {
		if !e.IsDir() && strings.HasSuffix(e.Name(), segmentExt+tempExt) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return fmt.Errorf("journal: remove %s: %w", e.Name(), err)
			}
		}
	}
	return nil
}

func segmentName(seq uint64) string { return fmt.Sprintf("%016x%s", seq, segmentExt) }

func parseSegmentName(name string) (uint64, bool) {
	s, ok := strings.CutSuffix(name, segmentExt)
	if !ok || len(s) != 16 {
		return 0, false
	}
	seq, err := strconv.ParseUint(s, 16, 64)
	return seq, err == nil && seq > 0
}

func listSegments(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	type seg struct {
		seq  uint64
		path string
	}
	var segs []seg
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		if seq, ok := parseSegmentName(e.Name()); ok {
			segs = append(segs, seg{seq, filepath.Join(dir, e.Name())})
		}
	}
	sort.Slice(segs, func(a, b int) bool { return segs[a].seq < segs[b].seq })
	out := make([]string, len(segs))
	for i, s := range segs {
		out[i] = s.path
	}
	return out, nil
}

// baseFlag marks a base record in the length word: the first record of a
// segment written by Compact, which supersedes every earlier segment.
const baseFlag = 1 << 31

// recordCRC is the checksum of a record: CRC-32C of its length word (so
// that the base flag is covered too) and its payload.
func recordCRC(word uint32, payload []byte) uint32 {
	var w [4]byte
	binary.LittleEndian.PutUint32(w[:], word)
	return crc32.Update(crc32.Checksum(w[:], crcTable), crcTable, payload)
}

// parseRecord checks the record at off. It returns the payload, whether it
// is a base record, and the record's total size, or an error describing the
// damage.
func parseRecord(data []byte, off int64) ([]byte, bool, int64, error) {
	rest := data[off:]
	if len(rest) < headerSize {
		return nil, false, 0, fmt.Errorf("partial header (%d bytes)", len(rest))
	}
	word := binary.LittleEndian.Uint32(rest[0:4])
	base := word&baseFlag != 0
	n := word &^ baseFlag
	if (n == 0 && !base) || n > MaxRecordSize {
		return nil, false, 0, fmt.Errorf("bad record length word %#x", word)
	}
	if int64(len(rest)-headerSize) < int64(n) {
		return nil, false, 0, fmt.Errorf("partial payload (%d of %d bytes)", len(rest)-headerSize, n)
	}
	payload := rest[headerSize : headerSize+int(n)]
	if recordCRC(word, payload) != binary.LittleEndian.Uint32(rest[4:8]) {
		return nil, false, 0, errors.New("checksum mismatch")
	}
	return payload, base, headerSize + int64(n), nil
}

// appendRecord frames payload (a base marker if base) onto buf.
func appendRecord(buf []byte, payload []byte, base bool) []byte {
	word := uint32(len(payload))
	if base {
		word |= baseFlag
	}
	var h [headerSize]byte
	binary.LittleEndian.PutUint32(h[0:4], word)
	binary.LittleEndian.PutUint32(h[4:8], recordCRC(word, payload))
	return append(append(buf, h[:]...), payload...)
}

// validRecordAfter reports whether a valid record starts anywhere after off:
// then the damage at off is not a torn tail.
func validRecordAfter(data []byte, off int64) (int64, bool) {
	for p := off + 1; p+headerSize <= int64(len(data)); p++ {
		if _, _, _, err := parseRecord(data, p); err == nil {
			return p, true
		}
	}
	return 0, false
}

func (j *Journal) replay(path string, last bool, fn func([]byte) error) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	var off int64
	for off < int64(len(data)) {
		payload, base, n, perr := parseRecord(data, off)
		if perr != nil {
			if !last {
				return fmt.Errorf("%w: %s at offset %d: %v (not the last segment)", ErrCorrupt, path, off, perr)
			}
			if at, ok := validRecordAfter(data, off); ok {
				return fmt.Errorf("%w: %s at offset %d: %v, followed by a valid record at offset %d", ErrCorrupt, path, off, perr, at)
			}
			if err := truncate(path, off); err != nil {
				return err
			}
			j.recovery.TruncatedFile = path
			j.recovery.TruncatedBytes = int64(len(data)) - off
			return nil
		}
		if base {
			if off != 0 {
				return fmt.Errorf("%w: %s at offset %d: base record inside a segment", ErrCorrupt, path, off)
			}
			off += n
			continue
		}
		if fn != nil {
			if err := fn(payload); err != nil {
				return fmt.Errorf("journal: replay %s at offset %d: %w", path, off, err)
			}
		}
		j.recovery.Records++
		off += n
	}
	return nil
}

func truncate(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("journal: cut torn tail: %w", err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("journal: cut torn tail: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("journal: cut torn tail: %w", err)
	}
	return nil
}

// newSegment creates segment seq and makes its name durable.
func (j *Journal) newSegment(seq uint64) error {
	path := filepath.Join(j.dir, segmentName(seq))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("journal: new segment: %w", err)
	}
	if err := syncDir(j.dir); err != nil {
		f.Close()
		return err
	}
	j.f, j.seq, j.size = f, seq, 0
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("journal: sync dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("journal: sync dir: %w", err)
	}
	return nil
}

// Append queues payload and calls done once it is durable (written and
// fsynced), or with the error that prevented it. done runs on the journal's
// writer goroutine, in append order; it must not block or call Append's
// AppendSync. Appends queued before done is called may share its fsync.
func (j *Journal) Append(payload []byte, done func(error)) {
	if done == nil {
		done = func(error) {}
	}
	if len(payload) == 0 || len(payload) > MaxRecordSize {
		done(fmt.Errorf("journal: record of %d bytes (must be 1..%d)", len(payload), MaxRecordSize))
		return
	}
	j.mu.RLock()
	if j.closed {
		j.mu.RUnlock()
		done(ErrClosed)
		return
	}
	j.reqs <- request{payload: payload, done: done}
	j.mu.RUnlock()
}

// AppendSync appends payload and waits until it is durable.
func (j *Journal) AppendSync(payload []byte) error {
	ch := make(chan error, 1)
	j.Append(payload, func(err error) { ch <- err })
	return <-ch
}

func (j *Journal) writer() {
	defer close(j.exited)
	batch := make([]request, 0, j.opts.MaxBatch)
	var next *request // a compaction met while draining a batch
	for {
		var first request
		if next != nil {
			first, next = *next, nil
		} else {
			select {
			case first = <-j.reqs:
			case <-j.quit:
				// Close holds the write lock: nothing more can be queued.
				for {
					select {
					case r := <-j.reqs:
						j.handle(append(batch[:0], r))
					default:
						return
					}
				}
			}
		}
		batch = append(batch[:0], first)
		if first.compact == nil && !j.opts.NoGroupCommit {
		drain:
			for len(batch) < j.opts.MaxBatch {
				select {
				case r := <-j.reqs:
					if r.compact != nil {
						next = &r
						break drain
					}
					batch = append(batch, r)
				default:
					break drain
				}
			}
		}
		j.handle(batch)
	}
}

// errKeep is an error of a compaction's keep function: the journal is
// unchanged.
type errKeep struct{ err error }

func (e errKeep) Error() string { return e.err.Error() }
func (e errKeep) Unwrap() error { return e.err }

// handle runs a compaction (alone in its batch) or commits appends.
func (j *Journal) handle(batch []request) {
	if r := batch[0]; r.compact != nil {
		err := j.failure
		if err == nil {
			*r.stats, err = j.compact(r.compact)
			var ke errKeep
			if errors.As(err, &ke) {
				err = ke.err
			} else if err != nil {
				j.failure = err
			}
		}
		r.done(err)
		return
	}
	j.commit(batch)
}

// commit writes the batch with one write and one fsync, then reports.
func (j *Journal) commit(batch []request) {
	err := j.failure
	if err == nil {
		err = j.write(batch)
		if err != nil {
			// The state of the file is unknown: refuse further writes.
			j.failure = err
		}
	}
	for i := range batch {
		batch[i].done(err)
		batch[i] = request{}
	}
}

func (j *Journal) write(batch []request) error {
	j.buf = j.buf[:0]
	for _, r := range batch {
		j.buf = appendRecord(j.buf, r.payload, false)
	}
	if j.size > 0 && j.size+int64(len(j.buf)) > j.opts.SegmentSize {
		// Earlier segments are synced before the next starts, so only
		// the last segment can have a torn tail.
		if err := j.f.Sync(); err != nil {
			return fmt.Errorf("journal: sync: %w", err)
		}
		j.syncs.Add(1)
		if err := j.f.Close(); err != nil {
			return fmt.Errorf("journal: close segment: %w", err)
		}
		if err := j.newSegment(j.seq + 1); err != nil {
			return err
		}
	}
	if _, err := j.f.Write(j.buf); err != nil {
		return fmt.Errorf("journal: write: %w", err)
	}
	j.size += int64(len(j.buf))
	j.bytes.Add(uint64(len(j.buf)))
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("journal: sync: %w", err)
	}
	j.syncs.Add(1)
	j.appends.Add(uint64(len(batch)))
	if cap(j.buf) > 4<<20 {
		j.buf = nil
	}
	return nil
}

// Compact replaces the journal's contents with the records keep returns,
// for example the events of the sagas still worth keeping; if keep returns
// an error, nothing changes and Compact returns it. keep runs on the
// writer goroutine after every earlier append is durable and its done
// callback has run, and before any later append is written, so that what
// it returns is exactly what must survive at that point.
//
// The records go to a temporary file that is fsynced and renamed to a new
// segment that starts with a base record; then the older segments are
// deleted and appends continue in the new segment. A crash at any point
// leaves either the old segments or the new one (Open deletes segments
// older than a base segment, and temporary files). If a step fails, the
// journal refuses further writes, as after a failed append.
func (j *Journal) Compact(keep func() ([][]byte, error)) (CompactStats, error) {
	var st CompactStats
	ch := make(chan error, 1)
	j.mu.RLock()
	if j.closed {
		j.mu.RUnlock()
		return st, ErrClosed
	}
	j.reqs <- request{compact: keep, stats: &st, done: func(err error) { ch <- err }}
	j.mu.RUnlock()
	err := <-ch
	return st, err
}

func (j *Journal) compact(keep func() ([][]byte, error)) (CompactStats, error) {
	var st CompactStats
	records, err := keep()
	if err != nil {
		return st, errKeep{err}
	}
	buf := appendRecord(nil, nil, true)
	for _, r := range records {
		if len(r) == 0 || len(r) > MaxRecordSize {
			return st, fmt.Errorf("journal: compact: record of %d bytes (must be 1..%d)", len(r), MaxRecordSize)
		}
		buf = appendRecord(buf, r, false)
	}
	if err := j.f.Sync(); err != nil {
		return st, fmt.Errorf("journal: compact: sync: %w", err)
	}
	j.syncs.Add(1)
	if err := j.f.Close(); err != nil {
		return st, fmt.Errorf("journal: compact: close segment: %w", err)
	}
	seq := j.seq + 1
	path := filepath.Join(j.dir, segmentName(seq))
	tmp := path + tempExt
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return st, fmt.Errorf("journal: compact: %w", err)
	}
	if _, err := f.Write(buf); err != nil {
		f.Close()
		return st, fmt.Errorf("journal: compact: write: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return st, fmt.Errorf("journal: compact: sync: %w", err)
	}
	j.syncs.Add(1)
	if err := f.Close(); err != nil {
		return st, fmt.Errorf("journal: compact: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return st, fmt.Errorf("journal: compact: %w", err)
	}
	if err := syncDir(j.dir); err != nil {
		return st, err
	}
	// From here on the new segment is the journal; the older ones are
	// garbage, deleted now or by the next Open.
	names, err := listSegments(j.dir)
	if err != nil {
		return st, err
	}
	for _, name := range names {
		if s, _ := parseSegmentName(filepath.Base(name)); s < seq {
			if err := os.Remove(name); err != nil {
				return st, fmt.Errorf("journal: compact: remove %s: %w", name, err)
			}
			st.RemovedSegments++
		}
	}
	if err := syncDir(j.dir); err != nil {
		return st, err
	}
	nf, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return st, fmt.Errorf("journal: compact: %w", err)
	}
	j.f, j.seq, j.size = nf, seq, int64(len(buf))
	st.Kept, st.Bytes = len(records), int64(len(buf))
	return st, nil
}

// Close makes every queued append durable (or fails it), stops the writer
// and closes the active segment. Later appends fail with ErrClosed.
func (j *Journal) Close() error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return nil
	}
	j.closed = true
	j.mu.Unlock()
	close(j.quit)
	<-j.exited
	if err := j.f.Close(); err != nil {
		return fmt.Errorf("journal: close: %w", err)
	}
	return nil
}

// Recovery reports what Open found.
func (j *Journal) Recovery() Recovery { return j.recovery }

// Stats returns running totals since Open.
func (j *Journal) Stats() Stats {
	return Stats{Appends: j.appends.Load(), Syncs: j.syncs.Load(), Bytes: j.bytes.Load()}
}

// Dir is the journal's directory.
func (j *Journal) Dir() string { return j.dir }
