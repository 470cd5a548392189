package cli

import (
	"context"
	"fmt"
)

func runSimulate(_ context.Context, e env) int {
	fmt.Fprintln(e.stderr, "headroom simulate: not implemented yet")
	return 1
}
