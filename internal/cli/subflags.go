package cli

import (
	"flag"
	"fmt"
)

// parseInterspersed parses flags that may come before, between or after
// positional arguments (`keys create alice --weight 2`), which the flag
// package alone does not allow.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// parseSub parses args and checks the number of positional arguments; it
// returns the exit code to use when parsing ends the command.
func parseSub(e env, fs *flag.FlagSet, wantArgs int) ([]string, int, bool) {
	for _, a := range e.args {
		if a == "-h" || a == "--help" || a == "-help" {
			fs.SetOutput(e.stdout)
			fs.Usage()
			return nil, 0, false
		}
	}
	pos, err := parseInterspersed(fs, e.args)
	if err != nil {
		return nil, 2, false
	}
	if len(pos) != wantArgs {
		fmt.Fprintf(e.stderr, "headroom %s: want %d argument(s), got %d\n", fs.Name(), wantArgs, len(pos))
		fs.Usage()
		return nil, 2, false
	}
	return pos, 0, true
}
