// Command headroom is a Bedrock Runtime-compatible gateway that shares one AWS
// account's Claude quota fairly between developers. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/headroomhq/headroom/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// Without a handler, a write to a closed stdout or stderr kills the
	// process with SIGPIPE before any cleanup; with one, the write fails
	// with EPIPE, which stops the command as SIGTERM does. (A client that
	// hangs up on the gateway raises SIGPIPE too; those are ignored here.)
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	code := cli.Main(ctx, os.Args[1:], os.Stdin, cli.StopOnBrokenPipe(os.Stdout, stop), cli.StopOnBrokenPipe(os.Stderr, stop))
	stop()
	os.Exit(code)
}
