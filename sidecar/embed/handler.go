package embed

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
)

//go:embed page
var page embed.FS

// validNotebookPath: relative to the root, "/" separators, no "." or ".."
// segments, ending in .ipynb.
func validNotebookPath(p string) bool {
	if len(p) > 4096 || !strings.HasSuffix(p, ".ipynb") || strings.ContainsAny(p, "\\\x00") {
		return false
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// validView keeps view ids short and URL-safe.
var validView = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Handler serves the embed page and its event stream under /embed.
// Jupyter has authenticated every request before the proxy forwards it.
type Handler struct {
	Hub *Hub
	// Notebooks lists the notebooks the switcher offers.
	Notebooks func(ctx context.Context) ([]string, error)
}

// ServeHTTP routes /embed (the page, one self-contained file),
// /embed/view-id, /embed/events, /embed/state and /embed/notebooks.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/embed", "/embed/":
		h.file(w, "page/index.html", "text/html; charset=utf-8")
	case "/embed/view-id":
		h.viewID(w, r)
	case "/embed/events":
		h.events(w, r)
	case "/embed/state":
		h.state(w, r)
	case "/embed/notebooks":
		h.notebooks(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (h *Handler) file(w http.ResponseWriter, name, contentType string) {
	data, err := page.ReadFile(name)
	if err != nil {
		http.NotFound(w, nil)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(data)
}

// viewID issues a view id (GET: issuing changes nothing the hub keeps).
// The page asks for one when opened without; a platform asks before it
// builds the page's URL and tells the agent.
func (h *Handler) viewID(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "GET only", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]string{"view": h.Hub.NewViewID()})
}

// viewParams takes the view id and the page's instance key from the query.
func viewParams(w http.ResponseWriter, r *http.Request) (id, page string, ok bool) {
	id, page = r.URL.Query().Get("view"), r.URL.Query().Get("page")
	if !validView.MatchString(id) || !validView.MatchString(page) {
		http.Error(w, "view and page must be 1 to 64 letters, digits, - or _", http.StatusBadRequest)
		return "", "", false
	}
	return id, page, true
}

// events streams a view's events as server-sent events. The proxy streams
// a GET whose Accept is exactly text/event-stream, as EventSource sends.
func (h *Handler) events(w http.ResponseWriter, r *http.Request) {
	id, pageKey, ok := viewParams(w, r)
	if !ok {
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	events, cancel := h.Hub.subscribe(id, pageKey)
	defer cancel()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	fmt.Fprint(w, ": connected\n\n")
	flusher.Flush()
	keepalive := time.NewTicker(20 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-keepalive.C:
			fmt.Fprint(w, ": keepalive\n\n")
		case e := <-events:
			data, _ := json.Marshal(e)
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e.Type, data)
		}
		flusher.Flush()
	}
}

// state takes the page's report of the notebook it shows.
func (h *Handler) state(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	var s struct {
		View string `json:"view"`
		Page string `json:"page"`
		Path string `json:"path"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&s); err != nil || !validView.MatchString(s.View) || !validView.MatchString(s.Page) {
		http.Error(w, "expected {\"view\": id, \"page\": instance key, \"path\": notebook}", http.StatusBadRequest)
		return
	}
	// The path becomes the linked session's current notebook: only a
	// notebook path relative to the root (or "" for none) is taken.
	if s.Path != "" && !validNotebookPath(s.Path) {
		http.Error(w, "path: a notebook path relative to the Jupyter root, ending in .ipynb", http.StatusBadRequest)
		return
	}
	if err := h.Hub.ViewShows(s.View, s.Page, s.Path); err != nil {
		http.Error(w, err.Error()+": the notebooks opened here reach the agent only once it calls link_view again while this page is open", http.StatusForbidden)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) notebooks(w http.ResponseWriter, r *http.Request) {
	paths, err := h.Notebooks(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(paths)
}
