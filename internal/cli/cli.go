// Package cli is the mortar command tree (cobra). Commands write data to
// an injected stdout and logs and errors to stderr, and Main maps errors
// to exit codes: 0 ok, 1 failure, 2 usage.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// Exit codes.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// usageError marks an error caused by how the command was invoked.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// Main runs the mortar command line with args (without the program name)
// and returns the process exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return mainWithStdin(ctx, args, os.Stdin, stdout, stderr)
}

// mainWithStdin is Main reading stdin from stdin (passwords with
// --password-stdin).
func mainWithStdin(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintln(stderr, "mortar:", err)
	if _, ok := errors.AsType[startupError](err); ok {
		return ExitStartup
	}
	if _, ok := errors.AsType[usageError](err); ok || isCobraUsage(err) {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		return ExitUsage
	}
	return ExitFailure
}

// isCobraUsage recognises cobra's own argument and flag errors, which it
// returns as plain errors.
func isCobraUsage(err error) bool {
	var flagErr *flagError
	return errors.As(err, &flagErr)
}

// flagError wraps flag parsing failures so Main can tell them apart.
type flagError struct{ err error }

func (e *flagError) Error() string { return e.err.Error() }

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "mortar",
		Short: "mortar: the backbone between microservices",
		Long: `mortar gives a fleet of services what runs between them: RPC over the
ZeroRPC protocol (interoperable with zerorpc-python and zerorpc-node), and
soon service discovery, configuration, tasks, push and an API gateway.

Every flag can also be set with an environment variable MORTAR_<FLAG>,
e.g. --timeout with MORTAR_TIMEOUT; a flag on the command line wins. The
flags of "mortar service register" that describe the instance have none.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          noArgs,
		RunE:          func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return applyEnv(cmd)
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &flagError{err} })
	root.AddCommand(newVersionCmd(stdout), newCallCmd(stdout, stderr), newServerCmd(stderr))
	addPartCommands(root, stdout, stderr)
	annotateEnv(root)
	return root
}
