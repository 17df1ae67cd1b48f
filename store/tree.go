package store

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// This file reads wattrec's bucket tree (store/doc.go) from a file's
// pages with a walker, without bbolt: CheckFile and Repair see the same
// records and the same damage, and a damaged page, record or chunk
// costs only itself.

// Counts counts the records of a file by kind.
type Counts struct {
	Endpoints int `json:"endpoints"` // endpoints with their info record
	Runs      int `json:"runs"`
	Marks     int `json:"marks"`
	Sessions  int `json:"sessions"`
	Clocks    int `json:"clock_estimates"`
	Counters  int `json:"counter_readings"` // hardware energy counter readings
	Series    int `json:"series"`           // series with at least one chunk
	Chunks    int `json:"chunks"`
	Readings  int `json:"readings"`
}

func (c Counts) String() string {
	return fmt.Sprintf("%d endpoints, %d runs, %d marks, %d sessions, %d clock estimates, %d counter readings, %d series in %d chunks (%d readings)",
		c.Endpoints, c.Runs, c.Marks, c.Sessions, c.Clocks, c.Counters, c.Series, c.Chunks, c.Readings)
}

// Loss is a part of a file that CheckFile found damaged and Repair
// leaves behind.
type Loss struct {
	// Where is the bucket: "runs", "marks", "meta", "endpoint E info",
	// "endpoint E sessions", "series E gpu:0", ...
	Where string
	// Records is the number of records lost, when known (a record or a
	// chunk that does not decode); 0 when a page could not be read.
	Records int
	// Readings is the number of readings in the chunks lost, when their
	// headers could be read.
	Readings int
	// Keys says which keys, e.g. "2026-11-27T16:00:00.000Z to
	// 2026-11-27T16:05:00.000Z", "id 3", or "all".
	Keys string
	// Err is what is wrong; it wraps ErrCorrupt.
	Err error
}

func (l Loss) String() string { return l.error().Error() }

// error is the loss as a problem of CheckReport: it wraps ErrCorrupt.
func (l Loss) error() error {
	var what string
	switch {
	case l.Readings > 0:
		what = fmt.Sprintf("%s (%d readings)", plural(l.Records, "chunk"), l.Readings)
	case l.Records > 0:
		what = plural(l.Records, "record")
	default:
		what = "an unreadable page"
	}
	return fmt.Errorf("%s: %s, keys %s: %w", l.Where, what, l.Keys, l.Err)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// walkBatch is how many records a walk hands on at a time: Repair writes
// each batch in one transaction.
const walkBatch = 20_000

// records is what a walk of the tree hands on: the records that decode,
// in batches, and the losses.
type records interface {
	created(ms int64)
	// chunk may refuse a chunk that decodes, with an error that makes it
	// a loss. rs is valid only during the call.
	chunk(k SeriesKey, h *chunkHeader, rs []rd) error
	stats(k SeriesKey, s seriesStats)
	// batch takes the records decoded so far: at least walkBatch of
	// them, or the rest at the end. b is reset after the call.
	batch(b *Batch) error
	lost(l Loss)
}

// add counts the records of b.
func (c *Counts) add(b *Batch) {
	c.Endpoints += len(b.Endpoints)
	c.Runs += len(b.Runs)
	c.Marks += len(b.Marks)
	c.Sessions += len(b.Sessions)
	c.Clocks += len(b.Clocks)
	c.Counters += len(b.Counters)
	c.Readings += len(b.Readings)
}

// keyKind says how a bucket's keys print.
type keyKind int

const (
	keyName    keyKind = iota // text or hex
	keyTime                   // starts with 8 bytes of sign-flipped BE ms
	keyID                     // 8 bytes BE
	keyCounter                // kind | device | sign-flipped BE ms | dup
)

// printKey prints key for a loss report.
func printKey(kind keyKind, key []byte) string {
	switch {
	case kind == keyTime && len(key) >= 8:
		return formatMs(getInt64(key))
	case kind == keyID && len(key) == 8:
		return fmt.Sprintf("id %d", binary.BigEndian.Uint64(key))
	case kind == keyCounter && len(key) >= counterPrefixLen:
		return fmt.Sprintf("%s:%d@%s", Kind(key[0]), int32(binary.BigEndian.Uint32(key[1:5])), formatMs(getInt64(key[5:13])))
	}
	return printable(key)
}

func formatMs(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z") }

// printable quotes key if it is text, else prints it in hex.
func printable(key []byte) string {
	for _, c := range key {
		if c < 0x20 || c > 0x7e {
			return fmt.Sprintf("%x", key)
		}
	}
	return fmt.Sprintf("%q", key)
}

// keyRange prints [from, to) for a loss report.
func keyRange(kind keyKind, from, to []byte) string {
	switch {
	case from == nil && to == nil:
		return "all"
	case string(from) == string(to):
		return printKey(kind, from)
	case from == nil:
		return "before " + printKey(kind, to)
	case to == nil:
		return "from " + printKey(kind, from) + " on"
	}
	return printKey(kind, from) + " to " + printKey(kind, to)
}

// treeWalk walks one file's tree.
type treeWalk struct {
	ctx context.Context
	w   *walker
	out records
	// rootLost says the root bucket's pages could not be read: nothing
	// was found.
	rootLost bool
	b        Batch     // decoded, not yet handed on
	counts   Counts    // handed on
	err      error     // the first error of out.batch: the walk goes on, handing on nothing
	last     SeriesKey // of the last chunk kept
}

// flush hands on the batch when it is full, or when all is true.
func (t *treeWalk) flush(all bool) {
	if n := t.b.Len(); n == 0 || n < walkBatch && !all {
		return
	}
	if t.err == nil {
		t.counts.add(&t.b)
		t.err = t.out.batch(&t.b)
	}
	t.b.Reset()
}

// lostPages reports the walker's losses in bucket where.
func (t *treeWalk) lostPages(where string, kind keyKind) func(walkLoss) {
	return func(l walkLoss) {
		t.out.lost(Loss{Where: where, Keys: keyRange(kind, l.from, l.to), Err: fmt.Errorf("%w: %v", ErrCorrupt, l.err)})
	}
}

// lostRecord reports one record of bucket where that does not decode.
func (t *treeWalk) lostRecord(where string, kind keyKind, key []byte, err error) {
	if !errors.Is(err, ErrCorrupt) {
		err = fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	t.out.lost(Loss{Where: where, Records: 1, Keys: printKey(kind, key), Err: err})
}

// sub walks the sub-bucket in entry e of bucket where, calling fn for
// each of its entries.
func (t *treeWalk) sub(where string, kind keyKind, e walkEntry, fn func(walkEntry)) {
	if !e.bucket {
		t.lostRecord(where, keyName, e.key, errors.New("a value where a bucket belongs"))
		return
	}
	r, err := parseBucket(e.value)
	if err != nil {
		t.out.lost(Loss{Where: where, Keys: "all", Err: fmt.Errorf("%w: %v", ErrCorrupt, err)})
		return
	}
	t.w.bucket(r, fn, t.lostPages(where, kind))
}

// values walks the sub-bucket in entry e whose entries are all values,
// calling fn for each, which decodes it into the batch; a sub-bucket
// inside it is lost.
func (t *treeWalk) values(where string, kind keyKind, e walkEntry, fn func(k, v []byte) error) {
	t.sub(where, kind, e, func(e walkEntry) {
		err := errors.New("a bucket where a value belongs")
		if !e.bucket {
			err = fn(e.key, e.value)
		} else {
			t.skip(e)
		}
		if err != nil {
			t.lostRecord(where, kind, e.key, err)
		}
		t.flush(false)
	})
}

// skip walks what is under an entry that is not part of the layout, so
// that its pages count as reached.
func (t *treeWalk) skip(e walkEntry) {
	if !e.bucket {
		return
	}
	if r, err := parseBucket(e.value); err == nil {
		t.w.bucket(r, t.skip, func(walkLoss) {})
	}
}

// unknown reports an entry that is not part of the layout.
func (t *treeWalk) unknown(where string, e walkEntry) {
	t.skip(e)
	t.lostRecord(where, keyName, e.key, errors.New("not part of the layout"))
}

// run walks the whole tree. It returns an error only when the file is
// not a wattrec file of this layout, or ctx ends.
func (t *treeWalk) run() error {
	var top []walkEntry
	rootLosses := 0
	lostRoot := t.lostPages("the root bucket", keyName)
	t.w.bucket(walkRoot{page: t.w.bf.meta.root}, func(e walkEntry) { top = append(top, e) }, func(l walkLoss) {
		rootLosses++
		lostRoot(l)
	})
	t.rootLost = len(top) == 0 && rootLosses > 0
	var meta *walkEntry
	for i := range top {
		if string(top[i].key) == string(metaBucket) {
			meta = &top[i]
		}
	}
	switch {
	case meta == nil && rootLosses == 0:
		return fmt.Errorf("%w: no meta bucket", ErrNotWattrec)
	case meta == nil:
		t.out.lost(Loss{Where: "meta", Keys: "all", Err: fmt.Errorf("%w: the meta bucket is lost with the root's pages", ErrCorrupt)})
	default:
		if err := t.meta(*meta); err != nil {
			return err
		}
	}
	if err := t.ctx.Err(); err != nil {
		return err
	}
	for _, e := range top {
		if err := t.ctx.Err(); err != nil {
			return err
		}
		switch string(e.key) {
		case string(metaBucket):
		case string(runsBucket):
			t.values("runs", keyID, e, func(k, v []byte) error {
				var r Run
				if len(k) != 8 {
					return ErrCorrupt
				}
				err := decodeJSON(v, &r)
				if err == nil {
					t.b.Runs = append(t.b.Runs, r)
				}
				return err
			})
		case string(marksBucket):
			t.values("marks", keyID, e, func(k, v []byte) error {
				var m Mark
				if err := decodeJSON(v, &m); err != nil {
					return err
				}
				if len(k) != 8 || binary.BigEndian.Uint64(k) != m.ID || m.ID == 0 || CheckMarkName(m.Name) != nil || (!m.Open && m.EndMs < m.BeginMs) {
					return fmt.Errorf("%w: mark %+v", ErrCorrupt, m)
				}
				t.b.Marks = append(t.b.Marks, m)
				return nil
			})
		case string(endpointsBucket):
			t.sub("endpoints", keyName, e, t.endpoint)
		case string(pushBucket):
			// Checked, not copied: a push position is where a push
			// stopped, and a repaired file pushes from its start again.
			t.values("push positions", keyName, e, func(k, v []byte) error {
				var p PushPosition
				return decodePushPosition(&p, k, v)
			})
		default:
			t.unknown("the root bucket", e)
		}
	}
	t.flush(true)
	return errors.Join(t.err, t.ctx.Err())
}

// meta checks the layout version.
func (t *treeWalk) meta(e walkEntry) error {
	var format []byte
	t.values("meta", keyName, e, func(k, v []byte) error {
		switch string(k) {
		case string(formatKey):
			format = v
		case string(createdKey):
			if len(v) != 8 {
				return ErrCorrupt
			}
			t.out.created(getInt64(v))
		default:
			return errors.New("not part of the layout")
		}
		return nil
	})
	switch {
	case len(format) != 1:
		return fmt.Errorf("meta/format: %w", ErrCorrupt)
	case format[0] != layoutVersion:
		return fmt.Errorf("%w: layout version %d, this build reads version %d", ErrFormat, format[0], layoutVersion)
	}
	return nil
}

// endpoint walks one endpoint's bucket.
func (t *treeWalk) endpoint(e walkEntry) {
	name := string(e.key)
	where := fmt.Sprintf("endpoint %q", name)
	if !e.bucket {
		t.unknown("endpoints", e)
		return
	}
	t.sub(where, keyName, e, func(e walkEntry) {
		if err := t.ctx.Err(); err != nil {
			return
		}
		switch string(e.key) {
		case string(infoKey):
			info := EndpointInfo{}
			err := errors.New("a bucket where a value belongs")
			if !e.bucket {
				err = decodeJSON(e.value, &info)
			}
			if err == nil && info.Endpoint != name {
				err = fmt.Errorf("%w: the info names endpoint %q", ErrCorrupt, info.Endpoint)
			}
			if err != nil {
				t.skip(e)
				t.lostRecord(where+" info", keyName, e.key, err)
				return
			}
			t.b.Endpoints = append(t.b.Endpoints, info)
		case string(seriesBucket):
			t.sub(where+" series", keyName, e, func(e walkEntry) { t.series(name, e) })
		case string(statsBucket):
			t.values(where+" stats", keyName, e, func(k, v []byte) error {
				var s seriesStats
				if len(k) != 5 || !Kind(k[0]).Valid() {
					return errors.New("not a series")
				}
				if err := decodeStats(&s, v); err != nil {
					return err
				}
				t.out.stats(SeriesKey{name, Kind(k[0]), int32(binary.BigEndian.Uint32(k[1:]))}, s)
				return nil
			})
		case string(sessionsBucket):
			t.values(where+" sessions", keyTime, e, func(k, v []byte) error {
				s := Session{Endpoint: name}
				err := decodeSession(&s, k, v)
				switch {
				case err != nil:
				case s.Stream != StreamGPU && s.Stream != StreamCPU:
					err = fmt.Errorf("%w: stream %d", ErrCorrupt, s.Stream)
				default:
					t.b.Sessions = append(t.b.Sessions, s)
				}
				return err
			})
		case string(clockBucket):
			t.values(where+" clock", keyTime, e, func(k, v []byte) error {
				c := ClockEstimate{Endpoint: name}
				err := decodeClock(&c, k, v)
				if err == nil {
					t.b.Clocks = append(t.b.Clocks, c)
				}
				return err
			})
		case string(countersBucket):
			t.values(where+" counters", keyCounter, e, func(k, v []byte) error {
				r := CounterReading{Endpoint: name}
				if err := decodeCounter(&r, k, v); err != nil || r.Device < 0 {
					return cmp.Or(err, fmt.Errorf("%w: device %d", ErrCorrupt, r.Device))
				}
				t.b.Counters = append(t.b.Counters, r)
				return nil
			})
		default:
			t.unknown(where, e)
		}
	})
}

// series walks one series bucket: its chunks, in key order.
func (t *treeWalk) series(endpoint string, e walkEntry) {
	if len(e.key) != 5 || !Kind(e.key[0]).Valid() || int32(binary.BigEndian.Uint32(e.key[1:])) < 0 || !e.bucket {
		t.unknown(fmt.Sprintf("endpoint %q series", endpoint), e)
		return
	}
	k := SeriesKey{endpoint, Kind(e.key[0]), int32(binary.BigEndian.Uint32(e.key[1:]))}
	where := "series " + k.String()
	var h chunkHeader
	var rs []rd
	t.sub(where, keyTime, e, func(e walkEntry) {
		if t.ctx.Err() != nil {
			return
		}
		h.n = 0
		err := errors.New("a bucket where a chunk belongs")
		if !e.bucket {
			err = parseChunk(&h, e.key, e.value)
		} else {
			t.skip(e)
		}
		if err == nil {
			rs, err = decodeAll(rs[:0], &h)
		}
		if err == nil {
			err = t.out.chunk(k, &h, rs)
		}
		if err == nil {
			err = t.keepChunk(k, rs)
		}
		if err != nil {
			l := Loss{Where: where, Records: 1, Keys: printKey(keyTime, e.key), Err: fmt.Errorf("%w: %v", ErrCorrupt, err)}
			if errors.Is(err, ErrCorrupt) {
				l.Err = err
			}
			if h.n > 0 && len(e.key) == 8 && getInt64(e.key) == h.firstT {
				l.Readings = h.n
				l.Keys = printKey(keyTime, e.key) + " to " + formatMs(h.lastT)
			}
			t.out.lost(l)
		}
		t.flush(false)
	})
}

// keepChunk adds the readings of one chunk of series k to the batch.
func (t *treeWalk) keepChunk(k SeriesKey, rs []rd) error {
	n := len(t.b.Readings)
	for _, r := range rs {
		t.b.Readings = append(t.b.Readings, Reading{Endpoint: k.Endpoint, Kind: k.Kind, Device: k.Device})
		r.fill(&t.b.Readings[len(t.b.Readings)-1])
		if err := checkReading(&t.b.Readings[len(t.b.Readings)-1]); err != nil {
			t.b.Readings = t.b.Readings[:n]
			return err
		}
	}
	if t.counts.Chunks == 0 || t.last != k {
		t.counts.Series++ // a series' chunks come one after another
		t.last = k
	}
	t.counts.Chunks++
	return nil
}
