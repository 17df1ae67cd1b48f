package recorder_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/wattrec/wattrec/internal/simtest"
	"github.com/wattrec/wattrec/recorder"
	"github.com/wattrec/wattrec/simulator"
)

func tcpServer(addr string, gpus, cpus recorder.Selection) recorder.Server {
	return recorder.Server{Network: "tcp", Address: addr, GPUs: gpus, CPUs: cpus}
}

func unixServer(path string, gpus, cpus recorder.Selection) recorder.Server {
	return recorder.Server{Network: "unix", Address: path, GPUs: gpus, CPUs: cpus}
}

// fmtServer shows every field of s (Server's %v is its String).
func fmtServer(s recorder.Server) string {
	return fmt.Sprintf("{Network:%q Address:%q GPUs:%s CPUs:%s}", s.Network, s.Address, fmtSelection(s.GPUs), fmtSelection(s.CPUs))
}

func fmtSelection(s recorder.Selection) string {
	if s.Set && s.IDs == nil {
		return "none(nil)"
	}
	return s.String()
}

var specValid = []struct {
	name string
	spec string
	want recorder.Server
	// str is what String gives back; "" to skip that check.
	str string
}{
	{"HostPort", "host:4938", tcpServer("host:4938", recorder.All(), recorder.All()), "tcp://host:4938"},
	{"HostPortSpaces", "  host:4938\t\n", tcpServer("host:4938", recorder.All(), recorder.All()), "tcp://host:4938"},
	{"TCP", "tcp://host:4938", tcpServer("host:4938", recorder.All(), recorder.All()), "tcp://host:4938"},
	{"HostAlone", "host", tcpServer("host:4938", recorder.All(), recorder.All()), "tcp://host:4938"},
	{"TCPHostAlone", "tcp://host?gpus=0", tcpServer("host:4938", recorder.Only(0), recorder.All()), "tcp://host:4938?gpus=0"},
	{"IPv6Alone", "[::1]", tcpServer("[::1]:4938", recorder.All(), recorder.All()), "tcp://[::1]:4938"},
	{"IPv4", "127.0.0.1:4938", tcpServer("127.0.0.1:4938", recorder.All(), recorder.All()), "tcp://127.0.0.1:4938"},
	{"IPv6", "[::1]:4938", tcpServer("[::1]:4938", recorder.All(), recorder.All()), "tcp://[::1]:4938"},
	{"TCPIPv6", "tcp://[fe80::1]:80?gpus=0", tcpServer("[fe80::1]:80", recorder.Only(0), recorder.All()), "tcp://[fe80::1]:80?gpus=0"},
	{"PortMin", "host:1", tcpServer("host:1", recorder.All(), recorder.All()), "tcp://host:1"},
	{"PortMax", "host:65535", tcpServer("host:65535", recorder.All(), recorder.All()), "tcp://host:65535"},
	{"Unix", "unix:///run/zeusd.sock", unixServer("/run/zeusd.sock", recorder.All(), recorder.All()), "unix:///run/zeusd.sock"},
	{"BareSocket", "/run/zeusd.sock", unixServer("/run/zeusd.sock", recorder.All(), recorder.All()), "unix:///run/zeusd.sock"},
	{"SocketCleaned", "unix:///run/zeusd/../zeusd//zeusd.sock/", unixServer("/run/zeusd/zeusd.sock", recorder.All(), recorder.All()), "unix:///run/zeusd/zeusd.sock"},
	{"BareSocketCleaned", "//run/./zeusd.sock", unixServer("/run/zeusd.sock", recorder.All(), recorder.All()), "unix:///run/zeusd.sock"},
	{"Selection", "host:4938?gpus=0,1,2,3&cpus=none",
		tcpServer("host:4938", recorder.Only(0, 1, 2, 3), recorder.None()), "tcp://host:4938?gpus=0,1,2,3&cpus=none"},
	{"SelectionReversedKeys", "tcp://host:4938?cpus=1&gpus=none",
		tcpServer("host:4938", recorder.None(), recorder.Only(1)), "tcp://host:4938?gpus=none&cpus=1"},
	{"SelectionSorted", "host:4938?gpus=3,1,2", tcpServer("host:4938", recorder.Only(1, 2, 3), recorder.All()), "tcp://host:4938?gpus=1,2,3"},
	{"SelectionSpaces", "host:4938?gpus= 3 , 1", tcpServer("host:4938", recorder.Only(1, 3), recorder.All()), "tcp://host:4938?gpus=1,3"},
	{"SelectionEscaped", "host:4938?gpus=0%2C1", tcpServer("host:4938", recorder.Only(0, 1), recorder.All()), "tcp://host:4938?gpus=0,1"},
	{"SelectionMaxIndex", "host:4938?cpus=65535", tcpServer("host:4938", recorder.All(), recorder.Only(65535)), "tcp://host:4938?cpus=65535"},
	{"GPUsAll", "host:4938?gpus=all", tcpServer("host:4938", recorder.All(), recorder.All()), "tcp://host:4938"},
	{"BothAll", "host:4938?gpus=all&cpus=all", tcpServer("host:4938", recorder.All(), recorder.All()), "tcp://host:4938"},
	{"BothNone", "host:4938?gpus=none&cpus=none", tcpServer("host:4938", recorder.None(), recorder.None()), "tcp://host:4938?gpus=none&cpus=none"},
	{"EmptyQuery", "host:4938?", tcpServer("host:4938", recorder.All(), recorder.All()), "tcp://host:4938"},
	{"TrailingAmpersand", "host:4938?gpus=1&", tcpServer("host:4938", recorder.Only(1), recorder.All()), "tcp://host:4938?gpus=1"},
	{"UnixSelection", "unix:///run/zeusd.sock?gpus=none&cpus=0,1", unixServer("/run/zeusd.sock", recorder.None(), recorder.Only(0, 1)), "unix:///run/zeusd.sock?gpus=none&cpus=0,1"},
	{"BareSocketSelection", "/run/zeusd.sock?cpus=0", unixServer("/run/zeusd.sock", recorder.All(), recorder.Only(0)), "unix:///run/zeusd.sock?cpus=0"},
}

var specInvalid = []struct {
	name string
	spec string
	// want are substrings the error must contain, besides the spec itself.
	want []string
}{
	{"Empty", "", []string{"empty spec"}},
	{"Blank", " \t ", []string{"empty spec"}},
	{"OnlyQuery", "?gpus=0", []string{"host:port"}},
	{"SchemeHTTP", "http://host:4938", []string{`unknown scheme "http"`}},
	{"SchemeHTTPS", "https://host:4938", []string{`unknown scheme "https"`}},
	{"SchemeUnixUpper", "UNIX:///run/zeusd.sock", []string{`unknown scheme "UNIX"`}},
	{"SchemeEmpty", "://host:4938", []string{`unknown scheme ""`}},
	{"UnixEmpty", "unix://", []string{"empty socket path"}},
	{"UnixEmptyWithQuery", "unix://?gpus=0", []string{"empty socket path"}},
	{"BareRelativeSocket", "run/zeusd.sock", []string{`invalid host "run/zeusd.sock"`, "./run/zeusd.sock"}},
	{"TCPEmpty", "tcp://", []string{"host:port"}},
	{"EmptyPort", "host:", []string{`port ""`, "1-65535"}},
	{"EmptyHost", ":4938", []string{"empty host"}},
	{"PortZero", "host:0", []string{`port "0"`, "1-65535"}},
	{"PortTooBig", "host:70000", []string{`port "70000"`, "1-65535"}},
	{"PortNegative", "host:-1", []string{`port "-1"`}},
	{"PortName", "host:http", []string{`port "http"`}},
	{"PortWithPath", "tcp://host:4938/stream", []string{`port "4938/stream"`}},
	{"HostSpace", "ho st:4938", []string{`invalid host "ho st"`}},
	{"HostSlash", "a/b:4938", []string{`invalid host "a/b"`}},
	{"IPv6Unbracketed", "::1:4938", []string{"host:port"}},
	{"SpaceBeforeQueryTCP", "host:4938 ?gpus=0", []string{`"host:4938 " has surrounding spaces`}},
	{"PortLeadingZero", "host:04938", []string{`port "04938"`}},
	{"PortPlus", "host:+4938", []string{`port "+4938"`}},
	{"BadInt", "host:4938?gpus=0,x", []string{"gpus=0,x", `"x" is not a device index`}},
	{"Float", "host:4938?gpus=1.5", []string{"gpus", `"1.5" is not a device index`}},
	{"NegativeIndex", "host:4938?cpus=-1", []string{"cpus", `"-1" is not a device index`}},
	{"IndexTooBig", "host:4938?gpus=65536", []string{"gpus", `"65536" is not a device index`}},
	{"EmptyElement", "host:4938?gpus=0,,1", []string{"gpus", `"" is not a device index`}},
	{"TrailingComma", "host:4938?gpus=0,", []string{"gpus", `"" is not a device index`}},
	{"Duplicate", "host:4938?gpus=0,1,0", []string{"gpus", "index 0 listed twice"}},
	{"DuplicateSpaced", "host:4938?cpus=2, 2", []string{"cpus", "index 2 listed twice"}},
	{"EmptyList", "host:4938?gpus=", []string{"gpus", "empty list", "none"}},
	{"KeyOnly", "host:4938?cpus", []string{"cpus", "empty list"}},
	{"AllInList", "host:4938?gpus=all,0", []string{"gpus", `"all" is not a device index`}},
	{"NoneUpper", "host:4938?gpus=NONE", []string{"gpus", `"NONE" is not a device index`}},
	{"RepeatedGPUs", "host:4938?gpus=0&gpus=1", []string{"gpus given 2 times"}},
	{"RepeatedCPUs", "/run/zeusd.sock?cpus=none&cpus=none&cpus=0", []string{"cpus given 3 times"}},
	{"UnknownOption", "host:4938?gpu=0", []string{`unknown option "gpu"`}},
	// BUG: the value is parsed as a device list before the key is
	// checked, so the error blames the value ("\"true\" is not a device
	// index") instead of naming the unknown option.
	{"UnknownOptionNonIndexValue", "host:4938?verbose=true", []string{`unknown option "verbose"`}},
	{"UnknownOptionEmptyKey", "host:4938?=0", []string{`unknown option ""`}},
	{"BadEscape", "host:4938?gpus=%zz", []string{"device selection"}},
	{"Semicolon", "host:4938?gpus=0;cpus=1", []string{"device selection"}},
}

func TestParseServer(t *testing.T) {
	for _, tt := range specValid {
		t.Run(tt.name, func(t *testing.T) {
			got, err := recorder.ParseServer(tt.spec)
			if err != nil {
				t.Fatalf("ParseServer(%q): %v", tt.spec, err)
			}
			if want := tt.want; !reflect.DeepEqual(got, want) {
				t.Fatalf("ParseServer(%q)=%s, want %s", tt.spec, fmtServer(got), fmtServer(want))
			}
			if got, want := got.Endpoint(), tt.want.Address; got != want {
				t.Errorf("Endpoint()=%q, want %q", got, want)
			}
		})
	}
}

// TestParseServer_Relative: a relative socket path is taken from the
// working directory, or in a servers file from the file's directory.
func TestParseServer_Relative(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, spec := range []string{"unix://run/zeusd.sock", "./run/zeusd.sock", "unix://./run/../run/zeusd.sock"} {
		got, err := recorder.ParseServer(spec)
		if want := filepath.Join(wd, "run", "zeusd.sock"); err != nil || got.Network != "unix" || got.Address != want {
			t.Errorf("ParseServer(%q) = %s, %v; want unix://%s", spec, fmtServer(got), err, want)
		}
	}
	got, err := recorder.ParseServersFile(strings.NewReader("unix://zeusd.sock\n../other.sock\n"), "/etc/wattrec/servers.txt")
	if err != nil || len(got) != 2 || got[0].Address != "/etc/wattrec/zeusd.sock" || got[1].Address != "/etc/other.sock" {
		t.Errorf("servers file: %v, %v; want the sockets beside the file", got, err)
	}
}

func TestParseServer_Errors(t *testing.T) {
	for _, tt := range specInvalid {
		t.Run(tt.name, func(t *testing.T) {
			got, err := recorder.ParseServer(tt.spec)
			if err == nil {
				t.Fatalf("ParseServer(%q)=%s, want an error", tt.spec, fmtServer(got))
			}
			if !reflect.DeepEqual(got, recorder.Server{}) {
				t.Errorf("got %s with the error, want the zero Server", fmtServer(got))
			}
			msg := err.Error()
			if want := fmt.Sprintf("server %q", tt.spec); !strings.Contains(msg, want) {
				t.Errorf("error %q does not name the spec (%s)", msg, want)
			}
			for _, want := range tt.want {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not contain %q", msg, want)
				}
			}
		})
	}
}

func TestServer_String(t *testing.T) {
	for _, tt := range specValid {
		t.Run(tt.name, func(t *testing.T) {
			if got, want := tt.want.String(), tt.str; got != want {
				t.Errorf("String()=%q, want %q", got, want)
			}
		})
	}
	t.Run("ZeroNetworkIsTCP", func(t *testing.T) {
		s := recorder.Server{Address: "host:4938", GPUs: recorder.Only(2)}
		if got, want := s.String(), "tcp://host:4938?gpus=2"; got != want {
			t.Errorf("String()=%q, want %q", got, want)
		}
	})
}

// TestServer_RoundTrip checks that String gives a spec that ParseServer
// reads back to an equal Server, and that a second round is a fixed point.
func TestServer_RoundTrip(t *testing.T) {
	for _, tt := range specValid {
		t.Run(tt.name, func(t *testing.T) {
			s, err := recorder.ParseServer(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			checkServerRoundTrip(t, s)
		})
	}
}

func checkServerRoundTrip(t *testing.T, s recorder.Server) {
	t.Helper()
	str := s.String()
	got, err := recorder.ParseServer(str)
	if err != nil {
		t.Fatalf("ParseServer(String()=%q): %v (server %s)", str, err, fmtServer(s))
	}
	if !reflect.DeepEqual(got, s) {
		t.Fatalf("ParseServer(String()=%q)=%s, want %s", str, fmtServer(got), fmtServer(s))
	}
	if got, want := got.String(), str; got != want {
		t.Fatalf("String() not stable: %q then %q", want, got)
	}
}

func TestParseSelection(t *testing.T) {
	valid := []struct {
		in   string
		want recorder.Selection
		str  string
	}{
		{"all", recorder.All(), "all"},
		{"none", recorder.None(), "none"},
		{"0", recorder.Only(0), "0"},
		{"65535", recorder.Only(65535), "65535"},
		{"0,1,2,3", recorder.Only(0, 1, 2, 3), "0,1,2,3"},
		{"3,1,2", recorder.Only(1, 2, 3), "1,2,3"},
		{" 1 , 0 ", recorder.Only(0, 1), "0,1"},
		{"10,9", recorder.Only(9, 10), "9,10"},
	}
	for _, tt := range valid {
		t.Run(tt.in, func(t *testing.T) {
			got, err := recorder.ParseSelection(tt.in)
			if err != nil {
				t.Fatalf("ParseSelection(%q): %v", tt.in, err)
			}
			if want := tt.want; !reflect.DeepEqual(got, want) {
				t.Fatalf("ParseSelection(%q)=%#v, want %#v", tt.in, got, want)
			}
			if got, want := got.String(), tt.str; got != want {
				t.Errorf("String()=%q, want %q", got, want)
			}
			back, err := recorder.ParseSelection(got.String())
			if err != nil {
				t.Fatalf("ParseSelection(String()=%q): %v", got.String(), err)
			}
			if !reflect.DeepEqual(back, got) {
				t.Errorf("round trip: got %#v, want %#v", back, got)
			}
		})
	}

	invalid := []struct{ in, want string }{
		{"", "empty list"},
		{"x", `"x" is not a device index`},
		{"-1", `"-1" is not a device index`},
		{"65536", `"65536" is not a device index`},
		{"1.0", `"1.0" is not a device index`},
		{"0x1", `"0x1" is not a device index`},
		{"1,", `"" is not a device index`},
		{",", `"" is not a device index`},
		{"1,1", "index 1 listed twice"},
		{"1,2,01", `"01" is not a device index`}, {"1,+2", `"+2" is not a device index`}, {"1,2,1", "index 1 listed twice"},
		{"none,1", `"none" is not a device index`},
		{"ALL", `"ALL" is not a device index`},
		{"99999999999999999999", `"99999999999999999999" is not a device index`},
	}
	for _, tt := range invalid {
		t.Run("Error/"+tt.in, func(t *testing.T) {
			got, err := recorder.ParseSelection(tt.in)
			if err == nil {
				t.Fatalf("ParseSelection(%q)=%#v, want an error", tt.in, got)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestSelection_IsNone(t *testing.T) {
	tests := []struct {
		name string
		sel  recorder.Selection
		want bool
	}{
		{"All", recorder.All(), false},
		{"None", recorder.None(), true},
		{"NoneEmptySlice", recorder.Selection{Set: true, IDs: []int{}}, true},
		{"Only", recorder.Only(0), false},
		{"OnlyEmpty", recorder.Only(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, want := tt.sel.IsNone(), tt.want; got != want {
				t.Errorf("IsNone()=%v, want %v", got, want)
			}
		})
	}
}

func TestParseServersFile(t *testing.T) {
	t.Run("CommentsAndBlankLines", func(t *testing.T) {
		in := "# zeusd servers\n" +
			"\n" +
			"node1:4938\n" +
			"   # indented comment\n" +
			"  tcp://node2:4938?gpus=0,1   # inline comment\r\n" +
			"\t\n" +
			"/run/zeusd.sock?cpus=none\n" +
			"unix:///run/other.sock" // no final newline
		got, err := recorder.ParseServersFile(strings.NewReader(in), "servers.txt")
		if err != nil {
			t.Fatal(err)
		}
		want := []recorder.Server{
			tcpServer("node1:4938", recorder.All(), recorder.All()),
			tcpServer("node2:4938", recorder.Only(0, 1), recorder.All()),
			unixServer("/run/zeusd.sock", recorder.All(), recorder.None()),
			unixServer("/run/other.sock", recorder.All(), recorder.All()),
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
	})
	t.Run("Empty", func(t *testing.T) {
		for _, in := range []string{"", "\n\n", "# only a comment\n  # another\n"} {
			got, err := recorder.ParseServersFile(strings.NewReader(in), "servers.txt")
			if err != nil {
				t.Fatalf("%q: %v", in, err)
			}
			if got, want := len(got), 0; got != want {
				t.Fatalf("%q: len=%d, want %d", in, got, want)
			}
		}
	})

	errs := []struct {
		name string
		in   string
		want []string
	}{
		{"BadPort", "node1:4938\n\n# c\nnode2:70000\nnode3:4938\n", []string{"servers.txt:4:", `server "node2:70000"`, `port "70000"`}},
		{"FirstLine", "http://node1:4938\n", []string{"servers.txt:1:", `unknown scheme "http"`}},
		{"AfterCRLF", "node1:4938\r\n# x\r\nunix://\r\n", []string{"servers.txt:3:", "empty socket path"}},
		{"BadSelection", "node1:4938 # fine\n  node2:4938?gpus=1,1  # dup\n", []string{"servers.txt:2:", "index 1 listed twice"}},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			got, err := recorder.ParseServersFile(strings.NewReader(tt.in), "servers.txt")
			if err == nil {
				t.Fatalf("got %v, want an error", got)
			}
			if got != nil {
				t.Errorf("got %v with the error, want nil", got)
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}

	t.Run("ReadError", func(t *testing.T) {
		boom := errors.New("boom")
		_, err := recorder.ParseServersFile(iotest.ErrReader(boom), "servers.txt")
		if !errors.Is(err, boom) {
			t.Fatalf("err=%v, want it to wrap %v", err, boom)
		}
		if !strings.Contains(err.Error(), "servers.txt") {
			t.Errorf("error %q does not name the file", err)
		}
	})
}

func TestCheckServers(t *testing.T) {
	parse := func(specs ...string) []recorder.Server {
		t.Helper()
		out := make([]recorder.Server, len(specs))
		for i, s := range specs {
			var err error
			if out[i], err = recorder.ParseServer(s); err != nil {
				t.Fatal(err)
			}
		}
		return out
	}
	tests := []struct {
		name    string
		servers []recorder.Server
		want    string // substring of the error; "" for no error
	}{
		{"Nil", nil, "no zeusd server"},
		{"Empty", []recorder.Server{}, "no zeusd server"},
		{"One", parse("node1:4938"), ""},
		{"Distinct", parse("node1:4938", "node2:4938", "node1:4939", "/run/zeusd.sock", "/run/other.sock"), ""},
		{"DuplicateTCP", parse("node1:4938", "node2:4938", "tcp://node1:4938?gpus=0"), "endpoint node1:4938 is given more than once"},
		{"DuplicateUnix", parse("/run/zeusd.sock", "unix:///run/x/../zeusd.sock?cpus=none"), "endpoint /run/zeusd.sock is given more than once"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := recorder.CheckServers(tt.servers)
			if len(tt.servers) == 0 && !errors.Is(err, recorder.ErrNoServers) {
				t.Errorf("CheckServers = %v, want ErrNoServers", err)
			}
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("CheckServers: %v", err)
			case tt.want != "" && err == nil:
				t.Fatalf("CheckServers: no error, want one containing %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func FuzzParseServer(f *testing.F) {
	for _, tt := range specValid {
		f.Add(tt.spec)
	}
	for _, tt := range specInvalid {
		f.Add(tt.spec)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		s, err := recorder.ParseServer(spec)
		if err != nil {
			if !reflect.DeepEqual(s, recorder.Server{}) {
				t.Fatalf("got %s with error %v, want the zero Server", fmtServer(s), err)
			}
			return
		}
		switch s.Network {
		case "tcp":
		case "unix":
			if !strings.HasPrefix(s.Address, "/") {
				t.Fatalf("socket path %q is not absolute", s.Address)
			}
		default:
			t.Fatalf("network %q, want tcp or unix", s.Network)
		}
		for _, sel := range []recorder.Selection{s.GPUs, s.CPUs} {
			if !sel.Set && sel.IDs != nil {
				t.Fatalf("unset selection with IDs %v", sel.IDs)
			}
			for i, id := range sel.IDs {
				if id < 0 || id > 65535 || (i > 0 && id <= sel.IDs[i-1]) {
					t.Fatalf("IDs %v not strictly increasing indices in [0, 65535]", sel.IDs)
				}
			}
		}
		checkServerRoundTrip(t, s)
	})
}

// TestResolve covers the three selection states against every reason a
// kind can be unusable. Resolve lives in startup.go; its table is here,
// next to the Selection it interprets.
func TestResolve(t *testing.T) {
	const endpoint = "node1:4938"
	open := recorder.Access{Groups: []string{"gpu-read", "cpu-read"}}
	noGroup := recorder.Access{Groups: []string{"cpu-read"}}
	noGroups := recorder.Access{}
	noToken := recorder.Access{Groups: []string{"gpu-read", "cpu-read"}, AuthRequired: true}
	noScope := recorder.Access{Groups: []string{"gpu-read", "cpu-read"}, AuthRequired: true, HasToken: true, Scopes: []string{"cpu-read"}}
	scoped := recorder.Access{Groups: []string{"gpu-read"}, AuthRequired: true, HasToken: true, Scopes: []string{"gpu-read", "gpu-control"}}
	// Scopes only count when the daemon requires auth.
	authOffNoScopes := recorder.Access{Groups: []string{"gpu-read"}, HasToken: true, Scopes: nil}
	gpus := []int{0, 1, 2, 3}

	tests := []struct {
		name      string
		kind      string
		group     string
		sel       recorder.Selection
		available []int
		acc       recorder.Access
		wantIDs   []int
		wantSkip  []string // substrings of the skip reason; nil for no skip
		wantErr   []string // substrings of the error; nil for no error
		wantIs    error    // a sentinel the error wraps
		wantAlso  error    // another one it wraps
		wantNot   error    // a sentinel it must not wrap
	}{
		// none: never streamed, whatever the daemon says.
		{name: "None/OK", kind: "GPU", group: "gpu-read", sel: recorder.None(), available: gpus, acc: open,
			wantSkip: []string{"GPU", "none"}},
		{name: "None/NoGroup", kind: "GPU", group: "gpu-read", sel: recorder.None(), available: nil, acc: noGroups,
			wantSkip: []string{"GPU", "none"}},
		{name: "None/EmptySlice", kind: "CPU", group: "cpu-read", sel: recorder.Selection{Set: true, IDs: []int{}}, available: []int{0}, acc: open,
			wantSkip: []string{"CPU", "none"}},

		// unset: every device, or skip quietly.
		{name: "Unset/OK", kind: "GPU", group: "gpu-read", sel: recorder.All(), available: gpus, acc: open,
			wantIDs: gpus},
		{name: "Unset/OKWithScope", kind: "GPU", group: "gpu-read", sel: recorder.All(), available: gpus, acc: scoped,
			wantIDs: gpus},
		{name: "Unset/AuthOff", kind: "GPU", group: "gpu-read", sel: recorder.All(), available: []int{1}, acc: authOffNoScopes,
			wantIDs: []int{1}},
		{name: "Unset/CPU", kind: "CPU", group: "cpu-read", sel: recorder.All(), available: []int{0, 1}, acc: open,
			wantIDs: []int{0, 1}},
		{name: "Unset/GroupNotEnabled", kind: "GPU", group: "gpu-read", sel: recorder.All(), available: gpus, acc: noGroup,
			wantSkip: []string{`missing scope "gpu-read": the API group is not enabled`, "[cpu-read]"}},
		{name: "Unset/NoGroups", kind: "CPU", group: "cpu-read", sel: recorder.All(), available: []int{0}, acc: noGroups,
			wantSkip: []string{`missing scope "cpu-read": the API group is not enabled`}},
		{name: "Unset/NoToken", kind: "GPU", group: "gpu-read", sel: recorder.All(), available: gpus, acc: noToken,
			wantSkip: []string{`missing scope "gpu-read": the daemon requires a token`}},
		{name: "Unset/ScopeMissing", kind: "GPU", group: "gpu-read", sel: recorder.All(), available: gpus, acc: noScope,
			wantSkip: []string{`missing scope "gpu-read": the token lacks it`, "[cpu-read]"}},
		{name: "Unset/NoDevices", kind: "GPU", group: "gpu-read", sel: recorder.All(), available: nil, acc: open,
			wantSkip: []string{"the daemon has no GPUs"}},
		// zeusd lists no devices of a kind whose group is off.
		{name: "Unset/NoDevicesNoGroup", kind: "GPU", group: "gpu-read", sel: recorder.All(), available: nil, acc: noGroup,
			wantSkip: []string{`the daemon lists no GPUs (missing scope "gpu-read": the API group is not enabled`}},
		{name: "Unset/NoDevicesEmptySlice", kind: "CPU", group: "cpu-read", sel: recorder.All(), available: []int{}, acc: open,
			wantSkip: []string{"has no CPUs"}},

		// explicit: exactly those, or refuse to start.
		{name: "Explicit/OK", kind: "GPU", group: "gpu-read", sel: recorder.Only(0, 1, 2, 3), available: gpus, acc: open,
			wantIDs: gpus},
		{name: "Explicit/Subset", kind: "GPU", group: "gpu-read", sel: recorder.Only(1, 3), available: gpus, acc: scoped,
			wantIDs: []int{1, 3}},
		{name: "Explicit/AuthOff", kind: "GPU", group: "gpu-read", sel: recorder.Only(0), available: gpus, acc: authOffNoScopes,
			wantIDs: []int{0}},
		{name: "Explicit/CPU", kind: "CPU", group: "cpu-read", sel: recorder.Only(1), available: []int{0, 1}, acc: open,
			wantIDs: []int{1}},
		{name: "Explicit/GroupNotEnabled", kind: "GPU", group: "gpu-read", sel: recorder.Only(0, 1), available: gpus, acc: noGroup,
			wantErr: []string{`endpoint node1:4938: cannot read GPUs 0,1: missing scope "gpu-read": the API group is not enabled on the daemon (enabled: [cpu-read])`},
			wantIs:  recorder.ErrMissingScope},
		{name: "Explicit/NoToken", kind: "CPU", group: "cpu-read", sel: recorder.Only(0), available: []int{0}, acc: noToken,
			wantErr: []string{`endpoint node1:4938: cannot read CPUs 0: missing scope "cpu-read": the daemon requires a token`},
			wantIs:  recorder.ErrTokenRequired, wantAlso: recorder.ErrMissingScope},
		{name: "Explicit/ScopeMissing", kind: "GPU", group: "gpu-read", sel: recorder.Only(2), available: gpus, acc: noScope,
			wantErr: []string{`endpoint node1:4938: cannot read GPUs 2: missing scope "gpu-read": the token lacks it (it has [cpu-read])`},
			wantIs:  recorder.ErrMissingScope, wantNot: recorder.ErrTokenRequired},
		{name: "Explicit/NoDevices", kind: "GPU", group: "gpu-read", sel: recorder.Only(0), available: nil, acc: open,
			wantErr: []string{"endpoint node1:4938: cannot read GPUs 0: no such device index [0]: the daemon has no GPUs"},
			wantIs:  recorder.ErrMissingDevice, wantNot: recorder.ErrMissingScope},
		{name: "Explicit/Missing", kind: "GPU", group: "gpu-read", sel: recorder.Only(9), available: gpus, acc: open,
			wantErr: []string{"endpoint node1:4938: cannot read GPUs 9: no such device index [9]: the daemon has GPUs [0, 1, 2, 3]"},
			wantIs:  recorder.ErrMissingDevice},
		{name: "Explicit/SomeMissing", kind: "GPU", group: "gpu-read", sel: recorder.Only(1, 4, 9), available: gpus, acc: scoped,
			wantErr: []string{"endpoint node1:4938: cannot read GPUs 1,4,9: no such device index [4, 9]: the daemon has GPUs [0, 1, 2, 3]"},
			wantIs:  recorder.ErrMissingDevice},
		{name: "Explicit/MissingCPU", kind: "CPU", group: "cpu-read", sel: recorder.Only(0, 1), available: []int{0}, acc: open,
			wantErr: []string{"endpoint node1:4938: cannot read CPUs 0,1: no such device index [1]: the daemon has CPUs [0]"},
			wantIs:  recorder.ErrMissingDevice},
		// Missing indices are reported before access problems, as zeus
		// does (ValueError before ZeusdCapabilityError).
		{name: "Explicit/MissingAndNoScope", kind: "GPU", group: "gpu-read", sel: recorder.Only(9), available: gpus, acc: noScope,
			wantErr: []string{"no such device index [9]"}, wantIs: recorder.ErrMissingDevice, wantNot: recorder.ErrMissingScope},
		{name: "Explicit/MissingAndNoToken", kind: "GPU", group: "gpu-read", sel: recorder.Only(0, 9), available: gpus, acc: noToken,
			wantErr: []string{"no such device index [9]"}, wantIs: recorder.ErrMissingDevice, wantNot: recorder.ErrTokenRequired},
		// A daemon whose group is off lists no device of the kind: the
		// missing index comes first, and the reason with it.
		{name: "Explicit/MissingAsGroupOff", kind: "GPU", group: "gpu-read", sel: recorder.Only(0), available: nil, acc: noGroup,
			wantErr: []string{`cannot read GPUs 0: no such device index [0]: the daemon lists no GPUs (missing scope "gpu-read": the API group is not enabled`},
			wantIs:  recorder.ErrMissingDevice, wantAlso: recorder.ErrMissingScope},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			available := slices.Clone(tt.available)
			ids, skip, err := recorder.Resolve(endpoint, tt.kind, tt.group, tt.sel, available, tt.acc)
			if !reflect.DeepEqual(available, tt.available) {
				t.Errorf("available changed to %v", available)
			}
			switch {
			case tt.wantErr != nil:
				if err == nil {
					t.Fatalf("got ids %v, skip %q, want an error", ids, skip)
				}
				for _, want := range tt.wantErr {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not contain %q", err, want)
					}
				}
				for _, want := range []error{tt.wantIs, tt.wantAlso} {
					if want != nil && !errors.Is(err, want) {
						t.Errorf("error %q does not wrap %q", err, want)
					}
				}
				if tt.wantNot != nil && errors.Is(err, tt.wantNot) {
					t.Errorf("error %q wraps %q", err, tt.wantNot)
				}
				if strings.Contains(err.Error(), "--") {
					t.Errorf("error %q names a command-line flag", err)
				}
				if ids != nil || skip != "" {
					t.Errorf("got ids %v, skip %q with the error, want nil and \"\"", ids, skip)
				}
			case tt.wantSkip != nil:
				if err != nil {
					t.Fatalf("Resolve: %v, want a quiet skip", err)
				}
				if ids != nil {
					t.Errorf("ids=%v, want nil", ids)
				}
				if skip == "" {
					t.Fatal("empty skip reason")
				}
				if strings.Contains(skip, "--") {
					t.Errorf("skip reason %q names a command-line flag", skip)
				}
				for _, want := range tt.wantSkip {
					if !strings.Contains(skip, want) {
						t.Errorf("skip reason %q does not contain %q", skip, want)
					}
				}
			default:
				if err != nil {
					t.Fatalf("Resolve: %v", err)
				}
				if skip != "" {
					t.Errorf("skip=%q, want none", skip)
				}
				if got, want := ids, tt.wantIDs; !reflect.DeepEqual(got, want) {
					t.Fatalf("ids=%v, want %v", got, want)
				}
			}
		})
	}

	t.Run("UnsetReturnsCopy", func(t *testing.T) {
		available := []int{0, 1, 2}
		ids, _, err := recorder.Resolve(endpoint, "GPU", "gpu-read", recorder.All(), available, open)
		if err != nil {
			t.Fatal(err)
		}
		ids[0] = 99
		_ = append(ids[:1], 98, 97) // would write into a shared backing array
		if got, want := available, []int{0, 1, 2}; !reflect.DeepEqual(got, want) {
			t.Fatalf("available=%v after mutating the result, want %v", got, want)
		}
	})
	t.Run("ExplicitReturnsCopy", func(t *testing.T) {
		sel := recorder.Only(0, 2)
		ids, _, err := recorder.Resolve(endpoint, "GPU", "gpu-read", sel, []int{0, 1, 2}, open)
		if err != nil {
			t.Fatal(err)
		}
		ids[0] = 99
		if got, want := sel.IDs, []int{0, 2}; !reflect.DeepEqual(got, want) {
			t.Fatalf("sel.IDs=%v after mutating the result, want %v", got, want)
		}
	})
}

// TestClient_SameDaemonTwice: one daemon under two names (an address and
// a name that resolves to it, or a socket path and a link to it) is
// refused at start, naming both; it used to be recorded, and counted,
// twice.
func TestClient_SameDaemonTwice(t *testing.T) {
	t.Parallel()
	_, tcp, _ := simtest.Start(t, simtest.FastConfig(simulator.FormatSample), "tcp")
	_, unix, _ := simtest.Start(t, simtest.FastConfig(simulator.FormatSample), "unix")
	_, port, _ := net.SplitHostPort(tcp.Address)
	link := filepath.Join(t.TempDir(), "zeusd-link.sock")
	if err := os.Symlink(unix.Address, link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		a, b recorder.Server
	}{
		{"Localhost", tcp, recorder.Server{Network: "tcp", Address: "localhost:" + port}},
		{"SocketLink", unix, recorder.Server{Network: "unix", Address: link}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := recorder.NewClient([]recorder.Server{tc.a, tc.b})
			c.Logger = testLogger(t)
			err := c.Start(context.Background())
			if err == nil {
				c.Stop()
				t.Fatal("the same daemon under two names was accepted")
			}
			if msg := err.Error(); !strings.Contains(msg, tc.a.Endpoint()) || !strings.Contains(msg, tc.b.Endpoint()) || !strings.Contains(msg, "same daemon") {
				t.Fatalf("error %q does not name both endpoints", msg)
			}
		})
	}
	// Two daemons are two.
	c := recorder.NewClient([]recorder.Server{tcp, unix})
	c.Logger = testLogger(t)
	if err := c.Start(context.Background()); err != nil {
		t.Fatalf("two daemons: %v", err)
	}
	c.Stop()
}

// TestParseServersFile_TokenFile: a line may name its server's own token
// file (beside the servers file when relative), which must be private.
func TestParseServersFile_TokenFile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.token"), []byte("tok-a\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "open.token"), []byte("tok-b\n"), 0o644)
	list := filepath.Join(dir, "servers.txt")
	got, err := recorder.ParseServersFile(strings.NewReader("node1:4938 token-file=a.token\nnode2:4938\n"), list)
	if err != nil || len(got) != 2 || got[0].Token != "tok-a" || got[1].Token != "" {
		t.Fatalf("got %+v, %v", got, err)
	}
	if s := got[0].String(); strings.Contains(s, "tok-a") {
		t.Errorf("String() = %q shows the token", s)
	}
	for line, want := range map[string]string{
		"node1:4938 token-file=open.token": "readable by its owner only",
		"node1:4938 token-file=none.token": "no such file",
		"node1:4938 tokenfile=a.token":     `unknown option "tokenfile=a.token"`,
	} {
		if _, err := recorder.ParseServersFile(strings.NewReader(line+"\n"), list); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "servers.txt:1:") {
			t.Errorf("%q: %v, want %q", line, err, want)
		}
	}
}
