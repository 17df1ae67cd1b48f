package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/wattrec/wattrec/internal/simtest"
)

// sink is a remote-write receiver that counts requests and remembers
// the last Authorization header.
type sink struct {
	mu    sync.Mutex
	reqs  int
	auth  string
	extra string
}

// requests is the number of requests so far.
func (s *sink) requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reqs
}

func newSink(t *testing.T) (*sink, string) {
	s := &sink{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		s.mu.Lock()
		s.reqs++
		s.auth, s.extra = r.Header.Get("Authorization"), r.Header.Get("X-Scope-OrgID")
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return s, srv.URL + "/api/v1/write"
}

// TestPush: wattrec push sends a recording with the token of the file
// and the headers given, never shows the token, and a second push has
// nothing left to send.
func TestPush(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "run.db")
	simtest.WriteRecording(t, db)
	tok := filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, url := newSink(t)
	args := []string{"push", "--db", db, "--remote-write", url, "--remote-write-bearer-token-file", tok,
		"--remote-write-header", "X-Scope-OrgID=lab", "--label", "job=train"}
	out, err := run(t, args...)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, " samples in ") || strings.Contains(out, "s3cret") || s.requests() == 0 {
		t.Fatalf("output %q after %d requests", out, s.requests())
	}
	s.mu.Lock()
	if s.auth != "Bearer s3cret" || s.extra != "lab" {
		t.Errorf("Authorization %q, X-Scope-OrgID %q", s.auth, s.extra)
	}
	s.mu.Unlock()
	n := s.requests()
	if out, err := run(t, args...); err != nil || !strings.Contains(out, ": 0 samples in 0 requests") || s.requests() != n {
		t.Errorf("second push: %v, %q, %d more requests", err, out, s.requests()-n)
	}
	// --from starts afresh.
	if out, err := run(t, append(args, "--from", "start")...); err != nil || s.requests() == n {
		t.Errorf("push --from start: %v, %q", err, out)
	}
}

// TestCLI_RemoteWriteRefuses: bad remote-write and metrics flags are
// refused, naming the flag, before a file is created.
func TestCLI_RemoteWriteRefuses(t *testing.T) {
	dir := t.TempDir()
	open := filepath.Join(dir, "open-token")
	if err := os.WriteFile(open, []byte("t"), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := filepath.Join(dir, "rec.db")
	simtest.WriteRecording(t, rec)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"LabelAlone", []string{"record", "--label", "job=x"}, "--label without --remote-write"},
		{"BadURL", []string{"record", "--remote-write", "vm:8428"}, "want an http:// or https:// URL"},
		{"Credentials", []string{"record", "--remote-write", "http://u:p@vm:8428/api/v1/write"}, "credentials in the URL"},
		{"Twice", []string{"record", "--remote-write", "http://vm/api/v1/write", "--remote-write", "http://vm/api/v1/write?x=1"}, "given twice"},
		{"Label", []string{"record", "--remote-write", "http://vm/w", "--label", "__name__=x"}, "--label: label \"__name__\""},
		{"OwnLabel", []string{"record", "--remote-write", "http://vm/w", "--label", "device=x"}, "wattrec sets it itself"},
		{"Header", []string{"record", "--remote-write", "http://vm/w", "--remote-write-header", "nope"}, "want NAME=VALUE"},
		{"Interval", []string{"record", "--remote-write", "http://vm/w", "--remote-write-interval", "10m"}, "--remote-write-interval 10m0s: want 1s to 4m0s"},
		{"TokenMode", []string{"record", "--remote-write", "http://vm/w", "--remote-write-bearer-token-file", open}, "chmod 600"},
		{"MetricsAddr", []string{"record", "--metrics-listen", "256.0.0.1:x"}, "--metrics-listen"},
		{"PushNoReceiver", []string{"push", "--db", rec}, "give the receiver with --remote-write"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			db := filepath.Join(t.TempDir(), "new.db")
			if args[0] == "record" {
				args = append([]string{"record", "--db", db, "--server", "node1:4938"}, args[1:]...)
			}
			_, err := run(t, args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to say %q", err, tc.want)
			}
			if _, err := os.Stat(db); err == nil {
				t.Error("a refused flag left a new file")
			}
		})
	}
}
