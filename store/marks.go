package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"sort"

	bolt "go.etcd.io/bbolt"
)

// Mark is a named window of the recording. Windows may overlap, nest and
// repeat: "epoch" can have a hundred instances.
type Mark struct {
	ID        uint64 `json:"id"` // 0 in a Batch: a new mark, numbered by the commit
	Name      string `json:"name"`
	BeginMs   int64  `json:"begin_ms"` // recorder clock
	EndMs     int64  `json:"end_ms"`   // meaningful unless Open
	Open      bool   `json:"open"`     // begun, not yet ended
	CreatedMs int64  `json:"created_ms"`
	Source    string `json:"source"` // "mark begin", "mark add", "run", ...
}

// putMark stores m and returns its ID (a new one when m.ID is 0).
func (w *writer) putMark(m Mark) (uint64, error) {
	if m.Name == "" {
		return 0, fmt.Errorf("mark without a name")
	}
	if !m.Open && m.EndMs < m.BeginMs {
		return 0, fmt.Errorf("mark %q ends before it begins", m.Name)
	}
	b, err := w.tx.CreateBucketIfNotExists(marksBucket)
	if err != nil {
		return 0, err
	}
	if m.ID == 0 {
		if m.ID, err = b.NextSequence(); err != nil {
			return 0, err
		}
	}
	v, err := encodeJSON(m)
	if err != nil {
		return 0, err
	}
	return m.ID, b.Put(binary.BigEndian.AppendUint64(nil, m.ID), v)
}

// PutMark stores m in its own transaction (a new mark when m.ID is 0) and
// returns it as stored, with its ID.
func (db *DB) PutMark(ctx context.Context, m Mark) (Mark, error) {
	if err := ctx.Err(); err != nil {
		return m, err
	}
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		var err error
		m.ID, err = (&writer{tx: tx}).putMark(m)
		return err
	})
	return m, err
}

// Marks returns the marks named name ("" = all), ordered by begin time.
func (db *DB) Marks(ctx context.Context, name string) ([]Mark, error) {
	var out []Mark
	err := db.bolt.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(marksBucket)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var m Mark
			if err := decodeJSON(v, &m); err != nil {
				return fmt.Errorf("mark %x: %w", k, err)
			}
			if name == "" || m.Name == name {
				out = append(out, m)
			}
			return ctx.Err()
		})
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].BeginMs < out[j].BeginMs })
	return out, err
}
