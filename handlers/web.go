package handlers

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed web
var webFiles embed.FS

// contentSecurityPolicy allows this origin only: no inline script, no
// external hosts, so the page works offline and resists injected markup.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// RegisterDashboard serves the live dashboard at / and its assets, all
// embedded in the binary, and the live stream at /api/v1/stream.
func RegisterDashboard(mux Mux, stream *Stream) {
	sub, _ := fs.Sub(webFiles, "web")
	files := http.FileServerFS(sub)
	secure := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("Content-Security-Policy", contentSecurityPolicy)
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("Referrer-Policy", "no-referrer")
			h.Set("X-Frame-Options", "DENY")
			h.Set("Cache-Control", "no-cache")
			next.ServeHTTP(w, r)
		})
	}
	mux.Handle("GET /{$}", secure(files))
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", secure(files)))
	mux.Handle("/api/v1/stream", stream)
}
