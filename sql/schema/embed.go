// Package schema embeds the SQL migrations so the binary can apply them.
package schema

import (
	"embed"
	"io/fs"
)

// Migrations holds the projection's goose migrations, in version order.
// They run in whichever schema the projection is built in.
//
//go:embed *.sql
var Migrations embed.FS

//go:embed intake/*.sql
var intake embed.FS

// IntakeSchema is where the intake's tables live, outside any projection.
const IntakeSchema = "intake"

// IntakeMigrations returns the intake's goose migrations.
func IntakeMigrations() (fs.FS, error) {
	return fs.Sub(intake, "intake")
}
