// Package logstore compares ways to keep a Raft log durably on this machine:
// this project's segmented WAL (behaviors/raft/wal) against two well-kept
// embedded stores — bbolt (what hashicorp/raft-boltdb uses) and Pebble
// (CockroachDB's LSM) — appending batches of 128-byte entries, each batch made
// durable (fsync) before the next, in the same run:
//
//	cd bench && go test ./logstore -run '^$' -bench . -benchtime 2s
//
// Each store writes the entry as its protobuf encoding under its index (the
// embedded stores as key-value pairs, big-endian index keys) plus the hard
// state, as the Raft member does per Ready.
package logstore

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble"
	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	"github.com/distributed-go/distributed/behaviors/raft/raftpb"
	"github.com/distributed-go/distributed/behaviors/raft/wal"
)

var batches = []int{1, 16, 64}

func entries(next *uint64, n int, data []byte) []*raftpb.Entry {
	out := make([]*raftpb.Entry, n)
	for j := range out {
		out[j] = &raftpb.Entry{Term: 1, Index: *next, Data: data}
		*next++
	}
	return out
}

func report(b *testing.B, n int) {
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "entries/s")
}

func BenchmarkWAL(b *testing.B) {
	for _, n := range batches {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			w, err := wal.Open(b.TempDir(), wal.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			data, hs := make([]byte, 128), &raftpb.HardState{Term: 1}
			var next uint64 = 1
			for b.Loop() {
				if err := w.SaveSync(hs, entries(&next, n, data)); err != nil {
					b.Fatal(err)
				}
			}
			report(b, n)
		})
	}
}

func BenchmarkBbolt(b *testing.B) {
	for _, n := range batches {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			db, err := bbolt.Open(b.TempDir()+"/log.db", 0o600, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			data, hs := make([]byte, 128), &raftpb.HardState{Term: 1}
			var next uint64 = 1
			for b.Loop() {
				ents := entries(&next, n, data)
				err := db.Update(func(tx *bbolt.Tx) error {
					bk, err := tx.CreateBucketIfNotExists([]byte("log"))
					if err != nil {
						return err
					}
					for _, e := range ents {
						v, _ := proto.Marshal(e)
						if err := bk.Put(binary.BigEndian.AppendUint64(nil, e.Index), v); err != nil {
							return err
						}
					}
					st, err := tx.CreateBucketIfNotExists([]byte("state"))
					if err != nil {
						return err
					}
					v, _ := proto.Marshal(hs)
					return st.Put([]byte("hard"), v)
				}) // commits with fsync
				if err != nil {
					b.Fatal(err)
				}
			}
			report(b, n)
		})
	}
}

func BenchmarkPebble(b *testing.B) {
	for _, n := range batches {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			db, err := pebble.Open(b.TempDir(), &pebble.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			data, hs := make([]byte, 128), &raftpb.HardState{Term: 1}
			var next uint64 = 1
			for b.Loop() {
				batch := db.NewBatch()
				for _, e := range entries(&next, n, data) {
					v, _ := proto.Marshal(e)
					batch.Set(binary.BigEndian.AppendUint64([]byte("l"), e.Index), v, nil)
				}
				v, _ := proto.Marshal(hs)
				batch.Set([]byte("hard"), v, nil)
				if err := batch.Commit(pebble.Sync); err != nil {
					b.Fatal(err)
				}
			}
			report(b, n)
		})
	}
}
