package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
	"unicode"

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
	Source    string `json:"source"` // who asked: "cli", "run", a script's name
}

// maxMarkName is the longest mark name CheckMarkName accepts, in bytes.
const maxMarkName = 200

// CheckMarkName refuses names a report could not print on one line:
// empty ones, ones longer than 200 bytes and ones with control
// characters. Its errors wrap ErrInvalidMark.
func CheckMarkName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: the name is empty", ErrInvalidMark)
	case len(name) > maxMarkName:
		return fmt.Errorf("%w: the name is %d bytes, longer than %d", ErrInvalidMark, len(name), maxMarkName)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return fmt.Errorf("%w: the name %q has control characters", ErrInvalidMark, name)
	}
	return nil
}

// BeginMark stores a new open mark named name that begins at nowMs
// (recorder clock), and returns it as stored. source says who asked.
func (db *DB) BeginMark(ctx context.Context, name, source string, nowMs int64) (Mark, error) {
	if err := CheckMarkName(name); err != nil {
		return Mark{}, err
	}
	return db.storeMark(ctx, Mark{Name: name, BeginMs: nowMs, Open: true, CreatedMs: nowMs, Source: source})
}

// EndMark closes the most recently begun open mark named name at nowMs,
// or at its begin if that is later, and returns it as stored. Finding the
// mark and closing it are one transaction, so of two concurrent calls
// only one closes a given mark. With no open mark of that name the error
// wraps ErrNoOpenMark.
func (db *DB) EndMark(ctx context.Context, name string, nowMs int64) (Mark, error) {
	if err := CheckMarkName(name); err != nil {
		return Mark{}, err
	}
	if err := ctx.Err(); err != nil {
		return Mark{}, err
	}
	var m Mark
	err := db.update(func(tx *bolt.Tx) error {
		found := false
		if b := tx.Bucket(marksBucket); b != nil {
			// In ID order: of open marks that begin together, the last
			// one stored is the most recent.
			err := forEachMark(b, func(c Mark) error {
				if c.Open && c.Name == name && (!found || c.BeginMs >= m.BeginMs) {
					m, found = c, true
				}
				return ctx.Err()
			})
			if err != nil {
				return err
			}
		}
		if !found {
			return fmt.Errorf("%w named %q to end", ErrNoOpenMark, name)
		}
		m.EndMs, m.Open = max(nowMs, m.BeginMs), false
		_, err := putMark(tx, m)
		return err
	})
	if err != nil {
		return Mark{}, err
	}
	return m, nil
}

// AddMark stores a closed mark named name over [fromMs, toMs), created at
// nowMs, and returns it as stored. toMs <= fromMs is an error wrapping
// ErrInvalidMark.
func (db *DB) AddMark(ctx context.Context, name, source string, fromMs, toMs, nowMs int64) (Mark, error) {
	if err := CheckMarkName(name); err != nil {
		return Mark{}, err
	}
	if toMs <= fromMs {
		return Mark{}, fmt.Errorf("%w %q: the end is not after the begin", ErrInvalidMark, name)
	}
	return db.storeMark(ctx, Mark{Name: name, BeginMs: fromMs, EndMs: toMs, CreatedMs: nowMs, Source: source})
}

// Marks returns the marks named name ("" = all), ordered by begin time.
func (db *DB) Marks(ctx context.Context, name string) ([]Mark, error) {
	var out []Mark
	err := db.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(marksBucket)
		if b == nil {
			return nil
		}
		return forEachMark(b, func(m Mark) error {
			if name == "" || m.Name == name {
				out = append(out, m)
			}
			return ctx.Err()
		})
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].BeginMs < out[j].BeginMs })
	return out, err
}

// storeMark stores m in its own transaction and returns it with its ID.
func (db *DB) storeMark(ctx context.Context, m Mark) (Mark, error) {
	if err := ctx.Err(); err != nil {
		return Mark{}, err
	}
	err := db.update(func(tx *bolt.Tx) error {
		var err error
		m.ID, err = putMark(tx, m)
		return err
	})
	if err != nil {
		return Mark{}, err
	}
	return m, nil
}

// putMark stores m and returns its ID (a new one when m.ID is 0; new
// IDs always follow every ID stored).
func putMark(tx *bolt.Tx, m Mark) (uint64, error) {
	if m.Name == "" {
		return 0, fmt.Errorf("%w: no name", ErrInvalidMark)
	}
	if !m.Open && m.EndMs < m.BeginMs {
		return 0, fmt.Errorf("%w: it ends before it begins", ErrInvalidMark)
	}
	b, err := tx.CreateBucketIfNotExists(marksBucket)
	if err != nil {
		return 0, err
	}
	switch {
	case m.ID == 0:
		if m.ID, err = b.NextSequence(); err != nil {
			return 0, err
		}
	case m.ID > b.Sequence():
		// A mark stored with its own ID (a copy of another file's)
		// moves the sequence past it, so that no new mark takes it.
		if err := b.SetSequence(m.ID); err != nil {
			return 0, err
		}
	}
	v, err := encodeJSON(m)
	if err != nil {
		return 0, err
	}
	return m.ID, b.Put(binary.BigEndian.AppendUint64(nil, m.ID), v)
}

// forEachMark calls fn with each mark in b, in ID order.
func forEachMark(b *bolt.Bucket, fn func(Mark) error) error {
	return b.ForEach(func(k, v []byte) error {
		var m Mark
		if err := decodeJSON(v, &m); err != nil {
			return fmt.Errorf("mark %x: %w", k, err)
		}
		return fn(m)
	})
}
