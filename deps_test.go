package mortar_test

import (
	"os/exec"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func goList(t *testing.T, args ...string) []string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list"}, args...)...).Output()
	if err != nil {
		t.Fatalf("go list %v: %v", args, err)
	}
	return strings.Fields(string(out))
}

// TestDeps keeps the import graph honest: SDK packages never pull in the
// NATS server, and the binary never links the testing package.
func TestDeps(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	for _, pkg := range []string{".", "./rpc", "./registry", "./config", "./task", "./push", "./auth"} {
		for _, dep := range goList(t, "-deps", pkg) {
			if strings.HasPrefix(dep, "github.com/nats-io/nats-server") {
				t.Errorf("SDK package %s imports %s", pkg, dep)
			}
		}
	}
	for _, dep := range goList(t, "-deps", "./cmd/mortar") {
		if dep == "testing" || strings.HasSuffix(dep, "/mortartest") {
			t.Errorf("the mortar binary imports %s", dep)
		}
	}
}

// TestPackageDocs checks every package has a doc comment.
func TestPackageDocs(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}\t{{.Doc}}", "./...").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, doc, _ := strings.Cut(line, "\t")
		if strings.TrimSpace(doc) == "" {
			t.Errorf("package %s has no doc comment", pkg)
		}
	}
}
