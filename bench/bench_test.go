package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wattrec/wattrec/metrics"
	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/recorder"
	"github.com/wattrec/wattrec/remotewrite"
	"github.com/wattrec/wattrec/simulator"
	"github.com/wattrec/wattrec/store"
)

// tmpDir holds the files of one benchmark process.
var tmpDir string

func TestMain(m *testing.M) {
	if mode := os.Getenv("WATTREC_BENCH_CHILD"); mode != "" {
		os.Exit(child())
	}
	var err error
	if tmpDir, err = os.MkdirTemp(os.Getenv("WATTREC_BENCH_DIR"), "wattrec-bench-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(tmpDir)
	os.Exit(code)
}

var spans = []struct {
	name string
	d    time.Duration
}{{"1h", time.Hour}, {"24h", 24 * time.Hour}}

// BenchmarkIngest is the end-to-end ingest: the simulator replays the
// data set over SSE on loopback TCP as fast as the client reads, into a
// recorder in its own process (recorder.New + Run with the defaults of
// `wattrec record`, its memory limit and fsync on commit included, except a 100 ms flush interval:
// under load commits come every 20,000 readings anyway, and at the
// default 1 s the wait for the last commit would dominate a run of a few
// seconds), until every reading is durable. One iteration is one whole run; run it with
// -benchtime 1x. Metrics: events/s and samples/s (from the recorder's
// start to the commit that holds the last reading), the file's bytes per
// sample (allocated on disk, as du counts it; its apparent size, as ls
// shows it; and the pages bbolt uses), and the recorder's peak RSS.
func BenchmarkIngest(b *testing.B) {
	for _, sp := range spans {
		b.Run("span="+sp.name, func(b *testing.B) {
			for range b.N {
				ingest(b, sp.d)
			}
		})
	}
}

func ingest(b *testing.B, span time.Duration) { ingestWith(b, span, childSpec{}) }

// ingestWith is one ingest run with spec's extras, reported as
// BenchmarkIngest reports it.
func ingestWith(b *testing.B, span time.Duration, spec childSpec) childResult {
	r, err := Replay(span)
	if err != nil {
		b.Fatal(err)
	}
	size := countOf(span, r)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- r.Serve(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			b.Error(err)
		}
	}()

	path := filepath.Join(tmpDir, fmt.Sprintf("ingest-%s.db", span))
	os.Remove(path)
	defer os.Remove(path)
	spec.Mode, spec.DB, spec.Servers, spec.Expect = "ingest", path, []string{ln.Addr().String()}, size.Samples
	res := runChild(b, spec)
	secs := res.DurableSeconds
	b.ReportMetric(float64(size.Events), "events")
	b.ReportMetric(float64(size.Samples), "samples")
	b.ReportMetric(float64(size.Events)/secs, "events/s")
	b.ReportMetric(float64(size.Samples)/secs, "samples/s")
	b.ReportMetric(secs, "s")
	b.ReportMetric(float64(res.PeakRSSKB)/1024, "peak-RSS-MB")
	b.ReportMetric(res.CPUSeconds*1e9/float64(size.Events), "cpu-ns/event")

	// What the file costs, per sample.
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		b.Fatal(err)
	}
	db, err := store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	used, err := db.Size()
	if err != nil {
		b.Fatal(err)
	}
	n := stored(b, db)
	if n < size.Samples || n > size.Samples+GPUs+2*CPUs { // + one seed per device
		b.Fatalf("%d readings stored, want %d (+ seeds)", n, size.Samples)
	}
	b.ReportMetric(float64(st.Blocks*512)/float64(size.Samples), "disk-B/sample")
	b.ReportMetric(float64(st.Size)/float64(size.Samples), "file-B/sample")
	b.ReportMetric(float64(used)/float64(size.Samples), "used-B/sample")
	return res
}

// stored is the number of readings in db.
func stored(tb testing.TB, db *store.DB) int64 {
	series, err := db.Series(context.Background(), "", false)
	if err != nil {
		tb.Fatal(err)
	}
	var n int64
	for _, s := range series {
		n += int64(s.Readings)
	}
	return n
}

var counts sync.Map // span → Size

func countOf(span time.Duration, r *simulator.Replay) Size {
	if s, ok := counts.Load(span); ok {
		return s.(Size)
	}
	s := Count(r)
	counts.Store(span, s)
	return s
}

// BenchmarkRSS records 100 simulated endpoints at zeusd's default rates
// (4 GPUs at 20 Hz, 2 CPU packages with DRAM at 10 Hz each, in real time)
// with a recorder in its own process for WATTREC_BENCH_RSS_SECONDS
// (default 60) and reports its peak and final RSS. The recorder is
// recorder.New + Run in a child process (recorder=library, with the
// runtime's defaults) and, when WATTREC_BENCH_WATTREC names a wattrec
// binary, `wattrec record` itself (recorder=binary, with its default
// --memory-limit; recorder=binary-nolimit is the same with
// --memory-limit off, the baseline). For the binary it also reports the
// peak of its anonymous memory (heap, stacks, runtime: what the limit
// governs), sampled every second, and the file-backed pages at the end
// (the binary's code and data, the mapped file).
func BenchmarkRSS(b *testing.B) {
	secs := 60 // RSS levels off after about a minute (GC pacing, bbolt pages touched)
	if s := os.Getenv("WATTREC_BENCH_RSS_SECONDS"); s != "" {
		secs, _ = strconv.Atoi(s)
	}
	const endpoints = 100
	recorders := []string{"library"}
	bin := os.Getenv("WATTREC_BENCH_WATTREC")
	if bin != "" {
		recorders = append(recorders, "binary", "binary-nolimit")
	}
	for _, rec := range recorders {
		b.Run("recorder="+rec+"/endpoints=100", func(b *testing.B) {
			for range b.N {
				ctx, cancel := context.WithCancel(context.Background())
				var wg sync.WaitGroup
				var addrs []string
				for i := range endpoints {
					cfg := simulator.DefaultConfig()
					cfg.Seed = int64(i)
					s, err := simulator.New(cfg)
					if err != nil {
						b.Fatal(err)
					}
					ln, err := net.Listen("tcp", "127.0.0.1:0")
					if err != nil {
						b.Fatal(err)
					}
					addrs = append(addrs, ln.Addr().String())
					wg.Add(1)
					go func() {
						defer wg.Done()
						s.Serve(ctx, ln)
					}()
				}
				path := filepath.Join(tmpDir, "rss-"+rec+".db")
				os.Remove(path)
				var res childResult
				switch rec {
				case "binary":
					res = runBinary(b, bin, path, addrs, secs)
				case "binary-nolimit":
					res = runBinary(b, bin, path, addrs, secs, "--memory-limit", "off")
				default:
					res = runChild(b, childSpec{Mode: "rss", DB: path, Servers: addrs, Seconds: secs})
				}
				cancel()
				wg.Wait()
				os.Remove(path)
				b.ReportMetric(float64(res.PeakRSSKB)/1024, "peak-RSS-MB")
				b.ReportMetric(float64(res.RSSKB)/1024, "RSS-MB")
				if res.PeakAnonKB > 0 {
					b.ReportMetric(float64(res.PeakAnonKB)/1024, "peak-anon-MB")
					b.ReportMetric(float64(res.FileKB)/1024, "file-MB")
				}
				if res.Readings > 0 {
					b.ReportMetric(float64(res.Readings)/float64(secs), "readings/s")
				}
			}
		})
	}
}

// runBinary runs `wattrec record` on addrs for secs seconds, with flags
// added, reads its RSS, then stops it with SIGTERM.
func runBinary(tb testing.TB, bin, db string, addrs []string, secs int, flags ...string) childResult {
	tb.Helper()
	list := filepath.Join(tmpDir, "servers.txt")
	if err := os.WriteFile(list, []byte(strings.Join(addrs, "\n")+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"--log-level", "warn", "record", "--db", db, "--servers-file", list}, flags...)...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
	var peakAnon int64
	for i := range secs {
		<-time.After(time.Second)
		peakAnon = max(peakAnon, statusField(status, "RssAnon"))
		if os.Getenv("WATTREC_BENCH_TRACE") != "" && i%5 == 4 {
			fmt.Fprintf(os.Stderr, "%3d s: RSS %d kB (anon %d, file %d), peak %d kB\n", i+1, statusField(status, "VmRSS"),
				statusField(status, "RssAnon"), statusField(status, "RssFile"), statusField(status, "VmHWM"))
		}
	}
	res := childResult{PeakRSSKB: statusField(status, "VmHWM"), RSSKB: statusField(status, "VmRSS"),
		PeakAnonKB: peakAnon, FileKB: statusField(status, "RssFile")}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		tb.Fatalf("wattrec record: %v", err)
	}
	return res
}

// queryDB returns the 24 h data set with its counter readings, and
// streamDB the same without, each built on its first call.
var (
	queryDB  = sync.OnceValues(func() (*store.DB, error) { return buildDB("query.db", true) })
	streamDB = sync.OnceValues(func() (*store.DB, error) { return buildDB("stream.db", false) })
)

func buildDB(name string, counters bool) (*store.DB, error) {
	r, err := Replay(24 * time.Hour)
	if err != nil {
		return nil, err
	}
	db, err := store.Open(filepath.Join(tmpDir, name), store.Options{NoSync: true})
	if err != nil {
		return nil, err
	}
	if err := Build(context.Background(), db, r, 24*time.Hour, 1<<16, counters); err != nil {
		return nil, errors.Join(err, db.Close())
	}
	return db, nil
}

// mustQueryDB is queryDB for a benchmark.
func mustQueryDB(b *testing.B) *store.DB {
	db, err := queryDB()
	if err != nil {
		b.Fatal(err)
	}
	return db
}

// BenchmarkJoules is the exact energy of 1 GPU and of 8 GPUs over 1 h
// (the 13th hour) and over the whole 24 h of the stored data set, warm
// (the file in the page cache, the DB open), by query.Energy as `wattrec
// query` runs it, with the counter-anchored figure; counters=no is the
// same without counter readings (the stream alone: the baseline). It
// reports the joules it found (J metric).
func BenchmarkJoules(b *testing.B) {
	ctx := context.Background()
	for _, counters := range []bool{true, false} {
		benchJoules(b, ctx, counters)
	}
}

func benchJoules(b *testing.B, ctx context.Context, counters bool) {
	dbOf, yes := queryDB, "yes"
	if !counters {
		dbOf, yes = streamDB, "no"
	}
	for _, devs := range []string{"gpu:0", "gpu"} {
		for _, w := range []struct {
			name     string
			from, to time.Duration
		}{{"1h", 12 * time.Hour, 13 * time.Hour}, {"24h", 0, 24 * time.Hour}} {
			{
				name := fmt.Sprintf("counters=%s/gpus=%d/window=%s", yes, map[string]int{"gpu:0": 1, "gpu": 8}[devs], w.name)
				b.Run(name, func(b *testing.B) {
					db, err := dbOf()
					if err != nil {
						b.Fatal(err)
					}
					opt, err := energyOptions(devs, w.from, w.to)
					if err != nil {
						b.Fatal(err)
					}
					run := func() int64 {
						rep, err := query.Energy(ctx, db, opt)
						if err != nil {
							b.Fatal(err)
						}
						return rep.Rows[0].EnergyUJ
					}
					uj := run() // warm up
					b.ResetTimer()
					for range b.N {
						if got := run(); got != uj {
							b.Fatalf("%d µJ, then %d", uj, got)
						}
					}
					b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/query")
					b.ReportMetric(float64(uj)/1e6, "J")
				})
			}
		}
	}
}

// energyOptions asks query.Energy for the total joules of devs (as
// --devices takes them) over [from, to) of the data set, offsets from
// its start.
func energyOptions(devs string, from, to time.Duration) (query.Options, error) {
	f, err := query.ParseDevices(devs)
	if err != nil {
		return query.Options{}, err
	}
	return query.Options{By: query.ByTotal, Filter: query.Filter{Devices: f,
		Range: query.Between(Start.Add(from).UnixMilli()+OffsetMs, Start.Add(to).UnixMilli()+OffsetMs)}}, nil
}

// BenchmarkScan decodes every reading of the stored 24 h data set
// (what an export reads), warm.
func BenchmarkScan(b *testing.B) {
	ctx := context.Background()
	b.Run("span=24h", func(b *testing.B) {
		db := mustQueryDB(b)
		series, err := db.Series(ctx, "", false)
		if err != nil {
			b.Fatal(err)
		}
		var n int64
		b.ResetTimer()
		for range b.N {
			n = 0
			for _, s := range series {
				err := db.Scan(ctx, s.SeriesKey, -1<<63, 1<<63-1, func(*store.Reading) error { n++; return nil })
				if err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "readings/s")
	})
}

// childSpec tells the recorder child what to do; it travels as JSON in
// WATTREC_BENCH_CHILD.
type childSpec struct {
	Mode    string // "ingest": until Expect readings are durable; "rss": for Seconds
	DB      string
	Servers []string
	Expect  int64
	Seconds int
	// Metrics observes the recorder's commits with a metrics.Collector
	// (what --metrics-listen adds to ingest).
	Metrics bool
	// PushURL, if set, is a remote-write receiver: a live sender follows
	// the file (what --remote-write adds), and another pushes the file
	// PushDB from its start at the same time, as fast as it can (a
	// sender catching up after an outage).
	PushURL, PushDB string
}

// childResult is what the child prints.
type childResult struct {
	Readings       int64   // non-seed readings committed
	DurableSeconds float64 // from the recorder's start to the commit holding the Expect-th reading
	PeakRSSKB      int64   // VmHWM
	RSSKB          int64   // VmRSS at the end
	PeakAnonKB     int64   // highest RssAnon seen (binary only)
	FileKB         int64   // RssFile at the end (binary only)
	PushedSamples  int64   // by the catching-up sender, during the ingest
	CPUSeconds     float64 // user + system time of the child until then
	Err            string
}

// runChild runs a recorder in a child process (this test binary) and
// returns its result.
func runChild(tb testing.TB, spec childSpec) childResult {
	tb.Helper()
	js, _ := json.Marshal(spec)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "WATTREC_BENCH_CHILD="+string(js))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	var res childResult
	if jerr := json.Unmarshal(lastLine(out), &res); jerr != nil {
		tb.Fatalf("recorder child: %v (output %q, %v)", jerr, out, err)
	}
	if res.Err != "" || err != nil {
		tb.Fatalf("recorder child: %s %v", res.Err, err)
	}
	return res
}

func lastLine(b []byte) []byte {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return []byte(lines[len(lines)-1])
}

// counting is the child's store: it notes when the expected number of
// readings is durable.
type counting struct {
	db     *store.DB
	expect int64
	n      atomic.Int64
	done   chan struct{}
	once   sync.Once
	at     time.Time
}

func (c *counting) Write(ctx context.Context, b *store.Batch) error {
	t0 := time.Now()
	if err := c.db.Write(ctx, b); err != nil {
		return err
	}
	if os.Getenv("WATTREC_BENCH_TRACE") != "" {
		fmt.Fprintf(os.Stderr, "write %d readings %v\n", len(b.Readings), time.Since(t0))
	}
	var n int64
	for i := range b.Readings {
		if !b.Readings[i].Seed {
			n++
		}
	}
	if c.n.Add(n) >= c.expect && c.expect > 0 {
		c.once.Do(func() {
			c.at = time.Now()
			close(c.done)
		})
	}
	return nil
}

// child runs the recorder of a childSpec and prints a childResult.
func child() int {
	var spec childSpec
	res := childResult{}
	defer func() {
		js, _ := json.Marshal(res)
		fmt.Println(string(js))
	}()
	if err := json.Unmarshal([]byte(os.Getenv("WATTREC_BENCH_CHILD")), &spec); err != nil {
		res.Err = err.Error()
		return 1
	}
	if path := os.Getenv("WATTREC_BENCH_CHILD_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err == nil {
			pprof.StartCPUProfile(f)
			defer f.Close()
			defer pprof.StopCPUProfile()
		}
	}
	if os.Getenv("WATTREC_BENCH_CHILD_HEAPPROFILE") != "" {
		runtime.MemProfileRate = 4096 // every allocation site, not a 512 KiB sample
	}
	if path := os.Getenv("WATTREC_BENCH_CHILD_TRACE"); path != "" {
		f, err := os.Create(path)
		if err == nil {
			trace.Start(f)
			defer f.Close()
			defer trace.Stop()
		}
	}
	if err := runRecorder(spec, &res); err != nil {
		res.Err = err.Error()
		return 1
	}
	res.PeakRSSKB, res.RSSKB = procStatus("VmHWM"), procStatus("VmRSS")
	return 0
}

func runRecorder(spec childSpec, res *childResult) error {
	var servers []recorder.Server
	for _, a := range spec.Servers {
		s, err := recorder.ParseServer(a)
		if err != nil {
			return err
		}
		servers = append(servers, s)
	}
	db, err := store.Open(spec.DB, store.Options{})
	if err != nil {
		return err
	}
	defer db.Close()
	sink := &counting{db: db, expect: spec.Expect, done: make(chan struct{})}
	client := recorder.NewClient(servers)
	client.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	rec := recorder.New(client, sink)
	if spec.Mode == "ingest" {
		// Under load the recorder commits every 20,000 readings; the
		// flush interval only decides how long the last ones wait. At
		// the default 1 s that wait would dominate a run of seconds.
		rec.FlushInterval = 100 * time.Millisecond
		rec.MemoryLimit = recorder.MemoryLimitFor(len(servers)) // as `wattrec record`
		// A replay's streams go quiet once their span is sent, and its
		// get_power shows the span's start: there is no live daemon to
		// judge, and a reconnect would replay the span again.
		client.StallPolls, client.ProbeAfter = 0, 0
	}
	if spec.Metrics {
		rec.Observer = metrics.New(time.Now())
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var pushes sync.WaitGroup
	defer pushes.Wait()
	var catchUp *remotewrite.Sender
	if spec.PushURL != "" {
		pdb, err := store.Open(spec.PushDB, store.Options{NoSync: true})
		if err != nil {
			return err
		}
		defer pdb.Close()
		live := remotewrite.New(db, remotewrite.Receiver{URL: spec.PushURL})
		catchUp = remotewrite.New(pdb, remotewrite.Receiver{URL: spec.PushURL})
		for _, s := range []*remotewrite.Sender{live, catchUp} {
			s.Logger, s.LiveSince = client.Logger, time.Now()
		}
		pushes.Add(2)
		go func() {
			defer pushes.Done()
			live.Run(ctx)
		}()
		go func() {
			defer pushes.Done()
			catchUp.Push(ctx, query.TimeRange{From: query.At(Start.UnixMilli())})
		}()
	}
	runErr := make(chan error, 1)
	go func() { runErr <- rec.Run(ctx) }()
	select {
	case <-rec.Started():
	case err := <-runErr:
		return fmt.Errorf("recorder did not start: %w", err)
	}
	start := time.Now()
	var wait <-chan time.Time
	if spec.Mode == "rss" {
		wait = time.After(time.Duration(spec.Seconds) * time.Second)
	}
	select {
	case <-sink.done:
		res.DurableSeconds = sink.at.Sub(start).Seconds()
		var ru syscall.Rusage
		if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
			res.CPUSeconds = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
		}
		if catchUp != nil {
			res.PushedSamples = catchUp.Stats().Samples
		}
	case <-wait:
	case err := <-runErr:
		return fmt.Errorf("recorder stopped: %w", err)
	}
	if path := os.Getenv("WATTREC_BENCH_CHILD_HEAPPROFILE"); path != "" {
		profileLive(path)
	}
	cancel()
	if err := <-runErr; err != nil {
		return err
	}
	res.Readings = sink.n.Load()
	if spec.Mode == "ingest" && res.Readings < spec.Expect {
		return errors.New("not every reading arrived")
	}
	return nil
}

// profileLive writes the live heap (after a collection) to path and the
// goroutines to path.goroutines, while the recorder runs, and prints the
// runtime's memory figures.
func profileLive(path string) {
	runtime.GC()
	for name, file := range map[string]string{"heap": path, "goroutine": path + ".goroutines"} {
		if f, err := os.Create(file); err == nil {
			pprof.Lookup(name).WriteTo(f, 1)
			f.Close()
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Fprintf(os.Stderr, "heap live %d kB, heap sys %d kB, stacks %d kB, runtime sys %d kB, goroutines %d, GCs %d\n",
		ms.HeapAlloc>>10, ms.HeapSys>>10, ms.StackInuse>>10, ms.Sys>>10, runtime.NumGoroutine(), ms.NumGC)
}

// procStatus reads a kB field of /proc/self/status.
func procStatus(field string) int64 { return statusField("/proc/self/status", field) }

// statusField reads a kB field of a /proc/PID/status file.
func statusField(path, field string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return -1
}

// BenchmarkQueryEvery is `wattrec query --every 10ms --by device
// --format csv` (and json) over 10 minutes of the 24 h data set (8 GPUs,
// 2 CPUs with DRAM: 60,000 buckets × 19 rows), written to nowhere: the
// small-bucket path. It also reports the peak of the heap in use while
// the queries run.
func BenchmarkQueryEvery(b *testing.B) {
	ctx := context.Background()
	db := mustQueryDB(b)
	from := Start.Add(12*time.Hour).UnixMilli() + OffsetMs
	for _, format := range []string{query.FormatCSV, query.FormatJSON} {
		b.Run("format="+format, func(b *testing.B) {
			opt := query.Options{EveryMs: 10, Format: format, Filter: query.Filter{Range: query.Between(from, from+10*60_000)}}
			var out countingWriter
			runtime.GC()
			peak := sampleHeap()
			b.ResetTimer()
			for range b.N {
				out = 0
				if err := query.Print(ctx, &out, db, opt); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/query")
			b.ReportMetric(float64(out)/1e6, "MB-out")
			b.ReportMetric(float64(peak())/(1<<20), "peak-heap-MB")
		})
	}
}

// sampleHeap samples the heap's objects (heapPeak) every millisecond
// until the returned function is called, which returns the largest seen.
func sampleHeap() (stop func() uint64) {
	done := make(chan struct{})
	result := make(chan uint64)
	go func() {
		var p heapPeak
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			p.sample()
			select {
			case <-t.C:
			case <-done:
				result <- p.bytes
				return
			}
		}
	}()
	return func() uint64 { close(done); return <-result }
}

// countingWriter counts the bytes written to it.
type countingWriter int64

func (w *countingWriter) Write(p []byte) (int, error) {
	*w += countingWriter(len(p))
	return len(p), nil
}
