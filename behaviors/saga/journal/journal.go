package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
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
	names, err := listSegments(dir)
	if err != nil {
		return nil, err
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

// parseRecord checks the record at off. It returns the payload and the
// record's total size, or an error describing the damage.
func parseRecord(data []byte, off int64) ([]byte, int64, error) {
	rest := data[off:]
	if len(rest) < headerSize {
		return nil, 0, fmt.Errorf("partial header (%d bytes)", len(rest))
	}
	n := binary.LittleEndian.Uint32(rest[0:4])
	if n == 0 || n > MaxRecordSize {
		return nil, 0, fmt.Errorf("bad record length %d", n)
	}
	if int64(len(rest)-headerSize) < int64(n) {
		return nil, 0, fmt.Errorf("partial payload (%d of %d bytes)", len(rest)-headerSize, n)
	}
	payload := rest[headerSize : headerSize+int(n)]
	if crc32.Checksum(payload, crcTable) != binary.LittleEndian.Uint32(rest[4:8]) {
		return nil, 0, errors.New("checksum mismatch")
	}
	return payload, headerSize + int64(n), nil
}

// validRecordAfter reports whether a valid record starts anywhere after off:
// then the damage at off is not a torn tail.
func validRecordAfter(data []byte, off int64) (int64, bool) {
	for p := off + 1; p+headerSize <= int64(len(data)); p++ {
		if _, _, err := parseRecord(data, p); err == nil {
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
		payload, n, perr := parseRecord(data, off)
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
	for {
		var first request
		select {
		case first = <-j.reqs:
		case <-j.quit:
			// Close holds the write lock: nothing more can be queued.
			for {
				select {
				case r := <-j.reqs:
					j.commit(append(batch[:0], r))
				default:
					return
				}
			}
		}
		batch = append(batch[:0], first)
		if !j.opts.NoGroupCommit {
		drain:
			for len(batch) < j.opts.MaxBatch {
				select {
				case r := <-j.reqs:
					batch = append(batch, r)
				default:
					break drain
				}
			}
		}
		j.commit(batch)
	}
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
		var h [headerSize]byte
		binary.LittleEndian.PutUint32(h[0:4], uint32(len(r.payload)))
		binary.LittleEndian.PutUint32(h[4:8], crc32.Checksum(r.payload, crcTable))
		j.buf = append(j.buf, h[:]...)
		j.buf = append(j.buf, r.payload...)
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
