package store

import (
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Check runs bbolt's consistency check over the whole file, then decodes
// every chunk and checks the layout's invariants: each
// chunk's readings sorted and inside its key range, its sums and the
// series stats right. It returns every problem it finds, joined.
func (db *DB) Check() error {
	return db.bolt.View(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() { // drain fully: the checker sends until done
			errs = append(errs, err)
		}
		if len(errs) == 0 {
			errs = append(errs, checkChunks(tx))
		}
		return errors.Join(errs...)
	})
}

// checkChunks checks every series of the file.
func checkChunks(tx *bolt.Tx) error {
	var errs []error
	eps := tx.Bucket(endpointsBucket)
	eps.ForEachBucket(func(name []byte) error {
		ep := eps.Bucket(name)
		sb := ep.Bucket(seriesBucket)
		if sb == nil {
			return nil
		}
		stats := ep.Bucket(statsBucket)
		return sb.ForEachBucket(func(sk []byte) error {
			if err := checkSeries(sb.Bucket(sk), stats, sk); err != nil {
				errs = append(errs, fmt.Errorf("endpoint %q series %x: %w", name, sk, err))
			}
			return nil
		})
	})
	return errors.Join(errs...)
}

func checkSeries(b, statsBucket *bolt.Bucket, sk []byte) error {
	var got seriesStats
	var h chunkHeader
	var rs []rd
	c := b.Cursor()
	key, v := c.First()
	for key != nil {
		if err := parseChunk(&h, key, v); err != nil {
			return fmt.Errorf("chunk %x: %w", key, err)
		}
		var err error
		if rs, err = decodeAll(rs[:0], &h); err != nil {
			return fmt.Errorf("chunk %x: %w", key, err)
		}
		sums := chunkSums{peak: -1, ok: true}
		for i, r := range rs {
			if i > 0 {
				sums.add(rs[i-1], r)
			}
			got.add(r)
		}
		if sums.ok != h.sums.ok || (sums.ok && sums != h.sums) {
			return fmt.Errorf("chunk %x: sums %+v, header says %+v: %w", key, sums, h.sums, ErrCorrupt)
		}
		key, v = c.Next()
		if key != nil && getInt64(key) <= h.lastT {
			return fmt.Errorf("chunk %x ends at %d, after the next chunk starts: %w", key, h.lastT, ErrCorrupt)
		}
	}
	if got.n == 0 {
		return nil
	}
	var want seriesStats
	if statsBucket == nil {
		return fmt.Errorf("stats missing: %w", ErrCorrupt)
	}
	if err := decodeStats(&want, statsBucket.Get(sk)); err != nil {
		return fmt.Errorf("stats: %w", err)
	}
	if got != want {
		return fmt.Errorf("stats %+v, the chunks hold %+v: %w", want, got, ErrCorrupt)
	}
	return nil
}
