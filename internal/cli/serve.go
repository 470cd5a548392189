package cli

import (
	"context"
	"fmt"
)

func runServe(_ context.Context, e env) int {
	fmt.Fprintln(e.stderr, "headroom serve: not implemented yet")
	return 1
}
