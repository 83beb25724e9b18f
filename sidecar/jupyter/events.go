package jupyter

import (
	"context"
	"encoding/json"
	"time"

	"github.com/rs/zerolog"
)

// The Jupyter server's event schemas the sidecar follows: Contents API
// actions (create, save, rename, copy, delete, upload, get), kernel
// actions (start, interrupt, restart, shutdown) and jupyter-collaboration's
// room actions (initialize, load, save, overwrite, clean).
const (
	contentsSchema      = "https://events.jupyter.org/jupyter_server/contents_service/v1"
	kernelActionsSchema = "https://events.jupyter.org/jupyter_server/kernel_actions/v1"
	collaborationSchema = "https://schema.jupyter.org/jupyter_collaboration/session/v1"
)

// ContentsEvent is one Contents API action the server reports on its event
// bus: a notebook created, renamed or deleted by a person in JupyterLab or
// by any other client. (Changes made on the file system directly, not
// through the API, are not reported.)
type ContentsEvent struct {
	Action     string `json:"action"`
	Path       string `json:"path"`
	SourcePath string `json:"source_path"` // rename and copy: where from
}

// KernelEvent is one kernel action the server reports, asked for by anyone
// (a person restarting the kernel in JupyterLab, say).
type KernelEvent struct {
	KernelID string `json:"kernel_id"`
	Action   string `json:"action"` // start, interrupt, restart, shutdown
	Status   string `json:"status"` // success or error
}

// CollaborationEvent is one action in a jupyter-collaboration room. Action
// "overwrite" is the room replaced with the file's content, which changed
// on disk (announced as the reload starts, or right after a save found the
// change and reloaded instead of writing).
type CollaborationEvent struct {
	Action string `json:"action"`
	Path   string `json:"path"`
	Level  string `json:"level"` // INFO, ERROR...
	Msg    string `json:"msg"`
}

// EventHandlers are told of the server's events; a nil one is skipped.
type EventHandlers struct {
	// Contents gets every Contents API action but reads.
	Contents      func(ContentsEvent)
	Kernel        func(KernelEvent)
	Collaboration func(CollaborationEvent)
}

// WatchEvents follows the server's event bus (/api/events/subscribe) until
// ctx ends, connecting again whenever the connection drops.
func (c *Client) WatchEvents(ctx context.Context, log zerolog.Logger, h EventHandlers) {
	backoff := time.Second
	for ctx.Err() == nil {
		if err := c.watchEvents(ctx, h); err != nil && ctx.Err() == nil {
			log.Debug().Err(err).Msg("event bus")
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff): // the server may be busy or restarting
			backoff = min(2*backoff, time.Minute)
		}
	}
}

func (c *Client) watchEvents(ctx context.Context, h EventHandlers) error {
	ws, err := c.DialWebsocket(ctx, "api/events/subscribe", nil, nil)
	if err != nil {
		return err
	}
	defer ws.Close()
	stop := context.AfterFunc(ctx, func() { ws.Close() })
	defer stop()
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			return err
		}
		var ev struct {
			SchemaID string `json:"schema_id"`
		}
		if json.Unmarshal(data, &ev) != nil {
			continue
		}
		switch {
		case ev.SchemaID == contentsSchema && h.Contents != nil:
			var ce ContentsEvent
			if json.Unmarshal(data, &ce) == nil && ce.Action != "get" {
				h.Contents(ce)
			}
		case ev.SchemaID == collaborationSchema && h.Collaboration != nil:
			var ce CollaborationEvent
			if json.Unmarshal(data, &ce) == nil && ce.Path != "" {
				h.Collaboration(ce)
			}
		case ev.SchemaID == kernelActionsSchema && h.Kernel != nil:
			var ke KernelEvent
			if json.Unmarshal(data, &ke) == nil && ke.KernelID != "" {
				h.Kernel(ke)
			}
		}
	}
}
