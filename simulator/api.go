package simulator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// tokenLeeway is how far past its exp a token is still accepted, as
// zeusd's JWT library allows by default.
const tokenLeeway = 60 // s

// Simulated GPU power limits, in mW.
const (
	minPowerLimitMW     = 100_000
	maxPowerLimitMW     = 350_000
	defaultPowerLimitMW = maxPowerLimitMW
)

// nvmlNotSupported and nvmlInvalidArg are zeusd's texts for the NVML
// errors a simulated GPU returns.
const (
	nvmlNotSupported = "NVML error: the requested operation is not available on the target device"
	nvmlInvalidArg   = "NVML error: a supplied argument was invalid"
)

// MintToken returns an HS256 JWT for sub with the given scopes, signed
// with secret, as `zeusd token issue` makes one: claims sub, scopes and,
// unless exp is zero, exp in whole seconds. A zero exp gives a token that
// never expires.
func MintToken(secret []byte, sub string, scopes []string, exp time.Time) (string, error) {
	if len(secret) == 0 {
		return "", errors.New("mint token: empty secret")
	}
	if scopes == nil {
		scopes = []string{}
	}
	c := jwt.MapClaims{"sub": sub, "scopes": scopes}
	if !exp.IsZero() {
		c["exp"] = exp.Unix()
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	return tok, nil
}

// apiError is an error whose text is a client's answer in zeusd's words
// (capitalised sentences, as the daemon writes them), not a Go error
// message.
type apiError string

func (e apiError) Error() string { return string(e) }

func apiErrorf(format string, args ...any) error {
	return apiError(fmt.Sprintf(format, args...))
}

// claims are the claims of a valid zeusd token.
type claims struct {
	Sub    string   `json:"sub"`
	Scopes []string `json:"scopes"`
	Exp    *uint64  `json:"exp,omitempty"` // nil: never expires
}

// parseToken checks tok as zeusd does (jsonwebtoken 9 with HS256 only, no
// required registered claims, exp checked with 60 s of leeway, nbf not
// checked, aud refused) and decodes zeusd's claims (sub a string, scopes
// known group names, exp an unsigned integer). now is the daemon clock in
// Unix seconds. The error text follows zeusd's 401 messages.
func parseToken(secret []byte, tok string, now int64) (*claims, error) {
	p := jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithoutClaimsValidation(), jwt.WithJSONNumber(), jwt.WithStrictDecoding())
	m := jwt.MapClaims{}
	t, err := p.ParseWithClaims(tok, m, func(*jwt.Token) (any, error) { return secret, nil })
	switch {
	case t != nil && t.Header != nil && t.Header["alg"] != jwt.SigningMethodHS256.Alg():
		return nil, apiError("Invalid token: InvalidAlgorithm")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return nil, apiError("Invalid token: InvalidSignature")
	case err != nil:
		return nil, apiError("Invalid token: InvalidToken")
	}
	bad := func(format string, args ...any) (*claims, error) {
		return nil, apiErrorf("Invalid token: JSON error: "+format, args...)
	}
	c := &claims{}
	sub, ok := m["sub"]
	if !ok {
		return bad("missing field `sub`")
	}
	if c.Sub, ok = sub.(string); !ok {
		return bad("invalid type for `sub`, expected a string")
	}
	scopes, ok := m["scopes"]
	if !ok {
		return bad("missing field `scopes`")
	}
	list, ok := scopes.([]any)
	if !ok {
		return bad("invalid type for `scopes`, expected a sequence")
	}
	for _, v := range list {
		g, ok := v.(string)
		if !ok || !isGroup(g) {
			return bad("unknown variant %v, expected one of %s", v, expectedNames(KnownGroups()))
		}
		c.Scopes = append(c.Scopes, g)
	}
	if c.Scopes == nil {
		c.Scopes = []string{}
	}
	if v := m["exp"]; v != nil {
		n, ok := v.(json.Number)
		exp, err := strconv.ParseUint(string(n), 10, 64)
		if !ok || err != nil {
			return bad("invalid type for `exp`, expected usize")
		}
		c.Exp = &exp
		if now > tokenLeeway && exp < uint64(now-tokenLeeway) {
			return nil, apiError("Token has expired.")
		}
	}
	if audience(m["aud"]) {
		return nil, apiError("Invalid token: InvalidAudience")
	}
	return c, nil
}

// audience reports whether v is an aud claim that jsonwebtoken parses (a
// string or a list of strings): zeusd sets no audience, so it refuses
// tokens that name one.
func audience(v any) bool {
	switch v := v.(type) {
	case string:
		return true
	case []any:
		for _, e := range v {
			if _, ok := e.(string); !ok {
				return false
			}
		}
		return true
	}
	return false
}

// isGroup reports whether g is an API group name.
func isGroup(g string) bool { return slices.Contains(KnownGroups(), g) }

// requiredScope is the API group a path belongs to, "" for /discover,
// /time and paths outside /gpu/ and /cpu/, as zeusd decides it.
func requiredScope(path string) string {
	switch {
	case path == "/discover" || path == "/time":
		return ""
	case strings.HasPrefix(path, "/gpu/set_") || strings.HasPrefix(path, "/gpu/reset_"):
		return GroupGPUControl
	case strings.HasPrefix(path, "/gpu/"):
		return GroupGPURead
	case strings.HasPrefix(path, "/cpu/"):
		return GroupCPURead
	}
	return ""
}

// claimsKey is the request context key of a request's token claims.
type claimsKey struct{}

// guard is zeusd's auth middleware around api: a path of a disabled API
// group is 404; with auth off, /auth/ paths are 404; with auth on, every
// path but /discover and /time needs a valid token (401, also for
// unknown paths) whose scopes include the path's group (403).
func (s *Server) guard(api http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.Path
		scope := requiredScope(path)
		if scope != "" && !slices.Contains(s.groups, scope) {
			writeError(w, http.StatusNotFound, fmt.Sprintf("API group '%s' is not enabled on this server.", scope))
			return
		}
		switch {
		case s.cfg.AuthSecret == nil:
			if strings.HasPrefix(path, "/auth/") {
				writeError(w, http.StatusNotFound, "Authentication is not enabled on this server.")
				return
			}
		case path == "/discover" || path == "/time":
		default:
			c, ok := s.authenticate(w, r)
			if !ok {
				return
			}
			if scope != "" && !slices.Contains(c.Scopes, scope) {
				quoted := make([]string, len(c.Scopes))
				for i, g := range c.Scopes {
					quoted[i] = "'" + g + "'"
				}
				writeError(w, http.StatusForbidden, fmt.Sprintf("Token for user '%s' lacks required scope '%s'. Token scopes: [%s]",
					c.Sub, scope, strings.Join(quoted, ", ")))
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), claimsKey{}, c))
		}
		api.ServeHTTP(w, r)
	})
}

// authenticate checks the request's bearer token against the daemon clock
// and writes a 401 when it is missing, invalid or expired.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (*claims, bool) {
	fail := func(msg string) (*claims, bool) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="zeusd"`)
		writeError(w, http.StatusUnauthorized, msg)
		return nil, false
	}
	// zeusd strips exactly "Bearer " and takes the rest as the token.
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return fail("Authentication required. Provide an Authorization: Bearer <token> header.")
	}
	c, err := parseToken(s.cfg.AuthSecret, tok, floorDiv(s.daemonNanos(), 1e9))
	if err != nil {
		return fail(err.Error())
	}
	return c, true
}

// routes builds the API: the guard around s's routes.
func (s *Server) routes() http.Handler {
	return s.guard(s.mux())
}

// mux routes the API's paths; unknown paths answer an empty 404, as
// actix-web does.
func (s *Server) mux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotFound) })
	mux.HandleFunc("GET /discover", s.handleDiscover)
	mux.HandleFunc("GET /time", s.handleTime)
	mux.HandleFunc("GET /auth/whoami", s.handleWhoami)
	mux.HandleFunc("GET /gpu/stream_power", s.handleStream(s.gpu))
	mux.HandleFunc("GET /gpu/get_power", s.handleGetPower(s.gpu))
	mux.HandleFunc("GET /gpu/get_cumulative_energy", s.handleGPURead(func(d int) ([]byte, string) {
		if s.gpuMeters[d] == nil {
			return nil, nvmlNotSupported
		}
		return fmt.Appendf(nil, `{"energy_mj":%d}`, s.gpuMeters[d].at(s.daemonNanos())), ""
	}))
	mux.HandleFunc("GET /gpu/get_power_limit", s.handleGPURead(func(d int) ([]byte, string) {
		return fmt.Appendf(nil, `{"power_limit_mw":%d}`, s.powerLimit[d]), ""
	}))
	mux.HandleFunc("GET /gpu/get_power_limit_constraints", s.handleGPURead(func(d int) ([]byte, string) {
		return fmt.Appendf(nil, `{"min_power_limit_mw":%d,"max_power_limit_mw":%d}`, minPowerLimitMW, maxPowerLimitMW), ""
	}))
	mux.HandleFunc("GET /gpu/get_persistence_mode", s.handleGPURead(func(d int) ([]byte, string) {
		return fmt.Appendf(nil, `{"enabled":%t}`, s.persistence[d]), ""
	}))
	for _, c := range gpuCommands {
		if !c.mainOnly || s.release != Release050 {
			mux.HandleFunc("POST /gpu/"+c.name, s.handleGPUCommand(c))
		}
	}
	mux.HandleFunc("GET /cpu/stream_power", s.handleStream(s.cpu))
	mux.HandleFunc("GET /cpu/get_power", s.handleGetPower(s.cpu))
	mux.HandleFunc("GET /cpu/get_cumulative_energy", s.handleCPUEnergy)
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encoding response"}`)
	}
	writeRaw(w, status, b)
}

// writeRaw writes b as a JSON answer.
func writeRaw(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// writeText writes msg as a text/plain answer: how actix-web reports a
// query it cannot deserialize, and how zeusd reports its own errors that
// a handler returns.
func writeText(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	w.Write([]byte(msg))
}

// writeDeviceErrors writes zeusd's answer for per-device failures, all
// of which are 400s here: {"errors":{"<id>":"<message>"}}.
func writeDeviceErrors(w http.ResponseWriter, ids []int, msgs map[int]string) {
	failed := slices.DeleteFunc(slices.Clone(ids), func(d int) bool { _, ok := msgs[d]; return !ok })
	b := appendIDMap([]byte(`{"errors":`), failed, func(b []byte, d int) []byte {
		m, _ := json.Marshal(msgs[d])
		return append(b, m...)
	})
	writeRaw(w, http.StatusBadRequest, append(b, '}'))
}

// appendIDMap appends {"<id>":value,...} for ids, in order.
func appendIDMap(b []byte, ids []int, value func([]byte, int) []byte) []byte {
	b = append(b, '{')
	for i, d := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = strconv.AppendInt(b, int64(d), 10)
		b = value(append(b, `":`...), d)
	}
	return append(b, '}')
}

type discoverGPU struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
	// Absent on zeusd 0.5.0.
	PCIAddress                *string `json:"pci_address,omitempty"`
	CumulativeEnergyAvailable *bool   `json:"cumulative_energy_available,omitempty"`
}

type discoverCPU struct {
	ID            int  `json:"id"`
	DRAMAvailable bool `json:"dram_available"`
}

// handleDiscover lists the devices of the enabled kinds, as zeusd lists
// only the devices it initialised: GPUs with gpu-read or gpu-control,
// CPU packages with cpu-read.
func (s *Server) handleDiscover(w http.ResponseWriter, r *http.Request) {
	resp := struct {
		GPUs             []discoverGPU `json:"gpus"`
		CPUs             []discoverCPU `json:"cpus"`
		EnabledAPIGroups []string      `json:"enabled_api_groups"`
		AuthRequired     bool          `json:"auth_required"`
	}{GPUs: []discoverGPU{}, CPUs: []discoverCPU{}, EnabledAPIGroups: s.groups, AuthRequired: s.cfg.AuthSecret != nil}
	if slices.Contains(s.groups, GroupGPURead) || slices.Contains(s.groups, GroupGPUControl) {
		for d := range s.cfg.GPUs {
			g := discoverGPU{ID: d, Name: "Simulated GPU"}
			if s.release != Release050 {
				pci, counter := fmt.Sprintf("0000:%02x:00.0", d+1), s.gpuMeters[d] != nil
				g.PCIAddress, g.CumulativeEnergyAvailable = &pci, &counter
			}
			resp.GPUs = append(resp.GPUs, g)
		}
	}
	if slices.Contains(s.groups, GroupCPURead) {
		for d := range s.cfg.CPUs {
			resp.CPUs = append(resp.CPUs, discoverCPU{ID: d, DRAMAvailable: s.ramMeters[d] != nil})
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) handleTime(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]int64{"timestamp_ms": floorDiv(s.daemonNanos(), 1e6)})
}

// handleWhoami echoes the claims guard checked.
func (s *Server) handleWhoami(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, r.Context().Value(claimsKey{}).(*claims))
}

// qfield is a query parameter of a zeusd route, as its serde struct
// declares it.
type qfield struct {
	name     string
	kind     byte // 's' string, 'b' bool, 'u' u32
	optional bool
}

// decodeQuery decodes raw as actix-web's Query extractor decodes it into
// a serde struct with deny_unknown_fields: unknown and repeated
// parameters, values of the wrong type and missing required parameters
// are errors, whose text is the body of zeusd's text/plain 400.
func decodeQuery(raw string, fields ...qfield) (map[string]string, error) {
	fail := func(format string, args ...any) (map[string]string, error) {
		return nil, apiErrorf("Query deserialize error: "+format, args...)
	}
	q := map[string]string{}
	for k, v := range formPairs(raw) {
		i := slices.IndexFunc(fields, func(f qfield) bool { return f.name == k })
		if i < 0 {
			return fail("unknown field `%s`, %s", k, expectedFields(fields))
		}
		if _, dup := q[k]; dup {
			return fail("duplicate field `%s`", k)
		}
		switch fields[i].kind {
		case 'b':
			if v != "true" && v != "false" {
				return fail("provided string was not `true` or `false`")
			}
		case 'u':
			if _, msg := parseUint(v, 32); msg != "" {
				return fail("%s", msg)
			}
		}
		q[k] = v
	}
	for _, f := range fields {
		if _, ok := q[f.name]; !ok && !f.optional {
			return fail("missing field `%s`", f.name)
		}
	}
	return q, nil
}

// expectedFields words the field list of serde's unknown-field error.
func expectedFields(fields []qfield) string {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	switch len(names) {
	case 0:
		return "there are no fields"
	case 1:
		return "expected `" + names[0] + "`"
	case 2:
		return "expected `" + names[0] + "` or `" + names[1] + "`"
	}
	return "expected one of " + expectedNames(names)
}

// expectedNames words a list of names as serde does: `a`, `b`.
func expectedNames(names []string) string {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = "`" + n + "`"
	}
	return strings.Join(quoted, ", ")
}

// formPairs yields the pairs of an application/x-www-form-urlencoded
// string as the form_urlencoded crate does: empty pieces are skipped, a
// piece without '=' has an empty value, '+' is a space, and a malformed
// percent escape stays as it is.
func formPairs(raw string) func(yield func(k, v string) bool) {
	return func(yield func(k, v string) bool) {
		for piece := range strings.SplitSeq(raw, "&") {
			if piece == "" {
				continue
			}
			k, v, _ := strings.Cut(piece, "=")
			if !yield(formUnescape(k), formUnescape(v)) {
				return
			}
		}
	}
}

func formUnescape(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			b = append(b, ' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			v, _ := strconv.ParseUint(s[i+1:i+3], 16, 8)
			b = append(b, byte(v))
			i += 2
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// parseUint parses s as Rust parses an unsigned integer of the given
// bits (an optional '+', then digits), returning Rust's error text.
func parseUint(s string, bits int) (uint64, string) {
	digits := strings.TrimPrefix(s, "+")
	if s == "" {
		return 0, "cannot parse integer from empty string"
	}
	if digits == "" || strings.TrimLeft(digits, "0123456789") != "" {
		return 0, "invalid digit found in string"
	}
	v, err := strconv.ParseUint(digits, 10, bits)
	if err != nil {
		return 0, "number too large to fit in target type"
	}
	return v, ""
}

// parseDeviceIDs parses a comma-separated device index list as zeusd
// does (kind is "GPU" or "CPU"): sorted, without repeats, empty lists and
// entries refused.
func parseDeviceIDs(raw, kind string) ([]uint64, error) {
	param := strings.ToLower(kind) + "_ids"
	if strings.TrimSpace(raw) == "" {
		return nil, apiErrorf("%s must contain at least one %s index", param, kind)
	}
	var ids []uint64
	for part := range strings.SplitSeq(raw, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			return nil, apiErrorf("%s contains an empty %s index", param, kind)
		}
		id, msg := parseUint(part, 64)
		if msg != "" {
			return nil, apiErrorf("Invalid %s index: %s", kind, part)
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

// readIDs resolves the optional id list of a one-shot read of n devices:
// every device when absent.
func readIDs(q map[string]string, kind string, n int) ([]int, error) {
	raw, ok := q[strings.ToLower(kind)+"_ids"]
	if !ok {
		return seq(n), nil
	}
	ids, err := parseDeviceIDs(raw, kind)
	if err != nil {
		return nil, err
	}
	out := make([]int, len(ids))
	for i, id := range ids {
		if id >= uint64(n) {
			return nil, apiErrorf("%s %d not found", kind, id)
		}
		out[i] = int(id)
	}
	return out, nil
}

// streamIDs resolves the optional id list of a stream of n devices: which
// devices the subscriber wants (nil: every device).
func streamIDs(q map[string]string, kind string, n int) ([]bool, error) {
	raw, ok := q[strings.ToLower(kind)+"_ids"]
	if !ok {
		return nil, nil
	}
	ids, err := parseDeviceIDs(raw, kind)
	if err != nil {
		return nil, err
	}
	want := make([]bool, n)
	var unknown []uint64
	for _, id := range ids {
		if id >= uint64(n) {
			unknown = append(unknown, id)
		} else {
			want[id] = true
		}
	}
	if len(unknown) > 0 {
		return nil, apiErrorf("Unknown %s indices: %s. Available: %s", kind, formatInts(unknown), formatInts(seq(n)))
	}
	return want, nil
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
func formatInts[T int | uint64](xs []T) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.FormatUint(uint64(x), 10)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// kindOf returns the message word of h's kind.
func kindOf(h *hub) string {
	if h.kind == "gpu" {
		return "GPU"
	}
	return "CPU"
}

// idsParam is the query field of kind's optional id list.
func idsParam(kind string) qfield {
	return qfield{name: strings.ToLower(kind) + "_ids", kind: 's', optional: true}
}

// readRequest decodes a one-shot read's query (its id list and fields)
// and resolves the ids of kind's n devices, writing zeusd's 400 when it
// cannot.
func readRequest(w http.ResponseWriter, r *http.Request, kind string, n int, fields ...qfield) (map[string]string, []int, bool) {
	q, err := decodeQuery(r.URL.RawQuery, append([]qfield{idsParam(kind)}, fields...)...)
	if err != nil {
		writeText(w, http.StatusBadRequest, err.Error())
		return nil, nil, false
	}
	ids, err := readIDs(q, kind, n)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return nil, nil, false
	}
	return q, ids, true
}

func (s *Server) handleGetPower(h *hub) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, ids, ok := readRequest(w, r, kindOf(h), h.n)
		if !ok {
			return
		}
		k, rs := h.current()
		writeRaw(w, http.StatusOK, appendPowerAnswer(h, k, ids, rs))
	}
}

// appendPowerAnswer is a get_power answer: the devices ids of tick k.
func appendPowerAnswer(h *hub, k int64, ids []int, rs []sample) []byte {
	b := []byte(`{"timestamp_ms":`)
	b = strconv.AppendInt(b, floorDiv(k*h.period, 1e6), 10)
	b = append(b, `,"power_mw":`...)
	b = h.appendPowerMap(b, ids, rs)
	return append(b, '}')
}

// handleGPURead serves a gpu-read route that answers a JSON object per
// GPU, {"<id>":{...}}; read returns one GPU's object or its error.
func (s *Server) handleGPURead(read func(d int) ([]byte, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, ids, ok := readRequest(w, r, "GPU", s.cfg.GPUs)
		if !ok {
			return
		}
		vals, errs := map[int][]byte{}, map[int]string{}
		s.gpuMu.Lock()
		for _, d := range ids {
			v, msg := read(d)
			if msg != "" {
				errs[d] = msg
			} else {
				vals[d] = v
			}
		}
		s.gpuMu.Unlock()
		if len(errs) > 0 {
			writeDeviceErrors(w, ids, errs)
			return
		}
		writeRaw(w, http.StatusOK, appendIDMap(nil, ids, func(b []byte, d int) []byte { return append(b, vals[d]...) }))
	}
}

// gpuCommand is one of zeusd's gpu-control routes.
type gpuCommand struct {
	name   string
	fields []qfield // besides gpu_ids and block
	// mainOnly: added after 0.5.0.
	mainOnly bool
	// apply sets what the command sets on GPU d (nil: it is accepted and
	// ignored) and returns an NVML error text.
	apply func(s *Server, d int, q map[string]string) string
}

var gpuCommands = []gpuCommand{
	{name: "set_persistence_mode", fields: []qfield{{name: "enabled", kind: 'b'}},
		apply: func(s *Server, d int, q map[string]string) string {
			s.persistence[d] = q["enabled"] == "true"
			return ""
		}},
	{name: "set_power_limit", fields: []qfield{{name: "power_limit_mw", kind: 'u'}},
		apply: func(s *Server, d int, q map[string]string) string {
			v, _ := parseUint(q["power_limit_mw"], 32)
			if v < minPowerLimitMW || v > maxPowerLimitMW {
				return nvmlInvalidArg
			}
			s.powerLimit[d] = int64(v)
			return ""
		}},
	{name: "set_gpu_locked_clocks", fields: []qfield{{name: "min_clock_mhz", kind: 'u'}, {name: "max_clock_mhz", kind: 'u'}}},
	{name: "reset_gpu_locked_clocks"},
	{name: "set_mem_locked_clocks", fields: []qfield{{name: "min_clock_mhz", kind: 'u'}, {name: "max_clock_mhz", kind: 'u'}}},
	{name: "reset_mem_locked_clocks"},
	{name: "reset_locked_clocks", mainOnly: true},
}

// handleGPUCommand serves a gpu-control route: gpu_ids (required),
// the command's fields and block. With block=true, per-GPU failures are
// reported; otherwise they are not, as zeusd only queues the command.
func (s *Server) handleGPUCommand(c gpuCommand) http.HandlerFunc {
	fields := append(append([]qfield{{name: "gpu_ids", kind: 's'}}, c.fields...), qfield{name: "block", kind: 'b'})
	return func(w http.ResponseWriter, r *http.Request) {
		q, err := decodeQuery(r.URL.RawQuery, fields...)
		if err != nil {
			writeText(w, http.StatusBadRequest, err.Error())
			return
		}
		raw, err := parseDeviceIDs(q["gpu_ids"], "GPU")
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		ids := make([]int, len(raw))
		for i, id := range raw {
			if id >= uint64(s.cfg.GPUs) {
				writeText(w, http.StatusBadRequest, fmt.Sprintf("GPU index %d does not exist.", id))
				return
			}
			ids[i] = int(id)
		}
		errs := map[int]string{}
		s.gpuMu.Lock()
		for _, d := range ids {
			if c.apply == nil {
				continue
			}
			if msg := c.apply(s, d, q); msg != "" {
				errs[d] = msg
			}
		}
		s.gpuMu.Unlock()
		if len(errs) > 0 && q["block"] == "true" {
			writeDeviceErrors(w, ids, errs)
			return
		}
		w.WriteHeader(http.StatusOK)
	}
}

func (s *Server) handleCPUEnergy(w http.ResponseWriter, r *http.Request) {
	q, ids, ok := readRequest(w, r, "CPU", s.cfg.CPUs, qfield{name: "cpu", kind: 'b'}, qfield{name: "dram", kind: 'b'})
	if !ok {
		return
	}
	t := s.daemonNanos()
	counter := func(b []byte, m *meter, want bool) []byte {
		if m == nil || !want {
			return append(b, "null"...)
		}
		return strconv.AppendInt(b, m.at(t), 10)
	}
	s.cpuMu.Lock()
	b := appendIDMap(nil, ids, func(b []byte, d int) []byte {
		b = counter(append(b, `{"cpu_energy_uj":`...), s.pkgMeters[d], q["cpu"] == "true")
		b = counter(append(b, `,"dram_energy_uj":`...), s.ramMeters[d], q["dram"] == "true")
		return append(b, '}')
	})
	s.cpuMu.Unlock()
	writeRaw(w, http.StatusOK, b)
}

// streamRequest decodes a stream request's id list: which of h's devices
// the subscriber wants (nil: every device). It writes zeusd's 400 when it
// cannot.
func streamRequest(w http.ResponseWriter, r *http.Request, h *hub) ([]bool, bool) {
	kind := kindOf(h)
	q, err := decodeQuery(r.URL.RawQuery, idsParam(kind))
	if err != nil {
		writeText(w, http.StatusBadRequest, err.Error())
		return nil, false
	}
	want, err := streamIDs(q, kind, h.n)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return nil, false
	}
	return want, true
}

// startStream writes a stream's response head and reports whether w can
// stream.
func startStream(w http.ResponseWriter, rc *http.ResponseController) bool {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	return rc.Flush() == nil
}

// handleStream serves an SSE stream of h's devices, filtered by the id
// list parameter. It writes one value at a time, the oldest that waits;
// while a write blocks (the client is not reading), newer values replace
// the waiting ones.
func (s *Server) handleStream(h *hub) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		want, ok := streamRequest(w, r, h)
		if !ok {
			return
		}
		sub := h.subscribe(want)
		if sub == nil {
			writeError(w, http.StatusServiceUnavailable, "server is shutting down")
			return
		}
		defer h.unsubscribe(sub)

		rc := http.NewResponseController(w)
		if !startStream(w, rc) {
			return // cannot stream over this writer
		}
		var buf []byte
		for {
			select {
			case <-sub.end:
				if sub.abort {
					// Drop the connection without ending the response.
					panic(http.ErrAbortHandler)
				}
				return
			case <-r.Context().Done():
				return
			default:
			}
			data, skipped, ok := h.take(sub)
			if !ok {
				select {
				case <-sub.wake:
				case <-sub.end:
				case <-r.Context().Done():
				}
				continue
			}
			buf = append(append(append(buf[:0], "data: "...), data...), "\n\n"...)
			if _, err := w.Write(buf); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
			if s.cfg.OnEvent != nil {
				s.cfg.OnEvent(Event{Stream: h.kind, Conn: sub.id, Data: append([]byte(nil), data...), Skipped: skipped})
			}
		}
	}
}
