//go:build duckdb

// DuckDB reads the exports back: a second, independent Parquet reader (C++),
// the one many users will load the files with. It needs cgo and links
// DuckDB's bundled library (about a minute to build the first time), so it
// runs only with the duckdb build tag:
//
//	go test -tags duckdb ./export/

package export_test

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/wattrec/wattrec/export"
	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/simulator"
	"github.com/wattrec/wattrec/store"
)

func openDuckDB(t *testing.T) *sql.DB {
	t.Helper()
	duck, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { duck.Close() })
	return duck
}

// writeTemp writes data to a temp file and returns its path, quoted as a
// DuckDB string literal.
func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return "'" + strings.ReplaceAll(path, "'", "''") + "'"
}

// checkDuckDB reads a raw Parquet export with DuckDB: the column types,
// every value against the store, and the file's metadata.
func checkDuckDB(t *testing.T, db *store.DB, f query.Filter) {
	t.Helper()
	var buf bytes.Buffer
	if _, err := export.Parquet(context.Background(), &buf, db, f, export.Options{Version: "v-duck", RowGroupRows: 1000}); err != nil {
		t.Fatal(err)
	}
	file := writeTemp(t, "run.parquet", buf.Bytes())
	duck := openDuckDB(t)

	// Types.
	rs, err := duck.Query("DESCRIBE SELECT * FROM read_parquet(" + file + ")")
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for rs.Next() {
		var name, typ string
		var null, key, def, extra sql.NullString
		if err := rs.Scan(&name, &typ, &null, &key, &def, &extra); err != nil {
			t.Fatal(err)
		}
		types = append(types, name+" "+typ)
	}
	rs.Close()
	want := "time TIMESTAMP WITH TIME ZONE, daemon_time_ms BIGINT, endpoint VARCHAR, kind VARCHAR, device INTEGER, power_w DOUBLE, seed BOOLEAN"
	if got := strings.Join(types, ", "); got != want {
		t.Errorf("DuckDB sees\n %s\nwant\n %s", got, want)
	}

	// Values, in file order.
	rs, err = duck.Query("SELECT epoch_ms(time), daemon_time_ms, endpoint, kind, device, power_w, seed FROM read_parquet(" + file + ")")
	if err != nil {
		t.Fatal(err)
	}
	var got []row
	for rs.Next() {
		var r row
		if err := rs.Scan(&r.TimeMs, &r.DaemonMs, &r.Endpoint, &r.Kind, &r.Device, &r.PowerW, &r.Seed); err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	rs.Close()
	diffRows(t, got, storeRows(t, db, f))

	// Compression and dictionary encoding, as DuckDB reads the footer.
	var notZstd, dictEndpoint, chunks int
	err = duck.QueryRow(`SELECT count(*) FILTER (WHERE compression <> 'ZSTD'),
		count(*) FILTER (WHERE path_in_schema = 'endpoint' AND encodings LIKE '%RLE_DICTIONARY%'),
		count(*) FILTER (WHERE path_in_schema = 'endpoint')
		FROM parquet_metadata(`+file+")").Scan(&notZstd, &dictEndpoint, &chunks)
	if err != nil {
		t.Fatal(err)
	}
	if notZstd != 0 || dictEndpoint != chunks || chunks == 0 {
		t.Errorf("%d column chunks not zstd; endpoint dictionary-encoded in %d of %d row groups", notZstd, dictEndpoint, chunks)
	}
	var version string
	err = duck.QueryRow("SELECT decode(value) FROM parquet_kv_metadata(" + file + ") WHERE decode(key) = '" + export.MetaVersion + "'").Scan(&version)
	if err != nil || version != "v-duck" {
		t.Errorf("%s read by DuckDB: %q, %v", export.MetaVersion, version, err)
	}
}

func TestDuckDB_Parquet(t *testing.T) {
	t.Run("Hand", func(t *testing.T) {
		db := MustHandDB(t)
		checkDuckDB(t, db, query.Filter{})
		checkDuckDB(t, db, query.Filter{Range: query.Between(t0+12_345, t0+31_000), Endpoints: []string{epUnix}})
	})
	t.Run("Simulator", func(t *testing.T) {
		checkDuckDB(t, recordSimulator(t, simulator.FormatSample, 400), query.Filter{})
	})
}

// TestDuckDB_Grid sums a grid export in DuckDB and compares it with
// query's joules.
func TestDuckDB_Grid(t *testing.T) {
	db := MustHandDB(t)
	ctx := context.Background()
	f := query.Filter{Range: query.Between(t0+1_234, t0+56_789)}
	var buf bytes.Buffer
	n, err := export.GridParquet(ctx, &buf, db, f, 1000, export.Options{})
	if err != nil {
		t.Fatal(err)
	}
	file := writeTemp(t, "run.grid.parquet", buf.Bytes())
	duck := openDuckDB(t)
	var rows int64
	var joules float64
	var nulls int
	err = duck.QueryRow("SELECT count(*), sum(energy_j), count(*) FILTER (WHERE avg_power_w IS NULL) FROM read_parquet("+file+")").Scan(&rows, &joules, &nulls)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := query.Energy(ctx, db, query.Options{Filter: f, By: query.ByTotal})
	if err != nil {
		t.Fatal(err)
	}
	if rows != n || !close(joules, rep.Rows[0].Joules()) || nulls == 0 {
		t.Errorf("DuckDB: %d rows, %.9f J, %d null averages; want %d rows, %.9f J, some nulls", rows, joules, nulls, n, rep.Rows[0].Joules())
	}
	var typ string
	if err := duck.QueryRow("SELECT typeof(time) FROM read_parquet(" + file + ") LIMIT 1").Scan(&typ); err != nil || typ != "TIMESTAMP WITH TIME ZONE" {
		t.Errorf("grid time: %q, %v", typ, err)
	}
}
