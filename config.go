package main

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/urfave/cli/v2"

	"github.com/wattrec/wattrec/recorder"
	"github.com/wattrec/wattrec/remotewrite"
)

// configFlag is --config: a TOML file with any record flag as a key and
// [[endpoint]] tables, each a server with its own selection and token.
func configFlag() cli.Flag {
	return &cli.PathFlag{Name: "config", EnvVars: []string{"WATTREC_CONFIG"},
		Usage: "TOML `FILE` with any of these flags as keys (flags given here win) and [[endpoint]] tables, each with its own token-file and labels (see README)"}
}

// configServer is one [[endpoint]] table of a config file.
type configServer struct {
	Address   string            `toml:"address"`    // a server spec, as --server takes
	GPUs      string            `toml:"gpus"`       // all, none or a list, as ?gpus= takes
	CPUs      string            `toml:"cpus"`       // the same for CPUs
	TokenFile string            `toml:"token-file"` // the server's own token
	Labels    map[string]string `toml:"labels"`     // added to its series in remote-write
}

// configured is what a config file gives besides flags: its servers, and
// each one's remote-write labels by endpoint.
type configured struct {
	servers []recorder.Server
	labels  map[string][]remotewrite.Label
}

// configServersKey is the key of the servers' tables: [[endpoint]] (the
// key "server" is --server's list of specs).
const configServersKey = "endpoint"

// applyConfig reads the config file named by --config, if any, sets every
// flag of c's command that the file gives and the command line does not,
// and returns the file's servers and their labels. Paths in the file are
// relative to it.
func applyConfig(c *cli.Context) (configured, error) {
	path := c.Path("config")
	if path == "" {
		return configured{}, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return configured{}, fmt.Errorf("--config: %w", err)
	}
	// A struct with a field per flag (a pointer: nil when the file leaves
	// it out) and the servers, so that the decoder names any other key
	// with its line.
	flags := c.Command.Flags
	var fields []reflect.StructField
	var names []string
	for _, f := range flags {
		name := f.Names()[0]
		if name == "config" || name == "help" || name == configServersKey {
			continue
		}
		typ, ok := configType(f)
		if !ok {
			continue
		}
		fields = append(fields, reflect.StructField{Name: fmt.Sprintf("F%d", len(fields)), Type: reflect.PointerTo(typ), Tag: reflect.StructTag(`toml:"` + name + `"`)})
		names = append(names, name)
	}
	fields = append(fields, reflect.StructField{Name: "Servers", Type: reflect.TypeFor[[]configServer](), Tag: reflect.StructTag(`toml:"` + configServersKey + `"`)})
	v := reflect.New(reflect.StructOf(fields))
	dec := toml.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v.Interface()); err != nil {
		return configured{}, configError(path, err, flags)
	}
	for i, name := range names {
		fv := v.Elem().Field(i)
		if fv.IsNil() || c.IsSet(name) {
			continue // left out, or the command line's
		}
		var vals []string
		switch x := fv.Elem().Interface().(type) {
		case []string:
			vals = x
		case string:
			if isPathFlag(flags, name) && x != "" && !filepath.IsAbs(x) {
				x = filepath.Join(filepath.Dir(path), x)
			}
			vals = []string{x}
		case bool:
			vals = []string{strconv.FormatBool(x)}
		case int64:
			vals = []string{strconv.FormatInt(x, 10)}
		case float64:
			vals = []string{strconv.FormatFloat(x, 'g', -1, 64)}
		}
		for _, val := range vals {
			if err := c.Set(name, val); err != nil {
				return configured{}, fmt.Errorf("%s: %s = %q: %w", path, name, val, err)
			}
		}
	}
	var out configured
	for i, cs := range v.Elem().FieldByName("Servers").Interface().([]configServer) {
		srv, err := configuredServer(path, cs)
		if err == nil {
			err = out.addLabels(srv.Endpoint(), cs.Labels)
		}
		if err != nil {
			return configured{}, fmt.Errorf("%s: [[%s]] #%d: %w", path, configServersKey, i+1, err)
		}
		out.servers = append(out.servers, srv)
	}
	return out, nil
}

// addLabels records an endpoint's labels, checked as --label's are.
func (c *configured) addLabels(endpoint string, labels map[string]string) error {
	for _, name := range slices.Sorted(maps.Keys(labels)) {
		l := remotewrite.Label{Name: name, Value: labels[name]}
		if err := remotewrite.CheckLabel(l); err != nil {
			return fmt.Errorf("labels: %w", err)
		}
		if c.labels == nil {
			c.labels = map[string][]remotewrite.Label{}
		}
		c.labels[endpoint] = append(c.labels[endpoint], l)
	}
	return nil
}

// configuredServer is the server of an [[endpoint]] table.
func configuredServer(path string, cs configServer) (recorder.Server, error) {
	if cs.Address == "" {
		return recorder.Server{}, errors.New("no address")
	}
	spec, query := cs.Address, []string{}
	if cs.GPUs != "" {
		query = append(query, "gpus="+cs.GPUs)
	}
	if cs.CPUs != "" {
		query = append(query, "cpus="+cs.CPUs)
	}
	if len(query) > 0 {
		if strings.Contains(spec, "?") {
			return recorder.Server{}, fmt.Errorf("address %q: give the selection either in it or as gpus/cpus, not both", spec)
		}
		spec += "?" + strings.Join(query, "&")
	}
	// Relative socket paths and token files start at the config file.
	line := spec
	if cs.TokenFile != "" {
		line += " token-file=" + cs.TokenFile
	}
	srvs, err := recorder.ParseServersFile(strings.NewReader(line), path)
	if err != nil {
		return recorder.Server{}, errors.Unwrap(err) // the file:line prefix says nothing here
	}
	return srvs[0], nil
}

// configType is the TOML type of flag f's value.
func configType(f cli.Flag) (reflect.Type, bool) {
	switch f.(type) {
	case *cli.StringFlag, *cli.PathFlag, *cli.DurationFlag: // durations as "10s"
		return reflect.TypeFor[string](), true
	case *cli.StringSliceFlag:
		return reflect.TypeFor[[]string](), true
	case *cli.BoolFlag:
		return reflect.TypeFor[bool](), true
	case *cli.IntFlag, *cli.Int64Flag, *cli.UintFlag, *cli.Uint64Flag:
		return reflect.TypeFor[int64](), true
	case *cli.Float64Flag:
		return reflect.TypeFor[float64](), true
	}
	return nil, false
}

func isPathFlag(flags []cli.Flag, name string) bool {
	for _, f := range flags {
		if _, ok := f.(*cli.PathFlag); ok && f.Names()[0] == name {
			return true
		}
	}
	return false
}

// configError names the file, line and key of a decode error, and what
// the key wants.
func configError(path string, err error, flags []cli.Flag) error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) && len(strict.Errors) > 0 {
		e := strict.Errors[0]
		row, _ := e.Position()
		return fmt.Errorf("%s:%d: unknown key %q (the keys are the flags of record and [[%s]] tables of address, gpus, cpus, token-file, labels)",
			path, row, strings.Join(e.Key(), "."), configServersKey)
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		key := strings.Join(de.Key(), ".")
		if key == "" {
			return fmt.Errorf("%s:%d: %s", path, row, de.Error())
		}
		want := "a string"
		for _, f := range flags {
			if f.Names()[0] != key {
				continue
			}
			switch typ, _ := configType(f); typ.Kind() {
			case reflect.Slice:
				want = "a list of strings"
			case reflect.Bool:
				want = "true or false"
			case reflect.Int64, reflect.Float64:
				want = "a number"
			default:
				if _, ok := f.(*cli.DurationFlag); ok {
					want = `a duration string like "10s"`
				}
			}
		}
		return fmt.Errorf("%s:%d: %s: wrong type, want %s", path, row, key, want)
	}
	return fmt.Errorf("%s: %w", path, err)
}
