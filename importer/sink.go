package importer

import (
	"context"
	"fmt"

	"github.com/wattrec/wattrec/store"
)

// batchRecords is how many records one commit of an import or merge
// writes: a few MiB of readings, so memory stays bounded and the store's
// transactions short.
const batchRecords = 64 << 10

// sink writes the records of an import or merge into the new file in
// batches of batchRecords. What may arrive twice is written once: a
// clock estimate or a mark equal to one already written (two exports of
// one recording carry the estimate in force at both their starts, and
// the marks that span both), and per endpoint only the latest info (the
// highest UpdatedMs) is kept. Identical replays of readings and counter
// readings are the store's to skip.
type sink struct {
	ctx    context.Context
	db     *store.DB
	batch  store.Batch
	clocks map[store.ClockEstimate]bool
	marks  map[store.Mark]bool // with ID 0
	infos  map[string]store.EndpointInfo
	// flushed, if set, is called after each commit.
	flushed func()
}

func newSink(ctx context.Context, db *store.DB) *sink {
	return &sink{ctx: ctx, db: db, clocks: map[store.ClockEstimate]bool{}, marks: map[store.Mark]bool{}, infos: map[string]store.EndpointInfo{}}
}

func (s *sink) reading(r *store.Reading) error {
	s.batch.Readings = append(s.batch.Readings, *r)
	return s.maybeFlush()
}

func (s *sink) session(ss store.Session) error {
	s.batch.Sessions = append(s.batch.Sessions, ss)
	return s.maybeFlush()
}

func (s *sink) counter(c *store.CounterReading) error {
	s.batch.Counters = append(s.batch.Counters, *c)
	return s.maybeFlush()
}

func (s *sink) clock(c store.ClockEstimate) error {
	if s.clocks[c] {
		return nil
	}
	s.clocks[c] = true
	s.batch.Clocks = append(s.batch.Clocks, c)
	return s.maybeFlush()
}

func (s *sink) run(r store.Run) error {
	s.batch.Runs = append(s.batch.Runs, r)
	return s.maybeFlush()
}

// mark adds m: with its own ID when keepID (the marks of the file the
// others are added to), else under a new one.
func (s *sink) mark(m store.Mark, keepID bool) error {
	key := m
	key.ID = 0
	if s.marks[key] {
		return nil
	}
	s.marks[key] = true
	if !keepID {
		m.ID = 0
	}
	s.batch.Marks = append(s.batch.Marks, m)
	return s.maybeFlush()
}

// info keeps e if it is the latest info of its endpoint so far. An
// endpoint without stored info (only its name) has none to keep.
func (s *sink) info(e store.EndpointInfo) {
	if e.Network == "" && e.Discover == nil && e.UpdatedMs == 0 {
		return
	}
	if old, ok := s.infos[e.Endpoint]; !ok || e.UpdatedMs >= old.UpdatedMs {
		s.infos[e.Endpoint] = e
	}
}

func (s *sink) maybeFlush() error {
	if s.batch.Len() < batchRecords {
		return nil
	}
	return s.flush()
}

func (s *sink) flush() error {
	if s.batch.Len() == 0 {
		return nil
	}
	if err := s.db.Write(s.ctx, &s.batch); err != nil {
		return fmt.Errorf("write %d records: %w", s.batch.Len(), err)
	}
	s.batch.Reset()
	if s.flushed != nil {
		s.flushed()
	}
	return nil
}

// finish writes the endpoints' infos and whatever is left.
func (s *sink) finish() error {
	for _, e := range s.infos {
		s.batch.Endpoints = append(s.batch.Endpoints, e)
	}
	return s.flush()
}
