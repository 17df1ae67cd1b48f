package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/wattrec/wattrec/export"
	"github.com/wattrec/wattrec/query"
)

// dashboardFile is the Grafana dashboard.
const dashboardFile = "grafana/wattrec-dashboard.json"

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
	"report-columns": func() string {
		var b strings.Builder
		b.WriteString("| key | meaning |\n|---|---|\n")
		for _, c := range query.ReportColumns() {
			fmt.Fprintf(&b, "| `%s` | %s |\n", c[0], strings.ReplaceAll(c[1], "|", "\\|"))
		}
		return b.String()
	},
	// The PromQL cheat sheet is the Grafana dashboard's queries: the
	// dashboard is built only from them.
	"promql": func() string {
		var dash struct {
			Panels []struct {
				Title   string `json:"title"`
				Targets []struct {
					Expr string `json:"expr"`
				} `json:"targets"`
			} `json:"panels"`
		}
		b, err := os.ReadFile(dashboardFile)
		if err == nil {
			err = json.Unmarshal(b, &dash)
		}
		if err != nil {
			return fmt.Sprintf("%s: %v\n", dashboardFile, err)
		}
		var out strings.Builder
		out.WriteString("| what | PromQL |\n|---|---|\n")
		for _, p := range dash.Panels {
			for _, t := range p.Targets {
				fmt.Fprintf(&out, "| %s | `%s` |\n", p.Title, strings.ReplaceAll(t.Expr, "|", `\|`))
			}
		}
		return out.String()
	},
	"library-example": func() string {
		return "```go\n" + exampleBody("recorder/example_test.go", "Example", "\tctx :=") + "```\n"
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

// exampleBody is the body of the function name in the Go file path, from
// its line that starts with from to its end, one tab less indented: the
// README shows a tested example as it is written.
func exampleBody(path, name, from string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	src := string(b)
	_, body, ok := strings.Cut(src, "\nfunc "+name+"() {\n")
	if !ok {
		return fmt.Sprintf("%s has no func %s", path, name)
	}
	body, _, _ = strings.Cut(body, "\n}\n")
	i := strings.Index(body, "\n"+from)
	if i < 0 {
		return fmt.Sprintf("func %s in %s has no line %q", name, path, from)
	}
	var out strings.Builder
	for _, line := range strings.Split(body[i+1:], "\n") {
		out.WriteString(strings.TrimPrefix(line, "\t") + "\n")
	}
	return out.String()
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
