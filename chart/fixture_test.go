package chart

import (
	"testing"

	"github.com/wattrec/wattrec/internal/simtest"
	"github.com/wattrec/wattrec/store"
)

// t0 is the worked examples' 0 s.
const t0 = simtest.WorkedStartMs

func at(s float64) int64 { return simtest.WorkedAt(s) }

// workedExample is DESIGN.md's worked examples as a file (see
// simtest.WriteWorkedExample): over [1 s, 10 s) GPU 0 holds 1,750 J
// with coverage 7/9 and one 2 s gap, from 6 s to 8 s.
func workedExample(t testing.TB) *store.DB {
	t.Helper()
	db := simtest.MustOpenDB(t)
	simtest.WriteWorkedExample(t, db)
	return db
}
