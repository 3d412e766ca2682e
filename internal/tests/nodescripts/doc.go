// Package nodescripts runs parley's CLI scripts that start parley serve
// nodes of their own (sovereign nodes, escrow nodes, cross-witnessing, the
// three-node exchange with kill -9). They are the CLI's slowest scripts,
// so they run as their own test binary beside cmd/parley's, each within
// go test's time limit for one package. Tests only.
package nodescripts
