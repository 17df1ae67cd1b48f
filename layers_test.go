package main

import (
	"go/parser"
	gotoken "go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// allowedImports is the dependency graph of the product packages: each
// may import the standard library, the third-party modules it is
// allowed, and the packages of this module listed, nothing else. Package
// main imports everything; nothing imports main.
var allowedImports = map[string][]string{
	"store":     {"go.etcd.io/bbolt"},
	"query":     {"store"},
	"export":    {"query", "store", "github.com/parquet-go/parquet-go", "github.com/klauspost/compress"},
	"retry":     {},
	"recorder":  {"retry", "store", "github.com/tmaxmax/go-sse"},
	"simulator": {"github.com/golang-jwt/jwt/v5"},
	"chart":     {"query", "store", "gonum.org/v1/plot", "golang.org/x/sync"},
	"report":    {"chart", "query", "store"},
	"control":   {"chart", "export", "query", "report", "store"},
	"importer":  {"export", "query", "store"},
	"recording": {"chart", "control", "export", "metrics", "query", "recorder", "remotewrite", "report", "simulator", "store"},
	"metrics":   {"query", "recorder", "store", "github.com/prometheus/client_golang"},
	"remotewrite": {"query", "retry", "store", "github.com/prometheus/prometheus/prompb", "github.com/prometheus/prometheus/model/value",
		"github.com/klauspost/compress"},
}

const module = "github.com/wattrec/wattrec/"

// TestLayers: packages depend one way (store at the bottom, main at the
// top), and no library package imports urfave/cli: flags, hints and
// exits are main's.
func TestLayers(t *testing.T) {
	seen := map[string]bool{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != "." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		pkg := filepath.ToSlash(filepath.Dir(path))
		if pkg == "." || pkg == "bench" || strings.HasPrefix(pkg, "internal/") {
			return nil // main, and code only tests and benchmarks build
		}
		allowed, ok := allowedImports[pkg]
		if !ok {
			t.Errorf("%s: package %s is not in allowedImports: add it with the imports it may have", path, pkg)
			return nil
		}
		seen[pkg] = true
		f, err := parser.ParseFile(gotoken.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, spec := range f.Imports {
			imp, _ := strconv.Unquote(spec.Path.Value)
			first, _, _ := strings.Cut(imp, "/")
			switch {
			case !strings.Contains(first, "."): // the standard library
			case strings.HasPrefix(imp, "github.com/urfave/cli"):
				t.Errorf("%s imports %s: only package main reads flags", path, imp)
			case strings.HasPrefix(imp, module):
				if !slices.Contains(allowed, strings.TrimPrefix(imp, module)) {
					t.Errorf("%s imports %s: %s may import only %v of this module", path, imp, pkg, allowed)
				}
			case !slices.ContainsFunc(allowed, func(a string) bool { return imp == a || strings.HasPrefix(imp, a+"/") }):
				t.Errorf("%s imports %s, a module %s is not allowed", path, imp, pkg)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for pkg := range allowedImports {
		if !seen[pkg] {
			t.Errorf("package %s has no source files", pkg)
		}
	}
}
