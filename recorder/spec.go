package recorder

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// DefaultPort is zeusd's default TCP port, taken when a spec names a
// host alone.
const DefaultPort = 4938

// maxDeviceIndex bounds device indices users can type.
const maxDeviceIndex = 1 << 16

// Selection is which devices of one kind to stream from a server. It has
// three states, as in the zeus Python client:
//   - unset (the zero value): every device the daemon has; skipped quietly
//     when the daemon has none or the API group or scope is missing;
//   - none (Set with no IDs): never stream that kind;
//   - a list (Set with IDs): exactly those; a missing index, API group or
//     scope refuses to start.
type Selection struct {
	Set bool
	IDs []int
}

// All selects every device (the unset state).
func All() Selection { return Selection{} }

// None selects no device of the kind.
func None() Selection { return Selection{Set: true} }

// Only selects exactly ids.
func Only(ids ...int) Selection { return Selection{Set: true, IDs: ids} }

// IsNone reports whether the selection is the explicit empty list.
func (s Selection) IsNone() bool { return s.Set && len(s.IDs) == 0 }

// String formats s as in a server spec: "all", "none" or "0,1,2".
func (s Selection) String() string {
	switch {
	case !s.Set:
		return "all"
	case len(s.IDs) == 0:
		return "none"
	}
	parts := make([]string, len(s.IDs))
	for i, id := range s.IDs {
		parts[i] = strconv.Itoa(id)
	}
	return strings.Join(parts, ",")
}

// Server is one zeusd endpoint to record from.
type Server struct {
	Network string // "tcp" or "unix"
	Address string // "host:port" or an absolute socket path
	GPUs    Selection
	CPUs    Selection
}

// Endpoint is the server's identity: "host:port" or the socket path.
func (s Server) Endpoint() string { return s.Address }

// String formats s as a spec that ParseServer reads back.
func (s Server) String() string {
	var b strings.Builder
	if s.Network == "unix" {
		b.WriteString("unix://")
	} else {
		b.WriteString("tcp://")
	}
	b.WriteString(s.Address)
	var q []string
	if s.GPUs.Set {
		q = append(q, "gpus="+s.GPUs.String())
	}
	if s.CPUs.Set {
		q = append(q, "cpus="+s.CPUs.String())
	}
	if len(q) > 0 {
		b.WriteString("?" + strings.Join(q, "&"))
	}
	return b.String()
}

// ParseServer parses a server spec: "host:port", "host" (port 4938),
// "tcp://host[:port]", "unix:///path/to.sock", "unix://rel/to.sock", or a
// bare socket path ("/abs/to.sock", "./rel/to.sock"), each optionally
// followed by "?gpus=LIST&cpus=LIST" where LIST is "all", "none" or
// comma-separated indices. A relative socket path is taken from the
// working directory.
func ParseServer(spec string) (Server, error) { return parseServerIn(spec, "") }

// parseServerIn is ParseServer with relative socket paths taken from dir
// ("" = the working directory).
func parseServerIn(spec, dir string) (Server, error) {
	s, err := parseServer(strings.TrimSpace(spec), dir)
	if err != nil {
		return Server{}, fmt.Errorf("server %q: %w", spec, err)
	}
	return s, nil
}

func parseServer(spec, dir string) (Server, error) {
	if spec == "" {
		return Server{}, errors.New("empty spec")
	}
	var srv Server
	rest, query, _ := strings.Cut(spec, "?")
	switch {
	case strings.HasPrefix(rest, "unix://"):
		srv.Network, srv.Address = "unix", strings.TrimPrefix(rest, "unix://")
	case strings.HasPrefix(rest, "tcp://"):
		srv.Network, srv.Address = "tcp", strings.TrimPrefix(rest, "tcp://")
	case strings.HasPrefix(rest, "/"), strings.HasPrefix(rest, "./"), strings.HasPrefix(rest, "../"):
		srv.Network, srv.Address = "unix", rest
	case strings.Contains(rest, "://"):
		scheme, _, _ := strings.Cut(rest, "://")
		return Server{}, fmt.Errorf("unknown scheme %q (want tcp:// or unix://)", scheme)
	default:
		srv.Network, srv.Address = "tcp", rest
	}
	if strings.TrimSpace(srv.Address) != srv.Address {
		return Server{}, fmt.Errorf("address %q has surrounding spaces", srv.Address)
	}
	switch srv.Network {
	case "unix":
		if srv.Address == "" {
			return Server{}, errors.New("empty socket path (write unix:///path/to.sock)")
		}
		if !filepath.IsAbs(srv.Address) {
			abs, err := filepath.Abs(filepath.Join(dir, srv.Address))
			if err != nil {
				return Server{}, fmt.Errorf("socket path %q: %w", srv.Address, err)
			}
			srv.Address = abs
		}
		srv.Address = filepath.Clean(srv.Address)
		if strings.TrimSpace(srv.Address) != srv.Address || srv.Address == "/" {
			return Server{}, fmt.Errorf("socket path %q is not a file path", srv.Address)
		}
	case "tcp":
		if _, _, err := net.SplitHostPort(srv.Address); err != nil && strings.Contains(err.Error(), "missing port") &&
			srv.Address != "" && !strings.HasSuffix(srv.Address, ":") {
			srv.Address = net.JoinHostPort(strings.Trim(srv.Address, "[]"), strconv.Itoa(DefaultPort))
		}
		if err := checkHostPort(srv.Address); err != nil {
			return Server{}, err
		}
	}
	if query == "" {
		return srv, nil
	}
	values, err := url.ParseQuery(query)
	if err != nil {
		return Server{}, fmt.Errorf("device selection %q: %w", query, err)
	}
	keys := slices.Sorted(maps.Keys(values)) // the same spec always names the same error
	for _, key := range keys {
		if key != "gpus" && key != "cpus" {
			return Server{}, fmt.Errorf("unknown option %q (want gpus= or cpus=)", key)
		}
	}
	for _, key := range keys {
		vs := values[key]
		if len(vs) != 1 {
			return Server{}, fmt.Errorf("%s given %d times", key, len(vs))
		}
		sel, err := ParseSelection(vs[0])
		if err != nil {
			return Server{}, fmt.Errorf("%s=%s: %w", key, vs[0], err)
		}
		if key == "gpus" {
			srv.GPUs = sel
		} else {
			srv.CPUs = sel
		}
	}
	return srv, nil
}

func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: want host:port (or unix:///path.sock for a socket)", addr)
	}
	if host == "" {
		return fmt.Errorf("address %q: empty host", addr)
	}
	if strings.Contains(host, "/") {
		return fmt.Errorf("address %q: invalid host %q (a socket path? write ./%s or unix://%s)", addr, host, host, host)
	}
	if strings.Contains(host, " ") {
		return fmt.Errorf("address %q: invalid host %q", addr, host)
	}
	n, err := strconv.Atoi(port)
	if err != nil || !isCanonical(port) || n < 1 || n > 65535 {
		return fmt.Errorf("address %q: port %q is not a number in 1-65535", addr, port)
	}
	return nil
}

// ParseSelection parses "all", "none" or a comma-separated list of device
// indices.
func ParseSelection(s string) (Selection, error) {
	switch s {
	case "all":
		return All(), nil
	case "none":
		return None(), nil
	case "":
		return Selection{}, errors.New(`empty list (write "none" to skip the kind)`)
	}
	sel := Selection{Set: true}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		n, err := strconv.Atoi(part)
		if err != nil || !isCanonical(part) || n < 0 || n >= maxDeviceIndex {
			return Selection{}, fmt.Errorf("%q is not a device index", part)
		}
		if slices.Contains(sel.IDs, n) {
			return Selection{}, fmt.Errorf("index %d listed twice", n)
		}
		sel.IDs = append(sel.IDs, n)
	}
	slices.Sort(sel.IDs)
	return sel, nil
}

// isCanonical reports whether s is a plain decimal: digits only, no sign,
// no leading zero. "04938" and "4938" must not name two endpoints.
func isCanonical(s string) bool {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// ParseServersFile reads one spec a line; blank lines and text after '#'
// are ignored. name, the file's path, is used in error messages, and its
// directory is where relative socket paths start.
func ParseServersFile(r io.Reader, name string) ([]Server, error) {
	var out []Server
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for line := 1; sc.Scan(); line++ {
		text, _, _ := strings.Cut(sc.Text(), "#")
		if text = strings.TrimSpace(text); text == "" {
			continue
		}
		s, err := parseServerIn(text, filepath.Dir(name))
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return out, nil
}

// CheckServers refuses an empty list (ErrNoServers) and duplicate
// endpoints.
func CheckServers(servers []Server) error {
	if len(servers) == 0 {
		return ErrNoServers
	}
	seen := map[string]bool{}
	for _, s := range servers {
		if seen[s.Endpoint()] {
			return fmt.Errorf("endpoint %s is given more than once", s.Endpoint())
		}
		seen[s.Endpoint()] = true
	}
	return nil
}

// checkSameDaemon refuses servers that reach one daemon under two names:
// TCP endpoints whose hosts resolve to a common address with the same
// port (127.0.0.1:4938 and localhost:4938), and socket paths that are the
// same file. A daemon given twice would be recorded, and counted, twice.
// A name that does not resolve now is left to the startup checks.
func checkSameDaemon(ctx context.Context, servers []Server) error {
	owner := map[string]string{} // resolved address -> the endpoint that has it
	for _, s := range servers {
		var keys []string
		switch s.Network {
		case "unix":
			path := filepath.Clean(s.Address)
			if real, err := filepath.EvalSymlinks(path); err == nil {
				path = real
			}
			keys = []string{"unix:" + path}
		default:
			host, port, err := net.SplitHostPort(s.Address)
			if err != nil {
				continue
			}
			addrs, err := net.DefaultResolver.LookupHost(ctx, host)
			if err != nil {
				continue
			}
			for _, a := range addrs {
				if ip := net.ParseIP(a); ip != nil {
					a = ip.String() // one spelling per address (IPv4-mapped included)
				}
				keys = append(keys, net.JoinHostPort(a, port))
			}
		}
		for _, k := range keys {
			if other, ok := owner[k]; ok && other != s.Endpoint() {
				return fmt.Errorf("endpoints %s and %s reach the same daemon (%s): give it once", other, s.Endpoint(), strings.TrimPrefix(k, "unix:"))
			}
			owner[k] = s.Endpoint()
		}
	}
	return nil
}
