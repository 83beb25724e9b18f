package jupyter

import (
	"context"
	"net/http"
)

// CollaborationSession is jupyter-collaboration's handle on a document:
// the file id names the room, the session id ties the room's content to
// this server process.
type CollaborationSession struct {
	Format    string `json:"format"`
	Type      string `json:"type"`
	FileID    string `json:"fileId"`
	SessionID string `json:"sessionId"`
}

// CollaborationSession asks for the session of the notebook at path
// (indexing the file if needed), as JupyterLab does before joining a room.
func (c *Client) CollaborationSession(ctx context.Context, path string) (*CollaborationSession, error) {
	var s CollaborationSession
	body := map[string]string{"format": "json", "type": "notebook"}
	if err := c.do(ctx, http.MethodPut, "api/collaboration/session/"+escapePath(path), nil, body, &s); err != nil {
		return nil, err
	}
	return &s, nil
}
