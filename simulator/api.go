package simulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// tokenClaims are the claims of a zeusd JWT.
type tokenClaims struct {
	Scopes []string `json:"scopes"`
	jwt.RegisteredClaims
}

// MintToken returns an HS256 JWT for sub with the given scopes, signed
// with secret, as a zeusd token issuer would. A zero exp gives a token that
// never expires.
func MintToken(secret []byte, sub string, scopes []string, exp time.Time) (string, error) {
	if len(secret) == 0 {
		return "", errors.New("mint token: empty secret")
	}
	c := tokenClaims{Scopes: scopes, RegisteredClaims: jwt.RegisteredClaims{Subject: sub}}
	if c.Scopes == nil {
		c.Scopes = []string{}
	}
	if !exp.IsZero() {
		c.ExpiresAt = jwt.NewNumericDate(exp)
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	return tok, nil
}

// routes builds the API.
func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /discover", s.handleDiscover)
	mux.HandleFunc("GET /time", s.handleTime)
	mux.HandleFunc("GET /auth/whoami", s.handleWhoami)
	mux.HandleFunc("GET /gpu/stream_power", s.gated(GroupGPURead, s.handleStream(s.gpu)))
	mux.HandleFunc("GET /gpu/get_power", s.gated(GroupGPURead, s.handleGetPower(s.gpu)))
	mux.HandleFunc("GET /gpu/get_cumulative_energy", s.gated(GroupGPURead, s.handleGPUEnergy))
	mux.HandleFunc("GET /cpu/stream_power", s.gated(GroupCPURead, s.handleStream(s.cpu)))
	mux.HandleFunc("GET /cpu/get_power", s.gated(GroupCPURead, s.handleGetPower(s.cpu)))
	mux.HandleFunc("GET /cpu/get_cumulative_energy", s.gated(GroupCPURead, s.handleCPUEnergy))
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encoding response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

type discoverGPU struct {
	ID                        int    `json:"id"`
	Name                      string `json:"name"`
	PCIAddress                string `json:"pci_address"`
	CumulativeEnergyAvailable bool   `json:"cumulative_energy_available"`
}

type discoverCPU struct {
	ID            int  `json:"id"`
	DRAMAvailable bool `json:"dram_available"`
}

func (s *Server) handleDiscover(w http.ResponseWriter, r *http.Request) {
	resp := struct {
		GPUs             []discoverGPU `json:"gpus"`
		CPUs             []discoverCPU `json:"cpus"`
		EnabledAPIGroups []string      `json:"enabled_api_groups"`
		AuthRequired     bool          `json:"auth_required"`
	}{GPUs: []discoverGPU{}, CPUs: []discoverCPU{}, EnabledAPIGroups: s.groups, AuthRequired: s.cfg.AuthSecret != nil}
	for d := range s.cfg.GPUs {
		resp.GPUs = append(resp.GPUs, discoverGPU{ID: d, Name: "Simulated GPU",
			PCIAddress: fmt.Sprintf("0000:%02x:00.0", d+1), CumulativeEnergyAvailable: s.cumulative[d]})
	}
	for d := range s.cfg.CPUs {
		resp.CPUs = append(resp.CPUs, discoverCPU{ID: d, DRAMAvailable: s.dram[d]})
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) handleTime(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]int64{"timestamp_ms": floorDiv(s.daemonNanos(), 1e6)})
}

func (s *Server) handleWhoami(w http.ResponseWriter, r *http.Request) {
	if s.cfg.AuthSecret == nil {
		writeError(w, http.StatusNotFound, "Authentication is not enabled on this server.")
		return
	}
	c, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	resp := struct {
		Sub    string   `json:"sub"`
		Scopes []string `json:"scopes"`
		Exp    *int64   `json:"exp,omitempty"`
	}{Sub: c.Subject, Scopes: c.Scopes}
	if resp.Scopes == nil {
		resp.Scopes = []string{}
	}
	if c.ExpiresAt != nil {
		exp := c.ExpiresAt.Unix()
		resp.Exp = &exp
	}
	writeJSON(w, http.StatusOK, resp)
}

// authenticate checks the request's bearer token against the daemon clock
// and writes a 401 when it is missing, invalid or expired.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (*tokenClaims, bool) {
	fail := func(msg string) (*tokenClaims, bool) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="zeusd"`)
		writeError(w, http.StatusUnauthorized, msg)
		return nil, false
	}
	scheme, raw, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(raw) == "" {
		return fail("Missing bearer token.")
	}
	c := &tokenClaims{}
	_, err := jwt.ParseWithClaims(strings.TrimSpace(raw), c,
		func(*jwt.Token) (any, error) { return s.cfg.AuthSecret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithTimeFunc(func() time.Time { return s.now().Add(s.cfg.ClockOffset) }))
	if errors.Is(err, jwt.ErrTokenExpired) {
		return fail("Token has expired.")
	}
	if err != nil {
		return fail("Invalid token.")
	}
	return c, true
}

// gated wraps h with the API-group check (404 when disabled) and, with
// auth on, the token (401) and scope (403) checks.
func (s *Server) gated(group string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !slices.Contains(s.groups, group) {
			writeError(w, http.StatusNotFound, fmt.Sprintf("API group '%s' is not enabled on this server.", group))
			return
		}
		if s.cfg.AuthSecret != nil {
			c, ok := s.authenticate(w, r)
			if !ok {
				return
			}
			if !slices.Contains(c.Scopes, group) {
				writeError(w, http.StatusForbidden, fmt.Sprintf("Token lacks the required scope '%s'.", group))
				return
			}
		}
		h(w, r)
	}
}

// apiError is an error whose text is shown to clients as is, in zeusd's
// style (capitalised sentences).
type apiError string

func (e apiError) Error() string { return string(e) }

func apiErrorf(format string, args ...any) error {
	return apiError(fmt.Sprintf(format, args...))
}

// parseQuery parses the query string and rejects parameters not in
// allowed and repeated parameters, as zeusd's strict deserializer does.
func parseQuery(r *http.Request, allowed ...string) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, apiErrorf("Malformed query string: %v", err)
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !slices.Contains(allowed, k) {
			return nil, apiErrorf("Unknown query parameter '%s'; expected one of: %s", k, strings.Join(allowed, ", "))
		}
		if len(q[k]) > 1 {
			return nil, apiErrorf("Duplicate query parameter '%s'", k)
		}
	}
	return q, nil
}

// parseIDs parses a comma-separated device id list (param names it in
// messages, kind is "GPU" or "CPU") for a node with n devices. It returns
// the ids sorted and without repeats.
func parseIDs(param, raw, kind string, n int) ([]int, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, apiErrorf("Empty %s: list at least one %s index", param, kind)
	}
	var ids, unknown []int
	for f := range strings.SplitSeq(raw, ",") {
		f = strings.TrimSpace(f)
		id, err := strconv.Atoi(f)
		if err != nil || id < 0 || f[0] == '+' {
			return nil, apiErrorf("Invalid %s index '%s' in %s", kind, f, param)
		}
		if id >= n {
			unknown = append(unknown, id)
		} else {
			ids = append(ids, id)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return nil, apiErrorf("Unknown %s indices: %s. Available: %s",
			kind, formatInts(slices.Compact(unknown)), formatInts(seq(n)))
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

// selectIDs returns the ids of the query parameter param, or every device
// when it is absent.
func selectIDs(q url.Values, param, kind string, n int) ([]int, error) {
	if _, ok := q[param]; !ok {
		return seq(n), nil
	}
	return parseIDs(param, q.Get(param), kind, n)
}

// seq returns 0..n-1.
func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// formatInts formats like Rust's Debug for a Vec: [0, 1].
func formatInts(xs []int) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.Itoa(x)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// kindOf returns the id-list parameter and the message word of h's kind.
func kindOf(h *hub) (param, kind string) {
	if h.kind == "gpu" {
		return "gpu_ids", "GPU"
	}
	return "cpu_ids", "CPU"
}

func (s *Server) handleGetPower(h *hub) http.HandlerFunc {
	param, kind := kindOf(h)
	return func(w http.ResponseWriter, r *http.Request) {
		q, err := parseQuery(r, param)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		ids, err := selectIDs(q, param, kind, h.n)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		k, rs := h.current()
		b := []byte(`{"timestamp_ms":`)
		b = strconv.AppendInt(b, floorDiv(k*h.period, 1e6), 10)
		b = append(b, `,"power_mw":`...)
		b = h.appendPowerMap(b, ids, rs)
		b = append(b, "}\n"...)
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	}
}

func (s *Server) handleGPUEnergy(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r, "gpu_ids")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if _, ok := q["gpu_ids"]; !ok {
		writeError(w, http.StatusBadRequest, "Missing query parameter 'gpu_ids'")
		return
	}
	ids, err := parseIDs("gpu_ids", q.Get("gpu_ids"), "GPU", s.cfg.GPUs)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	for _, d := range ids {
		if !s.cumulative[d] {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("GPU %d does not support cumulative energy measurement.", d))
			return
		}
	}
	t := s.daemonNanos()
	resp := make(map[string]map[string]int64, len(ids))
	s.gpuMu.Lock()
	for _, d := range ids {
		resp[strconv.Itoa(d)] = map[string]int64{"energy_mj": s.gpuMeters[d].at(t)}
	}
	s.gpuMu.Unlock()
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) handleCPUEnergy(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r, "cpu", "dram", "cpu_ids")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	flag := func(name string) (bool, error) {
		if _, ok := q[name]; !ok {
			return false, apiErrorf("Missing query parameter '%s'", name)
		}
		switch v := q.Get(name); v {
		case "true":
			return true, nil
		case "false":
			return false, nil
		default:
			return false, apiErrorf("Invalid value '%s' for '%s': expected true or false", v, name)
		}
	}
	wantCPU, err := flag("cpu")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	wantDRAM, err := flag("dram")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ids, err := selectIDs(q, "cpu_ids", "CPU", s.cfg.CPUs)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	type energy struct {
		CPU  *int64 `json:"cpu_energy_uj"`
		DRAM *int64 `json:"dram_energy_uj"`
	}
	t := s.daemonNanos()
	resp := make(map[string]energy, len(ids))
	s.cpuMu.Lock()
	for _, d := range ids {
		var e energy
		if wantCPU {
			v := s.pkgMeters[d].at(t)
			e.CPU = &v
		}
		if m := s.ramMeters[d]; wantDRAM && m != nil {
			v := m.at(t)
			e.DRAM = &v
		}
		resp[strconv.Itoa(d)] = e
	}
	s.cpuMu.Unlock()
	writeJSON(w, http.StatusOK, resp)
}

// streamFilter reads a stream request's id list: which of h's devices the
// subscriber wants (nil: every device).
func streamFilter(r *http.Request, h *hub) ([]bool, error) {
	param, kind := kindOf(h)
	q, err := parseQuery(r, param)
	if err != nil {
		return nil, err
	}
	if _, ok := q[param]; !ok {
		return nil, nil
	}
	ids, err := parseIDs(param, q.Get(param), kind, h.n)
	if err != nil {
		return nil, err
	}
	want := make([]bool, h.n)
	for _, d := range ids {
		want[d] = true
	}
	return want, nil
}

// handleStream serves an SSE stream of h's devices, filtered by the id
// list parameter.
func (s *Server) handleStream(h *hub) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		want, err := streamFilter(r, h)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		sub := h.subscribe(want)
		if sub == nil {
			writeError(w, http.StatusServiceUnavailable, "server is shutting down")
			return
		}
		defer h.unsubscribe(sub)

		rc := http.NewResponseController(w)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		if err := rc.Flush(); err != nil {
			return // cannot stream over this writer
		}
		var buf []byte
		for {
			select {
			case data := <-sub.ch:
				buf = append(append(append(buf[:0], "data: "...), data...), "\n\n"...)
				// A deadline bounds a write to a client that stopped
				// reading; ErrNotSupported leaves it unbounded.
				rc.SetWriteDeadline(time.Now().Add(s.writeTO))
				if _, err := w.Write(buf); err != nil {
					return
				}
				if err := rc.Flush(); err != nil {
					return
				}
				rc.SetWriteDeadline(time.Time{})
				if s.cfg.OnEvent != nil {
					s.cfg.OnEvent(Event{Stream: h.kind, Conn: sub.id, Data: append([]byte(nil), data...)})
				}
			case <-sub.end:
				if sub.abort {
					// Drop the connection without ending the response.
					panic(http.ErrAbortHandler)
				}
				return
			case <-r.Context().Done():
				return
			}
		}
	}
}
