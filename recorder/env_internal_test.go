package recorder

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestEnvFrom covers the variables zeus's clients read: the socket path
// first, then host:port, the token apart, "" as unset, and errors that
// name the variable.
func TestEnvFrom(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	unix := func(path string) []Server { return []Server{{Network: "unix", Address: path}} }
	tcp := func(addr string) []Server { return []Server{{Network: "tcp", Address: addr}} }
	for _, tc := range []struct {
		name    string
		vars    map[string]string
		want    Env
		wantErr []string // substrings; nil: no error
	}{
		{"Nothing", nil, Env{}, nil},
		{"EmptyIsUnset", map[string]string{EnvSockPath: "", EnvHostPort: "", EnvToken: ""}, Env{}, nil},
		{"SockPath", map[string]string{EnvSockPath: "/run/zeusd/zeusd.sock"}, Env{Servers: unix("/run/zeusd/zeusd.sock")}, nil},
		{"SockPathRelative", map[string]string{EnvSockPath: "run/zeusd.sock"}, Env{Servers: unix(filepath.Join(wd, "run/zeusd.sock"))}, nil},
		{"SockPathURL", map[string]string{EnvSockPath: "unix:///run/zeusd.sock"}, Env{Servers: unix("/run/zeusd.sock")}, nil},
		{"SockPathFirst", map[string]string{EnvSockPath: "/z.sock", EnvHostPort: "node1:4938"}, Env{Servers: unix("/z.sock")}, nil},
		{"HostPort", map[string]string{EnvHostPort: "node1:5000"}, Env{Servers: tcp("node1:5000")}, nil},
		{"HostAlone", map[string]string{EnvHostPort: "node1"}, Env{Servers: tcp("node1:4938")}, nil},
		{"HostPortURL", map[string]string{EnvHostPort: "tcp://[::1]:4938"}, Env{Servers: tcp("[::1]:4938")}, nil},
		{"Token", map[string]string{EnvHostPort: "node1", EnvToken: " eyJ.a.b\n"}, Env{Servers: tcp("node1:4938"), Token: "eyJ.a.b"}, nil},
		{"TokenAlone", map[string]string{EnvToken: "eyJ.a.b"}, Env{Token: "eyJ.a.b"}, nil},

		{"BadPort", map[string]string{EnvHostPort: "node1:99999", EnvToken: "t"}, Env{Token: "t"}, []string{"$ZEUSD_HOST_PORT", "port"}},
		{"HostPortIsPath", map[string]string{EnvHostPort: "/run/zeusd.sock"}, Env{}, []string{`$ZEUSD_HOST_PORT="/run/zeusd.sock": want host:port`}},
		{"SockPathIsURL", map[string]string{EnvSockPath: "tcp://node1:4938"}, Env{}, []string{`$ZEUSD_SOCK_PATH="tcp://node1:4938": want a socket path`}},
		{"SockPathRoot", map[string]string{EnvSockPath: "/"}, Env{}, []string{"$ZEUSD_SOCK_PATH", "not a file path"}},
		{"SockPathBadOption", map[string]string{EnvSockPath: "/z.sock?gpu=0"}, Env{}, []string{"$ZEUSD_SOCK_PATH", `unknown option "gpu"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := envFrom(func(k string) string { return tc.vars[k] })
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("envFrom: %v", err)
			case tc.wantErr != nil && err == nil:
				t.Fatalf("envFrom = %+v, want an error", got)
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("envFrom = %+v, want %+v", got, tc.want)
			}
		})
	}
}
