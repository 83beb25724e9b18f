package jupyter

import (
	"context"
	"encoding/json"
	"time"

	"github.com/rs/zerolog"
)

// contentsSchema is the Jupyter server's event schema for Contents API
// actions (create, save, rename, copy, delete, upload, get).
const contentsSchema = "https://events.jupyter.org/jupyter_server/contents_service/v1"

// ContentsEvent is one Contents API action the server reports on its event
// bus: a notebook created, renamed or deleted by a person in JupyterLab or
// by any other client. (Changes made on the file system directly, not
// through the API, are not reported.)
type ContentsEvent struct {
	Action     string `json:"action"`
	Path       string `json:"path"`
	SourcePath string `json:"source_path"` // rename and copy: where from
}

// WatchContents follows the server's event bus (/api/events/subscribe) and
// calls on for every Contents API action but reads, until ctx ends,
// connecting again whenever the connection drops.
func (c *Client) WatchContents(ctx context.Context, log zerolog.Logger, on func(ContentsEvent)) {
	backoff := time.Second
	for ctx.Err() == nil {
		if err := c.watchContents(ctx, on); err != nil && ctx.Err() == nil {
			log.Debug().Err(err).Msg("event bus")
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff): // the server may be busy or restarting
			backoff = min(2*backoff, time.Minute)
		}
	}
}

func (c *Client) watchContents(ctx context.Context, on func(ContentsEvent)) error {
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
			ContentsEvent
		}
		if json.Unmarshal(data, &ev) != nil || ev.SchemaID != contentsSchema || ev.Action == "get" {
			continue
		}
		on(ev.ContentsEvent)
	}
}
