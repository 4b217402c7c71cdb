// Package schema embeds the SQL migrations so the binary can apply them.
package schema

import "embed"

// Migrations holds the goose migration files, in version order.
//
//go:embed *.sql
var Migrations embed.FS
