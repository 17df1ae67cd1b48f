package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wattrec/wattrec/recorder"
	"github.com/wattrec/wattrec/store"
)

// TestCLI_UnknownCommand: a mistyped command is named, with the closest
// one when it is close, and the hint to the list.
func TestCLI_UnknownCommand(t *testing.T) {
	for args, want := range map[string]string{
		"qeury":      `unknown command "qeury": did you mean "query"?`,
		"mark bgin":  `unknown command "bgin": did you mean "begin"?`,
		"frobnicate": `unknown command "frobnicate"` + "\n(wattrec --help lists the commands)",
	} {
		_, err := run(t, strings.Fields(args)...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("wattrec %s: %v, want %q", args, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "No help topic") {
			t.Errorf("wattrec %s: %v", args, err)
		}
	}
}

// TestCLI_DefaultsOnce: no flag's help shows its default twice, or a
// default that says nothing.
func TestCLI_DefaultsOnce(t *testing.T) {
	for _, cmd := range newApp().Commands {
		paths := [][]string{{cmd.Name}}
		for _, sub := range cmd.Subcommands {
			paths = append(paths, []string{cmd.Name, sub.Name})
		}
		for _, p := range paths {
			out, err := run(t, append(p, "--help")...)
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(out, "\n") {
				if !strings.HasPrefix(strings.TrimSpace(line), "--") {
					continue // the flags' lines
				}
				if strings.Count(line, "(default:") > 1 || strings.Contains(line, "(default: false)") || strings.Contains(line, "(default: 0s)") {
					t.Errorf("wattrec %s --help: %q", strings.Join(p, " "), strings.TrimSpace(line))
				}
			}
		}
	}
}

// TestCLI_DBForms: the file comes from --db, $WATTREC_DB, or the
// argument of a command that takes no other; flags may follow arguments;
// a file given twice is refused.
func TestCLI_DBForms(t *testing.T) {
	db := workedFile(t)
	want, err := run(t, "query", "--db", db, "--by", "total", "--format", "csv")
	if err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][]string{
		"Argument":            {"query", db, "--by", "total", "--format", "csv"},
		"FlagsAfterArgument":  {"query", "--by", "total", db, "--format", "csv"},
		"GlobalFlagAfterArgs": {"query", db, "--by", "total", "--format", "csv", "--log-level", "warn"},
		"FlagEquals":          {"query", db, "--by=total", "--format=csv"},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := run(t, args...)
			if err != nil || got != want {
				t.Errorf("wattrec %q: %v\n%s\nwant\n%s", args, err, got, want)
			}
		})
	}
	t.Run("Env", func(t *testing.T) {
		t.Setenv("WATTREC_DB", db)
		got, err := run(t, "query", "--by", "total", "--format", "csv")
		if err != nil || got != want {
			t.Errorf("$WATTREC_DB: %v\n%s", err, got)
		}
		// The argument wins over the environment.
		t.Setenv("WATTREC_DB", filepath.Join(t.TempDir(), "other.db"))
		if got, err := run(t, "query", db, "--by", "total", "--format", "csv"); err != nil || got != want {
			t.Errorf("argument over $WATTREC_DB: %v\n%s", err, got)
		}
	})
	t.Run("MarkNameFirst", func(t *testing.T) {
		out, err := run(t, "mark", "add", "warmup", "--db", db, "--from", "1795881601000", "--to", "1795881602000")
		if err != nil || !strings.Contains(out, `"warmup"`) {
			t.Errorf("mark add NAME --db: %v\n%s", err, out)
		}
	})
	t.Run("Refused", func(t *testing.T) {
		t.Setenv("WATTREC_DB", "")
		os.Unsetenv("WATTREC_DB") // restored by Setenv's cleanup
		for args, want := range map[string]string{
			"query --db " + db + " other.db": "give the wattrec FILE once",
			"query " + db + " other.db":      "give the wattrec FILE once",
			"info":                           "give --db FILE (or $WATTREC_DB)",
		} {
			if _, err := run(t, strings.Fields(args)...); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("wattrec %s: %v, want %q", args, err, want)
			}
		}
	})
}

// TestInterspersed checks the reordering that lets flags follow
// arguments, and what it leaves alone.
func TestInterspersed(t *testing.T) {
	app := newApp()
	for _, tc := range []struct{ in, want string }{
		{"wattrec info run.db --log-level warn", "wattrec --log-level warn info run.db"},
		{"wattrec mark begin epoch --db run.db", "wattrec mark begin --db run.db epoch"},
		{"wattrec query run.db --from -15m --by kind", "wattrec query --from -15m --by kind run.db"},
		{"wattrec run --db r.db -- sleep --db 5", "wattrec run --db r.db -- sleep --db 5"},
		{"wattrec export run.db --force -o x.parquet", "wattrec export --force -o x.parquet run.db"},
		{"wattrec nosuch a --b c", "wattrec nosuch a --b c"},
		{"wattrec --log-level debug query x", "wattrec --log-level debug query x"},
	} {
		if got := strings.Join(interspersed(app, strings.Fields(tc.in)), " "); got != tc.want {
			t.Errorf("%q → %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestCLI_EndpointForms: --endpoint takes every form --server does and
// names the endpoint the recording has.
func TestCLI_EndpointForms(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "w.db")
	d, err := store.Open(db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "zeusd.sock")
	b := store.Batch{}
	for _, ep := range []string{"node1:4938", sock} {
		b.Sessions = append(b.Sessions, store.Session{Endpoint: ep, Stream: store.StreamGPU, Start: 0, End: 2000, Reason: "recorder stopped"})
		b.Readings = append(b.Readings, store.Reading{Endpoint: ep, Kind: store.KindGPU, TimeMs: 0, DaemonMs: 0, MilliWatts: 100_000})
	}
	if err := d.Write(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	d.Close()
	t.Chdir(dir)
	for form, ep := range map[string]string{
		"node1": "node1:4938", "tcp://node1:4938": "node1:4938", "node1:4938": "node1:4938",
		"unix://" + sock: sock, sock: sock, "./zeusd.sock": sock, "unix://zeusd.sock": sock,
	} {
		out, err := run(t, "query", db, "--endpoint", form, "--format", "csv", "--by", "endpoint")
		if err != nil || !strings.Contains(out, ","+ep+",endpoint,"+ep+",") || strings.Count(out, "\n") != 3 {
			t.Errorf("--endpoint %s: %v\n%s\nwant the one row of %s and the total", form, err, out, ep)
		}
	}
}

// TestCLI_Completion: the bash script completes commands and flags from
// the binary itself.
func TestCLI_Completion(t *testing.T) {
	t.Parallel()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	bin := t.TempDir()
	wrapper := "#!/bin/sh\nWATTREC_TEST_MAIN=1 GORACE=atexit_sleep_ms=0 exec " + os.Args[0] + " \"$@\"\n"
	if err := os.WriteFile(filepath.Join(bin, "wattrec"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	script, err := run(t, "completion", "bash")
	if err != nil {
		t.Fatal(err)
	}
	for words, want := range map[string]string{
		"wattrec qu":          "query",
		"wattrec query --fo":  "--format",
		"wattrec mark ":       "begin end add list",
		"wattrec completion ": "",
	} {
		fields := strings.Fields(words)
		if strings.HasSuffix(words, " ") {
			fields = append(fields, "")
		}
		cmd := exec.Command(bash, "-c", script+`
COMP_WORDS=("$@"); COMP_CWORD=$(($#-1)); _wattrec; echo "${COMPREPLY[@]}"`, "bash")
		cmd.Args = append(cmd.Args, fields...)
		cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%q: %v", words, err)
		}
		if got := strings.TrimSpace(string(out)); want != "" && !strings.HasPrefix(got, want) {
			t.Errorf("completing %q: %q, want %q", words, got, want)
		}
	}
	for _, shell := range []string{"zsh", "fish"} {
		if out, err := run(t, "completion", shell); err != nil || !strings.Contains(out, "wattrec") {
			t.Errorf("completion %s: %v\n%.200s", shell, err, out)
		}
	}
	if _, err := run(t, "completion", "tcsh"); err == nil || !strings.Contains(err.Error(), "want bash, zsh or fish") {
		t.Errorf("completion tcsh: %v", err)
	}
}

// TestCLI_Version: a build from a git checkout says which revision it is.
func TestCLI_Version(t *testing.T) {
	t.Parallel()
	rev, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		t.Skip("not a git checkout")
	}
	bin := filepath.Join(t.TempDir(), "wattrec")
	build := exec.Command("go", "build", "-buildvcs=true", "-o", bin, ".")
	build.Env = append(os.Environ(), "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	// Go stamps a pseudo-version with the revision (v0.0.0-TIME-REV[+dirty]).
	if got := string(out); !strings.Contains(got, strings.TrimSpace(string(rev))) {
		t.Errorf("--version = %q, want the revision %s", got, rev)
	}
}

// TestCLI_JSONEverywhere: every command that prints a report has a JSON
// form a script can read: info, query, mark list, check (and run's
// --summary-json, in TestRun).
func TestCLI_JSONEverywhere(t *testing.T) {
	db := workedFile(t)
	for _, tc := range []struct {
		args []string
		keys []string // of the top-level object, or of the first element of a list
	}{
		{[]string{"info", db, "--format", "json"}, []string{"file", "size_bytes", "runs", "from_ms", "to_ms", "readings", "marks", "endpoints"}},
		{[]string{"query", db, "--format", "json"}, []string{"from_ms", "to_ms", "by", "window", "periods", "rows", "warnings"}},
		{[]string{"mark", "list", "--db", db, "--format", "json"}, []string{"id", "name", "begin", "begin_ms", "end", "end_ms", "open", "source"}},
		{[]string{"check", db, "--format", "json"}, []string{"file", "sound", "problems", "records"}},
	} {
		stdout, _, err := runBoth(t, tc.args...)
		if err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		var v any
		if err := json.Unmarshal([]byte(stdout), &v); err != nil {
			t.Fatalf("%q: %v\n%s", tc.args, err, stdout)
		}
		obj, ok := v.(map[string]any)
		if list, isList := v.([]any); isList && len(list) > 0 {
			obj, ok = list[0].(map[string]any)
		}
		if !ok {
			t.Fatalf("%q: %T", tc.args, v)
		}
		for _, k := range tc.keys {
			if _, ok := obj[k]; !ok {
				t.Errorf("%q: no key %q in %v", tc.args, k, obj)
			}
		}
	}
	for _, args := range [][]string{{"info", db, "--format", "csv"}, {"mark", "list", "--db", db, "--format", "xml"}, {"check", db, "--format", "yaml"}} {
		if _, err := run(t, args...); err == nil || !strings.Contains(err.Error(), "want table or json") {
			t.Errorf("%q: %v", args, err)
		}
	}
}

// TestCLI_MemoryLimit: --memory-limit's forms, and auto deferring to
// $GOMEMLIMIT.
func TestCLI_MemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		flag, env string
		want      int64
	}{
		{"auto", "", recorder.MemoryLimitFor(3)},
		{"auto", "100MiB", 0}, // the runtime applies $GOMEMLIMIT
		{"off", "", 0},
		{"0", "", 0},
		{"64MiB", "100MiB", 64 << 20}, // the flag wins
		{"2GiB", "", 2 << 30},
		{"512KiB", "", 512 << 10},
		{"50MB", "", 50_000_000},
		{"33554432", "", 32 << 20},
		{"33554432B", "", 32 << 20},
	} {
		t.Setenv("GOMEMLIMIT", tc.env)
		got, err := memoryLimit(tc.flag, 3)
		if err != nil || got != tc.want {
			t.Errorf("--memory-limit %s with GOMEMLIMIT=%q = %d, %v; want %d", tc.flag, tc.env, got, err, tc.want)
		}
	}
	if got := recorder.MemoryLimitFor(100); got != 24<<20+100*128<<10 {
		t.Errorf("MemoryLimitFor(100) = %d", got)
	}
}
