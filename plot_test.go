package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wattrec/wattrec/internal/simtest"
	"github.com/wattrec/wattrec/simulator"
	"github.com/wattrec/wattrec/store"
)

// workedFile writes the worked examples (simtest.WriteWorkedExample) to
// a closed file in a fresh directory and returns its path.
func workedFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "w.db")
	db, err := store.Open(path, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	simtest.WriteWorkedExample(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// workedWindow is the worked examples' window [1 s, 10 s) as flags.
var workedWindow = []string{"--from", "2026-11-28T16:00:01Z", "--to", "2026-11-28T16:00:10Z"}

// dirFiles lists the names in dir.
func dirFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestPlot_CLI: plot and report write their files atomically from the
// flags, leave the database as it was, and refuse what they cannot do
// with a message, its hint, and no file left behind.
func TestPlot_CLI(t *testing.T) {
	db := workedFile(t)
	dir := filepath.Dir(db)
	before := hashFile(t, db)

	svg := filepath.Join(dir, "w.svg")
	if _, err := run(t, append([]string{"plot", "--db", db, "-o", svg, "--utc"}, workedWindow...)...); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(svg)
	if err != nil || !bytes.Contains(b, []byte("<svg")) || !bytes.Contains(b, []byte("n1:4938 gpu:0 — 1750 J, coverage 77.77 %")) {
		t.Fatalf("plot -o w.svg: %v\n%.300s", err, b)
	}
	pngPath := filepath.Join(dir, "w.png")
	if _, err := run(t, append([]string{"plot", "--db", db, "-o", pngPath, "--by", "kind", "--width", "800", "--height", "400"}, workedWindow...)...); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(pngPath)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil || img.Bounds().Dx() != 800 || img.Bounds().Dy() != 400 {
		t.Fatalf("plot -o w.png: %v, %v", err, img.Bounds())
	}
	html := filepath.Join(dir, "w.html")
	if _, err := run(t, "report", "--db", db, "-o", html); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(html); err != nil || !bytes.Contains(b, []byte(`<table id="energy-device">`)) {
		t.Fatalf("report: %v", err)
	}
	if _, err := run(t, "plot", "--db", db, "-o", svg, "--window", "epoch", "--force"); err != nil {
		t.Fatalf("plot --window epoch --force: %v", err)
	}

	want := []string{"w.db", "w.html", "w.png", "w.svg"}
	for _, tc := range []struct {
		name string
		args []string
		err  string // in the message
		hint string // in the hint line
	}{
		{"UnknownDevice", []string{"plot", "-o", "x.svg", "--device", "gpu:7"}, "no series match the filters (gpu:7)", "wattrec info --db FILE"},
		{"UnknownWindow", []string{"plot", "-o", "x.svg", "--window", "warmup"}, `no window named "warmup" (marks: epoch, step)`, "wattrec mark list"},
		{"EmptyWindow", []string{"plot", "-o", "x.png", "--from", "2026-11-28T16:00:03Z", "--to", "2026-11-28T16:00:03Z"}, "empty window", ""},
		{"NothingRecorded", []string{"report", "-o", "x.html", "--from", "2026-11-28T17:00:00Z", "--to", "2026-11-28T18:00:00Z"}, "holds no value of the 3 selected series", "choose --from/--to inside it"},
		{"Unwritable", []string{"plot", "-o", filepath.Join(dir, "no", "such", "dir", "x.svg")}, "no such file or directory", "-o must name a file in an existing directory"},
		{"Format", []string{"plot", "-o", "x.jpg"}, `want .svg or .png`, "-o FILE.svg or -o FILE.png"},
		{"Exists", []string{"plot", "-o", "w.svg"}, "output file exists", "use --force"},
		{"By", []string{"plot", "-o", "x.svg", "--by", "node"}, `--by "node"`, ""},
		{"Width", []string{"plot", "-o", "x.svg", "--width", "10"}, "--width 10: want 320 to 10000 pixels", ""},
		{"ReportDevice", []string{"report", "-o", "x.html", "--device", "dram:3"}, "no series match", "--device takes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{}, tc.args...)
			for i, a := range args { // outputs are in the file's directory
				if i > 0 && (args[i-1] == "-o") && !filepath.IsAbs(a) {
					args[i] = filepath.Join(dir, a)
				}
			}
			_, err := run(t, append(args, "--db", db)...)
			if err == nil {
				t.Fatalf("%s succeeded", args)
			}
			msg, hint, _ := strings.Cut(withHint(err).Error(), "\n")
			if !strings.Contains(msg, tc.err) || !strings.Contains(hint, tc.hint) {
				t.Errorf("%s:\n%s\n%s\nwant %q, hint %q", args, msg, hint, tc.err, tc.hint)
			}
			if got := dirFiles(t, dir); !slices.Equal(got, want) {
				t.Errorf("files after the failure: %q, want %q", got, want)
			}
		})
	}
	if hashFile(t, db) != before {
		t.Error("plot or report changed the database file")
	}
}

// findBrowser is the headless browser the report test opens its page
// in, or "" with the reason it is skipped. With CI_REQUIRE_BROWSER=1
// (.ci/run sets it) a missing browser fails the test instead.
func findBrowser(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI_REQUIRE_BROWSER") == "1" {
		t.Fatal("CI_REQUIRE_BROWSER=1 but no chromium on PATH (apt-get install chromium)")
	}
	t.Skip("no chromium on PATH: apt-get install chromium to open the report in a real browser (CI requires it)")
	return ""
}

// browse runs the headless browser on page with args and returns its
// standard output.
func browse(t *testing.T, browser, page string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	home := t.TempDir() // the browser's profile and caches, not the user's
	cmd := exec.CommandContext(ctx, browser, append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--no-first-run", "--user-data-dir=" + filepath.Join(home, "profile"), "--window-size=1280,2000"}, append(args, "file://"+page)...)...)
	cmd.Env = append(os.Environ(), "HOME="+home)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", browser, args, err, stderr.String())
	}
	return stdout.Bytes()
}

// TestReport_Browser opens the report in headless chromium: the page
// renders (the screenshot is not blank), and its DOM holds the energy
// table with the numbers `wattrec query` prints for the same window.
func TestReport_Browser(t *testing.T) {
	t.Parallel()
	browser := findBrowser(t)
	db := workedFile(t)
	page := filepath.Join(filepath.Dir(db), "w.html")
	if _, err := run(t, append([]string{"report", "--db", db, "-o", page}, workedWindow...)...); err != nil {
		t.Fatal(err)
	}

	shot := filepath.Join(t.TempDir(), "shot.png")
	browse(t, browser, page, "--screenshot="+shot)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	inked := 0
	for y := 0; y < img.Bounds().Dy(); y += 2 {
		for x := 0; x < img.Bounds().Dx(); x += 2 {
			c := color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)
			if c.R < 200 || c.G < 200 || c.B < 200 {
				inked++
			}
		}
	}
	if total := img.Bounds().Dx() * img.Bounds().Dy() / 4; inked < total/50 {
		t.Errorf("the screenshot is nearly blank: %d of %d sampled pixels inked", inked, total)
	}

	dom := string(browse(t, browser, page, "--dump-dom"))
	csvOut, _, err := runBoth(t, append([]string{"query", "--db", db, "--format", "csv"}, workedWindow...)...)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(strings.NewReader(csvOut)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	table := regexp.MustCompile(`(?s)<table id="energy-device">.*?</table>`).FindString(dom)
	if table == "" {
		t.Fatalf("the DOM has no energy-device table:\n%.2000s", dom)
	}
	rows := map[string][]string{}
	for _, r := range regexp.MustCompile(`(?s)<tr[^>]*>(.*?)</tr>`).FindAllStringSubmatch(table, -1) {
		var cells []string
		for _, c := range regexp.MustCompile(`(?s)<t[dh][^>]*>(.*?)</t[dh]>`).FindAllStringSubmatch(r[1], -1) {
			cells = append(cells, c[1])
		}
		rows[cells[0]] = cells
	}
	col := func(name string) int { return slices.Index(recs[0], name) }
	for _, rec := range recs[1:] {
		group := rec[col("group")]
		cells, ok := rows[group]
		if !ok {
			t.Errorf("the DOM's table has no row %q", group)
			continue
		}
		j, _ := strconv.ParseFloat(rec[col("joules")], 64)
		c, _ := strconv.ParseFloat(rec[col("coverage")], 64)
		at := func(name string) string { return cells[slices.Index(rows["group"], name)] }
		if want := []string{strconv.FormatFloat(j, 'f', 3, 64), strconv.FormatFloat(c, 'f', 4, 64), rec[col("samples")], rec[col("gaps")]}; !slices.Equal([]string{at("joules"), at("coverage"), at("samples"), at("gaps")}, want) {
			t.Errorf("%s: the DOM says %q, query says %q", group, cells, want)
		}
	}
	if len(rows) != len(recs) { // the header and the groups with the total
		t.Errorf("the DOM's table has %d rows, query %d", len(rows), len(recs))
	}
}

// TestPlot_Live: plot and report reach a running recorder's file through
// its control socket (the file itself is locked), and work on it again
// after the recorder stopped.
func TestPlot_Live(t *testing.T) {
	sent := simtest.NewLedger()
	cfg := simtest.FastConfig(simulator.FormatSample)
	cfg.OnEvent = sent.OnEvent(t)
	_, srv, _ := simtest.Start(t, cfg, "unix")
	dir := t.TempDir()
	db := filepath.Join(dir, "live.db")
	cmd, out := child(t, nil, "record", "--db", db, "--server", "unix://"+srv.Address)
	simtest.WaitFor(t, func() bool { return strings.Contains(out.String(), "msg=recording") })
	sent.WaitEvents(t, 200)

	check := func(when string) {
		t.Helper()
		svg, html := filepath.Join(dir, when+".svg"), filepath.Join(dir, when+".html")
		if _, err := run(t, "plot", "--db", db, "-o", svg); err != nil {
			t.Fatalf("plot %s: %v", when, err)
		}
		b, _ := os.ReadFile(svg)
		for _, dev := range []string{"gpu:0 — ", "gpu:1 — ", "cpu:0 — ", "dram:0 — "} {
			if !bytes.Contains(b, []byte(dev)) {
				t.Errorf("plot %s: no legend entry %q", when, dev)
			}
		}
		if _, err := run(t, "report", "--db", db, "-o", html); err != nil {
			t.Fatalf("report %s: %v", when, err)
		}
		if b, _ := os.ReadFile(html); !bytes.Contains(b, []byte(`<table id="energy-device">`)) {
			t.Errorf("report %s has no energy table", when)
		}
	}
	check("live")
	stopChild(t, cmd, out)
	check("after")
	if _, err := os.Stat(db + ".sock"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("control socket after the recorder stopped: %v", err)
	}
}
