package cli

import (
	"io"

	"github.com/spf13/cobra"
)

// newServiceCmd is "mortar service": the registry commands.
func newServiceCmd(stdout, stderr io.Writer) *cobra.Command { return nil }
