package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestService_Verify: contrib/wattrec.service passes systemd-analyze
// verify (with ExecStart pointed at a real binary, which verify checks
// for) and keeps its hardening; its command line is one wattrec accepts.
func TestService_Verify(t *testing.T) {
	t.Parallel()
	unit, err := os.ReadFile("contrib/wattrec.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"DynamicUser=yes", "ProtectSystem=strict", "StateDirectory=wattrec", "RuntimeDirectory=wattrec",
		"RuntimeDirectoryMode=0700", "NoNewPrivileges=yes", "KillSignal=SIGTERM"} {
		if !strings.Contains(string(unit), "\n"+want+"\n") {
			t.Errorf("the unit lacks %s", want)
		}
	}
	// The ExecStart line parses as a record command line.
	var exec0 string
	for _, l := range strings.Split(string(unit), "\n") {
		if strings.HasPrefix(l, "ExecStart=") {
			exec0 = strings.TrimPrefix(l, "ExecStart=")
		}
	}
	args := strings.Fields(strings.ReplaceAll(exec0, "${STATE_DIRECTORY}", t.TempDir()))
	if len(args) < 2 || filepath.Base(args[0]) != "wattrec" || args[1] != "record" {
		t.Fatalf("ExecStart=%s", exec0)
	}
	app := newApp()
	var rec = app.Command("record")
	for i := 2; i < len(args); i++ {
		if strings.HasPrefix(args[i], "--") && !hasFlag(rec.Flags, args[i]) {
			t.Errorf("ExecStart has %s, which record does not take", args[i])
		}
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI_REQUIRE_SYSTEMD") == "1" {
			t.Fatal("systemd-analyze is required (CI_REQUIRE_SYSTEMD=1)")
		}
		t.Skip("no systemd-analyze")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "wattrec")
	if err := os.Symlink(os.Args[0], bin); err != nil {
		t.Fatal(err)
	}
	local := strings.ReplaceAll(string(unit), "/usr/local/bin/wattrec", bin)
	path := filepath.Join(dir, "wattrec.service")
	if err := os.WriteFile(path, []byte(local), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	// verify also reports on units the host lacks (network-online.target
	// in a container): only the lines about this unit count.
	var mine []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.Contains(l, "wattrec.service") {
			mine = append(mine, l)
		}
	}
	if len(mine) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, strings.Join(mine, "\n"))
	}
	t.Logf("systemd-analyze verify: %v; output:\n%s", err, out)
}
