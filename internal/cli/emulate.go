package cli

import (
	"context"
	"fmt"
)

func runEmulate(_ context.Context, e env) int {
	fmt.Fprintln(e.stderr, "headroom emulate: not implemented yet")
	return 1
}
