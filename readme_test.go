package main

import (
	"cmp"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/wattrec/wattrec/export"
	"github.com/wattrec/wattrec/query"
)

// readmeBlocks are the parts of README.md generated from the one home of
// what they describe: between <!-- NAME --> and <!-- /NAME -->.
var readmeBlocks = map[string]func() string{
	"rules": func() string { return "```text\n" + query.RulesText(80) + "```\n" },
	"record-flags": func() string {
		var b strings.Builder
		b.WriteString("| flag | default | meaning |\n|---|---|---|\n")
		for _, f := range recordFlags() {
			df := f.(cli.DocGenerationFlag)
			def := df.GetDefaultText()
			if def == "" {
				def = cmp.Or(df.GetValue(), "-")
			}
			fmt.Fprintf(&b, "| `--%s` | %s | %s |\n", f.Names()[0], def, strings.ReplaceAll(df.GetUsage(), "`", ""))
		}
		return b.String()
	},
	"import-columns": func() string {
		var b strings.Builder
		b.WriteString("| column | | accepted |\n|---|---|---|\n")
		for _, c := range export.ImportColumns() {
			fmt.Fprintf(&b, "| `%s` | %s | %s |\n", c[0], c[1], c[2])
		}
		return b.String()
	},
	"raw-columns": func() string {
		var b strings.Builder
		b.WriteString("| column | meaning |\n|---|---|\n")
		for _, c := range export.RawColumns() {
			fmt.Fprintf(&b, "| `%s` | %s |\n", c[0], c[1])
		}
		return b.String()
	},
}

// TestREADME_Generated: README.md's generated blocks match their source;
// -update rewrites them.
func TestREADME_Generated(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for name, gen := range readmeBlocks {
		re := regexp.MustCompile(`(?s)(<!-- ` + name + ` -->\n)(.*?)(<!-- /` + name + ` -->)`)
		m := re.FindStringSubmatch(readme)
		if m == nil {
			t.Errorf("README.md has no <!-- %s --> block", name)
			continue
		}
		if want := gen(); m[2] != want {
			if !*update {
				t.Errorf("README.md block %q is out of date (go test -run TestREADME -update):\ngot:\n%s\nwant:\n%s", name, m[2], want)
			}
			readme = re.ReplaceAllLiteralString(readme, m[1]+want+m[3])
		}
	}
	if *update && readme != string(b) {
		if err := os.WriteFile("README.md", []byte(readme), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
