package postgres

import "strings"

// MigrationForTest returns the SQL of the migration whose name contains
// name.
func MigrationForTest(name string) string {
	for _, m := range migrations {
		if strings.Contains(m.name, name) {
			return m.sql
		}
	}
	return ""
}
