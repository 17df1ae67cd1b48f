// Command wattrec records the GPU and CPU power that zeusd daemons stream
// and turns it into energy numbers. Package main is the wiring: flags,
// the environment, signals and the hints beside error messages; the work
// is in the packages. One file per command group: record.go (record,
// run), read.go (info, query, export), plot.go (plot, report),
// import.go (import, merge), mark.go, push.go (push and the remote-write
// flags), check.go (check, repair), simulate.go (simulate, demo),
// completion.go, config.go (record's --config).
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
	"github.com/xrash/smetrics"

	"github.com/wattrec/wattrec/chart"
	"github.com/wattrec/wattrec/control"
	"github.com/wattrec/wattrec/export"
	"github.com/wattrec/wattrec/importer"
	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/recorder"
	"github.com/wattrec/wattrec/recording"
	"github.com/wattrec/wattrec/remotewrite"
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

	err := runApp(ctx, newApp(), os.Args)
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

// wattrecVersion is the build's version: set with -ldflags, else the
// module version, which the go command stamps (go install ...@v1.2.3,
// or a pseudo-version with the VCS revision and "+dirty" for a build from
// a checkout), else "devel" (a build without VCS information).
func wattrecVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
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
			plotCommand(), reportCommand(), pushCommand(), importCommand(), mergeCommand(), checkCommand(), repairCommand(),
			simulateCommand(), demoCommand(), completionCommand()},
		Action:                    func(c *cli.Context) error { return withHint(unknownCommand(c)) },
		DisableSliceFlagSeparator: true,                         // specs like ?gpus=0,1 contain commas
		ExitErrHandler:            func(*cli.Context, error) {}, // main decides how to exit
		Suggest:                   true,
		EnableBashCompletion:      true, // wattrec completion
	}
	var addHints func([]*cli.Command)
	addHints = func(cmds []*cli.Command) {
		for _, cmd := range cmds {
			if cmd.Action == nil && len(cmd.Subcommands) > 0 {
				cmd.Action = unknownCommand
			}
			if action := cmd.Action; action != nil {
				cmd.Action = func(c *cli.Context) error { return withHint(action(c)) }
			}
			addHints(cmd.Subcommands)
		}
	}
	addHints(app.Commands)
	return app
}

// Help shows each flag's default once: a flag whose usage names its own
// default ("inferred per series") does not get urfave/cli's "(default:
// 0s)" too, and a bool's "(default: false)" and an unset duration's
// "(default: 0s)" say nothing.
func init() {
	stringer := cli.FlagStringer
	cli.FlagStringer = func(f cli.Flag) string {
		s := stringer(f)
		for _, none := range []string{" (default: false)", " (default: 0s)"} {
			s = strings.TrimSuffix(s, none)
		}
		if first, last := strings.Index(s, "(default:"), strings.LastIndex(s, " (default:"); first >= 0 && last > first {
			s = s[:last]
		}
		return s
	}
}

// runApp runs app on args, with each command's flags allowed after its
// arguments as well as before them (`wattrec mark begin epoch --db
// run.db`), which urfave/cli's parser does not do by itself.
func runApp(ctx context.Context, app *cli.App, args []string) error {
	return app.RunContext(ctx, interspersed(app, args))
}

// interspersed moves the flags (with their values) of the command that
// args name ahead of its arguments. Everything after "--" stays where it
// is, and so does a command line it does not understand (the parser then
// says what is wrong).
func interspersed(app *cli.App, args []string) []string {
	if len(args) == 0 {
		return args
	}
	out, rest := []string{args[0]}, args[1:]
	flags, cmds := app.Flags, app.Commands
	for len(rest) > 0 {
		a := rest[0]
		if a == "--" {
			break
		}
		if strings.HasPrefix(a, "-") { // a flag of the app or of a command group
			n := min(flagArgs(flags, a), len(rest))
			out, rest = append(out, rest[:n]...), rest[n:]
			continue
		}
		i := slices.IndexFunc(cmds, func(c *cli.Command) bool { return slices.Contains(c.Names(), a) })
		if i < 0 {
			break
		}
		cmd := cmds[i]
		out, rest = append(out, a), rest[1:]
		if len(cmd.Subcommands) > 0 {
			flags, cmds = cmd.Flags, cmd.Subcommands
			continue
		}
		var global, own, positional []string
		for len(rest) > 0 {
			a := rest[0]
			if a == "--" {
				positional, rest = append(positional, rest...), nil
				break
			}
			if strings.HasPrefix(a, "-") && a != "-" {
				if !hasFlag(cmd.Flags, a) && hasFlag(app.Flags, a) { // the app's own, as --log-level
					n := min(flagArgs(app.Flags, a), len(rest))
					global, rest = append(global, rest[:n]...), rest[n:]
					continue
				}
				n := min(flagArgs(cmd.Flags, a), len(rest))
				own, rest = append(own, rest[:n]...), rest[n:]
				continue
			}
			positional, rest = append(positional, a), rest[1:]
		}
		return slices.Concat(out[:1], global, out[1:], own, positional)
	}
	return append(out, rest...)
}

// hasFlag reports whether flag argument a ("--db", "-o=x") names one of
// flags.
func hasFlag(flags []cli.Flag, a string) bool {
	name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
	return slices.ContainsFunc(flags, func(f cli.Flag) bool { return slices.Contains(f.Names(), name) })
}

// flagArgs is how many arguments flag argument a takes up among flags:
// 2 for a flag with a value given apart ("--db x"), else 1.
func flagArgs(flags []cli.Flag, a string) int {
	name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
	if hasValue {
		return 1
	}
	for _, f := range flags {
		if slices.Contains(f.Names(), name) {
			if bf, ok := f.(*cli.BoolFlag); ok && bf != nil {
				return 1
			}
			return 2
		}
	}
	return 1 // --help, or unknown: the parser says so
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
	case errors.Is(err, errUnknownCommand):
		return "wattrec --help lists the commands"
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
	case errors.Is(err, export.ErrUnwritable):
		return "-o must name a file in an existing directory you can write to"
	case errors.Is(err, chart.ErrFormat):
		return "-o FILE.svg or -o FILE.png"
	case errors.Is(err, chart.ErrNoSeries):
		return "`wattrec info --db FILE` lists the endpoints and devices; --device takes e.g. gpu:0,cpu:1 or gpu"
	case errors.Is(err, chart.ErrNoData):
		return "`wattrec info --db FILE` shows the recording's span: choose --from/--to inside it"
	case errors.Is(err, chart.ErrTooManyLines):
		return "use --by endpoint or --by kind, or fewer devices with --device"
	case errors.Is(err, query.ErrNoWindow):
		return "`wattrec mark list --db FILE` lists the marks"
	case errors.Is(err, export.ErrExists):
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
	case errors.Is(err, recorder.ErrMissingDevice):
		return "list only devices the daemon has in ?gpus= and ?cpus=, or leave a list out to record every device"
	case errors.Is(err, recorder.ErrMissingScope):
		return "enable the API group on the daemon (zeusd --enable) or use a token with its scope; without ?gpus= or ?cpus= a kind that cannot be read is skipped"
	case errors.Is(err, recorder.ErrUnreachable):
		return "is zeusd running there? --keep-trying records endpoints that come up later"
	case errors.Is(err, store.ErrNoOpenMark):
		return "begin one with: wattrec mark begin --db FILE NAME"
	case errors.Is(err, recording.ErrNeedsRecorder):
		return "for a finished recording use: wattrec mark add --db FILE --from T0 --to T1 NAME"
	case errors.Is(err, query.ErrTooLarge):
		return "use a wider --every or a shorter --from/--to; `wattrec export --grid WIDTH` streams any number of bins"
	case errors.Is(err, control.ErrSocketPath):
		return "give --db a shorter path, or set XDG_RUNTIME_DIR to a short directory only you can use (mode 0700)"
	case errors.Is(err, control.ErrBusy):
		return "the recorder answers a few reads at a time: try again when the others are done"
	case errors.Is(err, remotewrite.ErrReceiver):
		return "give --remote-write an http(s) URL such as http://vm:8428/api/v1/write; a token goes in --remote-write-bearer-token-file"
	case errors.Is(err, control.ErrAPIVersion):
		return "the recorder runs another wattrec version: use that version's CLI, or restart the recorder"
	}
	return ""
}

// errUnknownCommand is a command line whose command is not one of
// wattrec's.
var errUnknownCommand = errors.New("unknown command")

// unknownCommand is the action of the app and of each command group: with
// no argument, its help; with one, the error that names it and the
// closest command, if one is close.
func unknownCommand(c *cli.Context) error {
	if c.NArg() == 0 {
		return cli.ShowSubcommandHelp(c)
	}
	cmds, name := c.App.Commands, c.Args().First()
	if c.Command != nil && len(c.Command.Subcommands) > 0 {
		cmds = c.Command.Subcommands
	}
	best, score := "", 0.0
	for _, cmd := range cmds {
		for _, n := range cmd.Names() {
			if s := smetrics.JaroWinkler(name, n, 0.7, 4); s > score {
				best, score = n, s
			}
		}
	}
	if score >= 0.8 {
		return fmt.Errorf("%w %q: did you mean %q?", errUnknownCommand, name, best)
	}
	return fmt.Errorf("%w %q", errUnknownCommand, name)
}

// withHint adds hint(err) to err's message on a line of its own.
func withHint(err error) error {
	if h := hint(err); h != "" {
		return fmt.Errorf("%w\n(%s)", err, h)
	}
	return err
}
