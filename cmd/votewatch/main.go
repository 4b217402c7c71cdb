// Command votewatch monitors an election in real time: votes arrive as
// events on Kafka, are projected into exact tallies in PostgreSQL, and are
// served by a read API.
//
// Where a vote goes, top to bottom:
//
//	simulate / any Kafka producer ──► topics candidates, voters, votes (keyed, murmur2)
//	project:  Watermill router ──► handlers.EventHandlers (decode; malformed → <topic>.dlq)
//	          ──► projections/write: Projector (group commit: one transaction per batch, ack after commit)
//	          ──► write.Store: facts for the batch, domain.Decide, one transaction
//	          ──► Postgres tables (ballots, tallies, turnout, rejections, applied offsets)
//	          ──► projections/trees: Tree (the transparency log), Checkpointer (signs it)
//	serve:    handlers.API ──► projections/read: Results ──► JSON
//	replay:   projections/rebuild: Rebuilder (offset 0 ──► fresh schema ──► swap)
//	audit:    projections/audit: Recount (domain.Count over the log), AuditTrees
//
// demo runs all of it in one process on an embedded broker and a private
// PostgreSQL. The wiring is internal/app (app.go: the App every command
// opens; projector.go: the live write path); this package parses flags.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/alecthomas/kong"

	"github.com/votewatch/votewatch/internal/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run parses args and runs the chosen command; it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var cli CLI
	exitCode := -1
	parser, err := newParser(&cli, stdout, stderr, func(code int) { exitCode = code })
	if err != nil {
		fmt.Fprintln(stderr, "votewatch:", err)
		return 2
	}
	kctx, err := parser.Parse(args)
	if exitCode >= 0 {
		return exitCode // --help
	}
	if err != nil {
		fmt.Fprintln(stderr, "votewatch:", err)
		return 2
	}
	log, err := app.NewLogger(stderr, cli.LogLevel, cli.LogFormat)
	if err != nil {
		fmt.Fprintln(stderr, "votewatch:", err)
		return 2
	}
	env := &Env{Log: log, Stdout: stdout}
	// One App per command: it opens what the command asks for and closes
	// it all, in reverse order, when the command returns.
	a := app.New(log)
	defer a.Close()
	kctx.BindTo(ctx, (*context.Context)(nil))
	if err := kctx.Run(env, a); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("votewatch failed", "command", kctx.Command(), "err", err)
		return 1
	}
	return 0
}

// newParser is the command line's parser; exit is called instead of
// os.Exit (after --help, say).
func newParser(cli *CLI, stdout, stderr io.Writer, exit func(int)) (*kong.Kong, error) {
	return kong.New(cli,
		kong.Name("votewatch"),
		kong.Description("Real-time election monitoring: votes through Kafka into exact Postgres tallies, a read API and a live dashboard."),
		kong.UsageOnError(),
		kong.Writers(stdout, stderr),
		kong.Exit(exit),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
		kong.Vars{"state_dir": defaultStateDir()},
	)
}

// defaultStateDir is where `ballot --verify-proof` keeps the checkpoints
// it has seen: the user's config dir, or none when there is no home.
func defaultStateDir() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "votewatch", "checkpoints")
}

// Env is what every command runs with.
type Env struct {
	Log    *slog.Logger
	Stdout io.Writer
}
