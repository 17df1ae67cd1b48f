package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/wattrec/wattrec/internal/tsdbtest"
	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/remotewrite"
	"github.com/wattrec/wattrec/store"
)

// importBlock is how many samples of one series a line of the import
// file holds at most.
const importBlock = 50_000

// integrateRounds is how many times BenchmarkVictoriaMetrics times the
// energy query (after one untimed run).
const integrateRounds = 10

// BenchmarkVictoriaMetrics is the baseline of the issue-14 goals: a
// fresh local single-node VictoriaMetrics (the Debian package; skipped
// when it is not installed), sharing the machine's cores, with its
// caches limited to 512 MiB and its rollup cache off, given the 24 h
// data set: the readings wattrec stores (GPU power per device, CPU
// package and DRAM per package, at their corrected time, in watts) as
// remotewrite.PowerMetric with the labels endpoint, kind and device.
//
// Before the timer starts, the samples are written to a file of JSON
// lines in the format of /api/v1/import, one line per series per block
// of at most importBlock samples. What is timed is from the start of
// one POST of that file to /api/v1/import until VictoriaMetrics answers
// (import-s) and then, calling /internal/force_flush and a count query
// until that query sees every sample, until the start of the count
// query that does (queryable-s); samples/s, the headline, is samples /
// queryable-s. ns/op runs on to the end of that count query.
//
// Untimed, after that: disk-B/sample is the space its data directory
// takes on disk (as du counts it) after a forced flush and merge, per
// sample; integrate-ms is the median wall time of integrateRounds HTTP
// queries of sum(integrate(wattrec_power_watts{kind="gpu"}[24h])) at the
// end of the data set (the joules of the 8 GPUs over the day, what
// BenchmarkJoules/counters=no/gpus=8/window=24h computes in process),
// after one untimed run; J is what that query returns, and J-diff-ppm
// its difference from query.Energy's joules for the same window, in
// millionths of them (both hold each GPU value until the next, from
// the sample at the window's start, but VictoriaMetrics sums float
// watts where wattrec sums integer µJ: they may differ by rounding;
// the log has both figures); peak-RSS-MB is VictoriaMetrics' peak RSS
// over all of it.
func BenchmarkVictoriaMetrics(b *testing.B) {
	ctx := context.Background()
	span := 24 * time.Hour
	b.Run("span=24h", func(b *testing.B) {
		b.StopTimer()
		path := filepath.Join(tmpDir, "vm-import-24h.jsonl")
		samples, err := writeImport(path, span)
		if err != nil {
			b.Fatal(err)
		}
		defer os.Remove(path)
		end := Start.Add(span).Add(OffsetMs * time.Millisecond)
		want, err := wattrecJoules(ctx, span)
		if err != nil {
			b.Fatal(err)
		}
		for range b.N {
			vm := tsdbtest.VictoriaMetrics(b, "-memory.allowedBytes=512MiB")

			// Import, until every sample is queryable.
			count := fmt.Sprintf("sum(count_over_time(%s[%dh]))", remotewrite.PowerMetric, int(span.Hours())+1)
			b.StartTimer()
			t0 := time.Now()
			if err := postImport(ctx, vm.URL, path); err != nil {
				b.Fatal(err)
			}
			imported := time.Since(t0)
			var queryable time.Duration
			deadline := time.Now().Add(time.Minute)
			for {
				vm.Flush(b)
				tq := time.Now()
				n, _ := vm.Scalar(b, count, end)
				if int64(n) == samples {
					queryable = tq.Sub(t0)
					break
				}
				if int64(n) > samples || time.Now().After(deadline) {
					b.Fatalf("VictoriaMetrics counts %.0f samples, want %d", n, samples)
				}
				<-time.After(20 * time.Millisecond)
			}
			b.StopTimer()

			// Disk.
			vm.ForceMerge(b)
			disk, err := diskUsage(vm.DataDir)
			if err != nil {
				b.Fatal(err)
			}

			// Energy of the 8 GPUs over the day.
			energy := fmt.Sprintf(`sum(integrate(%s{kind="gpu"}[%dh]))`, remotewrite.PowerMetric, int(span.Hours()))
			joules, ok := vm.Scalar(b, energy, end)
			if !ok {
				b.Fatalf("%s: no result", energy)
			}
			times := make([]time.Duration, integrateRounds)
			for i := range times {
				t := time.Now()
				// It sums in parallel, in no fixed order.
				if got, _ := vm.Scalar(b, energy, end); math.Abs(got-joules) > 1e-9*joules {
					b.Fatalf("%s: %v J, then %v J", energy, joules, got)
				}
				times[i] = time.Since(t)
			}
			slices.Sort(times)
			median := (times[(len(times)-1)/2] + times[len(times)/2]) / 2

			b.Logf("8 GPUs over %v: VictoriaMetrics %.6f J, wattrec %.6f J, relative difference %.3g", span, joules, want, (joules-want)/want)
			b.ReportMetric(float64(samples), "samples")
			b.ReportMetric(float64(samples)/queryable.Seconds(), "samples/s")
			b.ReportMetric(imported.Seconds(), "import-s")
			b.ReportMetric(queryable.Seconds(), "queryable-s")
			b.ReportMetric(float64(disk)/float64(samples), "disk-B/sample")
			b.ReportMetric(float64(median.Microseconds())/1000, "integrate-ms")
			b.ReportMetric(joules, "J")
			b.ReportMetric((joules-want)/want*1e6, "J-diff-ppm")
			b.ReportMetric(float64(statusField(fmt.Sprintf("/proc/%d/status", vm.PID()), "VmHWM"))/1024, "peak-RSS-MB")
			vm.Stop(b)
		}
	})
}

// writeImport writes the samples of span of the data set to path as
// VictoriaMetrics' JSON lines and returns how many it wrote.
func writeImport(path string, span time.Duration) (samples int64, err error) {
	r, err := Replay(span)
	if err != nil {
		return 0, err
	}
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("write %s: %w", path, cerr)
		}
	}()
	w := bufio.NewWriterSize(f, 1<<20)
	type block struct {
		metric []byte
		ts     []int64
		mw     []int64
	}
	blocks := map[store.SeriesKey]*block{}
	var line []byte
	flush := func(bl *block) error {
		if len(bl.ts) == 0 {
			return nil
		}
		line = append(append(append(line[:0], `{"metric":`...), bl.metric...), `,"values":[`...)
		for i, mw := range bl.mw {
			if i > 0 {
				line = append(line, ',')
			}
			line = strconv.AppendFloat(line, float64(mw)/1000, 'f', -1, 64)
		}
		line = append(line, `],"timestamps":[`...)
		for i, t := range bl.ts {
			if i > 0 {
				line = append(line, ',')
			}
			line = strconv.AppendInt(line, t, 10)
		}
		line = append(line, "]}\n"...)
		samples += int64(len(bl.ts))
		bl.ts, bl.mw = bl.ts[:0], bl.mw[:0]
		_, err := w.Write(line)
		return err
	}
	add := func(kind store.Kind, dev int, daemonMs, mw int64) error {
		k := store.SeriesKey{Endpoint: Endpoint, Kind: kind, Device: int32(dev)}
		bl := blocks[k]
		if bl == nil {
			metric, err := json.Marshal(map[string]string{"__name__": remotewrite.PowerMetric,
				"endpoint": Endpoint, "kind": kind.String(), "device": strconv.Itoa(dev)})
			if err != nil {
				return err
			}
			bl = &block{metric: metric}
			blocks[k] = bl
		}
		bl.ts, bl.mw = append(bl.ts, daemonMs+OffsetMs), append(bl.mw, mw)
		if len(bl.ts) == importBlock {
			return flush(bl)
		}
		return nil
	}
	for v := range r.Values("gpu") {
		if err := add(store.KindGPU, v.Device, v.DaemonMs, v.Power); err != nil {
			return 0, fmt.Errorf("write %s: %w", path, err)
		}
	}
	for v := range r.Values("cpu") {
		if err := add(store.KindCPU, v.Device, v.DaemonMs, v.Power); err != nil {
			return 0, fmt.Errorf("write %s: %w", path, err)
		}
		if v.HasDRAM {
			if err := add(store.KindDRAM, v.Device, v.DaemonMs, v.DRAM); err != nil {
				return 0, fmt.Errorf("write %s: %w", path, err)
			}
		}
	}
	for _, bl := range blocks {
		if err := flush(bl); err != nil {
			return 0, fmt.Errorf("write %s: %w", path, err)
		}
	}
	if err := w.Flush(); err != nil {
		return 0, fmt.Errorf("write %s: %w", path, err)
	}
	return samples, nil
}

// postImport sends the file at path to VictoriaMetrics' /api/v1/import
// at base and returns once it has answered.
func postImport(ctx context.Context, base, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/import", f)
	if err != nil {
		return err
	}
	req.ContentLength = st.Size()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("import %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
		return fmt.Errorf("import %s: %s: %s", path, resp.Status, body)
	}
	return nil
}

// diskUsage is the space the files under dir take on disk, as du
// counts it.
func diskUsage(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return errors.New("no stat_t")
		}
		n += st.Blocks * 512
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("disk usage of %s: %w", dir, err)
	}
	return n, nil
}

// wattrecJoules is query.Energy's joules for the 8 GPUs over span of the
// stored data set without counter readings, as
// BenchmarkJoules/counters=no/gpus=8 computes them.
func wattrecJoules(ctx context.Context, span time.Duration) (float64, error) {
	db, err := streamDB()
	if err != nil {
		return 0, err
	}
	opt, err := energyOptions("gpu", 0, span)
	if err != nil {
		return 0, err
	}
	rep, err := query.Energy(ctx, db, opt)
	if err != nil {
		return 0, err
	}
	if len(rep.Rows) != 1 {
		return 0, fmt.Errorf("energy of the GPUs: %d rows, want 1", len(rep.Rows))
	}
	return float64(rep.Rows[0].EnergyUJ) / 1e6, nil
}
