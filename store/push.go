package store

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// pushBucket holds the push positions, one value per receiver.
var pushBucket = []byte("push")

// PushPosition is how far a file's samples have been pushed to one
// remote-write receiver and acknowledged: every sample before ThroughMs,
// with the state of each series there, so that the next push goes on
// where this one stopped.
type PushPosition struct {
	Receiver  string // the receiver's identity (a URL without credentials)
	ThroughMs int64
	Series    []PushedSeries // sorted by endpoint, kind, device
}

// PushedSeries is one series' state at a push position.
type PushedSeries struct {
	SeriesKey
	// EnergyUJ is the energy counter pushed for the series, at ThroughMs.
	EnergyUJ int64
	// Live says the series had a value just before ThroughMs: a gap
	// that begins there is still to be marked.
	Live bool
	// MW is the value of the last power sample pushed, while Live.
	MW int64
}

// PushPosition returns the push position of receiver, and whether the
// file has one.
func (db *DB) PushPosition(ctx context.Context, receiver string) (PushPosition, bool, error) {
	var p PushPosition
	found := false
	err := db.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(pushBucket)
		if b == nil {
			return nil
		}
		v := b.Get([]byte(receiver))
		if v == nil {
			return nil
		}
		found = true
		if err := decodePushPosition(&p, []byte(receiver), v); err != nil {
			return fmt.Errorf("push position of %q: %w", receiver, err)
		}
		return ctx.Err()
	})
	return p, found, err
}

// SetPushPosition stores p, replacing the receiver's earlier position,
// in one transaction.
func (db *DB) SetPushPosition(ctx context.Context, p PushPosition) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if p.Receiver == "" {
		return errors.New("push position: empty receiver")
	}
	v, err := encodePushPosition(p)
	if err != nil {
		return fmt.Errorf("push position of %q: %w", p.Receiver, err)
	}
	return db.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(pushBucket)
		if err != nil {
			return err
		}
		return b.Put([]byte(p.Receiver), v)
	})
}

func compareSeries(a, b SeriesKey) int {
	return cmp.Or(cmp.Compare(a.Endpoint, b.Endpoint), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Device, b.Device))
}

func encodePushPosition(p PushPosition) ([]byte, error) {
	b := putInt64([]byte{valueV1}, p.ThroughMs)
	b = binary.AppendUvarint(b, uint64(len(p.Series)))
	for i, s := range p.Series {
		switch {
		case i > 0 && compareSeries(p.Series[i-1].SeriesKey, s.SeriesKey) >= 0:
			return nil, fmt.Errorf("series %s out of order", s.SeriesKey)
		case s.Endpoint == "" || !s.Kind.Valid() || s.Device < 0:
			return nil, fmt.Errorf("invalid series %s", s.SeriesKey)
		case s.EnergyUJ < 0 || s.MW < 0:
			return nil, fmt.Errorf("series %s: negative energy %d µJ or power %d mW", s.SeriesKey, s.EnergyUJ, s.MW)
		}
		b = binary.AppendUvarint(b, uint64(len(s.Endpoint)))
		b = append(b, s.Endpoint...)
		b = append(b, seriesName(s.Kind, s.Device)...)
		var flags byte
		if s.Live {
			flags |= 1
		}
		b = append(b, flags)
		b = binary.AppendUvarint(b, uint64(s.EnergyUJ))
		b = binary.AppendUvarint(b, uint64(s.MW))
	}
	return b, nil
}

func decodePushPosition(p *PushPosition, key, v []byte) error {
	if len(v) < 10 || v[0] != valueV1 {
		return ErrCorrupt
	}
	*p = PushPosition{Receiver: string(key), ThroughMs: getInt64(v[1:9])}
	rest := v[9:]
	n, k := binary.Uvarint(rest)
	if k <= 0 || n > uint64(len(rest)) {
		return ErrCorrupt
	}
	rest = rest[k:]
	p.Series = make([]PushedSeries, 0, n)
	for range n {
		l, k := binary.Uvarint(rest)
		if k <= 0 || l == 0 || l > uint64(len(rest)-k) {
			return ErrCorrupt
		}
		rest = rest[k:]
		ep := string(rest[:l])
		rest = rest[l:]
		if len(rest) < 6 || !Kind(rest[0]).Valid() || rest[5]&^1 != 0 {
			return ErrCorrupt
		}
		s := PushedSeries{SeriesKey: SeriesKey{ep, Kind(rest[0]), int32(binary.BigEndian.Uint32(rest[1:5]))}, Live: rest[5]&1 != 0}
		rest = rest[6:]
		e, k := binary.Uvarint(rest)
		if k <= 0 || e > 1<<63-1 || s.Device < 0 {
			return ErrCorrupt
		}
		rest = rest[k:]
		mw, k := binary.Uvarint(rest)
		if k <= 0 || mw > 1<<63-1 {
			return ErrCorrupt
		}
		rest = rest[k:]
		s.EnergyUJ, s.MW = int64(e), int64(mw)
		if len(p.Series) > 0 && compareSeries(p.Series[len(p.Series)-1].SeriesKey, s.SeriesKey) >= 0 {
			return ErrCorrupt
		}
		p.Series = append(p.Series, s)
	}
	if len(rest) != 0 {
		return ErrCorrupt
	}
	return nil
}

// SortPushedSeries sorts ss into the order a PushPosition keeps.
func SortPushedSeries(ss []PushedSeries) {
	slices.SortFunc(ss, func(a, b PushedSeries) int { return compareSeries(a.SeriesKey, b.SeriesKey) })
}
