package mortar

import "runtime/debug"

// version is set at build time with
// -ldflags "-X github.com/mortarhq/mortar.version=v1.2.3".
var version string

// Version reports mortar's version: the -ldflags override, else the module
// version the binary was built from, else "(devel)".
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range bi.Deps {
			if dep.Path == "github.com/mortarhq/mortar" && dep.Version != "" {
				return dep.Version
			}
		}
		if bi.Main.Path == "github.com/mortarhq/mortar" && bi.Main.Version != "" {
			return bi.Main.Version
		}
	}
	return "(devel)"
}
