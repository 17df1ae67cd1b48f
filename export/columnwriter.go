package export

import (
	"fmt"
	"strings"
	"sync"

	"github.com/parquet-go/parquet-go"

	"github.com/wattrec/wattrec/store"
)

// pageCheckRows is how many rows parquet-go's GenericWriter.Write puts
// into its column buffers between two checks of their page size: a page
// ends after the first step that fills it. The steps start again at each
// Write call and at each row group.
const pageCheckRows = 64

// batchRows is how many rows a rawBatch holds: a few chunkRows, so that
// a column goroutine is woken once for many rows, and Progress is still
// told every progressEvery rows.
const batchRows = progressEvery

// batchesInFlight is how many batches the column goroutines may still be
// reading while the next one is filled.
const batchesInFlight = 4

// columnWriter writes the raw table into a Parquet file column by column:
// each column of readingRow's schema has a goroutine that turns a batch
// of rows into its values, encodes them and compresses its pages, so
// that the columns are encoded side by side while the next rows are
// read. The file is byte for byte the one GenericWriter[readingRow]
// writes given the same rows in Writes of chunkRows: each column's pages
// depend only on its own values and on the rows after which their size
// is checked, and the column goroutines check after the same rows
// (pageCheckRows steps, starting again at every chunkRows-th row and at
// each row group). Memory is bounded by one row group's compressed pages
// and batchesInFlight batches.
//
// Fill the batch nextBatch returns, then pass it to write; close writes
// the last row group and the footer. stop, which close calls, ends the
// goroutines: defer it on every path.
type columnWriter struct {
	pw      *parquet.GenericWriter[readingRow]
	rg      *parquet.ConcurrentRowGroupWriter
	maxRows int64 // rows per row group
	rgRows  int64 // rows sent to rg so far
	rows    int64 // rows sent so far

	cols    []*columnWorker
	workers sync.WaitGroup // the column goroutines
	stopped bool

	mu      sync.Mutex
	failure error // the first error of a column goroutine

	batches [batchesInFlight]rawBatch
	next    int // the batch nextBatch hands out
}

// rawBatch is up to batchRows consecutive rows of the raw table, column
// by column.
type rawBatch struct {
	start      int64 // the first row's index in the file
	time       []int64
	daemonTime []int64
	powerW     []float64
	seed       []bool
	runs       []seriesRun // the rows' series, in order
	// reading counts the column goroutines that may still read the
	// batch.
	reading sync.WaitGroup
}

// seriesRun says that the rows of a batch from start on, up to the next
// run, are series'.
type seriesRun struct {
	start  int
	series *rawSeries
}

// rawSeries is what the rows of one series share: the values of its
// series columns.
type rawSeries struct {
	endpoint, kind []byte
	device         int32
}

func newRawSeries(s store.SeriesKey) *rawSeries {
	return &rawSeries{endpoint: []byte(s.Endpoint), kind: []byte(s.Kind.String()), device: s.Device}
}

// add appends the row of reading r of series s (readingRow's fields).
func (b *rawBatch) add(s *rawSeries, r *store.Reading) {
	if n := len(b.runs); n == 0 || b.runs[n-1].series != s {
		b.runs = append(b.runs, seriesRun{start: len(b.time), series: s})
	}
	b.time = append(b.time, r.TimeMs)
	b.daemonTime = append(b.daemonTime, r.DaemonMs)
	b.powerW = append(b.powerW, float64(r.MilliWatts)/1000)
	b.seed = append(b.seed, r.Seed)
}

// len is the number of rows in b.
func (b *rawBatch) len() int { return len(b.time) }

func (b *rawBatch) reset(start int64) {
	b.start = start
	b.time, b.daemonTime, b.powerW, b.seed, b.runs = b.time[:0], b.daemonTime[:0], b.powerW[:0], b.seed[:0], b.runs[:0]
}

// seriesValues sets dst[i], for each row from+i of b, to the value of
// its series' column val.
func (b *rawBatch) seriesValues(dst []parquet.Value, from int, val func(*rawSeries) parquet.Value) {
	to := from + len(dst)
	for i, run := range b.runs {
		end := b.len()
		if i+1 < len(b.runs) {
			end = b.runs[i+1].start
		}
		lo, hi := max(from, run.start), min(to, end)
		if lo >= hi {
			continue
		}
		v := val(run.series)
		for j := range dst[lo-from : hi-from] {
			dst[lo-from+j] = v
		}
	}
}

// rawValues returns the function that sets dst[i] to the value of the
// Parquet column name in row from+i of a batch, for each i, or nil for a
// column that is not readingRow's.
func rawValues(name string) func(dst []parquet.Value, b *rawBatch, from int) {
	switch name {
	case "time":
		return func(dst []parquet.Value, b *rawBatch, from int) {
			for i, v := range b.time[from : from+len(dst)] {
				dst[i] = parquet.Int64Value(v)
			}
		}
	case "daemon_time_ms":
		return func(dst []parquet.Value, b *rawBatch, from int) {
			for i, v := range b.daemonTime[from : from+len(dst)] {
				dst[i] = parquet.Int64Value(v)
			}
		}
	case "endpoint":
		return func(dst []parquet.Value, b *rawBatch, from int) {
			b.seriesValues(dst, from, func(s *rawSeries) parquet.Value { return parquet.ByteArrayValue(s.endpoint) })
		}
	case "kind":
		return func(dst []parquet.Value, b *rawBatch, from int) {
			b.seriesValues(dst, from, func(s *rawSeries) parquet.Value { return parquet.ByteArrayValue(s.kind) })
		}
	case "device":
		return func(dst []parquet.Value, b *rawBatch, from int) {
			b.seriesValues(dst, from, func(s *rawSeries) parquet.Value { return parquet.Int32Value(s.device) })
		}
	case "power_w":
		return func(dst []parquet.Value, b *rawBatch, from int) {
			for i, v := range b.powerW[from : from+len(dst)] {
				dst[i] = parquet.DoubleValue(v)
			}
		}
	case "seed":
		// Copied, not made per row: making a Value writes its kind
		// byte just before the copy reads it back, a stall per row.
		values := [2]parquet.Value{parquet.BooleanValue(false), parquet.BooleanValue(true)}
		return func(dst []parquet.Value, b *rawBatch, from int) {
			for i, v := range b.seed[from : from+len(dst)] {
				k := 0
				if v {
					k = 1
				}
				dst[i] = values[k]
			}
		}
	}
	return nil
}

// columnWorker is one column's goroutine and its state.
type columnWorker struct {
	name   string
	cw     *parquet.ColumnWriter
	values func(dst []parquet.Value, b *rawBatch, from int)
	jobs   chan columnJob
	buf    [pageCheckRows]parquet.Value
}

// columnJob asks a column goroutine to write the rows [from, to) of b,
// or, with b nil, to end its page (the row group is full). It calls
// done.Done when finished.
type columnJob struct {
	b        *rawBatch
	from, to int
	done     *sync.WaitGroup
}

// newColumnWriter starts the column goroutines of a file written by pw,
// with row groups of up to maxRows rows.
func newColumnWriter(pw *parquet.GenericWriter[readingRow], maxRows int64) (*columnWriter, error) {
	w := &columnWriter{pw: pw, rg: pw.BeginRowGroup(), maxRows: maxRows}
	paths := w.rg.Schema().Columns()
	for i, cw := range w.rg.ColumnWriters() {
		name := strings.Join(paths[i], ".")
		values := rawValues(name)
		if values == nil {
			w.stop()
			return nil, fmt.Errorf("write parquet: no values for column %q", name)
		}
		c := &columnWorker{name: name, cw: cw, values: values, jobs: make(chan columnJob, 2*batchesInFlight+1)}
		w.cols = append(w.cols, c)
		w.workers.Add(1)
		go func() {
			defer w.workers.Done()
			c.run(w.fail)
		}()
	}
	return w, nil
}

// run does the column's jobs until its channel is closed, and tells fail
// its first error. After that it only marks the jobs done.
func (c *columnWorker) run(fail func(error)) {
	var err error
	for job := range c.jobs {
		if err == nil {
			if job.b == nil {
				err = c.cw.Flush()
			} else {
				err = c.write(job.b, job.from, job.to)
			}
			if err != nil {
				fail(fmt.Errorf("write parquet column %s: %w", c.name, err))
			}
		}
		job.done.Done()
	}
}

// write writes the column's values of the rows [from, to) of b, in the
// steps GenericWriter.Write takes: pageCheckRows rows, starting again at
// every chunkRows-th row of the file (b.start+from is where the job's
// row group or batch starts). WriteRowValues ends the page when a step
// fills it.
func (c *columnWorker) write(b *rawBatch, from, to int) error {
	for from < to {
		pos := b.start + int64(from)
		n := min(to-from, pageCheckRows, int(chunkRows-pos%chunkRows))
		c.values(c.buf[:n], b, from)
		if _, err := c.cw.WriteRowValues(c.buf[:n]); err != nil {
			return err
		}
		from += n
	}
	return nil
}

// nextBatch returns an empty batch to fill with up to batchRows rows,
// once the column goroutines are done with its last rows. It returns
// the first error of a column goroutine.
func (w *columnWriter) nextBatch() (*rawBatch, error) {
	b := &w.batches[w.next]
	w.next = (w.next + 1) % len(w.batches)
	b.reading.Wait()
	if err := w.err(); err != nil {
		return nil, err
	}
	b.reset(w.rows)
	return b, nil
}

// write hands b's rows to the column goroutines, ending a row group
// every maxRows rows.
func (w *columnWriter) write(b *rawBatch) error {
	for from := 0; from < b.len(); {
		to := from + int(min(int64(b.len()-from), w.maxRows-w.rgRows))
		b.reading.Add(len(w.cols))
		for _, c := range w.cols {
			c.jobs <- columnJob{b: b, from: from, to: to, done: &b.reading}
		}
		w.rgRows += int64(to - from)
		w.rows += int64(to - from)
		from = to
		if w.rgRows == w.maxRows {
			if err := w.commit(); err != nil {
				return err
			}
		}
	}
	return nil
}

// commit has each column end its last page, then writes the row group
// to the file.
func (w *columnWriter) commit() error {
	if w.rgRows == 0 {
		return nil
	}
	var flushed sync.WaitGroup
	flushed.Add(len(w.cols))
	for _, c := range w.cols {
		c.jobs <- columnJob{done: &flushed}
	}
	flushed.Wait() // and so for every job sent before
	if err := w.err(); err != nil {
		return err
	}
	if _, err := w.rg.Commit(); err != nil {
		return fmt.Errorf("write parquet row group: %w", err)
	}
	w.rgRows = 0 // Commit left rg empty, for the next row group
	return nil
}

// close writes the last row group and the file's footer, and stops the
// column goroutines.
func (w *columnWriter) close() error {
	err := w.commit()
	w.stop()
	if err != nil {
		return err
	}
	if err := w.pw.Close(); err != nil {
		return fmt.Errorf("write parquet footer: %w", err)
	}
	return nil
}

// stop ends the column goroutines once they have done the jobs sent, and
// waits for them. Calls after the first do nothing.
func (w *columnWriter) stop() {
	if w.stopped {
		return
	}
	w.stopped = true
	for _, c := range w.cols {
		close(c.jobs)
	}
	w.workers.Wait()
}

// fail records err, if it is the first error of a column goroutine.
func (w *columnWriter) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failure == nil {
		w.failure = err
	}
}

// err returns the first error of a column goroutine, if one failed.
func (w *columnWriter) err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.failure
}
