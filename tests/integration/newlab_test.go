package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
)

// An agent reading several notebooks at once on a lab that never had a
// collaboration room opens their rooms together. jupyter-collaboration's
// rooms each create the update store they share when it is missing, so
// without the proxy extension creating it at start-up they raced: all but
// one failed to create it, and their writes to it failed from then on.
func TestNotebooksOpenedAtOnceOnANewLab(t *testing.T) {
	lab, cs := ownLab(t, "new-lab")
	const notebooks = 8
	for i := range notebooks {
		nb := fmt.Sprintf(`{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [`+
			`{"cell_type": "code", "id": "c%d", "source": "x = %d", "metadata": {}, "outputs": [], "execution_count": null}]}`, i, i)
		if err := os.WriteFile(filepath.Join(lab.Root, fmt.Sprintf("n%d.ipynb", i)), []byte(nb), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for i := range notebooks {
		wg.Go(func() {
			path := fmt.Sprintf("n%d.ipynb", i)
			res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "insert_cell", Arguments: map[string]any{"path": path, "source": "y = 1"}})
			if err != nil || res.IsError {
				t.Errorf("insert_cell %s: %v %s", path, err, labtest.ResultText(res))
			}
		})
	}
	wg.Wait()
	log, err := os.ReadFile(lab.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(log), "\n") {
		if strings.Contains(line, "sqlite3.") || strings.Contains(line, "SQLite exception") {
			t.Errorf("the collaboration store failed: %s", line)
		}
	}
}
