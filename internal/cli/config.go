package cli

import (
	"io"

	"github.com/spf13/cobra"
)

// newConfigCmd is "mortar config": the config center commands.
func newConfigCmd(stdout, stderr io.Writer) *cobra.Command { return nil }
