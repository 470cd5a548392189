package cli

import (
	"context"
	"fmt"
)

func runDoctor(_ context.Context, e env) int {
	fmt.Fprintln(e.stderr, "headroom doctor: not implemented yet")
	return 1
}
