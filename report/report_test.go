package report_test

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wattrec/wattrec/chart"
	"github.com/wattrec/wattrec/internal/simtest"
	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/report"
	"github.com/wattrec/wattrec/store"
)

var (
	rowRE  = regexp.MustCompile(`(?s)<tr[^>]*>(.*?)</tr>`)
	cellRE = regexp.MustCompile(`(?s)<t[dh][^>]*>(.*?)</t[dh]>`)
)

// tableRows is the cells of each row of the table with id in page.
func tableRows(t *testing.T, page, id string) [][]string {
	t.Helper()
	start := strings.Index(page, `<table id="`+id+`">`)
	if start < 0 {
		t.Fatalf("no table %q", id)
	}
	body := page[start : start+strings.Index(page[start:], "</table>")]
	var rows [][]string
	for _, r := range rowRE.FindAllStringSubmatch(body, -1) {
		var cells []string
		for _, c := range cellRE.FindAllStringSubmatch(r[1], -1) {
			cells = append(cells, c[1])
		}
		rows = append(rows, cells)
	}
	return rows
}

// row is the row of rows whose first cells are first.
func row(t *testing.T, rows [][]string, first ...string) []string {
	t.Helper()
	for _, r := range rows {
		if len(r) >= len(first) && slices.Equal(r[:len(first)], first) {
			return r
		}
	}
	t.Fatalf("no row %q in %q", first, rows)
	return nil
}

// TestWrite: the report of the worked examples holds their numbers in
// its energy and window tables, the timeline and the bars inline, the
// recording's sessions and gaps, and fetches nothing.
func TestWrite(t *testing.T) {
	db := simtest.MustOpenDB(t)
	simtest.WriteWorkedExample(t, db)
	if _, err := db.AddMark(context.Background(), "x<i>y", "test", simtest.WorkedAt(3), simtest.WorkedAt(5), simtest.WorkedAt(20)); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	req := report.Request{Filter: query.Filter{Range: query.Between(simtest.WorkedAt(1), simtest.WorkedAt(10))}, UTC: true,
		Version: "v9.9.9", Generated: time.Date(2026, 11, 28, 17, 0, 0, 0, time.UTC)}
	if err := report.Write(context.Background(), &buf, db, req); err != nil {
		t.Fatal(err)
	}
	page := buf.String()

	// Self-contained: no script, stylesheet, image or font from anywhere;
	// the only URLs are the SVG namespaces. A mark named x<i>y stays text.
	for _, bad := range []string{"<script", "<link", " src=", "url(", "@import", "<iframe", "<i>"} { // a mark's name is text
		if strings.Contains(page, bad) {
			t.Errorf("the page has %q", bad)
		}
	}
	for _, u := range regexp.MustCompile(`https?://[^"' )]*`).FindAllString(page, -1) {
		if !strings.HasPrefix(u, "http://www.w3.org/") {
			t.Errorf("the page refers to %s", u)
		}
	}
	for _, want := range []string{"@media print", `<svg role="img" class="chart"`, "n1:4938 gpu:0 — 1750 J, coverage 77.77 %",
		"energy per instance of &#34;epoch&#34;", "x&lt;i&gt;y", "wattrec v9.9.9 at 2026-11-28 17:00:00 UTC", "2026-11-28 16:00:01.000 → 2026-11-28 16:00:10.000 (9s)"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}

	// The energy tables: the query's numbers, as it prints them.
	dev := tableRows(t, page, "energy-device")
	if got, want := dev[0], []string{"group", "joules", "± J", "anchored J", "± J", "bridged", "avg W", "peak W", "samples", "coverage", "gaps", "longest gap", "integral/counter"}; !slices.Equal(got, want) {
		t.Errorf("energy-device header %q, want %q", got, want)
	}
	if got, want := row(t, dev, "n1:4938 gpu:0"), []string{"n1:4938 gpu:0", "1750.000", "13.000", "2310.000", "11.001", "2s", "250.000", "300.000", "3", "0.7778", "1", "2s", "0.9524"}; !slices.Equal(got, want) {
		t.Errorf("gpu:0 %q, want %q", got, want)
	}
	if got := row(t, dev, "total"); got[1] != "2340.000" {
		t.Errorf("total %q, want 2340.000 J", got)
	}
	if got := row(t, tableRows(t, page, "energy-kind"), "cpu"); got[1] != "500.000" {
		t.Errorf("cpu %q, want 500.000 J", got)
	}
	if got := row(t, tableRows(t, page, "energy-endpoint"), "n1:4938"); got[1] != "2340.000" {
		t.Errorf("endpoint %q, want 2340.000 J", got)
	}
	epoch := tableRows(t, page, "window-epoch")
	for inst, joules := range map[string]string{"epoch #1": "880.000", "epoch #2": "1460.000", "sum": "2340.000"} {
		if got := row(t, epoch, inst); got[4] != joules {
			t.Errorf("%s: %q, want %s J", inst, got, joules)
		}
	}
	if got := row(t, tableRows(t, page, "window-step"), "step #1"); got[4] != "360.000" { // 1 s of 300 + 50 + 10 W
		t.Errorf("step #1: %q, want 360.000 J", got)
	}

	// The recording: both GPU sessions and the gap between them.
	sessions := tableRows(t, page, "sessions")
	if len(sessions) != 1+3 {
		t.Errorf("%d session rows, want 3", len(sessions)-1)
	}
	if got, want := row(t, tableRows(t, page, "gaps"), "n1:4938", "gpu")[2:], []string{"2026-11-28 16:00:06.000", "2026-11-28 16:00:08.000", "2s", "server closed the stream"}; !slices.Equal(got, want) {
		t.Errorf("gap %q, want %q", got, want)
	}
}

// TestWrite_Refuses: a report refuses what a plot refuses, and writes
// nothing then.
func TestWrite_Refuses(t *testing.T) {
	db := simtest.MustOpenDB(t)
	simtest.WriteWorkedExample(t, db)
	for name, tc := range map[string]struct {
		filter query.Filter
		want   error
	}{
		"UnknownDevice":   {query.Filter{Devices: []query.DeviceFilter{{Kind: store.KindGPU, Device: 7}}}, chart.ErrNoSeries},
		"NothingRecorded": {query.Filter{Range: query.Between(simtest.WorkedAt(100), simtest.WorkedAt(200))}, chart.ErrNoData},
	} {
		var buf bytes.Buffer
		err := report.Write(context.Background(), &buf, db, report.Request{Filter: tc.filter})
		if !errors.Is(err, tc.want) || buf.Len() != 0 {
			t.Errorf("%s: err = %v, %d bytes written; want %v and nothing", name, err, buf.Len(), tc.want)
		}
	}
}
