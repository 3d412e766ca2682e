//go:build race

package nodescripts

func init() { raceBuild = true }
