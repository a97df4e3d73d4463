package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// envPrefix starts every environment variable mortar reads.
const envPrefix = "MORTAR_"

// envName is the environment variable standing for a flag: --data-dir is
// MORTAR_DATA_DIR.
func envName(flag string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// noEnv lists flags that have no environment variable.
var noEnv = map[string]bool{"help": true, "version": true}

// applyEnv sets each flag of cmd that was not given on the command line
// from its environment variable, if that is set.
func applyEnv(cmd *cobra.Command) error {
	var err error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed || noEnv[f.Name] {
			return
		}
		v, ok := os.LookupEnv(envName(f.Name))
		if !ok {
			return
		}
		if serr := cmd.Flags().Set(f.Name, v); serr != nil {
			err = usagef("%s=%q: %v", envName(f.Name), v, serr)
		}
	})
	return err
}

// annotateEnv appends each flag's environment variable to its help text,
// on every command of the tree.
func annotateEnv(cmd *cobra.Command) {
	annotate := func(f *pflag.Flag) {
		if noEnv[f.Name] || strings.Contains(f.Usage, envPrefix) {
			return
		}
		f.Usage = fmt.Sprintf("%s (env %s)", f.Usage, envName(f.Name))
	}
	cmd.Flags().VisitAll(annotate)
	cmd.PersistentFlags().VisitAll(annotate)
	for _, c := range cmd.Commands() {
		annotateEnv(c)
	}
}
