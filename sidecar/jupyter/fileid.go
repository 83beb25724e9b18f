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
	a, err := c.fileIDLookup(ctx, "api/fileid/id", url.Values{"path": {path}})
	return a.ID, err
}

// FilePath is where the file with the server's id is now; "" if no file
// has that id (it was deleted) or the server has no file ids.
func (c *Client) FilePath(ctx context.Context, id string) (string, error) {
	a, err := c.fileIDLookup(ctx, "api/fileid/path", url.Values{"id": {id}})
	return a.Path, err
}

// fileIDLookup asks one of the two lookups; not found is no answer.
func (c *Client) fileIDLookup(ctx context.Context, apiPath string, q url.Values) (fileIDAnswer, error) {
	var a fileIDAnswer
	err := c.do(ctx, http.MethodGet, apiPath, q, nil, &a)
	if IsNotFound(err) {
		return fileIDAnswer{}, nil
	}
	return a, err
}

// FileIDs answers the lookups as the record of changes asks them: within
// a bounded time, a failure logged (the record then stays as it is).
type FileIDs struct {
	Client *Client
	Log    zerolog.Logger
}

func (f FileIDs) ID(path string) (string, error) {
	return f.ask(f.Client.FileID, path, "path", "ask the file id of a notebook")
}

func (f FileIDs) Path(id string) (string, error) {
	return f.ask(f.Client.FilePath, id, "file_id", "ask where a notebook is now")
}

func (f FileIDs) ask(lookup func(context.Context, string) (string, error), arg, key, what string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v, err := lookup(ctx, arg)
	if err != nil {
		f.Log.Warn().Err(err).Str(key, arg).Msg(what)
	}
	return v, err
}
