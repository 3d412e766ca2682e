package nodescripts

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/parley-cti/parley/internal/tests/scriptcmd"
)

// scriptsAtOnce is how many scripts run at once unless -parallel says
// otherwise. The scripts mostly wait (for nodes to start, poll, retry and
// deliver): run two at a time, as go test's default on 2 cores has it, the
// machine sat 60–90 % idle and the package took 410 s under -race, close
// to go test's 10-minute limit for a package.
const scriptsAtOnce = 6

func TestMain(m *testing.M) {
	flag.Parse()
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if !given {
		flag.Set("test.parallel", fmt.Sprint(scriptsAtOnce))
	}
	os.Exit(m.Run())
}

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
