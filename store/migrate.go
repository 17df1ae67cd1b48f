package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

// migrateBatch is how many readings one transaction of Migrate writes.
const migrateBatch = 1 << 16

// Migrate copies the wattrec file at src, of any layout this build reads,
// into a new file at dst in the current layout: the readings re-encoded,
// everything else (runs, marks, endpoint info, sessions, clock estimates,
// counter readings, bucket sequences) copied as is. src is opened
// read-only and never changed; dst must not exist. dst appears
// atomically, complete or not at all: the copy is written to a temporary
// file next to it, synced, checked and renamed.
func Migrate(ctx context.Context, src, dst string) (err error) {
	if _, err := os.Lstat(dst); err == nil {
		return fmt.Errorf("migrate: %s already exists", dst)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("migrate: %w", err)
	}
	in, err := Open(src, Options{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer in.Close()

	f, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	tmp := f.Name()
	f.Close()
	os.Remove(tmp) // bbolt creates it
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	out, err := Open(tmp, Options{NoSync: true})
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := migrate(ctx, in, out); err != nil {
		out.Close()
		return fmt.Errorf("migrate %s: %w", src, err)
	}
	if err := out.bolt.Sync(); err != nil {
		out.Close()
		return fmt.Errorf("migrate: sync: %w", err)
	}
	if err := out.Check(); err != nil {
		out.Close()
		return fmt.Errorf("migrate: the copy fails its check: %w", err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

func migrate(ctx context.Context, in, out *DB) error {
	// Everything but the readings, in one transaction.
	err := in.bolt.View(func(itx *bolt.Tx) error {
		return out.bolt.Update(func(otx *bolt.Tx) error {
			if v := itx.Bucket(metaBucket).Get(createdKey); v != nil {
				if err := otx.Bucket(metaBucket).Put(createdKey, v); err != nil {
					return err
				}
			}
			return itx.ForEach(func(name []byte, b *bolt.Bucket) error {
				if string(name) == string(metaBucket) {
					return nil
				}
				ob, err := otx.CreateBucketIfNotExists(name)
				if err != nil {
					return err
				}
				if string(name) != string(endpointsBucket) {
					return copyBucket(ob, b)
				}
				// Endpoints: all but the readings and their stats.
				return b.ForEachBucket(func(ep []byte) error {
					oep, err := ob.CreateBucketIfNotExists(ep)
					if err != nil {
						return err
					}
					ib := b.Bucket(ep)
					if err := oep.SetSequence(ib.Sequence()); err != nil {
						return err
					}
					return ib.ForEach(func(k, v []byte) error {
						switch {
						case v != nil:
							return oep.Put(k, v)
						case string(k) == string(seriesBucket) || string(k) == string(statsBucket):
							return nil
						}
						sub, err := oep.CreateBucket(k)
						if err != nil {
							return err
						}
						return copyBucket(sub, ib.Bucket(k))
					})
				})
			})
		})
	})
	if err != nil {
		return err
	}

	// The readings, series by series, in batches.
	series, err := in.Series(ctx, "", false)
	if err != nil {
		return err
	}
	batch := Batch{Readings: make([]Reading, 0, migrateBatch)}
	flush := func() error {
		if len(batch.Readings) == 0 {
			return nil
		}
		err := out.Write(ctx, &batch)
		batch.Readings = batch.Readings[:0]
		return err
	}
	for _, s := range series {
		err := in.scanAll(ctx, s.SeriesKey, func(r *Reading) error {
			batch.Readings = append(batch.Readings, *r)
			if len(batch.Readings) == migrateBatch {
				return flush()
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("series %s: %w", s.SeriesKey, err)
		}
		if err := flush(); err != nil {
			return err
		}
	}
	return nil
}

// copyBucket copies src's keys, values, nested buckets and sequence into
// dst.
func copyBucket(dst, src *bolt.Bucket) error {
	if err := dst.SetSequence(src.Sequence()); err != nil {
		return err
	}
	return src.ForEach(func(k, v []byte) error {
		if v != nil {
			return dst.Put(k, v)
		}
		sub, err := dst.CreateBucket(k)
		if err != nil {
			return err
		}
		return copyBucket(sub, src.Bucket(k))
	})
}

// scanAll calls fn for every reading of series k, in Scan order. Unlike
// Scan it also reaches math.MaxInt64.
func (db *DB) scanAll(ctx context.Context, k SeriesKey, fn func(*Reading) error) error {
	return db.bolt.View(func(tx *bolt.Tx) error {
		b := seriesBucketOf(tx, k)
		if b == nil {
			return fmt.Errorf("series %s: %w", k, ErrNotFound)
		}
		r := Reading{Endpoint: k.Endpoint, Kind: k.Kind, Device: k.Device}
		if db.format == format1 {
			return b.ForEach(func(key, v []byte) error {
				if err := decodeReading(&r, key, v); err != nil {
					return fmt.Errorf("key %x: %w", key, err)
				}
				return fn(&r)
			})
		}
		var h chunkHeader
		var dec chunkDec
		return b.ForEach(func(key, v []byte) error {
			if err := parseChunk(&h, key, v); err != nil {
				return fmt.Errorf("chunk %x: %w", key, err)
			}
			dec.reset(&h)
			for dec.next() {
				r.TimeMs, r.DaemonMs, r.MilliWatts, r.Seed = dec.cur.t, dec.cur.daemon(), dec.cur.mw, dec.cur.seed
				if err := fn(&r); err != nil {
					return err
				}
			}
			if dec.err != nil {
				return fmt.Errorf("chunk %x: %w", key, dec.err)
			}
			return ctx.Err()
		})
	})
}
