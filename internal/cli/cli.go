// Package cli implements the headroom command line. It is the only package
// that wires the others together: it loads configuration, builds stores,
// ledgers and servers, and hands each package only the pieces it needs.
package cli

import (
	"context"
	"fmt"
	"io"
	"sort"
)

// env is what every command receives: its arguments and the process's streams.
type env struct {
	args   []string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

type command struct {
	summary string
	run     func(ctx context.Context, e env) int
}

func commands() map[string]command {
	return map[string]command{
		"emulate":  {"run an offline Bedrock that enforces quotas like the real one", runEmulate},
		"serve":    {"run the gateway (use --demo for a self-contained trial)", runServe},
		"keys":     {"create, list and revoke developer keys", runKeys},
		"config":   {"check a configuration file (config validate FILE)", runConfig},
		"doctor":   {"explain which throttling situation you are in and what to change", runDoctor},
		"simulate": {"replay a team's workload against a quota, with and without Headroom", runSimulate},
		"version":  {"print the version", runVersion},
	}
}

// Main runs the command named by args[0] and returns the process exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "headroom: unknown command %q\n\n", args[0])
		usage(stderr, cmds)
		return 2
	}
	return c.run(ctx, env{args: args[1:], stdin: stdin, stdout: stdout, stderr: stderr})
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "Usage: headroom COMMAND [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'headroom COMMAND --help' for a command's flags.")
}
