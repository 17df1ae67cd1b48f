package chart

import (
	"bytes"
	"context"
	"slices"
	"testing"

	"github.com/wattrec/wattrec/query"
)

// TestBars: the worked examples' two epochs as bars stacked by kind:
// one bar per instance and kind, labelled with the instance and its
// total joules from query's rows (epoch #1: 700 + 150 + 30 J; epoch #2:
// 1050 + 350 + 60 J).
func TestBars(t *testing.T) {
	db := workedExample(t)
	rep, err := query.Energy(context.Background(), db, query.Options{Window: "epoch", By: query.ByKind})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Bars(&buf, rep, FormatSVG, 800, 300); err != nil {
		t.Fatal(err)
	}
	paths, texts := parseSVG(t, buf.String())
	for i, kind := range []string{"gpu", "cpu", "dram"} {
		n := 0
		for _, p := range paths {
			if near(p.fill, lineColor(i)) && p.fillOpacity == 1 && len(p.pts) == 4 {
				n++
			}
		}
		if n != 3 { // two bars and the legend's sample
			t.Errorf("%s: %d filled boxes, want 2 bars and a legend sample", kind, n)
		}
	}
	for _, want := range []string{`energy per instance of "epoch"`, "epoch #1", "epoch #2", "880.0 J", "1460 J", "gpu", "cpu", "dram", "energy (J)"} {
		if !slices.Contains(texts, want) {
			t.Errorf("no text %q in %q", want, texts)
		}
	}
	if err := Bars(&buf, &query.Report{}, FormatSVG, 800, 300); err == nil {
		t.Error("bars of a report without a window")
	}
}
