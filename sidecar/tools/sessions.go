package tools

import "sync"

// Sessions keeps per-MCP-session state: the session's current notebook.
// It is keyed by MCP session id so that two agents never share a pointer.
// Requests without a session (protocol 2026-07-28 has none) have no current
// notebook: they name the notebook on every call.
type Sessions struct {
	mu      sync.Mutex
	current map[string]string
}

// NewSessions returns an empty session table.
func NewSessions() *Sessions { return &Sessions{current: map[string]string{}} }

// Current returns the session's current notebook, or "".
func (s *Sessions) Current(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current[id]
}

// SetCurrent makes path the session's current notebook.
func (s *Sessions) SetCurrent(id, path string) {
	if id == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.current[id] = path
}

// Forget drops a closed session's state.
func (s *Sessions) Forget(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.current, id)
}
