package cli

import (
	"io"

	"github.com/spf13/cobra"
)

// addPartCommands adds the noun commands of each part (service, config, task, queue, schedule, dlq).
func addPartCommands(root *cobra.Command, stdout, stderr io.Writer) {
	for _, c := range []*cobra.Command{
		newNodeCmd(stdout, stderr),
		newServiceCmd(stdout, stderr),
		newConfigCmd(stdout, stderr),
		newTaskCmd(stdout, stderr),
		newQueueCmd(stdout, stderr),
		newScheduleCmd(stdout, stderr),
		newDLQCmd(stdout, stderr),
		newPushCmd(stdout, stderr),
	} {
		if c != nil {
			root.AddCommand(c)
		}
	}
	root.AddCommand(newAuthCmds(stdout, stderr)...)
}
