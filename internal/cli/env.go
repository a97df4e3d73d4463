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

// noEnvAnnotation marks a flag that has no environment variable on its
// command (withoutEnv).
const noEnvAnnotation = "mortar_no_env"

// withoutEnv gives the named flags of fs no environment variable: flags
// that describe one object (an instance to register) would otherwise take
// a value meant for another command (MORTAR_PORT, set for mortar server).
func withoutEnv(fs *pflag.FlagSet, names ...string) {
	for _, n := range names {
		if err := fs.SetAnnotation(n, noEnvAnnotation, []string{"true"}); err != nil {
			panic(fmt.Sprintf("cli: withoutEnv: %v", err)) // a flag name typo
		}
	}
}

// hasEnv reports whether f has an environment variable.
func hasEnv(f *pflag.Flag) bool {
	return !noEnv[f.Name] && f.Annotations[noEnvAnnotation] == nil
}

// applyEnv sets each flag of cmd that was not given on the command line
// from its environment variable, if that is set.
func applyEnv(cmd *cobra.Command) error {
	var err error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed || !hasEnv(f) {
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
		if !hasEnv(f) || strings.Contains(f.Usage, envPrefix) {
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
