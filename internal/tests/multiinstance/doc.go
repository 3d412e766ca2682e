// Package multiinstance holds parley's PostgreSQL end-to-end tests: several parley
// instances (real `parley serve` processes or in-process servers) on one
// PostgreSQL database, moving a SQLite deployment there with `parley copy`,
// and losing the database while serving. They drive the instances only
// through HTTP, as parties and operators would, and skip only when
// PARLEY_TEST_POSTGRES is unset.
//
// The package has no code beyond its tests; it must never reach into a
// running instance's state except through its database, read-only.
package multiinstance
