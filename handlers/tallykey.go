package handlers

import (
	"encoding/base64"
	"log/slog"
	"net/http"

	"github.com/votewatch/votewatch/domain"
)

// tallyKeyResponse is GET /api/v1/tally-key: what a station needs to seal
// a vote's choice itself (contract v2, README "Sealed votes").
type tallyKeyResponse struct {
	KeyID string `json:"key_id"`
	// Key is the text form, as `votewatch keys init` writes tally.key.pub.
	Key string `json:"key"`
	// PublicKey is RFC 9180's SerializePublicKey, base64.
	PublicKey string `json:"public_key"`
	KEM       string `json:"kem"`
	KDF       string `json:"kdf"`
	AEAD      string `json:"aead"`
	Info      string `json:"info"`
	Export    string `json:"export_context"`
	// Choice is how each vote's choice is sealed under the exported key.
	Choice        string `json:"choice_aead"`
	RequireSealed bool   `json:"require_sealed"`
}

// RegisterTallyKey adds GET /api/v1/tally-key to mux, serving key. It is
// public: the key seals, it does not open.
func RegisterTallyKey(mux Mux, key domain.TallyPublicKey, requireSealed bool, log *slog.Logger) {
	resp := tallyKeyResponse{
		KeyID: key.ID(), Key: key.String(), PublicKey: base64.StdEncoding.EncodeToString(key.Bytes()),
		KEM: "DHKEM(X25519, HKDF-SHA256)", KDF: "HKDF-SHA256", AEAD: "export-only",
		Info: domain.SealInfo, Export: domain.SealExportContext, Choice: "AES-256-GCM", RequireSealed: requireSealed,
	}
	mux.HandleFunc("/api/v1/tally-key", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, r, log, &httpError{status: http.StatusMethodNotAllowed, code: "method_not_allowed", message: r.Method + " is not allowed here; use GET"})
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=60")
		writeJSON(w, r, log, resp)
	})
}
