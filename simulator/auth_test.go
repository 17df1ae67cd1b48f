package simulator_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wattrec/wattrec/simulator"
)

// signJWT builds a JWT from a header and a claims object, signed with key
// by HMAC-SHA256 (or SHA-384 for an HS384 header), without any library.
func signJWT(key []byte, header, claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	msg := enc([]byte(header)) + "." + enc([]byte(claims))
	h := sha256.New
	if strings.Contains(header, "HS384") {
		h = func() hash.Hash { return sha512.New384() }
	}
	mac := hmac.New(h, key)
	mac.Write([]byte(msg))
	return msg + "." + enc(mac.Sum(nil))
}

const hs256 = `{"alg":"HS256","typ":"JWT"}`

// TestServer_JWT checks zeusd's token rules: the key is the key file's raw
// bytes; exp is an optional unsigned integer with 60 s of leeway on the
// daemon clock; nbf is not checked; sub and known scope names are
// required; an aud is refused; the "Bearer " prefix is case-sensitive.
func TestServer_JWT(t *testing.T) {
	// `openssl rand -base64 32 | tee signing.key` leaves a newline, which
	// is part of the key.
	key := []byte("q8S1nS2wQm0m4JqzJr8Qx1Xw8V1a2b3c4d5e6f7g8h0=\n")
	trueNow := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	cfg := fastConfig()
	cfg.AuthSecret = key
	cfg.Now = func() time.Time { return trueNow }
	cfg.ClockOffset = -time.Hour // exp is checked on the daemon clock
	ts := MustServe(t, cfg, "tcp")
	now := trueNow.Add(cfg.ClockOffset).Unix()
	claims := func(extra string) string {
		return `{"sub":"alice","scopes":["gpu-read"]` + extra + `}`
	}
	tok := func(extra string) string { return signJWT(key, hs256, claims(extra)) }

	valid := map[string]string{
		"RawKeyNoExp":   tok(""),
		"ExpNull":       tok(`,"exp":null`),
		"ExpInLeeway":   tok(fmt.Sprintf(`,"exp":%d`, now-60)),
		"ExpOnDaemon":   tok(fmt.Sprintf(`,"exp":%d`, trueNow.Add(-30*time.Minute).Unix())),
		"NbfInFuture":   tok(fmt.Sprintf(`,"nbf":%d`, now+3600)),
		"OtherClaims":   tok(`,"iat":1,"iss":"zeusd","jti":"x"`),
		"MintToken":     mustMint(t, key, []string{"gpu-read"}, time.Unix(now+10, 0)),
		"TypMissing":    signJWT(key, `{"alg":"HS256"}`, claims("")),
		"RepeatedScope": signJWT(key, hs256, `{"sub":"","scopes":["gpu-read","gpu-read"]}`),
	}
	for name, tok := range valid {
		if code, _, b := ts.get(t, "/gpu/get_power", tok); code != http.StatusOK {
			t.Errorf("%s: status %d, want 200: %s", name, code, b)
		}
	}

	const invalid = "Invalid token: "
	refused := []struct{ name, auth, want string }{
		{"NoHeader", "", "Authentication required. Provide an Authorization: Bearer <token> header."},
		{"LowercaseBearer", "bearer " + tok(""), "Authentication required. Provide an Authorization: Bearer <token> header."},
		{"OtherScheme", "Token " + tok(""), "Authentication required. Provide an Authorization: Bearer <token> header."},
		{"TwoSpaces", "Bearer  " + tok(""), invalid},
		{"TrimmedKey", "Bearer " + signJWT([]byte(strings.TrimSpace(string(key))), hs256, claims("")), invalid + "InvalidSignature"},
		{"Expired", "Bearer " + tok(fmt.Sprintf(`,"exp":%d`, now-61)), "Token has expired."},
		{"ExpFloat", "Bearer " + tok(fmt.Sprintf(`,"exp":%d.5`, now+3600)), invalid},
		{"ExpExponent", "Bearer " + tok(`,"exp":2e9`), invalid},
		{"ExpString", "Bearer " + tok(fmt.Sprintf(`,"exp":"%d"`, now+3600)), invalid},
		{"ExpNegative", "Bearer " + tok(`,"exp":-1`), invalid},
		{"NoSub", "Bearer " + signJWT(key, hs256, `{"scopes":["gpu-read"]}`), invalid + "JSON error: missing field `sub`"},
		{"SubNumber", "Bearer " + signJWT(key, hs256, `{"sub":7,"scopes":["gpu-read"]}`), invalid},
		{"NoScopes", "Bearer " + signJWT(key, hs256, `{"sub":"alice"}`), invalid + "JSON error: missing field `scopes`"},
		{"UnknownScope", "Bearer " + signJWT(key, hs256, `{"sub":"alice","scopes":["gpu-read","gpu-write"]}`), invalid},
		{"ScopeNotString", "Bearer " + signJWT(key, hs256, `{"sub":"alice","scopes":[1]}`), invalid},
		{"Audience", "Bearer " + tok(`,"aud":"zeusd"`), invalid + "InvalidAudience"},
		{"AudienceList", "Bearer " + tok(`,"aud":["a","b"]`), invalid + "InvalidAudience"},
		{"HS384", "Bearer " + signJWT(key, `{"alg":"HS384"}`, claims("")), invalid},
		{"AlgNone", "Bearer " + signJWT(key, `{"alg":"none"}`, claims("")), invalid},
		{"Padded", "Bearer " + strings.Replace(tok(""), ".", "=.", 1), invalid},
		{"TwoParts", "Bearer " + tok("")[:strings.LastIndex(tok(""), ".")], invalid},
	}
	for _, tt := range refused {
		code, h, b := ts.do(t, http.MethodGet, "/gpu/get_power", tt.auth)
		var e struct {
			Error string `json:"error"`
		}
		json.Unmarshal(b, &e)
		if code != http.StatusUnauthorized || h.Get("WWW-Authenticate") != `Bearer realm="zeusd"` || !strings.HasPrefix(e.Error, tt.want) {
			t.Errorf("%s: status %d, WWW-Authenticate %q, %s; want 401 with an error starting %q",
				tt.name, code, h.Get("WWW-Authenticate"), b, tt.want)
		}
	}

	t.Run("Whoami", func(t *testing.T) {
		_, _, b := ts.get(t, "/auth/whoami", tok(fmt.Sprintf(`,"exp":%d`, now+5)))
		if got, want := string(b), fmt.Sprintf(`{"sub":"alice","scopes":["gpu-read"],"exp":%d}`, now+5); got != want {
			t.Errorf("whoami %s, want %s", got, want)
		}
	})
	t.Run("403", func(t *testing.T) {
		code, _, b := ts.get(t, "/cpu/get_power", tok(""))
		want := `{"error":"Token for user 'alice' lacks required scope 'cpu-read'. Token scopes: ['gpu-read']"}`
		if code != http.StatusForbidden || string(b) != want {
			t.Errorf("status %d: %s; want 403 %s", code, b, want)
		}
	})
	t.Run("UnknownPath", func(t *testing.T) {
		if code, _, b := ts.get(t, "/nope", ""); code != http.StatusUnauthorized {
			t.Errorf("unknown path without a token: status %d: %s, want 401", code, b)
		}
		if code, _, b := ts.get(t, "/nope", tok("")); code != http.StatusNotFound || len(b) != 0 {
			t.Errorf("unknown path with a token: status %d: %q, want an empty 404", code, b)
		}
		// /gpu/ paths need gpu-read even when they do not exist.
		if code, _, b := ts.get(t, "/gpu/nope", signJWT(key, hs256, `{"sub":"a","scopes":["cpu-read"]}`)); code != http.StatusForbidden {
			t.Errorf("/gpu/nope without the scope: status %d: %s, want 403", code, b)
		}
	})
}

func mustMint(tb testing.TB, key []byte, scopes []string, exp time.Time) string {
	tb.Helper()
	tok, err := simulator.MintToken(key, "alice", scopes, exp)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}
