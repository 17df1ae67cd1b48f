package importer_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/wattrec/wattrec/importer"
)

// A log of another tool, in the import columns, with its sessions told
// by the gaps between readings.
func ExampleImport() {
	dir, _ := os.MkdirTemp("", "wattrec-example")
	defer os.RemoveAll(dir)
	log := filepath.Join(dir, "smi.csv")
	os.WriteFile(log, []byte("time,endpoint,kind,device,power_w\n"+
		"2026-11-28T16:00:00Z,node1,gpu,0,100\n"+
		"2026-11-28T16:00:01Z,node1,gpu,0,120\n"+
		"2026-11-28T16:00:02Z,node1,gpu,0,110\n"+
		"2026-11-28T16:00:10Z,node1,gpu,0,90\n"), 0o644)

	rep, err := importer.Import(context.Background(), filepath.Join(dir, "smi.db"), []string{log}, importer.Options{MaxGapMs: 2000})
	if err != nil {
		fmt.Println(err)
		return
	}
	f := rep.Files[0]
	fmt.Printf("%s: %d rows of %v, %d sessions (%s)\n", f.Format, f.Rows, f.Endpoints, f.Sessions, f.SessionsFrom)
	fmt.Println(rep.Counts.Readings, "readings stored")
	// Output:
	// csv: 4 rows of [node1], 2 sessions (max-gap)
	// 4 readings stored
}
