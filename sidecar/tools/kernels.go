package tools

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/jupyter"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/kernel"
)

type ListKernelsIn struct{}

type RunningKernel struct {
	ID             string   `json:"id"`
	Name           string   `json:"name"`
	ExecutionState string   `json:"execution_state" jsonschema:"idle, busy, starting, restarting or dead"`
	Notebooks      []string `json:"notebooks,omitempty" jsonschema:"notebooks using this kernel"`
	LastActivity   string   `json:"last_activity,omitempty"`
}

type KernelSpecOut struct {
	Name        string `json:"name"`
	DisplayName string `json:"display_name"`
	Language    string `json:"language"`
}

type ListKernelsOut struct {
	Running       []RunningKernel `json:"running"`
	Installed     []KernelSpecOut `json:"installed" jsonschema:"kernelspecs that notebooks can use"`
	DefaultKernel string          `json:"default_kernel"`
}

var listKernelsTool = &mcp.Tool{
	Name:        "list_kernels",
	Title:       "List kernels",
	Description: "List the running kernels (with the notebooks using them and whether they are busy) and the installed kernelspecs.",
	Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true},
}

func (t *Tools) listKernels(ctx context.Context, _ *mcp.CallToolRequest, _ ListKernelsIn) (*mcp.CallToolResult, ListKernelsOut, error) {
	kernels, err := t.Jupyter.Kernels(ctx)
	if err != nil {
		return nil, ListKernelsOut{}, err
	}
	sessions, err := t.Jupyter.Sessions(ctx)
	if err != nil {
		return nil, ListKernelsOut{}, err
	}
	specs, def, err := t.Jupyter.KernelSpecs(ctx)
	if err != nil {
		return nil, ListKernelsOut{}, err
	}
	out := ListKernelsOut{Running: []RunningKernel{}, Installed: []KernelSpecOut{}, DefaultKernel: def}
	for _, k := range kernels {
		rk := RunningKernel{ID: k.ID, Name: k.Name, ExecutionState: k.ExecutionState, LastActivity: modTime(k.LastActivity)}
		for _, s := range sessions {
			if s.Kernel.ID == k.ID {
				rk.Notebooks = append(rk.Notebooks, s.Path)
			}
		}
		out.Running = append(out.Running, rk)
	}
	for _, s := range specs {
		out.Installed = append(out.Installed, KernelSpecOut{Name: s.Name, DisplayName: s.DisplayName, Language: s.Language})
	}
	slices.SortFunc(out.Installed, func(a, b KernelSpecOut) int { return strings.Compare(a.Name, b.Name) })
	return nil, out, nil
}

type KernelOfNotebookIn struct {
	Path string `json:"path,omitempty" jsonschema:"notebook whose kernel to act on; default this session's current notebook"`
}

type KernelActionOut struct {
	KernelID string `json:"kernel_id"`
	Done     string `json:"done"`
}

var interruptKernelTool = &mcp.Tool{
	Name:        "interrupt_kernel",
	Title:       "Interrupt kernel",
	Description: "Interrupt the code running on a notebook's kernel (like the stop button): the running cell raises KeyboardInterrupt; variables are kept.",
	Annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(true), IdempotentHint: true},
}

func (t *Tools) interruptKernel(ctx context.Context, req *mcp.CallToolRequest, in KernelOfNotebookIn) (*mcp.CallToolResult, KernelActionOut, error) {
	k, err := t.runningKernel(ctx, req, in.Path)
	if err != nil {
		return nil, KernelActionOut{}, err
	}
	if err := k.Interrupt(ctx); err != nil {
		return nil, KernelActionOut{}, fmt.Errorf("interrupt kernel %s: %w", k.ID, err)
	}
	return nil, KernelActionOut{KernelID: k.ID, Done: "interrupted"}, nil
}

var restartKernelTool = &mcp.Tool{
	Name:        "restart_kernel",
	Title:       "Restart kernel",
	Description: "Restart a notebook's kernel: all its variables and imports are lost (also for a person using it). Use after the kernel died or hangs.",
	Annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(true)},
}

func (t *Tools) restartKernel(ctx context.Context, req *mcp.CallToolRequest, in KernelOfNotebookIn) (*mcp.CallToolResult, KernelActionOut, error) {
	k, err := t.runningKernel(ctx, req, in.Path)
	if err != nil {
		return nil, KernelActionOut{}, err
	}
	err = k.Restart(ctx)
	for attempt := 0; serverFailed(err) && attempt < 3; attempt++ {
		// A kernel that just died (out of memory, say) is being restarted
		// by Jupyter itself, which fails a second restart meanwhile ("500
		// Exception restarting kernel"): let that settle and ask again.
		if !settled(ctx, k) {
			break
		}
		err = k.Restart(ctx)
	}
	if err != nil {
		return nil, KernelActionOut{}, fmt.Errorf("restart kernel %s: %w", k.ID, err)
	}
	return nil, KernelActionOut{KernelID: k.ID, Done: "restarted"}, nil
}

// serverFailed reports a 5xx answer from Jupyter.
func serverFailed(err error) bool {
	var apiErr *jupyter.APIError
	return errors.As(err, &apiErr) && apiErr.Status >= 500
}

// settled waits (up to 15 s) until the kernel is idle or dead rather than
// starting or restarting, then a moment more, and reports whether asking
// again makes sense.
func settled(ctx context.Context, k *kernel.Kernel) bool {
	deadline := time.Now().Add(15 * time.Second)
	for {
		state, err := k.State(ctx)
		if err != nil {
			return false
		}
		if state == "idle" || state == "dead" || time.Now().After(deadline) {
			break
		}
		select {
		case <-time.After(200 * time.Millisecond): // polling the server's state
		case <-ctx.Done():
			return false
		}
	}
	select {
	case <-time.After(time.Second): // Jupyter's restarter may still be finishing
		return true
	case <-ctx.Done():
		return false
	}
}

// runningKernel finds the kernel a notebook's session uses, without
// starting one.
func (t *Tools) runningKernel(ctx context.Context, req *mcp.CallToolRequest, path string) (*kernel.Kernel, error) {
	p, err := t.notebookPath(req, path)
	if err != nil {
		return nil, err
	}
	sessions, err := t.Jupyter.Sessions(ctx)
	if err != nil {
		return nil, err
	}
	for _, s := range sessions {
		if s.Path == p {
			return t.Kernels.ForNotebook(ctx, p, s.Kernel.Name)
		}
	}
	return nil, fmt.Errorf("no kernel runs for %q: it starts with the first execution", p)
}
