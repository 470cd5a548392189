package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/headroomhq/headroom/internal/config"
)

const configUsage = `Usage: headroom config validate [--emulator] FILE

Checks a configuration file and prints OK, or every problem at once (exit
status 1). FILE is a 'headroom serve' file unless --emulator is given.
Examples: examples/bedrock.yaml, examples/serve-emulator.yaml (serve files).

Flags:
`

func runConfig(_ context.Context, e env) int {
	if len(e.args) == 0 {
		fmt.Fprint(e.stderr, configUsage)
		return 2
	}
	switch e.args[0] {
	case "validate":
	case "-h", "--help", "help":
		fmt.Fprint(e.stdout, configUsage)
		return 0
	default:
		fmt.Fprintf(e.stderr, "headroom config: unknown command %q\n\n%s", e.args[0], configUsage)
		return 2
	}
	fs := flag.NewFlagSet("config validate", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	emu := fs.Bool("emulator", false, "FILE is a 'headroom emulate' configuration")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), configUsage)
		fs.PrintDefaults()
	}
	sub := e
	sub.args = e.args[1:]
	pos, code, ok := parseSub(sub, fs, 1)
	if !ok {
		return code
	}
	var err error
	path := pos[0]
	if *emu {
		_, err = config.LoadEmulator(path)
	} else {
		_, err = config.LoadServe(path)
	}
	if err == nil {
		fmt.Fprintf(e.stdout, "%s: OK\n", path)
		return 0
	}
	var problems config.Problems
	if errors.As(err, &problems) {
		fmt.Fprintf(e.stderr, "%s: %d problem(s):\n", path, len(problems))
		for _, p := range problems {
			fmt.Fprintf(e.stderr, "  - %s\n", p)
		}
		return 1
	}
	fmt.Fprintf(e.stderr, "%s: %v\n", path, err)
	return 1
}
