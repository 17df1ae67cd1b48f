package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/wattrec/wattrec/internal/simtest"
	"github.com/wattrec/wattrec/simulator"
)

// TestConfig_MixedAuth records two simulators from one config file: one
// requires a token (its own, in a [[endpoint]] token-file), the other has
// auth off and streams GPU 0 only. Both are recorded, and the token is
// nowhere in the file or the logs.
func TestConfig_MixedAuth(t *testing.T) {
	t.Parallel()
	secret := []byte("node-a-key")
	sentA, sentB := simtest.NewLedger(), simtest.NewLedger()
	cfgA := simtest.FastConfig(simulator.FormatSample)
	cfgA.AuthSecret, cfgA.OnEvent = secret, sentA.OnEvent(t)
	_, a, _ := simtest.Start(t, cfgA, "unix")
	cfgB := simtest.FastConfig(simulator.FormatSample)
	cfgB.OnEvent = sentB.OnEvent(t)
	_, b, _ := simtest.Start(t, cfgB, "tcp")
	tok, err := simulator.MintToken(secret, "wattrec", []string{"gpu-read", "cpu-read"}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.token"), []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "wattrec.toml")
	os.WriteFile(conf, []byte(fmt.Sprintf(`# two nodes, two kinds of auth
db = "run.db"
flush-interval = "100ms"
counter-interval = "200ms"

[[endpoint]]
address = "unix://%s"
token-file = "a.token"

[[endpoint]]
address = "%s"
gpus = "0"
cpus = "none"
`, a.Address, b.Address)), 0o644)

	cmd, out := child(t, []string{"ZEUSD_TOKEN="}, "record", "--config", conf)
	sentA.WaitEvents(t, 200)
	sentB.WaitEvents(t, 100)
	db := filepath.Join(dir, "run.db")
	simtest.WaitFor(t, func() bool {
		_, err := os.Stat(db)
		return err == nil && strings.Contains(out.String(), "recording")
	})
	stopChild(t, cmd, out)
	d := simtest.OpenStored(t, db)
	series, err := d.Series(context.Background(), "", false)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, s := range series {
		got[s.SeriesKey.String()] = true
	}
	for _, want := range []string{a.Endpoint() + " gpu:0", a.Endpoint() + " gpu:1", a.Endpoint() + " cpu:0", b.Endpoint() + " gpu:0"} {
		if !got[want] {
			t.Errorf("no series %s (have %v)", want, got)
		}
	}
	if got[b.Endpoint()+" gpu:1"] || got[b.Endpoint()+" cpu:0"] {
		t.Errorf("node B's selection (gpus=0, cpus=none) not honoured: %v", got)
	}
	raw, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), tok) || strings.Contains(out.String(), tok) {
		t.Error("the token is in the recording or the log")
	}
}

// TestConfig_Keys: the file sets the flags the command line leaves out,
// the command line wins, relative paths start at the file, and a bad key
// or value names its line.
func TestConfig_Keys(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, "c.toml")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	apply := func(args ...string) (*cli.Context, error) {
		var got *cli.Context
		var err error
		cmd := &cli.Command{Name: "record", Flags: recordFlags(), Action: func(c *cli.Context) error {
			got = c
			_, err = applyConfig(c)
			return nil
		}}
		app := &cli.App{Commands: []*cli.Command{cmd}, Writer: &strings.Builder{}, ErrWriter: &strings.Builder{}}
		if runErr := app.Run(append([]string{"wattrec", "record"}, args...)); runErr != nil {
			t.Fatal(runErr)
		}
		return got, err
	}

	conf := write(`db = "data/run.db"
flush-interval = "250ms"
clock-samples = 9
keep-trying = true
server = ["node1:4938", "node2"]
`)
	c, err := apply("--config", conf, "--flush-interval", "2s")
	labelled := write("[[endpoint]]\naddress = \"node1\"\nlabels = { rack = \"r1\", job = \"train\" }\n")
	lc, lerr := apply("--config", labelled)
	if lerr != nil {
		t.Fatal(lerr)
	}
	if got, err := applyConfig(lc); err != nil || len(got.labels["node1:4938"]) != 2 || got.labels["node1:4938"][0].Name != "job" {
		t.Errorf("labels: %+v, %v; want job and rack for node1:4938", got.labels, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Path("db"); got != filepath.Join(dir, "data", "run.db") {
		t.Errorf("db %q, want it beside the file", got)
	}
	if got := c.Duration("flush-interval"); got != 2*time.Second {
		t.Errorf("flush-interval %v: the command line's 2s must win", got)
	}
	if c.Int("clock-samples") != 9 || !c.Bool("keep-trying") || strings.Join(c.StringSlice("server"), " ") != "node1:4938 node2" {
		t.Errorf("clock-samples %d, keep-trying %v, servers %q", c.Int("clock-samples"), c.Bool("keep-trying"), c.StringSlice("server"))
	}

	for body, want := range map[string]string{
		"db = \"x.db\"\n\nflush-intervall = \"1s\"\n":                             `c.toml:3: unknown key "flush-intervall"`,
		"clock-samples = \"many\"\n":                                              "c.toml:1: clock-samples: wrong type, want a number",
		"flush-interval = \"10 parsecs\"\n":                                       `flush-interval = "10 parsecs"`,
		"[[endpoint]]\ngpus = \"0\"\n":                                            "[[endpoint]] #1: no address",
		"[[endpoint]]\naddress = \"n:4938\"\ntokn = \"x\"\n":                      `c.toml:3: unknown key "endpoint.tokn"`,
		"[[endpoint]]\naddress = \"n:4938\"\ntoken-file = \"missing.token\"\n":    "token file",
		"[[endpoint]]\naddress = \"n:4938\"\nlabels = { \"bad name\" = \"x\" }\n": "[[endpoint]] #1: labels",
		"db = [\n": "c.toml:",
	} {
		_, err := apply("--config", write(body))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", body, err, want)
		}
	}
}

// TestRecord_SIGHUP: SIGHUP reloads the servers file: the new server is
// recorded, the removed one's session ends, and the recording goes on.
func TestRecord_SIGHUP(t *testing.T) {
	t.Parallel()
	sentA, sentB := simtest.NewLedger(), simtest.NewLedger()
	cfgA := simtest.FastConfig(simulator.FormatSample)
	cfgA.OnEvent = sentA.OnEvent(t)
	_, a, _ := simtest.Start(t, cfgA, "unix")
	cfgB := simtest.FastConfig(simulator.FormatSample)
	cfgB.OnEvent = sentB.OnEvent(t)
	_, b, _ := simtest.Start(t, cfgB, "tcp")
	dir := t.TempDir()
	list, db := filepath.Join(dir, "servers.txt"), filepath.Join(dir, "run.db")
	os.WriteFile(list, []byte("unix://"+a.Address+"\n"), 0o644)
	cmd, out := child(t, nil, "record", "--db", db, "--servers-file", list, "--flush-interval", "100ms")
	sentA.WaitEvents(t, 100)
	simtest.WaitFor(t, func() bool { return strings.Contains(out.String(), "msg=recording") })

	os.WriteFile(list, []byte(b.Address+"\n"), 0o644)
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	simtest.WaitFor(t, func() bool { return strings.Contains(out.String(), "server list reloaded") })
	sentB.WaitEvents(t, 100)
	// A bad list is logged and changes nothing.
	os.WriteFile(list, []byte("http://nowhere\n"), 0o644)
	cmd.Process.Signal(syscall.SIGHUP)
	simtest.WaitFor(t, func() bool { return strings.Contains(out.String(), "does not load") })
	sentB.WaitEvents(t, sentB.Events()+50)

	stopChild(t, cmd, out)
	d := simtest.OpenStored(t, db)
	ctx := context.Background()
	ss, err := d.Sessions(ctx, a.Endpoint())
	if err != nil || len(ss) == 0 || ss[len(ss)-1].Reason != "removed from the server list" {
		t.Errorf("A's sessions %+v, %v: want the last ended by the reload", ss, err)
	}
	series, err := d.Series(ctx, b.Endpoint(), false)
	if err != nil || len(series) == 0 {
		t.Errorf("B's series after the reload: %v, %v\n%s", series, err, out)
	}
	bs, err := d.Sessions(ctx, b.Endpoint())
	if err != nil || len(bs) != 2 || bs[0].Reason != "recorder stopped" || bs[1].Reason != "recorder stopped" {
		t.Errorf("B's sessions %+v, %v: want one per stream, to the stop", bs, err)
	}
}
