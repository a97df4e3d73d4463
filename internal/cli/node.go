package cli

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/mortarhq/mortar/internal/node"
	"github.com/spf13/cobra"
)

// newNodeCmd is "mortar node": the nodes of the control plane.
func newNodeCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Inspect the control plane's nodes",
		Args:  noArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	nf := addNodeFlags(cmd)
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List the live nodes",
		Long: `List the nodes whose liveness key is current: their name, version, start
time and last renewal. A node that stopped renewing disappears within its
TTL (10 s by default).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct {
				Nodes    []node.NodeInfo `json:"nodes"`
				Replicas int             `json:"replicas"`
			}
			if err := nf.do(cmd, stderr, "node.list", struct{}{}, &out); err != nil {
				return err
			}
			if nf.json() {
				return writeJSON(stdout, out)
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tVERSION\tSTARTED\tRENEWED")
			for _, n := range out.Nodes {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s ago\n", n.Name, n.Version, n.Started.Format(time.RFC3339),
					time.Since(n.Renewed).Round(time.Second))
			}
			return tw.Flush()
		},
	})
	return cmd
}
