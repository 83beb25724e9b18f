package yproto

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/yjs"
)

// AwarenessEntry is one client's presence state in an awareness update.
// State is JSON text; "null" means the client left.
type AwarenessEntry struct {
	ClientID uint64
	Clock    uint64
	State    json.RawMessage
}

// EncodeAwarenessUpdate encodes entries: varUint count, then per entry
// varUint clientID, varUint clock, varString JSON state.
func EncodeAwarenessUpdate(entries []AwarenessEntry) []byte {
	e := yjs.NewEncoder()
	e.WriteVarUint(uint64(len(entries)))
	for _, en := range entries {
		e.WriteVarUint(en.ClientID)
		e.WriteVarUint(en.Clock)
		s := string(en.State)
		if s == "" {
			s = "null"
		}
		e.WriteVarString(s)
	}
	return e.Bytes()
}

// DecodeAwarenessUpdate decodes an awareness update payload.
func DecodeAwarenessUpdate(b []byte) ([]AwarenessEntry, error) {
	d := yjs.NewDecoder(b)
	n, err := d.ReadVarUint()
	if err != nil {
		return nil, err
	}
	if n > uint64(d.Remaining()) {
		return nil, yjs.ErrUnexpectedEOF
	}
	out := make([]AwarenessEntry, 0, n)
	for i := uint64(0); i < n; i++ {
		var en AwarenessEntry
		if en.ClientID, err = d.ReadVarUint(); err != nil {
			return nil, err
		}
		if en.Clock, err = d.ReadVarUint(); err != nil {
			return nil, err
		}
		s, err := d.ReadVarString()
		if err != nil {
			return nil, err
		}
		en.State = json.RawMessage(s)
		out = append(out, en)
	}
	return out, nil
}

// EncodeAwarenessMessage wraps an awareness update as a websocket message.
func EncodeAwarenessMessage(entries []AwarenessEntry) []byte {
	e := yjs.NewEncoder()
	e.WriteVarUint(MessageAwareness)
	e.WriteVarUint8Array(EncodeAwarenessUpdate(entries))
	return e.Bytes()
}

// Awareness tracks presence states like y-protocols' Awareness: each client
// has a clock; a higher clock replaces the state, and a null state at the
// same or higher clock removes the client. States time out after Timeout
// without renewal, so the local state must be re-sent (RenewInterval).
type Awareness struct {
	ClientID uint64
	states   map[uint64]json.RawMessage
	meta     map[uint64]awarenessMeta
	now      func() time.Time
}

type awarenessMeta struct {
	clock   uint64
	updated time.Time
}

// Timeout after which a remote state without renewal is dropped, and the
// interval at which the local state should be re-sent.
const (
	Timeout       = 30 * time.Second
	RenewInterval = 15 * time.Second
)

// NewAwareness returns an awareness for clientID (use the doc's client ID).
func NewAwareness(clientID uint64) *Awareness {
	return &Awareness{ClientID: clientID, states: map[uint64]json.RawMessage{}, meta: map[uint64]awarenessMeta{}, now: time.Now}
}

// marshalState encodes v as JSON without HTML escaping (like JSON.stringify).
func marshalState(v any) (json.RawMessage, error) {
	if v == nil {
		return json.RawMessage("null"), nil
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return json.RawMessage(bytes.TrimRight(b.Bytes(), "\n")), nil
}

// SetLocalState sets this client's state (nil to leave) and returns the
// awareness message to broadcast.
func (a *Awareness) SetLocalState(v any) ([]byte, error) {
	s, err := marshalState(v)
	if err != nil {
		return nil, err
	}
	m := a.meta[a.ClientID]
	clock := m.clock + 1
	if string(s) == "null" {
		delete(a.states, a.ClientID)
	} else {
		a.states[a.ClientID] = s
	}
	a.meta[a.ClientID] = awarenessMeta{clock, a.now()}
	return EncodeAwarenessMessage([]AwarenessEntry{{a.ClientID, clock, s}}), nil
}

// Renew re-announces the local state with a new clock (call every
// RenewInterval). It returns nil if there is no local state.
func (a *Awareness) Renew() []byte {
	s, ok := a.states[a.ClientID]
	if !ok {
		return nil
	}
	m := a.meta[a.ClientID]
	m.clock++
	m.updated = a.now()
	a.meta[a.ClientID] = m
	return EncodeAwarenessMessage([]AwarenessEntry{{a.ClientID, m.clock, s}})
}

// States returns the known states by client ID.
func (a *Awareness) States() map[uint64]json.RawMessage {
	out := make(map[uint64]json.RawMessage, len(a.states))
	for c, s := range a.states {
		out[c] = s
	}
	return out
}

// ApplyUpdate merges a received awareness update payload and reports which
// clients were added, updated or removed.
func (a *Awareness) ApplyUpdate(payload []byte) (added, updated, removed []uint64, err error) {
	entries, err := DecodeAwarenessUpdate(payload)
	if err != nil {
		return nil, nil, nil, err
	}
	now := a.now()
	for _, en := range entries {
		m, known := a.meta[en.ClientID]
		isNull := string(en.State) == "null"
		_, hadState := a.states[en.ClientID]
		if known && !(m.clock < en.Clock || (m.clock == en.Clock && isNull && hadState)) {
			continue
		}
		if en.ClientID == a.ClientID && isNull && hadState {
			// Someone removed us: re-assert our state with a higher clock, as Yjs does.
			m.clock = en.Clock + 1
			m.updated = now
			a.meta[en.ClientID] = m
			continue
		}
		a.meta[en.ClientID] = awarenessMeta{en.Clock, now}
		switch {
		case isNull:
			if hadState {
				delete(a.states, en.ClientID)
				removed = append(removed, en.ClientID)
			}
		case !hadState:
			a.states[en.ClientID] = en.State
			added = append(added, en.ClientID)
		default:
			if !bytes.Equal(a.states[en.ClientID], en.State) {
				updated = append(updated, en.ClientID)
			}
			a.states[en.ClientID] = en.State
		}
	}
	return added, updated, removed, nil
}

// RemoveOutdated drops remote states not renewed within Timeout and returns
// their client IDs.
func (a *Awareness) RemoveOutdated() []uint64 {
	var out []uint64
	now := a.now()
	for c, m := range a.meta {
		if c == a.ClientID {
			continue
		}
		if _, ok := a.states[c]; ok && now.Sub(m.updated) >= Timeout {
			delete(a.states, c)
			out = append(out, c)
		}
	}
	return out
}
