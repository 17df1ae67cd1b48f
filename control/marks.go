package control

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/wattrec/wattrec/store"
)

// Mark actions.
const (
	MarkBegin = "begin" // open a window named Name now
	MarkEnd   = "end"   // close the latest open window named Name now
	MarkAdd   = "add"   // a window [FromMs, ToMs) given outright
)

// MarkRequest asks for a mark. JSON: {"action":"begin","name":"epoch"}.
type MarkRequest struct {
	Action string `json:"action"`
	Name   string `json:"name"`
	FromMs int64  `json:"from_ms,omitempty"` // MarkAdd only
	ToMs   int64  `json:"to_ms,omitempty"`
	Source string `json:"source,omitempty"` // who asked: "cli", "run", a script's name
}

// CheckMarkName refuses names a report could not print on one line.
func CheckMarkName(name string) error {
	switch {
	case name == "":
		return errors.New("mark name is empty")
	case len(name) > 200:
		return fmt.Errorf("mark name of %d bytes is longer than 200", len(name))
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return fmt.Errorf("mark name %q has control characters", name)
	}
	return nil
}

// ApplyMark performs req on db at time nowMs (recorder clock) and returns
// the mark as stored. Marks may overlap, nest and repeat; "end" closes the
// most recently begun open mark of that name.
func ApplyMark(ctx context.Context, db *store.DB, req MarkRequest, nowMs int64) (store.Mark, error) {
	if err := CheckMarkName(req.Name); err != nil {
		return store.Mark{}, err
	}
	m := store.Mark{Name: req.Name, CreatedMs: nowMs, Source: req.Source}
	switch req.Action {
	case MarkBegin:
		m.BeginMs, m.Open = nowMs, true
	case MarkEnd:
		marks, err := db.Marks(ctx, req.Name)
		if err != nil {
			return store.Mark{}, err
		}
		found := false
		for _, candidate := range marks { // ordered by begin: keep the latest open one
			if candidate.Open {
				m, found = candidate, true
			}
		}
		if !found {
			return store.Mark{}, fmt.Errorf("no open mark named %q to end (begin it with: wattrec mark begin %s)", req.Name, req.Name)
		}
		m.EndMs, m.Open = max(nowMs, m.BeginMs), false
	case MarkAdd:
		if req.ToMs <= req.FromMs {
			return store.Mark{}, fmt.Errorf("mark %q: the end is not after the begin", req.Name)
		}
		m.BeginMs, m.EndMs = req.FromMs, req.ToMs
	default:
		return store.Mark{}, fmt.Errorf("mark action %q: want begin, end or add", req.Action)
	}
	return db.PutMark(ctx, m)
}
