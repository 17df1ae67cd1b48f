package main

import (
	"context"
	"github.com/wattrec/wattrec/internal/simtest"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/wattrec/wattrec/simulator"
)

// simulatorConfigOf parses args as the simulator flags.
func simulatorConfigOf(t *testing.T, args ...string) (simulator.Config, error) {
	t.Helper()
	var cfg simulator.Config
	app := &cli.App{Flags: simulatorFlags(), Writer: io.Discard, ErrWriter: io.Discard,
		Action: func(c *cli.Context) (err error) {
			cfg, err = simulatorConfig(c)
			return err
		}}
	err := app.Run(append([]string{"wattrec"}, args...))
	return cfg, err
}

func TestSimulate_Flags(t *testing.T) {
	cfg, err := simulatorConfigOf(t)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.APIGroups, []string{"gpu-read", "cpu-read"}) || cfg.DRAM != nil || cfg.CumulativeEnergy != nil || cfg.Release != simulator.ReleaseMain {
		t.Errorf("defaults: groups %v, dram %v, counters %v, release %q", cfg.APIGroups, cfg.DRAM, cfg.CumulativeEnergy, cfg.Release)
	}

	cfg, err = simulatorConfigOf(t, "--gpus", "3", "--cpus", "2", "--no-dram", "1", "--no-counter", "0,2",
		"--enable", "gpu-read,gpu-control", "--zeusd-version", "0.5.0")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.DRAM, []bool{true, false}; !reflect.DeepEqual(got, want) {
		t.Errorf("--no-dram 1: DRAM %v, want %v", got, want)
	}
	if got, want := cfg.CumulativeEnergy, []bool{false, true, false}; !reflect.DeepEqual(got, want) {
		t.Errorf("--no-counter 0,2: CumulativeEnergy %v, want %v", got, want)
	}
	if got, want := cfg.APIGroups, []string{"gpu-read", "gpu-control"}; !reflect.DeepEqual(got, want) {
		t.Errorf("--enable: %v, want %v", got, want)
	}
	if cfg.Release != simulator.Release050 {
		t.Errorf("--zeusd-version 0.5.0: release %q", cfg.Release)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--enable", "gpu-read,gpu-write"}, `--enable "gpu-write": not an API group`},
		{[]string{"--cpus", "2", "--no-dram", "2"}, "--no-dram 2: the node has 2 CPU packages"},
		{[]string{"--gpus", "1", "--no-counter", "0,1"}, "--no-counter 1: the node has 1 GPUs"},
		{[]string{"--zeusd-version", "0.4.0"}, `--zeusd-version "0.4.0": want main or 0.5.0`},
	} {
		if _, err := simulatorConfigOf(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.args, err, tc.want)
		}
	}
}

// TestSimulate_Socket runs `wattrec simulate` on a Unix socket with auth:
// the socket is mode 666, the key is the secret file's raw bytes (a token
// signed with it trimmed is refused), and the flags reach /discover.
func TestSimulate_Socket(t *testing.T) {
	dir := t.TempDir()
	sock, key, tokFile := filepath.Join(dir, "zeusd.sock"), filepath.Join(dir, "signing.key"), filepath.Join(dir, "token")
	secret := []byte("bm90IGEgcmVhbCBrZXkgYnV0IGxvbmcgZW5vdWdo\n") // as `openssl rand -base64 32` writes
	if err := os.WriteFile(key, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out simtest.SyncBuffer
	app := newApp()
	app.Writer, app.ErrWriter = &out, &out
	done := make(chan error, 1)
	go func() {
		done <- app.RunContext(ctx, []string{"wattrec", "simulate", "--socket", sock, "--gpus", "2", "--cpus", "1",
			"--no-counter", "1", "--no-dram", "0", "--zeusd-version", "0.5.0", "--auth-secret-file", key, "--token-out", tokFile})
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "simulated zeusd on") {
		if time.Now().After(deadline) {
			t.Fatalf("simulate did not start: %s", out.String())
		}
		<-time.After(5 * time.Millisecond) // poll spacing
	}
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o666 {
		t.Errorf("socket %v, %v: want mode 0666", fi, err)
	}

	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}
	defer tr.CloseIdleConnections()
	get := func(path, token string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, "http://localhost"+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	if code, body := get("/discover", ""); code != 200 || body != `{"gpus":[{"id":0,"name":"Simulated GPU"},{"id":1,"name":"Simulated GPU"}],"cpus":[{"id":0,"dram_available":false}],"enabled_api_groups":["gpu-read","cpu-read"],"auth_required":true}` {
		t.Errorf("discover: %d %s", code, body)
	}
	b, err := os.ReadFile(tokFile)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := simulator.MintToken(secret, "bob", []string{"gpu-read"}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	trimmed, err := simulator.MintToken([]byte(strings.TrimSpace(string(secret))), "bob", []string{"gpu-read"}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, token string
		code        int
	}{{"TokenOut", strings.TrimSpace(string(b)), 200}, {"RawKey", raw, 200}, {"TrimmedKey", trimmed, 401}} {
		if code, body := get("/auth/whoami", tc.token); code != tc.code {
			t.Errorf("%s: whoami %d %s, want %d", tc.name, code, body, tc.code)
		}
	}
	if code, body := get("/gpu/get_cumulative_energy", strings.TrimSpace(string(b))); code != 400 || !strings.Contains(body, `"1":"NVML error`) {
		t.Errorf("--no-counter 1: get_cumulative_energy %d %s", code, body)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("simulate: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("simulate did not stop")
	}
}
