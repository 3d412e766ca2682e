package nodescripts

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/parley-cti/parley/internal/tests/scriptcmd"
)

// raceBuild is set when the tests run with -race: the parley the scripts
// run is then built with the race detector too.
var raceBuild bool

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

// parleyDir builds cmd/parley once per test binary into a directory put
// first on the scripts' PATH, so "exec parley" runs the real command
// (PARLEY_TEST_BIN names a prebuilt one instead).
func parleyDir(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PARLEY_TEST_BIN"); p != "" {
		return filepath.Dir(p)
	}
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "parley-nodescripts-")
		if err != nil {
			binErr = err
			return
		}
		args := []string{"build", "-o", filepath.Join(dir, "parley")}
		if raceBuild {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, "github.com/parley-cti/parley/cmd/parley")...).CombinedOutput()
		if err != nil {
			binErr = errors.New("go build ./cmd/parley: " + err.Error() + "\n" + string(out))
		}
		binDir = dir
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binDir
}

// TestNodeScripts runs each script under testdata: the same setup and
// commands as cmd/parley's scripts, with the parley command built from
// cmd/parley.
func TestNodeScripts(t *testing.T) {
	dir := parleyDir(t)
	testscript.Run(t, testscript.Params{
		Dir: "testdata",
		Setup: func(env *testscript.Env) error {
			env.Setenv("PATH", dir+string(os.PathListSeparator)+env.Getenv("PATH"))
			return scriptcmd.Setup(env)
		},
		Cmds: scriptcmd.Cmds(),
	})
}
