package jupyter

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/rs/zerolog"
)

// fileIDAnswer is jupyter_server_fileid's answer to both lookups.
type fileIDAnswer struct {
	ID   string `json:"id"`
	Path string `json:"path"`
}

// FileID is the server's id of the file at path (jupyter_server_fileid: it
// stays the same when the file is renamed through the server). "" if the
// file has none yet or the server has no file ids.
func (c *Client) FileID(ctx context.Context, path string) (string, error) {
	var a fileIDAnswer
	err := c.do(ctx, http.MethodGet, "api/fileid/id", url.Values{"path": {path}}, nil, &a)
	if IsNotFound(err) {
		return "", nil
	}
	return a.ID, err
}

// FilePath is where the file with the server's id is now; "" if no file
// has that id (it was deleted) or the server has no file ids.
func (c *Client) FilePath(ctx context.Context, id string) (string, error) {
	var a fileIDAnswer
	err := c.do(ctx, http.MethodGet, "api/fileid/path", url.Values{"id": {id}}, nil, &a)
	if IsNotFound(err) {
		return "", nil
	}
	return a.Path, err
}

// FileIDs answers the lookups without a context or error, as the record of
// changes asks them: a failure is logged and answers "", which leaves a
// record following only the renames the sidecar sees itself.
type FileIDs struct {
	Client *Client
	Log    zerolog.Logger
}

const fileIDTimeout = 5 * time.Second

func (f FileIDs) ID(path string) string {
	ctx, cancel := context.WithTimeout(context.Background(), fileIDTimeout)
	defer cancel()
	id, err := f.Client.FileID(ctx, path)
	if err != nil {
		f.Log.Warn().Err(err).Str("path", path).Msg("ask the file id of a notebook")
	}
	return id
}

func (f FileIDs) Path(id string) string {
	ctx, cancel := context.WithTimeout(context.Background(), fileIDTimeout)
	defer cancel()
	path, err := f.Client.FilePath(ctx, id)
	if err != nil {
		f.Log.Warn().Err(err).Str("file_id", id).Msg("ask where a notebook is now")
	}
	return path
}
