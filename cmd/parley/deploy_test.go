package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDeployFilesMatchTheBinary keeps deploy/ honest: the systemd unit's
// command line parses as parley serve's flags, the Dockerfile builds with
// the Go version go.mod names, and every PARLEY_* variable it sets is a
// flag of serve.
func TestDeployFilesMatchTheBinary(t *testing.T) {
	root := filepath.Join("..", "..")
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	var usage lockedBuf
	if code := run(context.Background(), []string{"serve", "-h"}, &lockedBuf{}, &usage); code != exitOK {
		t.Fatalf("serve -h: exit %d", code)
	}
	hasFlag := func(name string) bool {
		return strings.Contains(usage.String(), "  -"+name+" ") || strings.Contains(usage.String(), "  -"+name+"\n")
	}

	unit := read("deploy/parley.service")
	m := regexp.MustCompile(`(?m)^ExecStart=(\S+) (.*)$`).FindStringSubmatch(unit)
	if m == nil || filepath.Base(m[1]) != "parley" {
		t.Fatalf("parley.service has no ExecStart running parley: %v", m)
	}
	args := append(strings.Fields(m[2]), "-h") // -h stops before serving; an unknown flag fails first
	var errb lockedBuf
	if code := run(context.Background(), args, &lockedBuf{}, &errb); code != exitOK {
		t.Errorf("parley.service ExecStart %q does not parse: exit %d: %s", m[2], code, errb.String())
	}

	docker := read("deploy/Dockerfile")
	goVersion := regexp.MustCompile(`(?m)^go (\S+)$`).FindStringSubmatch(read("go.mod"))
	if goVersion == nil || !strings.Contains(docker, "FROM golang:"+goVersion[1]+"-") {
		t.Errorf("the Dockerfile does not build with go.mod's Go %v", goVersion)
	}
	envs := regexp.MustCompile(`PARLEY_([A-Z_]+)=`).FindAllStringSubmatch(docker, -1)
	if len(envs) == 0 {
		t.Fatal("the Dockerfile sets no PARLEY_ variable")
	}
	for _, e := range envs {
		if name := strings.ToLower(strings.ReplaceAll(e[1], "_", "-")); !hasFlag(name) {
			t.Errorf("the Dockerfile sets PARLEY_%s, but serve has no --%s", e[1], name)
		}
	}
	if !strings.Contains(docker, `CMD ["serve"]`) || !strings.Contains(docker, "./cmd/parley") {
		t.Error("the Dockerfile does not build ./cmd/parley and run serve")
	}
}
