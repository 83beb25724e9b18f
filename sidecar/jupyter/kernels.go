package jupyter

import (
	"context"
	"net/http"
	"time"
)

// Kernel is a running kernel as the Kernels API describes it.
type Kernel struct {
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	ExecutionState string    `json:"execution_state"`
	LastActivity   time.Time `json:"last_activity"`
	Connections    int       `json:"connections"`
}

// Session binds a notebook path to a kernel (Sessions API).
type Session struct {
	ID     string `json:"id"`
	Path   string `json:"path"`
	Name   string `json:"name"`
	Type   string `json:"type"`
	Kernel Kernel `json:"kernel"`
}

// EnsureSession returns the session of the notebook at path, creating one
// with kernelspec kernelName if there is none. The server returns an
// existing session for the same path unchanged, so this attaches to the
// kernel a person already uses in JupyterLab.
func (c *Client) EnsureSession(ctx context.Context, path, kernelName string) (*Session, error) {
	body := map[string]any{
		"path":   path,
		"type":   "notebook",
		"name":   path,
		"kernel": map[string]string{"name": kernelName},
	}
	var s Session
	if err := c.do(ctx, http.MethodPost, "api/sessions", nil, body, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Sessions lists the server's sessions.
func (c *Client) Sessions(ctx context.Context) ([]Session, error) {
	var s []Session
	err := c.do(ctx, http.MethodGet, "api/sessions", nil, nil, &s)
	return s, err
}

// Kernels lists the running kernels.
func (c *Client) Kernels(ctx context.Context) ([]Kernel, error) {
	var k []Kernel
	err := c.do(ctx, http.MethodGet, "api/kernels", nil, nil, &k)
	return k, err
}

// GetKernel describes one kernel.
func (c *Client) GetKernel(ctx context.Context, id string) (*Kernel, error) {
	var k Kernel
	if err := c.do(ctx, http.MethodGet, "api/kernels/"+escapePath(id), nil, nil, &k); err != nil {
		return nil, err
	}
	return &k, nil
}

// InterruptKernel interrupts a kernel (signal or message mode, as the
// kernelspec says).
func (c *Client) InterruptKernel(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, "api/kernels/"+escapePath(id)+"/interrupt", nil, struct{}{}, nil)
}

// RestartKernel restarts a kernel; its state is lost.
func (c *Client) RestartKernel(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodPost, "api/kernels/"+escapePath(id)+"/restart", nil, struct{}{}, nil)
}
