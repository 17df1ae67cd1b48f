package export

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzPlainObject: whatever line plainObject accepts, encoding/json
// reads as the same object (the slow path it stands in for), so the two
// paths never disagree on a value.
func FuzzPlainObject(f *testing.F) {
	for _, s := range []string{
		`{"time":"2026-11-28T16:00:00.050Z","daemon_time_ms":1795881595050,"endpoint":"node1:4938","kind":"gpu","device":0,"power_w":75.001,"seed":false}`,
		`{"time":1,"endpoint":"n","kind":"cpu","device":"2","power_w":1e3}`,
		` { "time" : -0.5 , "seed" : null } `,
		`{}`, `{"time":01}`, `{"time":"a\"b"}`, `{"time":1,"time":2}`, `{"x":1}`, `{"time":tru}`, `{"time":{}}`,
	} {
		f.Add([]byte(s))
	}
	rf := &RawFile{vals: make([][]byte, len(rawColumns))}
	f.Fuzz(func(t *testing.T, line []byte) {
		if !rf.plainObject(line) {
			return
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(line, &obj); err != nil {
			t.Fatalf("plainObject took %q, encoding/json refuses it: %v", line, err)
		}
		n := 0
		for i, c := range rawColumns {
			v, ok := obj[c.name]
			if ok != (rf.vals[i] != nil) {
				t.Fatalf("%q: key %s present %v, plainObject says %v", line, c.name, ok, rf.vals[i] != nil)
			}
			if !ok {
				continue
			}
			n++
			text := []byte(v)
			if len(v) > 0 && v[0] == '"' {
				var s string
				if err := json.Unmarshal(v, &s); err != nil {
					t.Fatal(err)
				}
				text = []byte(s)
			}
			if !bytes.Equal(text, rf.vals[i]) {
				t.Fatalf("%q: key %s is %q, plainObject says %q", line, c.name, text, rf.vals[i])
			}
		}
		if n != len(obj) {
			t.Fatalf("%q: %d keys, plainObject saw %d", line, len(obj), n)
		}
	})
}
