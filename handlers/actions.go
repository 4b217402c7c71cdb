package handlers

import (
	"net/http"
	"time"
)

type operatorActionJSON struct {
	Action string    `json:"action"`
	Who    string    `json:"who"`
	Host   string    `json:"host"`
	At     time.Time `json:"at"`
	Detail string    `json:"detail"`
	Result string    `json:"result"`
}

// operatorLog serves the latest 500 operator actions, newest first.
func (a *API) operatorLog(w http.ResponseWriter, r *http.Request) {
	if !allowQuery(w, r, a.log) {
		return
	}
	actions, err := a.results.OperatorActions(r.Context(), 500)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	out := struct {
		Actions []operatorActionJSON `json:"actions"`
	}{Actions: make([]operatorActionJSON, 0, len(actions))}
	for _, x := range actions {
		out.Actions = append(out.Actions, operatorActionJSON{x.Action, x.Who, x.Host, x.At, x.Detail, x.Result})
	}
	writeJSON(w, r, a.log, out)
}
