package cli

import (
	"context"
	"fmt"
)

func runKeys(_ context.Context, e env) int {
	fmt.Fprintln(e.stderr, "headroom keys: not implemented yet")
	return 1
}
