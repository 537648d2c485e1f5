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

	"github.com/distributed-go/distributed/behaviors/raft/core"
	"github.com/distributed-go/distributed/behaviors/raft/raftpb"
	"google.golang.org/protobuf/proto"
)

// Snapshot files are named <term>-<index>.snap (16 hex digits each) and
// hold snapMagic, a CRC-32C of the payload, the payload length and the
// payload: a protobuf raftpb.Snapshot.
const (
	snapExt        = ".snap"
	snapTmpExt     = ".snap.tmp"
	snapMagic      = "RSNP"
	snapHeaderSize = 4 + 4 + 8
)

// MaxSnapshotSize bounds a snapshot file's payload, so that a damaged
// length field cannot make Open allocate without bound.
const MaxSnapshotSize = 1 << 34

func snapName(term, index uint64) string {
	return fmt.Sprintf("%016x-%016x%s", term, index, snapExt)
}

func parseSnapName(name string) (term, index uint64, ok bool) {
	if !strings.HasSuffix(name, snapExt) || len(name) != 33+len(snapExt) {
		return 0, 0, false
	}
	n, err := fmt.Sscanf(strings.TrimSuffix(name, snapExt), "%016x-%016x", &term, &index)
	return term, index, err == nil && n == 2
}

func encodeSnapshot(s *raftpb.Snapshot) ([]byte, error) {
	payload, err := proto.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("wal: marshal snapshot: %w", err)
	}
	if len(payload) > MaxSnapshotSize {
		return nil, fmt.Errorf("wal: snapshot of %d bytes exceeds limit %d", len(payload), int64(MaxSnapshotSize))
	}
	buf := make([]byte, snapHeaderSize, snapHeaderSize+len(payload))
	copy(buf, snapMagic)
	binary.LittleEndian.PutUint32(buf[4:8], crc32.Checksum(payload, crcTable))
	binary.LittleEndian.PutUint64(buf[8:16], uint64(len(payload)))
	return append(buf, payload...), nil
}

func decodeSnapshot(data []byte) (*raftpb.Snapshot, error) {
	if len(data) < snapHeaderSize || string(data[:4]) != snapMagic {
		return nil, errors.New("bad header")
	}
	n := binary.LittleEndian.Uint64(data[8:16])
	if n > MaxSnapshotSize || n != uint64(len(data)-snapHeaderSize) {
		return nil, fmt.Errorf("length %d does not match the file (%d payload bytes)", n, len(data)-snapHeaderSize)
	}
	payload := data[snapHeaderSize:]
	if crc32.Checksum(payload, crcTable) != binary.LittleEndian.Uint32(data[4:8]) {
		return nil, errors.New("CRC mismatch")
	}
	s := &raftpb.Snapshot{}
	if err := proto.Unmarshal(payload, s); err != nil {
		return nil, err
	}
	if s.Metadata == nil {
		return nil, errors.New("no metadata")
	}
	if s.Metadata.ConfState == nil {
		s.Metadata.ConfState = &raftpb.ConfState{}
	}
	return s, nil
}

func emptySnapshot() *raftpb.Snapshot {
	return &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{ConfState: &raftpb.ConfState{}}}
}

// loadSnapshot removes leftover temporary files and loads the newest
// snapshot file in dir. Every snapshot file is written under a temporary
// name and renamed once synced, so a damaged one is corruption, reported
// as such. It returns the empty snapshot if there is none.
func loadSnapshot(dir string) (*raftpb.Snapshot, []string, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("wal: read dir %s: %w", dir, err)
	}
	var names []string
	for _, de := range des {
		if !de.Type().IsRegular() {
			continue
		}
		if strings.HasSuffix(de.Name(), snapTmpExt) {
			// A snapshot whose write did not finish: never renamed, so
			// never relied on.
			if err := os.Remove(filepath.Join(dir, de.Name())); err != nil {
				return nil, nil, fmt.Errorf("wal: remove %s: %w", de.Name(), err)
			}
			continue
		}
		if _, _, ok := parseSnapName(de.Name()); ok {
			names = append(names, de.Name())
		}
	}
	if len(names) == 0 {
		return emptySnapshot(), nil, nil
	}
	sort.Slice(names, func(i, j int) bool {
		_, a, _ := parseSnapName(names[i])
		_, b, _ := parseSnapName(names[j])
		return a < b
	})
	newest := names[len(names)-1]
	path := filepath.Join(dir, newest)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("wal: read %s: %w", path, err)
	}
	s, err := decodeSnapshot(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: snapshot %s: %v", ErrCorrupt, path, err)
	}
	term, index, _ := parseSnapName(newest)
	if s.Metadata.Index != index || s.Metadata.Term != term {
		return nil, nil, fmt.Errorf("%w: snapshot %s holds %d@%d", ErrCorrupt, path, s.Metadata.Index, s.Metadata.Term)
	}
	return s, names[:len(names)-1], nil
}

// writeSnapshot writes s durably: to a temporary file, fsynced, renamed to
// its final name, and the directory fsynced. Older snapshot files are then
// removed.
func (w *WAL) writeSnapshot(s *raftpb.Snapshot) error {
	data, err := encodeSnapshot(s)
	if err != nil {
		return err
	}
	md := s.Metadata
	final := filepath.Join(w.dir, snapName(md.Term, md.Index))
	tmp := final + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("wal: create %s: %w", tmp, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("wal: write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return w.fail(fmt.Errorf("wal: fsync %s: %w", tmp, err))
	}
	if w.opts.OnSync != nil {
		w.opts.OnSync(tmp)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("wal: close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("wal: rename %s: %w", tmp, err)
	}
	w.dirDirty = true
	if err := w.syncDir(); err != nil {
		return err
	}
	w.snap = s
	// Older snapshots are superseded; a crash before they are gone leaves
	// files that Open ignores (it loads the newest).
	for _, old := range w.oldSnaps {
		if err := os.Remove(filepath.Join(w.dir, old)); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("wal: remove %s: %w", old, err)
		}
	}
	w.oldSnaps = []string{filepath.Base(final)}
	return nil
}

func (w *WAL) syncDir() error {
	if !w.dirDirty {
		return nil
	}
	d, err := os.Open(w.dir)
	if err != nil {
		return fmt.Errorf("wal: open dir %s: %w", w.dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return w.fail(fmt.Errorf("wal: fsync dir %s: %w", w.dir, err))
	}
	w.dirDirty = false
	if w.opts.OnSync != nil {
		w.opts.OnSync(w.dir)
	}
	return nil
}

// Snapshot implements core.Storage: the newest snapshot, or an empty one
// (index 0) if there is none. The returned snapshot is shared and must not
// be modified.
func (w *WAL) Snapshot() (*raftpb.Snapshot, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.snap, nil
}

// CreateSnapshot durably records a snapshot of the state machine after it
// applied the log up to index i, whose configuration then was cs (as
// returned by core.RawNode.ApplyConfChange), and returns it. i must be
// newer than the current snapshot and in [FirstIndex()-1, LastIndex()]. The
// snapshot file is written atomically (temporary file, fsync, rename,
// directory fsync) before CreateSnapshot returns; older snapshot files are
// removed. It does not compact the log: call Compact(i) afterwards (or
// later, keeping some entries for slow followers).
func (w *WAL) CreateSnapshot(i uint64, cs *raftpb.ConfState, data []byte) (*raftpb.Snapshot, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, ErrClosed
	}
	if w.err != nil {
		return nil, w.err
	}
	if i <= w.snap.Metadata.Index {
		return nil, core.ErrSnapOutOfDate
	}
	last := w.base + uint64(len(w.ents))
	if i < w.base {
		return nil, core.ErrCompacted
	}
	if i > last {
		return nil, fmt.Errorf("wal: snapshot index %d past the last index %d: %w", i, last, core.ErrUnavailable)
	}
	term := w.baseTerm
	if i > w.base {
		term = w.ents[i-w.base-1].Term
	}
	if cs == nil {
		cs = &raftpb.ConfState{}
	}
	s := &raftpb.Snapshot{Data: data, Metadata: &raftpb.SnapshotMetadata{
		Index: i, Term: term, ConfState: proto.Clone(cs).(*raftpb.ConfState),
	}}
	if err := w.writeSnapshot(s); err != nil {
		return nil, err
	}
	return s, nil
}

// ApplySnapshot installs a snapshot received from the leader
// (core.Ready.Snapshot): it writes the snapshot file durably, then starts a
// new segment with a record that resets the log to the snapshot (syncing
// it), then removes the older segments and snapshot files. Afterwards the
// log is empty, FirstIndex is the snapshot's index+1 and Term of its index
// is its term. A crash at any point leaves files that Open recovers to
// either the old state or the new one. It returns core.ErrSnapOutOfDate for
// a snapshot that is not newer than the current one. snap is kept by
// reference.
func (w *WAL) ApplySnapshot(snap *raftpb.Snapshot) error {
	md := snap.GetMetadata()
	if md == nil || md.Index == 0 {
		return errors.New("wal: snapshot without metadata")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	if w.err != nil {
		return w.err
	}
	if md.Index <= w.snap.Metadata.Index {
		return core.ErrSnapOutOfDate
	}
	if md.ConfState == nil {
		snap = proto.Clone(snap).(*raftpb.Snapshot)
		snap.Metadata.ConfState = &raftpb.ConfState{}
	}
	if err := w.writeSnapshot(snap); err != nil {
		return err
	}
	return w.resetTo(md.Index, md.Term)
}

// resetTo empties the log, whose entry at index (term) is now covered by
// the snapshot: it closes the active segment, starts one for index+1 whose
// first records are the hard state and a reset record, syncs, and removes
// the older segments.
func (w *WAL) resetTo(index, term uint64) error {
	w.buf = w.buf[:0]
	if err := w.flush(); err != nil {
		return err
	}
	if err := w.syncFile(); err != nil {
		return err
	}
	if err := w.f.Close(); err != nil {
		return w.fail(fmt.Errorf("wal: close %s: %w", w.fpath, err))
	}
	old := w.segs
	w.segs = nil
	if err := w.newSegment(index + 1); err != nil {
		return w.fail(err)
	}
	if w.hs.Term != 0 || w.hs.Vote != 0 || w.hs.Commit != 0 {
		if err := w.appendRecord(recHardState, w.hs); err != nil {
			return err
		}
	}
	if err := w.appendRecord(recSnapshot, &raftpb.Entry{Index: index, Term: term}); err != nil {
		return err
	}
	if err := w.flush(); err != nil {
		return err
	}
	if err := w.syncLocked(); err != nil {
		return err
	}
	w.ents = nil
	w.base, w.baseTerm = index, term
	for _, sg := range old {
		if err := os.Remove(sg.path); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("wal: remove %s: %w", sg.path, err)
		}
	}
	w.dirDirty = true
	return w.syncLocked()
}
