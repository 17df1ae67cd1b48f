package export

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/parquet-go/parquet-go"

	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/store"
)

// ErrInput means a file read back (OpenRaw) is not the raw table: a
// column it must not have or lacks, a value that does not parse (a bad
// time, an unknown kind), a grid export, a damaged Parquet file. The
// message names the file, the line or row, the column and the value.
var ErrInput = errors.New("not a raw table")

// inputError marks an error as ErrInput, keeping its message.
type inputError struct{ error }

func (e inputError) Is(target error) bool { return target == ErrInput }
func (e inputError) Unwrap() error        { return e.error }

func badInput(format string, args ...any) error { return inputError{fmt.Errorf(format, args...)} }

// maxLine bounds one line of a CSV or JSON Lines file read back.
const maxLine = 1 << 20

// RawFile is a file of the raw table opened to be read back: a wattrec
// export in any of its formats, or a CSV or JSON Lines file with the
// import columns (ImportColumns: time, endpoint, kind, device and power_w,
// in any order, and optionally daemon_time_ms and seed). The format is
// told by the content: Parquet by its magic bytes, JSON Lines by a first
// character '{', CSV otherwise. Rows come back in file order, one at a
// time, so memory stays bounded whatever the file's size: a Parquet
// file's row groups are read page by page, a text file line by line (of
// at most 1 MiB).
type RawFile struct {
	Path   string // as given to OpenRaw
	Format string // FormatParquet, FormatCSV or FormatJSONL
	// Meta is what a wattrec Parquet export carries besides its rows;
	// nil for CSV and JSON Lines, which carry nothing else, and for a
	// Parquet file that wattrec did not write.
	Meta *RawMeta

	f     *os.File
	size  int64
	count *countingReader
	rows  int64 // rows read so far

	// CSV
	csv     *csv.Reader
	cols    []*column // the file's columns, in its order
	missing []*column // the optional columns it lacks
	line    int       // line of the current row
	// JSON Lines
	lines *bufio.Scanner
	obj   map[string]json.RawMessage
	vals  [][]byte // per raw column, its value in the line (plainObject)
	// Parquet
	pq    *parquet.GenericReader[readingRow]
	total int64
	buf   []readingRow
	next  int
}

// RawMeta is what a wattrec Parquet export's key-value metadata holds
// about its rows (see the Meta* keys).
type RawMeta struct {
	// Range is the export's time filter: only readings, sessions and
	// counter readings inside it were exported. query.All when it had
	// none.
	Range     query.Interval
	Endpoints []store.EndpointInfo
	Sessions  []store.Session // by endpoint, then start
	Clocks    []store.ClockEstimate
	Counters  []store.CounterReading
	Marks     []store.Mark
	// Thinned names the lists that were thinned to fit the footer
	// (MetaTruncated): "sessions", "gaps", "clock", "counters", "marks".
	Thinned []string
}

// OpenRaw opens the file at path to read its rows back. A file that is
// none of the raw table's formats, or whose header or schema is not the
// raw table's, is ErrInput.
func OpenRaw(path string) (*RawFile, error) {
	// Refuse a named pipe before opening it, which would wait for a
	// writer: Parquet needs to seek, and text the size for progress.
	if fi, err := os.Stat(path); err != nil {
		return nil, err
	} else if !fi.Mode().IsRegular() {
		return nil, badInput("%s is a %s, not a regular file", path, fileKind(fi.Mode()))
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	rf := &RawFile{Path: path, f: f, size: fi.Size()}
	var head [4]byte
	n, _ := f.ReadAt(head[:], 0)
	switch {
	case string(head[:n]) == "PAR1":
		rf.Format = FormatParquet
		err = rf.openParquet()
	default:
		rf.count = &countingReader{r: f}
		br := bufio.NewReaderSize(rf.count, 64<<10)
		skipBOM(br)
		if first, _ := peekNonSpace(br); first == '{' {
			rf.Format = FormatJSONL
			err = rf.openJSONL(br)
		} else {
			rf.Format = FormatCSV
			err = rf.openCSV(br)
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return rf, nil
}

// Close closes the file.
func (rf *RawFile) Close() error {
	var err error
	if rf.pq != nil {
		err = rf.pq.Close()
	}
	return errors.Join(err, rf.f.Close())
}

// Progress is how far reading has come: rows read, and an estimate of
// the file's rows (exact for Parquet; for text, from the bytes read).
func (rf *RawFile) Progress() (done, total int64) {
	if rf.pq != nil {
		return rf.rows, rf.total
	}
	if rf.count.n == 0 {
		return rf.rows, rf.rows
	}
	return rf.rows, max(rf.rows, int64(float64(rf.rows)*float64(rf.size)/float64(rf.count.n)))
}

// Where names the row last read, for a message about it: "run.csv:12"
// (a line) or "run.parquet: row 12".
func (rf *RawFile) Where() string {
	if rf.pq != nil {
		return fmt.Sprintf("%s: row %d", rf.Path, rf.rows)
	}
	return fmt.Sprintf("%s:%d", rf.Path, rf.line)
}

// Next reads the next row into r and returns nil, or io.EOF after the
// last row. A row that does not parse is ErrInput, naming the file, the
// line (or row), the column and the value.
func (rf *RawFile) Next(r *store.Reading) error {
	switch rf.Format {
	case FormatParquet:
		return rf.nextParquet(r)
	case FormatJSONL:
		return rf.nextJSONL(r)
	}
	return rf.nextCSV(r)
}

// CSV and JSON Lines.

func (rf *RawFile) openCSV(br *bufio.Reader) error {
	rf.csv = csv.NewReader(br)
	rf.csv.ReuseRecord = true
	rf.csv.TrimLeadingSpace = true // "a, b": a value that starts with a space is quoted
	header, err := rf.csv.Read()
	if err == io.EOF {
		return badInput("%s is empty: want a CSV header (%s)", rf.Path, CSVHeader)
	}
	if err != nil {
		return rf.csvError(err)
	}
	rf.line = 1
	if strings.Join(header, ",") == GridCSVHeader {
		return badInput("%s is an energy grid export: import reads the raw readings (an export without --grid-only)", rf.Path)
	}
	seen := map[string]bool{}
	for i, name := range header {
		c := rawColumn(name)
		switch {
		case c == nil:
			return badInput("%s:1: column %d %q is not one of %s", rf.Path, i+1, name, columnList())
		case seen[name]:
			return badInput("%s:1: column %q appears twice", rf.Path, name)
		}
		seen[name] = true
		rf.cols = append(rf.cols, c)
	}
	for i := range rawColumns {
		switch c := &rawColumns[i]; {
		case seen[c.name]:
		case c.fill == nil:
			return badInput("%s:1: no column %q (the header has %s; want %s)", rf.Path, c.name, strings.Join(header, ","), columnList())
		default:
			rf.missing = append(rf.missing, c)
		}
	}
	return nil
}

func (rf *RawFile) nextCSV(r *store.Reading) error {
	rec, err := rf.csv.Read()
	if err == io.EOF {
		return io.EOF
	}
	if err != nil {
		return rf.csvError(err)
	}
	rf.line, _ = rf.csv.FieldPos(0)
	rf.rows++
	for i, c := range rf.cols {
		if err := c.parse(r, rec[i]); err != nil {
			return badInput("%s:%d: column %s: %v", rf.Path, rf.line, c.name, err)
		}
	}
	for _, c := range rf.missing {
		c.fill(r)
	}
	return nil
}

func (rf *RawFile) csvError(err error) error {
	var pe *csv.ParseError
	switch {
	case errors.As(err, &pe):
		return badInput("%s:%d: %v", rf.Path, pe.Line, pe.Err)
	case errors.Is(err, errLongLine):
		return badInput("%s:%d: %v", rf.Path, rf.line+1, err)
	}
	return fmt.Errorf("read %s: %w", rf.Path, err)
}

func (rf *RawFile) openJSONL(br *bufio.Reader) error {
	rf.lines = bufio.NewScanner(br)
	rf.lines.Buffer(make([]byte, 64<<10), maxLine)
	rf.obj = map[string]json.RawMessage{}
	rf.vals = make([][]byte, len(rawColumns))
	return nil
}

// plainObject splits line into rf.vals when it is a JSON object of the
// raw table's keys, each at most once, whose values are strings without
// escapes, numbers or true, false and null: wattrec's own JSON Lines, read
// without encoding/json's allocations. For anything else (an escape, a
// nested value, an unknown or repeated key, a syntax error) it reports
// false, and encoding/json reads the line or says what is wrong with it.
func (rf *RawFile) plainObject(line []byte) bool {
	clear(rf.vals)
	p := 0
	ws := func() {
		for p < len(line) && (line[p] == ' ' || line[p] == '\t' || line[p] == '\r' || line[p] == '\n') {
			p++
		}
	}
	// str reads a string without escapes at p and returns its contents.
	str := func() ([]byte, bool) {
		if p >= len(line) || line[p] != '"' {
			return nil, false
		}
		end := bytes.IndexByte(line[p+1:], '"')
		if end < 0 {
			return nil, false
		}
		s := line[p+1 : p+1+end]
		ascii := true
		for _, c := range s {
			if c == '\\' || c < 0x20 {
				return nil, false
			}
			ascii = ascii && c < 0x80
		}
		if !ascii && !utf8.Valid(s) { // encoding/json would replace the bad bytes
			return nil, false
		}
		p += end + 2
		return s, true
	}
	ws()
	if p >= len(line) || line[p] != '{' {
		return false
	}
	p++
	for first := true; ; first = false {
		ws()
		if p < len(line) && line[p] == '}' && first {
			p++
			break
		}
		key, ok := str()
		if !ok {
			return false
		}
		col := -1
		for i := range rawColumns {
			if rawColumns[i].name == string(key) {
				col = i
			}
		}
		if col < 0 || rf.vals[col] != nil {
			return false
		}
		ws()
		if p >= len(line) || line[p] != ':' {
			return false
		}
		p++
		ws()
		var v []byte
		if p < len(line) && line[p] == '"' {
			if v, ok = str(); !ok {
				return false
			}
		} else {
			start := p
			for p < len(line) && line[p] != ',' && line[p] != '}' && line[p] != ' ' && line[p] != '\t' {
				p++
			}
			if v = line[start:p]; !isLiteral(v) {
				return false
			}
		}
		rf.vals[col] = v
		ws()
		if p < len(line) && line[p] == ',' {
			p++
			continue
		}
		if p < len(line) && line[p] == '}' {
			p++
			break
		}
		return false
	}
	ws()
	return p == len(line)
}

// isLiteral reports whether v is a JSON number, true, false or null.
func isLiteral(v []byte) bool {
	switch string(v) {
	case "true", "false", "null":
		return true
	}
	i := 0
	if i < len(v) && v[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for ; i < len(v) && v[i] >= '0' && v[i] <= '9'; i++ {
			n++
		}
		return n
	}
	if n := digits(); n == 0 || n > 1 && v[i-n] == '0' {
		return false
	}
	if i < len(v) && v[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(v) && (v[i] == 'e' || v[i] == 'E') {
		i++
		if i < len(v) && (v[i] == '+' || v[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(v)
}

func (rf *RawFile) nextJSONL(r *store.Reading) error {
	var line []byte
	for len(line) == 0 {
		if !rf.lines.Scan() {
			if err := rf.lines.Err(); errors.Is(err, bufio.ErrTooLong) || errors.Is(err, errLongLine) {
				return badInput("%s:%d: a line longer than %d bytes", rf.Path, rf.line+1, maxLine)
			} else if err != nil {
				return fmt.Errorf("read %s: %w", rf.Path, err)
			}
			return io.EOF
		}
		rf.line++
		line = bytes.TrimSpace(rf.lines.Bytes())
	}
	rf.rows++
	if rf.plainObject(line) {
		for i := range rawColumns {
			c := &rawColumns[i]
			if v := rf.vals[i]; v != nil {
				if err := c.parse(r, string(v)); err != nil {
					return badInput("%s:%d: key %s: %v", rf.Path, rf.line, c.name, err)
				}
			}
		}
		for i := range rawColumns {
			if c := &rawColumns[i]; rf.vals[i] == nil {
				if c.fill == nil {
					return badInput("%s:%d: no key %q (want %s)", rf.Path, rf.line, c.name, columnList())
				}
				c.fill(r)
			}
		}
		return nil
	}
	clear(rf.obj)
	if err := json.Unmarshal(line, &rf.obj); err != nil {
		return badInput("%s:%d: not a JSON object: %v", rf.Path, rf.line, err)
	}
	found := 0
	rf.missing = rf.missing[:0]
	for i := range rawColumns {
		c := &rawColumns[i]
		v, ok := rf.obj[c.name]
		if !ok {
			if c.fill == nil {
				return badInput("%s:%d: no key %q (want %s)", rf.Path, rf.line, c.name, columnList())
			}
			rf.missing = append(rf.missing, c)
			continue
		}
		found++
		text := string(v)
		if len(v) > 0 && v[0] == '"' {
			if err := json.Unmarshal(v, &text); err != nil {
				return badInput("%s:%d: key %s: %v", rf.Path, rf.line, c.name, err)
			}
		}
		if err := c.parse(r, text); err != nil {
			return badInput("%s:%d: key %s: %v", rf.Path, rf.line, c.name, err)
		}
	}
	if len(rf.obj) != found {
		return badInput("%s:%d: key %q is not one of %s", rf.Path, rf.line, rf.unknownKey(), columnList())
	}
	for _, c := range rf.missing {
		c.fill(r)
	}
	return nil
}

// unknownKey is a key of the current JSON object that is no column, or "".
func (rf *RawFile) unknownKey() string {
	for k := range rf.obj {
		if rawColumn(k) == nil {
			return k
		}
	}
	return ""
}

// rawColumn is the raw table's column named name, or nil.
func rawColumn(name string) *column {
	for i := range rawColumns {
		if rawColumns[i].name == name {
			return &rawColumns[i]
		}
	}
	return nil
}

// columnList names the import columns for an error message.
func columnList() string {
	var req, opt []string
	for _, c := range rawColumns {
		if c.fill == nil {
			req = append(req, c.name)
		} else {
			opt = append(opt, c.name)
		}
	}
	return strings.Join(req, ", ") + " and optionally " + strings.Join(opt, ", ")
}

// countingReader counts the bytes read through it, and fails a line
// longer than maxLine (errLongLine), so that no line is read whole into
// memory however long it is.
type countingReader struct {
	r       io.Reader
	n       int64
	sinceNL int
}

var errLongLine = fmt.Errorf("a line longer than %d bytes", maxLine)

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if i := bytes.LastIndexByte(p[:n], '\n'); i >= 0 {
		c.sinceNL = n - 1 - i
	} else {
		c.sinceNL += n
	}
	if c.sinceNL > maxLine {
		return n, errLongLine
	}
	return n, err
}

func skipBOM(br *bufio.Reader) {
	if b, err := br.Peek(3); err == nil && string(b) == "\xef\xbb\xbf" {
		br.Discard(3)
	}
}

// peekNonSpace returns the first byte of br that is not white space,
// without consuming anything.
func peekNonSpace(br *bufio.Reader) (byte, bool) {
	for n := 1; n <= br.Size(); n++ {
		b, err := br.Peek(n)
		if len(b) < n {
			return 0, false
		}
		if c := b[n-1]; c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return c, true
		}
		if err != nil {
			return 0, false
		}
	}
	return 0, false
}

// Parquet.

func (rf *RawFile) openParquet() (err error) {
	defer func() {
		if p := recover(); p != nil { // parquet-go panics on some damage
			err = badInput("%s: damaged Parquet file: %v", rf.Path, p)
		}
	}()
	pf, err := parquet.OpenFile(rf.f, rf.size, parquet.SkipBloomFilters(true))
	if err != nil {
		return badInput("%s: not a readable Parquet file: %v", rf.Path, err)
	}
	if table, ok := pf.Lookup(MetaTable); ok && table != TableReadings {
		return badInput("%s is a wattrec %s export (%s=%s): import reads the raw readings", rf.Path, table, MetaTable, table)
	}
	if err := checkSchema(rf.Path, pf.Schema()); err != nil {
		return err
	}
	if _, ok := pf.Lookup(MetaTable); ok {
		if rf.Meta, err = readMeta(rf.Path, pf); err != nil {
			return err
		}
	}
	rf.total = pf.NumRows()
	rf.pq = parquet.NewGenericReader[readingRow](pf)
	rf.buf = make([]readingRow, 0, chunkRows)
	return nil
}

// checkSchema checks that s has the raw table's columns (readingRow's),
// each required and of its physical type, and no others.
func checkSchema(path string, s *parquet.Schema) error {
	want := parquet.SchemaOf(readingRow{})
	for _, f := range s.Fields() {
		if rawColumn(f.Name()) == nil {
			return badInput("%s: column %q is not one of the raw table's (%s)", path, f.Name(), CSVHeader)
		}
	}
	for _, c := range rawColumns {
		got, ok := s.Lookup(c.name)
		if !ok {
			return badInput("%s: no column %q (want %s)", path, c.name, CSVHeader)
		}
		w, _ := want.Lookup(c.name)
		if got.Node.Optional() || got.Node.Repeated() || got.Node.Type().Kind() != w.Node.Type().Kind() {
			return badInput("%s: column %q is %v, want a required %v", path, c.name, got.Node.Type(), w.Node.Type().Kind())
		}
	}
	return nil
}

func (rf *RawFile) nextParquet(r *store.Reading) (err error) {
	if rf.next == len(rf.buf) {
		if err := rf.fillParquet(); err != nil {
			return err
		}
	}
	row := &rf.buf[rf.next]
	rf.next++
	rf.rows++
	k, err := store.ParseKind(row.Kind)
	if err != nil {
		return badInput("%s: column kind: %v", rf.Where(), err)
	}
	mw, err := milliwatts(row.PowerW)
	if err != nil {
		return badInput("%s: column power_w: %v", rf.Where(), err)
	}
	if row.Device < 0 || row.Endpoint == "" {
		return badInput("%s: endpoint %q device %d: want a name and an index from 0", rf.Where(), row.Endpoint, row.Device)
	}
	if row.Endpoint != r.Endpoint {
		r.Endpoint = strings.Clone(row.Endpoint)
	}
	r.Kind, r.Device, r.TimeMs, r.DaemonMs, r.MilliWatts, r.Seed = k, row.Device, row.Time, row.DaemonTimeMs, mw, row.Seed
	return nil
}

func (rf *RawFile) fillParquet() (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = badInput("%s: after row %d: damaged Parquet data: %v", rf.Path, rf.rows, p)
		}
	}()
	rf.buf = rf.buf[:cap(rf.buf)]
	n, err := rf.pq.Read(rf.buf)
	rf.buf, rf.next = rf.buf[:n], 0
	if n > 0 {
		return nil
	}
	if err == nil || err == io.EOF {
		return io.EOF
	}
	return badInput("%s: after row %d: %v", rf.Path, rf.rows, err)
}

// readMeta reads what a wattrec Parquet export's metadata says about its
// rows.
func readMeta(path string, pf *parquet.File) (*RawMeta, error) {
	m := &RawMeta{Range: query.All}
	get := func(key string, v any) error {
		s, ok := pf.Lookup(key)
		if !ok {
			return nil // an older export without it
		}
		if err := json.Unmarshal([]byte(s), v); err != nil {
			return badInput("%s: metadata %s: %v", path, key, err)
		}
		return nil
	}
	var filter struct {
		FromMs *int64 `json:"from_ms"`
		ToMs   *int64 `json:"to_ms"`
	}
	endpoints := map[string]store.EndpointInfo{}
	var (
		clocks    map[string][]metaClock
		sessions  map[string][]metaSession
		counters  map[string]map[string]*metaCounters
		truncated map[string]map[string]int
	)
	for key, v := range map[string]any{MetaFilter: &filter, MetaEndpoints: &endpoints, MetaClock: &clocks, MetaSessions: &sessions,
		MetaCounters: &counters, MetaMarks: &m.Marks, MetaTruncated: &truncated} {
		if err := get(key, v); err != nil {
			return nil, err
		}
	}
	if filter.FromMs != nil && filter.ToMs != nil {
		m.Range = query.Interval{From: *filter.FromMs, To: *filter.ToMs}
	}
	for list := range truncated {
		m.Thinned = append(m.Thinned, list)
	}
	slices.Sort(m.Thinned)
	bad := func(key, ep string, err error) error {
		return badInput("%s: metadata %s of endpoint %q: %v", path, key, ep, err)
	}
	for _, ep := range sortedKeys(endpoints) {
		info := endpoints[ep]
		if info.Endpoint != ep {
			return nil, bad(MetaEndpoints, ep, fmt.Errorf("it names endpoint %q", info.Endpoint))
		}
		m.Endpoints = append(m.Endpoints, info)
	}
	for _, ep := range sortedKeys(clocks) {
		for _, c := range clocks[ep] {
			m.Clocks = append(m.Clocks, store.ClockEstimate{Endpoint: ep, TakenMs: c.TakenMs, OffsetUs: c.OffsetUs, RTTUs: c.RTTUs, Samples: c.Samples})
		}
	}
	for _, ep := range sortedKeys(sessions) {
		for _, s := range sessions[ep] {
			st, ok := parseStream(s.Stream)
			if !ok || s.EndMs < s.StartMs {
				return nil, bad(MetaSessions, ep, fmt.Errorf("stream %q from %d to %d: want gpu or cpu, ending after it starts", s.Stream, s.StartMs, s.EndMs))
			}
			m.Sessions = append(m.Sessions, store.Session{Endpoint: ep, Stream: st, Start: s.StartMs, End: s.EndMs, Open: s.Open,
				Events: s.Events, Malformed: s.Malformed, Reason: s.Reason})
		}
	}
	for _, ep := range sortedKeys(counters) {
		names := sortedKeys(counters[ep])
		keys := make([]store.SeriesKey, len(names))
		for i, name := range names {
			kind, dev, _ := strings.Cut(name, ":")
			k, err := store.ParseKind(kind)
			d, derr := strconv.ParseInt(dev, 10, 32)
			if err != nil || derr != nil || d < 0 {
				return nil, bad(MetaCounters, ep, fmt.Errorf("series %q: want kind:device, e.g. gpu:0", name))
			}
			keys[i] = store.SeriesKey{Endpoint: ep, Kind: k, Device: int32(d)}
		}
		order := make([]int, len(names))
		for i := range order {
			order[i] = i
		}
		slices.SortFunc(order, func(a, b int) int {
			return cmp.Or(cmp.Compare(keys[a].Kind, keys[b].Kind), cmp.Compare(keys[a].Device, keys[b].Device))
		})
		for _, i := range order {
			col, k := counters[ep][names[i]], keys[i]
			n := len(col.TakenMs)
			if len(col.EnergyUJ) != n || len(col.RTTUs) != n || len(col.Trigger) != n {
				return nil, bad(MetaCounters, ep, fmt.Errorf("series %s: columns of different lengths", names[i]))
			}
			for j := range n {
				tr, ok := parseTrigger(col.Trigger[j])
				if !ok || col.EnergyUJ[j] < 0 || col.RTTUs[j] < 0 {
					return nil, bad(MetaCounters, ep, fmt.Errorf("series %s reading %d: want a trigger (start, periodic, mark, stop) and no negative value", names[i], j))
				}
				m.Counters = append(m.Counters, store.CounterReading{Endpoint: ep, Kind: k.Kind, Device: k.Device, TakenMs: col.TakenMs[j],
					RTTUs: col.RTTUs[j], EnergyUJ: col.EnergyUJ[j], Trigger: tr})
			}
		}
	}
	for _, mk := range m.Marks {
		if err := store.CheckMarkName(mk.Name); err != nil {
			return nil, badInput("%s: metadata %s: %v", path, MetaMarks, err)
		}
	}
	return m, nil
}

func parseStream(s string) (store.Stream, bool) {
	for _, st := range []store.Stream{store.StreamGPU, store.StreamCPU} {
		if st.String() == s {
			return st, true
		}
	}
	return 0, false
}

func parseTrigger(s string) (store.CounterTrigger, bool) {
	for t := store.TriggerStart; t.Valid(); t++ {
		if t.String() == s {
			return t, true
		}
	}
	return 0, false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
