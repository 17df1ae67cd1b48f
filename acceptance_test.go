package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The acceptance test runs the real binary against testdata/zeusd_emulator.py,
// a zeusd written independently of the project's Go simulator, and checks the
// "done when" of the project: with 4 GPUs, 2 CPUs, a 5 s clock skew, dropped
// connections and malformed lines, every value the daemon sent is in the store
// after SIGTERM, per device, with corrected timestamps within 2 ms of true
// time, over both wire formats, TCP and a Unix socket, with token auth.

const (
	emulatorScript = "testdata/zeusd_emulator.py"
	skewMS         = -5000 // daemon clock = true clock - 5 s
	maxTimeErrMS   = 2.0

	// Wait until each emulator has sent this many readings and dropped its
	// streams this many times (and each stream at least once).
	wantReadings = 3000
	wantDrops    = 4

	acceptanceDeadline = 25 * time.Second
)

func TestAcceptance_IndependentEmulator(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: runs two emulators and the recorder for several seconds")
	}
	if os.Getenv("WATTREC_TEST_MAIN") == "1" {
		t.Skip("running as the wattrec binary") // guards against recursion if TestMain is missing
	}
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 is required to run the zeusd emulator: %v", err)
	}
	dir := t.TempDir()

	// Start two emulators: TCP + sample format + JWT auth, and a Unix socket
	// + snapshot format without auth.
	secret := []byte("acceptance-test-secret")
	secretFile := filepath.Join(dir, "jwt-secret")
	if err := os.WriteFile(secretFile, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	token := mintHS256(t, secret, map[string]any{
		"sub": "acceptance", "scopes": []string{"gpu-read", "cpu-read"},
		"exp": time.Now().Add(time.Hour).Unix(),
	})
	common := []string{"--gpus", "4", "--cpus", "2", "--gpu-hz", "200", "--cpu-hz", "100",
		"--skew-ms", fmt.Sprint(skewMS), "--drop-every", "200,500", "--malformed-every", "25"}
	tcp := startEmulator(t, python, filepath.Join(dir, "tcp"), append(common,
		"--tcp", "127.0.0.1:0", "--format", "sample", "--jwt-secret-file", secretFile, "--seed", "1")...)
	sockPath := filepath.Join(dir, "zeusd.sock")
	uds := startEmulator(t, python, filepath.Join(dir, "uds"), append(common,
		"--socket", sockPath, "--format", "snapshot", "--seed", "2")...)
	emus := []*emulator{tcp, uds}
	env := []string{"ZEUSD_TOKEN=" + token}

	t.Run("Record", func(t *testing.T) {
		db := filepath.Join(t.TempDir(), "wattrec.db")
		rec := startWattrec(t, env, "record", "--db", db,
			"--server", tcp.addr, "--server", "unix://"+sockPath, "--flush-interval", "100ms")

		// Wait until both emulators have sent enough and dropped enough.
		deadline := time.NewTimer(acceptanceDeadline)
		defer deadline.Stop()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for !enough(t, emus) {
			select {
			case <-tick.C:
			case <-rec.done:
				t.Fatalf("wattrec record exited early (%v):\n%s", rec.err, rec.stderr())
			case <-deadline.C:
				t.Fatalf("after %v: %s; %s", acceptanceDeadline, tcp.progress(), uds.progress())
			}
		}

		// Pause the emulators, wait until the recorder has everything they
		// sent, then stop it the way an operator would.
		for _, e := range emus {
			if err := e.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
				t.Fatal(err)
			}
		}
		for !(tcp.drained && uds.drained) {
			tcp.poll(t)
			uds.poll(t)
			select {
			case <-tick.C:
			case <-rec.done:
				t.Fatalf("wattrec record exited early (%v):\n%s", rec.err, rec.stderr())
			case <-deadline.C:
				t.Fatalf("emulators did not drain their streams")
			}
		}
		if err := rec.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		stop := time.NewTimer(10 * time.Second)
		defer stop.Stop()
		select {
		case <-rec.done:
		case <-stop.C:
			t.Fatalf("wattrec record did not exit within 10s of SIGTERM:\n%s", rec.stderr())
		}
		if rec.err != nil {
			t.Fatalf("wattrec record: %v, want exit status 0:\n%s", rec.err, rec.stderr())
		}
		for _, e := range emus {
			e.poll(t) // seed reads of a reconnect racing the pause
		}

		// Export everything and compare with the ground truth.
		stdout, stderr, code := runWattrec(t, nil, "export", "--db", db, "--format", "jsonl")
		if code != 0 {
			t.Fatalf("wattrec export: exit %d:\n%s", code, stderr)
		}
		stored := parseExport(t, stdout)
		endpoints := map[string]*emulator{tcp.addr: tcp, sockPath: uds}
		for ep := range stored {
			if endpoints[ep] == nil {
				t.Errorf("export has endpoint %q, want %q or %q", ep, tcp.addr, sockPath)
			}
		}
		for _, name := range []string{tcp.addr, sockPath} {
			e := endpoints[name]
			t.Run(e.name, func(t *testing.T) { compare(t, e, stored[name]) })
		}
	})

	// The emulators are paused now; these only need /discover and /auth/whoami.
	t.Run("RefusesBadSpec", func(t *testing.T) {
		for _, servers := range [][]string{
			{"--server", tcp.addr + "?gpus=zero"},
			{"--server", "unix://relative/zeusd.sock"},
			{"--server", tcp.addr, "--server", "tcp://" + tcp.addr}, // one identity twice
		} {
			args := append([]string{"record", "--db", filepath.Join(t.TempDir(), "db")}, servers...)
			_, stderr, code := runWattrec(t, env, args...)
			if code == 0 {
				t.Errorf("record %q: exit 0, want non-zero", servers)
			}
			if strings.TrimSpace(stderr) == "" {
				t.Errorf("record %q: empty stderr, want an error", servers)
			}
			t.Logf("record %q: exit %d: %s", servers, code, strings.TrimSpace(stderr))
		}
	})

	t.Run("RefusesMissingGPUIndex", func(t *testing.T) {
		_, stderr, code := runWattrec(t, env, "record", "--db", filepath.Join(t.TempDir(), "db"),
			"--server", tcp.addr+"?gpus=0,9")
		if code == 0 {
			t.Fatalf("exit 0, want non-zero")
		}
		t.Logf("exit %d: %s", code, strings.TrimSpace(stderr))
		checkNamesIndices(t, stderr, tcp.addr, "9")
	})

	t.Run("RefusesMissingCPUIndex", func(t *testing.T) {
		_, stderr, code := runWattrec(t, nil, "record", "--db", filepath.Join(t.TempDir(), "db"),
			"--server", "unix://"+sockPath+"?gpus=none&cpus=1,5")
		if code == 0 {
			t.Fatalf("exit 0, want non-zero")
		}
		t.Logf("exit %d: %s", code, strings.TrimSpace(stderr))
		checkNamesIndices(t, stderr, sockPath, "5")
	})

	t.Run("RefusesMissingScope", func(t *testing.T) {
		gpuOnly := mintHS256(t, secret, map[string]any{"sub": "gpu-only", "scopes": []string{"gpu-read"}})
		_, stderr, code := runWattrec(t, []string{"ZEUSD_TOKEN=" + gpuOnly}, "record",
			"--db", filepath.Join(t.TempDir(), "db"), "--server", tcp.addr+"?cpus=0")
		if code == 0 {
			t.Fatalf("exit 0, want non-zero")
		}
		t.Logf("exit %d: %s", code, strings.TrimSpace(stderr))
		if !strings.Contains(stderr, tcp.addr) || !strings.Contains(stderr, "cpu-read") {
			t.Errorf("stderr does not name the endpoint %s and scope cpu-read:\n%s", tcp.addr, stderr)
		}
	})
}

// ---- emulator ---------------------------------------------------------------

type emulator struct {
	name  string // "tcp" or "uds"
	addr  string // "127.0.0.1:PORT" or the socket path
	cmd   *exec.Cmd
	done  chan struct{}
	err   error
	logf  string
	truth string

	// Parsed so far from the truth file.
	off      int64
	partial  []byte
	lines    []truthLine
	subs     map[string]int // stream -> subscriptions
	drops    map[string]int // stream -> drops
	midEvent int            // drops that cut an event short
	n        int            // non-seed readings
	drained  bool
}

// truthLine is one line of the emulator's --truth file: a device value when
// Kind is set, otherwise a connection event.
type truthLine struct {
	Kind         string  `json:"kind"`
	Device       int     `json:"device"`
	DaemonTimeMS int64   `json:"daemon_time_ms"`
	TrueTimeMS   float64 `json:"true_time_ms"`
	PowerMW      int64   `json:"power_mw"`
	Stream       string  `json:"stream"`
	Seed         bool    `json:"seed"`
	SentMS       float64 `json:"sent_ms"`

	Subscribe string `json:"subscribe"`
	Drop      string `json:"drop"`
	Partial   bool   `json:"partial"`
	Drained   bool   `json:"drained"`
}

// startEmulator runs the emulator with args; files are prefix.truth and
// prefix.log. It returns once the emulator listens, and stops it on cleanup.
func startEmulator(t *testing.T, python, prefix string, args ...string) *emulator {
	t.Helper()
	e := &emulator{name: filepath.Base(prefix), truth: prefix + ".truth", logf: prefix + ".log",
		done: make(chan struct{}), subs: map[string]int{}, drops: map[string]int{}}
	ready := prefix + ".ready"
	logFile, err := os.Create(e.logf)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close() // the child has its own copy
	e.cmd = exec.Command(python, append([]string{emulatorScript, "--truth", e.truth, "--ready", ready}, args...)...)
	e.cmd.Stdout, e.cmd.Stderr = logFile, logFile
	if err := e.cmd.Start(); err != nil {
		t.Fatalf("start emulator: %v", err)
	}
	go func() { // owned by the cleanup below, which waits on done
		e.err = e.cmd.Wait()
		close(e.done)
	}()
	t.Cleanup(func() {
		_ = e.cmd.Process.Signal(syscall.SIGTERM)
		timer := time.NewTimer(5 * time.Second)
		defer timer.Stop()
		select {
		case <-e.done:
			if e.err != nil {
				t.Errorf("emulator %s: %v\n%s", e.name, e.err, e.log())
			}
		case <-timer.C:
			_ = e.cmd.Process.Kill()
			<-e.done
			t.Errorf("emulator %s did not stop on SIGTERM", e.name)
		}
	})

	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if b, err := os.ReadFile(ready); err == nil {
			e.addr = strings.TrimSpace(string(b))
			return e
		}
		select {
		case <-tick.C:
		case <-e.done:
			t.Fatalf("emulator %s exited (%v):\n%s", e.name, e.err, e.log())
		case <-deadline.C:
			t.Fatalf("emulator %s not ready after 10s:\n%s", e.name, e.log())
		}
	}
}

func (e *emulator) log() string {
	b, _ := os.ReadFile(e.logf)
	return string(b)
}

// poll parses the lines appended to the truth file since the last call.
func (e *emulator) poll(t *testing.T) {
	t.Helper()
	f, err := os.Open(e.truth)
	if errors.Is(err, os.ErrNotExist) {
		return
	} else if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(e.off, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	e.off += int64(len(b))
	b = append(e.partial, b...)
	end := bytes.LastIndexByte(b, '\n') + 1
	e.partial = slices.Clone(b[end:])
	for _, line := range bytes.Split(b[:end], []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var l truthLine
		if err := json.Unmarshal(line, &l); err != nil {
			t.Fatalf("emulator %s truth: %v: %q", e.name, err, line)
		}
		switch {
		case l.Kind != "":
			e.lines = append(e.lines, l)
			if !l.Seed {
				e.n++
			}
		case l.Subscribe != "":
			e.subs[l.Subscribe]++
		case l.Drop != "":
			e.drops[l.Drop]++
			if l.Partial {
				e.midEvent++
			}
		case l.Drained:
			e.drained = true
		}
	}
}

func (e *emulator) progress() string {
	return fmt.Sprintf("%s: %d readings, drops %v", e.name, e.n, e.drops)
}

func enough(t *testing.T, emus []*emulator) bool {
	t.Helper()
	ok := true
	for _, e := range emus {
		e.poll(t)
		if e.n < wantReadings || e.drops["gpu"]+e.drops["cpu"] < wantDrops || e.drops["gpu"] == 0 || e.drops["cpu"] == 0 {
			ok = false
		}
	}
	return ok
}

// ---- wattrec ------------------------------------------------------------------

type process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // set before done is closed
	errb lockedBuffer
}

func (p *process) stderr() string { return p.errb.String() }

// lockedBuffer is a bytes.Buffer that exec's copier goroutine can write
// while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startWattrec runs the test binary as wattrec (see TestMain) and kills it on
// cleanup if it is still running.
func startWattrec(t *testing.T, env []string, args ...string) *process {
	t.Helper()
	p := &process{done: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], args...)
	p.cmd.Env = append(append(os.Environ(), "WATTREC_TEST_MAIN=1"), env...)
	p.cmd.Stderr = &p.errb
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { // owned by the cleanup below, which waits on done
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// runWattrec runs wattrec to completion (at most 20 s) and returns its
// output and exit code.
func runWattrec(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), "WATTREC_TEST_MAIN=1"), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("wattrec %s: still running after 20s:\n%s", strings.Join(args, " "), errb.String())
	}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("wattrec %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errb.String(), code
}

// checkNamesIndices checks that an error names the endpoint, the missing
// index and the available indices 0-3 (in whatever list syntax).
func checkNamesIndices(t *testing.T, stderr, endpoint, missing string) {
	t.Helper()
	if !strings.Contains(stderr, endpoint) {
		t.Errorf("stderr does not name the endpoint %s:\n%s", endpoint, stderr)
	}
	rest := strings.ReplaceAll(stderr, endpoint, "")
	if !regexp.MustCompile(`\b` + missing + `\b`).MatchString(rest) {
		t.Errorf("stderr does not name the missing index %s:\n%s", missing, stderr)
	}
	avail := `\b0\D{1,3}1\b`
	if missing == "9" {
		avail = `\b0\D{1,3}1\D{1,3}2\D{1,3}3\b`
	}
	if !regexp.MustCompile(avail).MatchString(rest) {
		t.Errorf("stderr does not list the available indices:\n%s", stderr)
	}
}

// ---- comparison ---------------------------------------------------------------

// exported is one line of `wattrec export --format jsonl`.
type exported struct {
	Endpoint     string  `json:"endpoint"`
	Kind         string  `json:"kind"`
	Device       int     `json:"device"`
	Time         string  `json:"time"`
	DaemonTimeMS int64   `json:"daemon_time_ms"`
	PowerW       float64 `json:"power_w"`
	Seed         bool    `json:"seed"`

	TimeMS, PowerMW int64 // from Time and PowerW
}

func parseExport(t *testing.T, out string) map[string][]exported {
	t.Helper()
	m := map[string][]exported{}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var r exported
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("export line %q: %v", sc.Text(), err)
		}
		tm, err := time.Parse(time.RFC3339Nano, r.Time)
		if err != nil {
			t.Fatalf("export line %q: time: %v", sc.Text(), err)
		}
		r.TimeMS, r.PowerMW = tm.UnixMilli(), int64(math.Round(r.PowerW*1000))
		if float64(r.PowerMW)/1000 != r.PowerW {
			t.Fatalf("export line %q: power_w %v is not a whole number of milliwatts", sc.Text(), r.PowerW)
		}
		m[r.Endpoint] = append(m[r.Endpoint], r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

type series struct {
	kind   string
	device int
}

func (s series) String() string { return fmt.Sprintf("%s:%d", s.kind, s.device) }

type value struct {
	series
	daemonMS, mw int64
}

// compare checks one endpoint's stored readings against its truth file:
// every streamed value is stored, nothing stored was not sent, and corrected
// times are within maxTimeErrMS of true time.
func compare(t *testing.T, e *emulator, got []exported) {
	// Index the truth. A value sent twice (on two connections at once) is
	// one reading in the store: identical replays are skipped.
	streamed := map[value]float64{} // -> true time
	seeds := map[value]float64{}
	dupTruth := 0
	perSeries := map[series]int{}
	for _, l := range e.lines {
		v := value{series{l.Kind, l.Device}, l.DaemonTimeMS, l.PowerMW}
		if l.Seed {
			seeds[v] = l.TrueTimeMS
			continue
		}
		if _, ok := streamed[v]; ok {
			dupTruth++
		}
		streamed[v] = l.TrueTimeMS
		perSeries[v.series]++
	}

	// Index the store and check each reading.
	flagged := map[value][2]int{} // copies of each value: [streamed, seed]
	stored := map[series]int{}
	var storedSeeds, extra, seedAsStream, unknownSeed, dups int
	var errSum, errMax float64
	var errN, errOver int
	var examples []string
	example := func(format string, args ...any) {
		if len(examples) < 10 {
			examples = append(examples, fmt.Sprintf(format, args...))
		}
	}
	for _, r := range got {
		v := value{series{r.Kind, r.Device}, r.DaemonTimeMS, r.PowerMW}
		f := flagged[v]
		if r.Seed {
			f[1]++
		} else {
			f[0]++
		}
		flagged[v] = f
		key := fmt.Sprintf("%v@%d=%d seed=%v", v.series, v.daemonMS, v.mw, r.Seed)
		trueMS, inStream := streamed[v]
		seedMS, inSeeds := seeds[v]
		switch {
		case r.Seed && !inStream && !inSeeds:
			unknownSeed++
			example("stored seed not served by get_power: %s", key)
			continue
		case !r.Seed && !inStream && inSeeds:
			seedAsStream++
			example("get_power value stored as streamed: %s", key)
		case !r.Seed && !inStream:
			extra++
			example("stored but never sent: %s", key)
			continue
		}
		if r.Seed {
			storedSeeds++
		} else {
			stored[v.series]++
		}
		if !inStream {
			trueMS = seedMS
		}
		d := math.Abs(float64(r.TimeMS) - trueMS)
		errSum += d
		errN++
		errMax = max(errMax, d)
		if d > maxTimeErrMS {
			errOver++
			example("time error %.3f ms > %v: %s time_ms=%d true=%.3f", d, maxTimeErrMS, key, r.TimeMS, trueMS)
		}
	}
	var both int // values get_power and the stream both delivered: stored once, as the seed
	for v, f := range flagged {
		for i, n := range f {
			if n > 1 {
				dups += n - 1
				example("stored %d times with seed=%v: %v@%d=%d", n, i == 1, v.series, v.daemonMS, v.mw)
			}
		}
		if f[0] > 0 && f[1] > 0 {
			dups++
			example("stored twice, as seed and as streamed: %v@%d=%d", v.series, v.daemonMS, v.mw)
		}
	}
	// A streamed value must be stored. The store keeps a seed and the
	// streamed event that repeats it (same daemon time and value) as one
	// reading, the seed: a streamed value stored as a seed counts, when
	// get_power did serve that very sample.
	var missing, onlySeed int
	missingPer := map[series]int{}
	for v := range streamed {
		_, served := seeds[v]
		switch f := flagged[v]; {
		case f[0] > 0:
		case f[1] > 0 && served:
			both++
		case f[1] > 0:
			onlySeed++
			missingPer[v.series]++
			example("sent on the stream, stored only as a seed get_power never served: %v@%d=%d", v.series, v.daemonMS, v.mw)
		default:
			missing++
			missingPer[v.series]++
			example("sent but not stored: %v@%d=%d", v.series, v.daemonMS, v.mw)
		}
	}

	// Summary for the record.
	keys := make([]series, 0, len(perSeries))
	for s := range perSeries {
		keys = append(keys, s)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].kind != keys[j].kind {
			return keys[i].kind < keys[j].kind
		}
		return keys[i].device < keys[j].device
	})
	var per []string
	for _, s := range keys {
		per = append(per, fmt.Sprintf("%v=%d/%d", s, stored[s], perSeries[s]))
	}
	mean := 0.0
	if errN > 0 {
		mean = errSum / float64(errN)
	}
	t.Logf("%s %s: %d values sent, %d stored (+%d seeds); per series stored/sent: %s",
		e.name, e.addr, len(streamed), len(got)-storedSeeds, storedSeeds, strings.Join(per, " "))
	t.Logf("%s: time error |time_ms - true| max %.3f ms, mean %.3f ms over %d readings; subscriptions %v; drops %v (%d mid-event)",
		e.name, errMax, mean, errN, e.subs, e.drops, e.midEvent)

	// Verdict.
	wantSeries := []series{{"gpu", 0}, {"gpu", 1}, {"gpu", 2}, {"gpu", 3}, {"cpu", 0}, {"cpu", 1}, {"dram", 0}}
	for _, s := range wantSeries {
		if perSeries[s] == 0 {
			t.Errorf("emulator sent nothing for %v", s)
		}
	}
	for s := range perSeries {
		if !slices.Contains(wantSeries, s) {
			t.Errorf("emulator sent unexpected series %v", s)
		}
	}
	if both > 0 {
		t.Logf("%d values were both seed and streamed; the store keeps one reading of each, the seed", both)
	}
	if dupTruth > 0 {
		t.Logf("%d values were sent twice; the store keeps one reading of each", dupTruth)
	}
	if missing+onlySeed > 0 {
		t.Errorf("%d of %d sent values are not in the store (%d more only as seeds); per series: %v",
			missing, len(streamed), onlySeed, missingPer)
	}
	if extra > 0 {
		t.Errorf("%d stored readings were never sent", extra)
	}
	if seedAsStream > 0 {
		t.Errorf("%d get_power values are stored with seed=false", seedAsStream)
	}
	if unknownSeed > 0 {
		t.Errorf("%d stored seed readings were never served by get_power", unknownSeed)
	}
	if dups > 0 {
		t.Errorf("%d readings are stored more than once", dups)
	}
	if errOver > 0 {
		t.Errorf("%d readings have a time error over %v ms", errOver, maxTimeErrMS)
	}
	if t.Failed() {
		t.Logf("examples:\n  %s", strings.Join(examples, "\n  "))
	}
}

// mintHS256 makes a JWT signed with HS256, using the standard library only so
// the test does not share code with anything under test.
func mintHS256(t *testing.T, secret []byte, claims map[string]any) string {
	t.Helper()
	enc := base64.RawURLEncoding
	header, err := json.Marshal(map[string]string{"alg": "HS256", "typ": "JWT"})
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	signing := enc.EncodeToString(header) + "." + enc.EncodeToString(payload)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(mac.Sum(nil))
}
