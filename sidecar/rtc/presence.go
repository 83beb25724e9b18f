package rtc

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/jupyter"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/yjs"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/yjs/yproto"
)

// globalAwareness is the transient room where JupyterLab peers announce
// themselves and the document they work on; the "Online collaborators"
// panel lists it.
const globalAwareness = "JupyterLab:globalAwareness"

// Presence keeps the agent listed among a lab's online collaborators, with
// the notebooks it works on (the rooms it is in) and the one it last used.
type Presence struct {
	Jupyter *jupyter.Client
	Log     zerolog.Logger

	mu        sync.Mutex
	current   string
	documents []string // in the order the agent joined them, as JupyterLab lists its own
	ws        *websocket.Conn
	aw        *yproto.Awareness
	writeMu   sync.Mutex
}

// Working announces that the agent works on the notebook at path.
func (p *Presence) Working(path string) {
	p.mu.Lock()
	listed := slices.Contains(p.documents, path)
	if p.current == path && listed {
		p.mu.Unlock()
		return
	}
	p.current = path
	if !listed {
		p.documents = append(p.documents, path)
	}
	p.mu.Unlock()
	p.announce()
}

// Left announces that the agent no longer works on the notebook at path
// (it left the room); the last one it still works on becomes current.
func (p *Presence) Left(path string) {
	p.mu.Lock()
	i := slices.Index(p.documents, path)
	if i < 0 {
		p.mu.Unlock()
		return
	}
	p.documents = slices.Delete(p.documents, i, i+1)
	if p.current == path {
		p.current = ""
		if n := len(p.documents); n > 0 {
			p.current = p.documents[n-1]
		}
	}
	p.mu.Unlock()
	p.announce()
}

// state is the agent's entry as jupyter-collaboration-ui's collaborators
// panel reads it: documents are the paths it lists (expandable, as for a
// person), current is "factory:path" (the layout restorer's form), whose
// path part marks the one the agent is on.
func (p *Presence) state() map[string]any {
	s := map[string]any{"user": agentState["user"], "documents": append([]string{}, p.documents...)}
	if p.current != "" {
		s["current"] = "notebook:" + p.current
	}
	return s
}

func (p *Presence) announce() {
	p.mu.Lock()
	ws, aw := p.ws, p.aw
	var msg []byte
	if aw != nil {
		msg, _ = aw.SetLocalState(p.state())
	}
	p.mu.Unlock()
	if ws != nil && msg != nil {
		p.write(ws, msg)
	}
}

func (p *Presence) write(ws *websocket.Conn, msg []byte) {
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	_ = ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_ = ws.WriteMessage(websocket.BinaryMessage, msg)
}

// Run stays in the room until ctx ends, reconnecting after failures, and
// leaves it (removing the agent from the list) at the end.
func (p *Presence) Run(ctx context.Context) {
	backoff := time.Second
	for ctx.Err() == nil {
		if err := p.session(ctx); err != nil && ctx.Err() == nil {
			p.Log.Debug().Err(err).Msg("global awareness room")
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff): // the server may be busy or restarting
			backoff = min(2*backoff, time.Minute)
		}
	}
}

// session is one connection: sync the (empty) document, announce, renew
// every awarenessRenew, answer the server until the connection ends.
func (p *Presence) session(ctx context.Context) error {
	ws, err := p.Jupyter.DialWebsocket(ctx, "api/collaboration/room/"+globalAwareness, nil, nil)
	if err != nil {
		return err
	}
	defer ws.Close()
	doc := yjs.NewDoc()
	p.mu.Lock()
	p.ws, p.aw = ws, yproto.NewAwareness(doc.ClientID())
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		bye, _ := p.aw.SetLocalState(nil)
		p.ws, p.aw = nil, nil
		p.mu.Unlock()
		p.write(ws, bye)
	}()
	p.write(ws, yproto.SyncStep1For(doc))
	p.announce()

	done := make(chan error, 1)
	go func() {
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				done <- err
				return
			}
			if m, err := yproto.Decode(data); err == nil && m.Type == yproto.MessageSync {
				if reply, _ := yproto.HandleSync(doc, m, nil); reply != nil {
					p.write(ws, reply)
				}
			}
		}
	}()
	renew := time.NewTicker(awarenessRenew)
	defer renew.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-done:
			return err
		case <-renew.C:
			p.mu.Lock()
			msg := p.aw.Renew()
			p.mu.Unlock()
			p.write(ws, msg)
		}
	}
}
