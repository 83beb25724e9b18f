// Package review serves the person's review of what agents changed: the
// JSON endpoints the JupyterLab sidebar calls at <lab>/mcp/changes, backed
// by the code of the list_changes and undo_changes tools. Jupyter has
// authenticated every request before the proxy forwards it.
package review

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/tools"
)

// Changes is what the endpoints need of the tools.
type Changes interface {
	ReviewChanges(in tools.ListChangesIn) (tools.ListChangesOut, error)
	RevertChanges(ctx context.Context, in tools.UndoChangesIn) (tools.UndoChangesOut, error)
}

// Handler routes GET /changes?path=…[&limit=…&before=…] (the list, newest
// first) and POST /changes/undo {"path", "change_ids" | "since_change_id"}.
type Handler struct {
	Changes Changes
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/changes":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET")
			fail(w, http.StatusMethodNotAllowed, "GET only: POST /changes/undo undoes changes")
			return
		}
		h.list(w, r)
	case "/changes/undo":
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			fail(w, http.StatusMethodNotAllowed, "POST only")
			return
		}
		h.undo(w, r)
	default:
		fail(w, http.StatusNotFound, "no such endpoint: GET /changes or POST /changes/undo")
	}
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	in := tools.ListChangesIn{Path: q.Get("path")}
	if strings.TrimSpace(in.Path) == "" {
		fail(w, http.StatusBadRequest, "path is missing: give the notebook's path, e.g. ?path=dir/analysis.ipynb")
		return
	}
	for _, p := range []struct {
		name string
		to   *int
	}{{"limit", &in.Limit}, {"before", &in.BeforeChangeID}} {
		v := q.Get(p.name)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			fail(w, http.StatusBadRequest, fmt.Sprintf("%s %q is not a positive integer", p.name, v))
			return
		}
		*p.to = n
	}
	out, err := h.Changes.ReviewChanges(in)
	if err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	reply(w, http.StatusOK, out)
}

func (h *Handler) undo(w http.ResponseWriter, r *http.Request) {
	var in tools.UndoChangesIn
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		fail(w, http.StatusBadRequest, "expected JSON {\"path\": notebook, \"change_ids\": [ids]} or {\"path\": notebook, \"since_change_id\": id}: "+err.Error()+"; nothing was changed")
		return
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		fail(w, http.StatusBadRequest, "expected one JSON object and nothing after it; nothing was changed")
		return
	}
	switch {
	case strings.TrimSpace(in.Path) == "":
		fail(w, http.StatusBadRequest, "path is missing: give the notebook's path; nothing was changed")
		return
	case len(in.ChangeIDs) > 0 && in.SinceChangeID != 0:
		fail(w, http.StatusBadRequest, "give change_ids or since_change_id, not both; nothing was changed")
		return
	case len(in.ChangeIDs) == 0 && in.SinceChangeID == 0:
		fail(w, http.StatusBadRequest, "name the changes to undo: change_ids, or since_change_id for that change and the later ones of its session; nothing was changed")
		return
	case in.SinceChangeID < 0:
		fail(w, http.StatusBadRequest, fmt.Sprintf("since_change_id %d is not a change id (they are positive); nothing was changed", in.SinceChangeID))
		return
	}
	for _, id := range in.ChangeIDs {
		if id < 1 {
			fail(w, http.StatusBadRequest, fmt.Sprintf("change id %d is not a change id (they are positive); nothing was changed", id))
			return
		}
	}
	out, err := h.Changes.RevertChanges(r.Context(), in)
	var bad tools.BadPath
	switch {
	case errors.As(err, &bad):
		fail(w, http.StatusBadRequest, err.Error()+"; nothing was changed")
		return
	case err != nil:
		// The request was well formed; the record or the notebook refused it
		// (unknown or undone change, a conflicting edit, a gone notebook).
		fail(w, http.StatusConflict, err.Error())
		return
	}
	reply(w, http.StatusOK, out)
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// fail answers {"error": msg}, which the sidebar shows as it is.
func fail(w http.ResponseWriter, status int, msg string) {
	reply(w, status, map[string]string{"error": msg})
}
