package cli

import (
	"context"
	"fmt"
)

func runConfig(_ context.Context, e env) int {
	fmt.Fprintln(e.stderr, "headroom config: not implemented yet")
	return 1
}
