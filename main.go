// Command wattrec records the GPU and CPU power that zeusd daemons stream
// and turns it into energy numbers. Package main is the wiring: flags,
// the environment, signals and the hints beside error messages; the work
// is in the packages. One file per command group: record.go (record,
// run), read.go (info, query, export), import.go (import, merge),
// mark.go, check.go (check, repair), simulate.go (simulate, demo).
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/urfave/cli/v2"

	"github.com/wattrec/wattrec/control"
	"github.com/wattrec/wattrec/export"
	"github.com/wattrec/wattrec/importer"
	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/recorder"
	"github.com/wattrec/wattrec/recording"
	"github.com/wattrec/wattrec/store"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise it comes from the module's build info.
var version = ""

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	interrupts.start(cancel, func(sig os.Signal) {
		fmt.Fprintf(os.Stderr, "wattrec: %v again: exiting without waiting for the final commit\n", sig)
		os.Exit(1)
	})

	err := newApp().RunContext(ctx, os.Args)
	var status recording.ExitStatus
	switch {
	case err == nil:
	case errors.As(err, &status): // wattrec run: the command's own status
		os.Exit(int(status))
	default:
		fmt.Fprintln(os.Stderr, "wattrec:", err)
		os.Exit(1)
	}
}

func wattrecVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// newApp builds the command tree; tests call it with their own Writer.
// Every command's error carries its hint (see hint).
func newApp() *cli.App {
	app := &cli.App{
		Name:      "wattrec",
		Usage:     "record zeusd GPU/CPU power and turn it into energy numbers you can trust",
		UsageText: "wattrec [--log-level info] COMMAND [flags]\n\nExample: wattrec record --db run.db --server node1:4938 --server unix:///run/zeusd/zeusd.sock",
		Version:   wattrecVersion(),
		Flags:     []cli.Flag{logLevelFlag("info")},
		Commands: []*cli.Command{recordCommand(), runCommand(), queryCommand(), markCommand(), infoCommand(), exportCommand(),
			importCommand(), mergeCommand(), checkCommand(), repairCommand(), simulateCommand(), demoCommand()},
		DisableSliceFlagSeparator: true,                         // specs like ?gpus=0,1 contain commas
		ExitErrHandler:            func(*cli.Context, error) {}, // main decides how to exit
		Suggest:                   true,
	}
	var addHints func([]*cli.Command)
	addHints = func(cmds []*cli.Command) {
		for _, cmd := range cmds {
			if action := cmd.Action; action != nil {
				cmd.Action = func(c *cli.Context) error { return withHint(action(c)) }
			}
			addHints(cmd.Subcommands)
		}
	}
	addHints(app.Commands)
	return app
}

func logLevelFlag(value string) cli.Flag {
	return &cli.StringFlag{Name: "log-level", Value: value, Usage: "debug, info, warn or error"}
}

// logger writes structured logs to the app's error writer, at the level
// of the innermost --log-level given (the command's or the global one).
func logger(c *cli.Context) (*slog.Logger, error) {
	name := "info"
	for _, ctx := range c.Lineage() {
		if ctx.IsSet("log-level") {
			name = ctx.String("log-level")
			break
		}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(name)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", name)
	}
	return slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: level})), nil
}

// hint is the line main prints under an error, naming the flag or
// command that helps, for the sentinels the packages return.
func hint(err error) string {
	switch {
	case errors.Is(err, store.ErrLocked):
		return "is `wattrec record` running on this file? stop it or read a copy"
	case errors.As(err, &checkFailed{}):
		return "`wattrec repair --db FILE -o NEW` copies what is readable into a new file"
	case errors.Is(err, store.ErrCorrupt):
		return "run `wattrec check --db FILE`; `wattrec repair --db FILE -o NEW` copies what is readable"
	case errors.Is(err, export.ErrNoGrid):
		return "--grid-only needs --grid WIDTH"
	case errors.Is(err, export.ErrGridFormat):
		return "use -o FILE.parquet or --format csv"
	case errors.Is(err, export.ErrGridNeedsFile):
		return "--grid writes a second file beside -o: give -o FILE, or --grid-only for standard output"
	case errors.Is(err, export.ErrExists), errors.Is(err, importer.ErrExists):
		return "use --force to replace it"
	case errors.Is(err, export.ErrInput):
		return "import reads wattrec's raw exports, and CSV or JSON Lines with the columns time, endpoint, kind, device, power_w (see `wattrec import --help`)"
	case errors.Is(err, importer.ErrNoSessions):
		return "give --observed FROM..TO (when its streams were live) or --max-gap D (readings further apart start a new session)"
	case errors.Is(err, importer.ErrOutside):
		return "--observed must hold every reading of the file: widen it, or give start..end"
	case errors.Is(err, importer.ErrOrder):
		return "sort the file by time, or give --observed FROM..TO instead of --max-gap"
	case errors.Is(err, importer.ErrOverlap):
		return "leave one of them out, or cut one with `wattrec export --from/--to` first"
	case errors.Is(err, recorder.ErrNoServers):
		return "use --server, --servers-file, ZEUSD_SOCK_PATH or ZEUSD_HOST_PORT"
	case errors.Is(err, recorder.ErrTokenExpired):
		return "renew the token ($ZEUSD_TOKEN or --token-file) and start recording again"
	case errors.Is(err, recorder.ErrTokenRequired):
		return "set ZEUSD_TOKEN or --token-file"
	case errors.Is(err, store.ErrNoOpenMark):
		return "begin one with: wattrec mark begin --db FILE NAME"
	case errors.Is(err, recording.ErrNeedsRecorder):
		return "for a finished recording use: wattrec mark add --db FILE --from T0 --to T1 NAME"
	case errors.Is(err, query.ErrTooLarge):
		return "use a wider --every or a shorter --from/--to; `wattrec export --grid WIDTH` streams any number of bins"
	case errors.Is(err, control.ErrBusy):
		return "the recorder answers a few reads at a time: try again when the others are done"
	case errors.Is(err, control.ErrAPIVersion):
		return "the recorder runs another wattrec version: use that version's CLI, or restart the recorder"
	}
	return ""
}

// withHint adds hint(err) to err's message on a line of its own.
func withHint(err error) error {
	if h := hint(err); h != "" {
		return fmt.Errorf("%w\n(%s)", err, h)
	}
	return err
}
