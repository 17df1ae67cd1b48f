package store_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/wattrec/wattrec/store"
)

func TestDB_Marks(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	if ms, err := db.Marks(ctx, ""); err != nil || len(ms) != 0 {
		t.Fatalf("marks of a new file = %v, %v", ms, err)
	}
	b := store.Batch{Marks: []store.Mark{
		{Name: "epoch", BeginMs: 200, EndMs: 300},
		{Name: "run", BeginMs: 100, Open: true},
		{Name: "epoch", BeginMs: 100, EndMs: 200},
	}}
	if err := db.Write(ctx, &b); err != nil {
		t.Fatal(err)
	}
	epochs, err := db.Marks(ctx, "epoch")
	if err != nil {
		t.Fatal(err)
	}
	if len(epochs) != 2 || epochs[0].BeginMs != 100 || epochs[1].BeginMs != 200 || epochs[0].ID == epochs[1].ID {
		t.Fatalf("epochs = %+v, want two, ordered by begin, distinct ids", epochs)
	}
	// End the open mark: an upsert by ID.
	runs, _ := db.Marks(ctx, "run")
	run := runs[0]
	run.Open, run.EndMs = false, 400
	if err := db.Write(ctx, &store.Batch{Marks: []store.Mark{run}}); err != nil {
		t.Fatal(err)
	}
	all, _ := db.Marks(ctx, "")
	if len(all) != 3 {
		t.Fatalf("marks = %+v, want 3", all)
	}
	if got, _ := db.Marks(ctx, "run"); got[0] != run {
		t.Fatalf("ended mark = %+v, want %+v", got[0], run)
	}
	if err := db.Write(ctx, &store.Batch{Marks: []store.Mark{{Name: "bad", BeginMs: 10, EndMs: 5}}}); err == nil {
		t.Fatal("a mark that ends before it begins was stored")
	}
}

// TestDB_Marks_KeptIDs: marks written with their own IDs (a copy of
// another file's) keep them, and a new mark, in the same batch or later,
// gets an ID after all of them instead of overwriting one.
func TestDB_Marks_KeptIDs(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	b := store.Batch{Marks: []store.Mark{
		{ID: 1, Name: "a", BeginMs: 100, EndMs: 200},
		{ID: 7, Name: "b", BeginMs: 300, EndMs: 400},
		{Name: "c", BeginMs: 500, EndMs: 600},
	}}
	if err := db.Write(ctx, &b); err != nil {
		t.Fatal(err)
	}
	later, err := db.AddMark(ctx, "d", "cli", 700, 800, 900)
	if err != nil {
		t.Fatal(err)
	}
	all, err := db.Marks(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var ids []uint64
	for _, m := range all {
		ids = append(ids, m.ID)
	}
	if want := []uint64{1, 7, 8, 9}; !reflect.DeepEqual(ids, want) || later.ID != 9 {
		t.Fatalf("ids = %v (the later mark %d), want %v", ids, later.ID, want)
	}
}

func TestCheckMarkName(t *testing.T) {
	for _, name := range []string{"epoch", "step 3/10", "époque ✓", strings.Repeat("x", 200)} {
		if err := store.CheckMarkName(name); err != nil {
			t.Errorf("%q: %v", name, err)
		}
	}
	for _, name := range []string{"", strings.Repeat("x", 201), "a\x01b", "tab\there", "line\nbreak", "del\x7f"} {
		err := store.CheckMarkName(name)
		if !errors.Is(err, store.ErrInvalidMark) {
			t.Errorf("%q: %v, want ErrInvalidMark", name, err)
		} else if strings.Contains(err.Error(), "wattrec") {
			t.Errorf("%q: %v names a command", name, err)
		}
	}
}

func TestDB_BeginMark(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	m, err := db.BeginMark(ctx, "epoch", "cli", 1000)
	if err != nil {
		t.Fatal(err)
	}
	want := store.Mark{ID: 1, Name: "epoch", BeginMs: 1000, Open: true, CreatedMs: 1000, Source: "cli"}
	if m != want {
		t.Fatalf("got %+v, want %+v", m, want)
	}
	if got, err := db.Marks(ctx, "epoch"); err != nil || !reflect.DeepEqual(got, []store.Mark{want}) {
		t.Fatalf("stored %+v (%v), want %+v", got, err, want)
	}
	if _, err := db.BeginMark(ctx, "", "cli", 2000); !errors.Is(err, store.ErrInvalidMark) {
		t.Fatalf("empty name: %v, want ErrInvalidMark", err)
	}
	if got, _ := db.Marks(ctx, ""); len(got) != 1 {
		t.Fatalf("a refused mark was stored: %+v", got)
	}
}

func TestDB_EndMark(t *testing.T) {
	ctx := context.Background()
	mustBegin := func(t *testing.T, db *store.DB, name string, at int64) store.Mark {
		t.Helper()
		m, err := db.BeginMark(ctx, name, "test", at)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}

	t.Run("MostRecentlyBegunFirst", func(t *testing.T) {
		db := MustOpenDB(t)
		a, b, c := mustBegin(t, db, "epoch", 100), mustBegin(t, db, "epoch", 300), mustBegin(t, db, "epoch", 200)
		other := mustBegin(t, db, "step", 400)
		for i, want := range []store.Mark{b, c, a} {
			want.Open, want.EndMs = false, 1000+int64(i)
			got, err := db.EndMark(ctx, "epoch", 1000+int64(i))
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("end %d: got %+v, want %+v", i, got, want)
			}
		}
		if _, err := db.EndMark(ctx, "epoch", 2000); !errors.Is(err, store.ErrNoOpenMark) {
			t.Fatalf("all ended: %v, want ErrNoOpenMark", err)
		}
		if got, _ := db.Marks(ctx, "step"); len(got) != 1 || got[0] != other {
			t.Fatalf("another name's mark changed: %+v, want %+v", got, other)
		}
	})

	t.Run("SameBeginLastStoredFirst", func(t *testing.T) {
		db := MustOpenDB(t)
		mustBegin(t, db, "epoch", 100)
		second := mustBegin(t, db, "epoch", 100)
		got, err := db.EndMark(ctx, "epoch", 200)
		if err != nil || got.ID != second.ID {
			t.Fatalf("got %+v (%v), want mark %d ended", got, err, second.ID)
		}
	})

	t.Run("EndsNotBeforeBegin", func(t *testing.T) {
		db := MustOpenDB(t)
		mustBegin(t, db, "epoch", 1000)
		got, err := db.EndMark(ctx, "epoch", 500) // the clock stepped back
		if err != nil || got.EndMs != 1000 || got.Open {
			t.Fatalf("got %+v (%v), want closed at its begin, 1000", got, err)
		}
	})

	t.Run("ErrNoOpenMark", func(t *testing.T) {
		db := MustOpenDB(t)
		_, err := db.EndMark(ctx, "epoch", 1000)
		if !errors.Is(err, store.ErrNoOpenMark) || !strings.Contains(err.Error(), `no open mark named "epoch"`) || strings.Contains(err.Error(), "wattrec") {
			t.Fatalf("new file: %v, want ErrNoOpenMark naming the mark and no command", err)
		}
		if _, err := db.AddMark(ctx, "epoch", "test", 1, 2, 3); err != nil {
			t.Fatal(err)
		}
		if _, err := db.EndMark(ctx, "epoch", 1000); !errors.Is(err, store.ErrNoOpenMark) {
			t.Fatalf("only a closed mark: %v, want ErrNoOpenMark", err)
		}
	})

	t.Run("ErrInvalidMark", func(t *testing.T) {
		db := MustOpenDB(t)
		if _, err := db.EndMark(ctx, "a\x00b", 1000); !errors.Is(err, store.ErrInvalidMark) {
			t.Fatalf("got %v, want ErrInvalidMark", err)
		}
	})

	// Concurrent ends of one open mark: one transaction each, so exactly
	// one closes it and the others find nothing open.
	t.Run("Concurrent", func(t *testing.T) {
		db := MustOpenDB(t)
		begun := mustBegin(t, db, "epoch", 100)
		const n = 16
		var wg sync.WaitGroup
		ended := make([]store.Mark, n)
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ended[i], errs[i] = db.EndMark(ctx, "epoch", 1000+int64(i))
			}()
		}
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("EndMark %d and %d both ended the mark", winner, i)
			case err == nil:
				winner = i
			case !errors.Is(err, store.ErrNoOpenMark):
				t.Fatalf("EndMark %d: %v, want ErrNoOpenMark", i, err)
			}
		}
		if winner < 0 {
			t.Fatal("no EndMark ended the mark")
		}
		want := begun
		want.Open, want.EndMs = false, 1000+int64(winner)
		if got, err := db.Marks(ctx, ""); err != nil || !reflect.DeepEqual(got, []store.Mark{want}) || ended[winner] != want {
			t.Fatalf("stored %+v (%v), returned %+v; want %+v once", got, err, ended[winner], want)
		}
	})
}

func TestDB_AddMark(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	m, err := db.AddMark(ctx, "epoch", "cli", 1000, 2000, 5000)
	if err != nil {
		t.Fatal(err)
	}
	want := store.Mark{ID: 1, Name: "epoch", BeginMs: 1000, EndMs: 2000, CreatedMs: 5000, Source: "cli"}
	if m != want {
		t.Fatalf("got %+v, want %+v", m, want)
	}
	for _, w := range [][2]int64{{2000, 2000}, {2000, 1000}} {
		if _, err := db.AddMark(ctx, "epoch", "cli", w[0], w[1], 5000); !errors.Is(err, store.ErrInvalidMark) {
			t.Errorf("[%d, %d): %v, want ErrInvalidMark", w[0], w[1], err)
		}
	}
	if _, err := db.AddMark(ctx, strings.Repeat("x", 201), "cli", 1000, 2000, 5000); !errors.Is(err, store.ErrInvalidMark) {
		t.Errorf("long name: %v, want ErrInvalidMark", err)
	}
	if got, err := db.Marks(ctx, ""); err != nil || !reflect.DeepEqual(got, []store.Mark{want}) {
		t.Fatalf("stored %+v (%v), want only %+v", got, err, want)
	}
}
