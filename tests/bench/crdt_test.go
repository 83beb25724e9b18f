package bench

// BenchmarkCRDTVersusYjs compares sidecar/yjs with Yjs on Node (the test
// oracle in tests/oracles) on the same inputs: a ~1 MB and a ~5 MB notebook
// document with image outputs, and 20,000 incremental updates.
//
//	go test -run '^$' -bench CRDT -benchtime 1x ./tests/bench/

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/yjs"
)

const (
	crdtUpdates = 20000 // incremental updates per document
	crdtReps    = 5     // timing repetitions; the median is reported
	crdtSeed    = 20240601
)

const crdtInstallHint = "install the Yjs oracle with `make oracles` (npm ci --prefix tests/oracles)"

// crdtCase is one generated input set, written to dir.
type crdtCase struct {
	name    string
	dir     string
	base    []byte   // full-state update of the notebook
	updates [][]byte // incremental updates, in order
	midSV   []byte   // encoded state vector after half the updates
}

// crdtFigures are the measurements of one implementation on one case.
type crdtFigures struct {
	LoadMs      float64 `json:"loadMs"`
	ApplyMs     float64 `json:"applyMs"`
	DiffMs      float64 `json:"diffMs"`
	DiffBytes   int     `json:"diffBytes"`
	MemLoad     float64 `json:"memLoadBytes"`
	MemUpdated  float64 `json:"memUpdatedBytes"`
	FinalJSON   any     `json:"-"`
	FinalSource string  `json:"-"`
}

func BenchmarkCRDTVersusYjs(b *testing.B) {
	root := crdtRepoRoot(b)
	node := os.Getenv("ORACLE_NODE")
	if node == "" {
		node = "node"
	}
	if _, err := exec.LookPath(node); err != nil {
		b.Fatalf("node (%s) not found: %v; install Node.js, then %s", node, err, crdtInstallHint)
	}
	script := filepath.Join(root, "tests", "oracles", "bench_yjs.mjs")
	if _, err := os.Stat(script); err != nil {
		b.Fatalf("%s is missing", script)
	}
	if _, err := os.Stat(filepath.Join(root, "tests", "oracles", "node_modules", "yjs", "package.json")); err != nil {
		b.Fatalf("tests/oracles/node_modules/yjs is missing; %s", crdtInstallHint)
	}

	tmp := b.TempDir()
	cases := []*crdtCase{
		genCRDTCase(b, "1 MB", filepath.Join(tmp, "1mb"), 1<<20, crdtSeed),
		genCRDTCase(b, "5 MB", filepath.Join(tmp, "5mb"), 5<<20, crdtSeed+1),
	}

	type result struct {
		c      *crdtCase
		gf, nf crdtFigures
	}
	var results []result
	for range b.N {
		results = results[:0]
		for _, c := range cases {
			gf := measureGo(b, c)
			nf := measureNode(b, node, script, c)
			if !reflect.DeepEqual(gf.FinalJSON, nf.FinalJSON) {
				b.Fatalf("%s: final document differs between Go and Yjs (Go %d bytes of JSON, Node %d)", c.name, len(gf.FinalSource), len(nf.FinalSource))
			}
			results = append(results, result{c, gf, nf})
		}
	}
	b.StopTimer()

	var sb strings.Builder
	fmt.Fprintf(&sb, "\nCRDT: sidecar/yjs (Go %s) versus Yjs 13.6 (Node), %d incremental updates, median of %d runs\n\n",
		runtime.Version(), crdtUpdates, crdtReps)
	fmt.Fprintf(&sb, "| %-6s | %-40s | %12s | %12s | %8s |\n", "doc", "operation", "Go", "Yjs (Node)", "Go/Yjs")
	fmt.Fprintf(&sb, "|%s|%s|%s|%s|%s|\n", strings.Repeat("-", 8), strings.Repeat("-", 42), strings.Repeat("-", 14), strings.Repeat("-", 14), strings.Repeat("-", 10))
	slower := []string{}
	for _, r := range results {
		size := r.c.name
		rows := []struct {
			op     string
			g, n   float64
			format func(float64) string
		}{
			{fmt.Sprintf("load (apply %.2f MB full state)", float64(len(r.c.base))/(1<<20)), r.gf.LoadMs, r.nf.LoadMs, fmtMs},
			{fmt.Sprintf("apply %d updates one by one", len(r.c.updates)), r.gf.ApplyMs, r.nf.ApplyMs, fmtMs},
			{fmt.Sprintf("encode diff vs mid SV (%d B)", r.gf.DiffBytes), r.gf.DiffMs, r.nf.DiffMs, fmtMs},
			{"memory after load", r.gf.MemLoad, r.nf.MemLoad, fmtMB},
			{"memory after updates", r.gf.MemUpdated, r.nf.MemUpdated, fmtMB},
		}
		for _, row := range rows {
			ratio := row.g / row.n
			fmt.Fprintf(&sb, "| %-6s | %-40s | %12s | %12s | %7.2fx |\n", size, row.op, row.format(row.g), row.format(row.n), ratio)
			if ratio > 1 {
				slower = append(slower, fmt.Sprintf("%s %s (%.2fx)", size, row.op, ratio))
			}
		}
		if r.gf.DiffBytes != r.nf.DiffBytes {
			fmt.Fprintf(&sb, "| %-6s | %-40s | %12d | %12d | %8s |\n", size, "diff size (bytes)", r.gf.DiffBytes, r.nf.DiffBytes, "")
		}
	}
	sb.WriteString("\nGo/Yjs < 1 means Go is faster or smaller. Final documents: identical (Go and Yjs JSON compared).\n")
	if len(slower) == 0 {
		sb.WriteString("Goal (no slower than Yjs on Node): met.\n")
	} else {
		sb.WriteString("Goal (no slower than Yjs on Node): NOT met for " + strings.Join(slower, "; ") + ".\n")
	}
	fmt.Print(sb.String())

	for _, r := range results {
		tag := strings.ReplaceAll(strings.ToLower(r.c.name), " ", "")
		b.ReportMetric(r.gf.LoadMs, "load-"+tag+"-ms")
		b.ReportMetric(r.gf.ApplyMs, "apply20k-"+tag+"-ms")
		b.ReportMetric(r.gf.DiffMs, "diff-"+tag+"-ms")
		b.ReportMetric(r.gf.MemLoad/(1<<20), "mem-load-"+tag+"-MB")
		b.ReportMetric(r.gf.MemUpdated/(1<<20), "mem-updated-"+tag+"-MB")
	}
}

func fmtMs(v float64) string { return fmt.Sprintf("%.1f ms", v) }
func fmtMB(v float64) string { return fmt.Sprintf("%.1f MB", v/(1<<20)) }

func crdtRepoRoot(b *testing.B) string {
	dir, err := os.Getwd()
	if err != nil {
		b.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			b.Fatal("cannot find the repository root (go.mod)")
		}
		dir = parent
	}
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func msSince(t time.Time) float64 { return float64(time.Since(t).Nanoseconds()) / 1e6 }

// notebookJSON is the document as plain JSON values (numbers as float64), the
// same shape bench_yjs.mjs writes: {"meta": ..., "cells": [...]}.
func notebookJSON(b *testing.B, d *yjs.Doc) (any, string) {
	raw, err := json.Marshal(map[string]any{
		"meta":  d.GetMap("meta").ToJSON(),
		"cells": d.GetArray("cells").ToJSON(),
	})
	if err != nil {
		b.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		b.Fatal(err)
	}
	return v, string(raw)
}

func loadDoc(b *testing.B, update []byte) *yjs.Doc {
	d := yjs.NewDoc()
	if err := d.ApplyUpdate(update, nil); err != nil {
		b.Fatal(err)
	}
	return d
}

func applyAll(b *testing.B, d *yjs.Doc, updates [][]byte) {
	for i, u := range updates {
		if err := d.ApplyUpdate(u, nil); err != nil {
			b.Fatalf("update %d: %v", i, err)
		}
	}
}

func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func measureGo(b *testing.B, c *crdtCase) crdtFigures {
	var f crdtFigures
	var load, apply, diff []float64
	var final *yjs.Doc
	for range crdtReps {
		runtime.GC()
		t := time.Now()
		d := loadDoc(b, c.base)
		load = append(load, msSince(t))

		t = time.Now()
		applyAll(b, d, c.updates)
		apply = append(apply, msSince(t))
		final = d
	}
	if final.HasPending() {
		b.Fatalf("%s: Go doc has pending structs after all updates", c.name)
	}
	for range crdtReps {
		t := time.Now()
		u, err := final.EncodeStateAsUpdateFromEncoded(c.midSV)
		diff = append(diff, msSince(t))
		if err != nil {
			b.Fatal(err)
		}
		f.DiffBytes = len(u)
	}
	f.LoadMs, f.ApplyMs, f.DiffMs = median(load), median(apply), median(diff)
	f.FinalJSON, f.FinalSource = notebookJSON(b, final)

	// The diff must bring a doc at the middle of the sequence to the end.
	u, _ := final.EncodeStateAsUpdateFromEncoded(c.midSV)
	mid := loadDoc(b, c.base)
	applyAll(b, mid, c.updates[:crdtUpdates/2])
	if err := mid.ApplyUpdate(u, nil); err != nil {
		b.Fatal(err)
	}
	if got, _ := notebookJSON(b, mid); !reflect.DeepEqual(got, f.FinalJSON) {
		b.Fatalf("%s: mid-sequence doc + diff differs from the final doc", c.name)
	}
	final, mid = nil, nil

	// Memory: HeapAlloc growth with the doc alive. The updates are copied
	// after the baseline so that anything the doc keeps of them is counted.
	before := heapAlloc()
	d := loadDoc(b, bytes.Clone(c.base))
	f.MemLoad = float64(heapAlloc()) - float64(before)
	for i, u := range c.updates {
		if err := d.ApplyUpdate(bytes.Clone(u), nil); err != nil {
			b.Fatalf("update %d: %v", i, err)
		}
	}
	f.MemUpdated = float64(heapAlloc()) - float64(before)
	runtime.KeepAlive(d)
	return f
}

func measureNode(b *testing.B, node, script string, c *crdtCase) crdtFigures {
	cmd := exec.Command(node, "--expose-gc", script, c.dir, fmt.Sprint(crdtReps))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("%s %s: %v\n%s\n%s", node, script, err, stderr.String(), crdtInstallHint)
	}
	var f crdtFigures
	if err := json.Unmarshal(out, &f); err != nil {
		b.Fatalf("bench_yjs.mjs output: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(filepath.Join(c.dir, "node_final.json"))
	if err != nil {
		b.Fatal(err)
	}
	f.FinalSource = string(raw)
	if err := json.Unmarshal(raw, &f.FinalJSON); err != nil {
		b.Fatal(err)
	}
	return f
}

// ---- input generation ----

var (
	codeLines = []string{
		"import numpy as np", "import pandas as pd", "import matplotlib.pyplot as plt",
		"df = pd.read_csv('data/measurements.csv')", "df.describe()", "x = np.linspace(0, 10, 500)",
		"y = np.sin(x) * np.exp(-x / 5)", "fig, ax = plt.subplots(figsize=(8, 5))",
		"ax.plot(x, y, label='damped')", "ax.legend()", "plt.show()",
		"for epoch in range(10):", "    loss = train_one_epoch(model, loader)",
		"    print(f'epoch {epoch} loss={loss:.4f}')", "def normalise(v):", "    return (v - v.mean()) / v.std()",
		"result = df.groupby('site').agg({'value': ['mean', 'std']})", "# TODO: check the outliers",
	}
	markdownLines = []string{
		"# Analysis of the measurements", "## Loading the data", "We normalise each series before fitting.",
		"The plot below shows the damped oscillation.", "- first point\n- second point", "See **Table 2** for details.",
	}
	typing = "abcdefghijklmnopqrstuvwxyz_ ()=.,:+-*0123456789'\n"
)

// fakePNG returns n bytes of a PNG-looking image (incompressible, like real
// compressed image data) base64-encoded, as nbformat stores image/png.
func fakePNG(r *rand.Rand, n int) string {
	buf := make([]byte, n)
	r.Read(buf)
	copy(buf, "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
	return base64.StdEncoding.EncodeToString(buf)
}

func genSource(r *rand.Rand, lines []string, n int) string {
	var sb strings.Builder
	for i := range n {
		if i > 0 {
			sb.WriteByte('\n')
		}
		sb.WriteString(lines[r.Intn(len(lines))])
	}
	return sb.String()
}

func streamText(r *rand.Rand, lines int) string {
	var sb strings.Builder
	for range lines {
		fmt.Fprintf(&sb, "step %d loss=%.5f acc=%.3f\n", r.Intn(100000), r.Float64(), r.Float64())
	}
	return sb.String()
}

// genCell returns a YNotebook cell and roughly how many bytes it encodes to.
func genCell(r *rand.Rand, n int) (yjs.MapPrelim, int) {
	id := fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", r.Uint32(), r.Intn(1<<16), r.Intn(1<<16), r.Intn(1<<16), r.Int63n(1<<48))
	if r.Intn(5) == 0 {
		src := genSource(r, markdownLines, 2+r.Intn(8))
		return yjs.MapPrelim{
			"id": id, "cell_type": "markdown", "source": yjs.TextPrelim(src),
			"metadata": yjs.MapPrelim{}, "attachments": nil,
		}, len(src) + 120
	}
	src := genSource(r, codeLines, 3+r.Intn(25))
	size := len(src) + 200
	outputs := yjs.ArrayPrelim{}
	if r.Intn(10) < 6 {
		text := streamText(r, 1+r.Intn(20))
		size += len(text) + 60
		outputs = append(outputs, yjs.MapPrelim{"output_type": "stream", "name": "stdout", "text": yjs.TextPrelim(text)})
	}
	if r.Intn(10) < 3 {
		png := fakePNG(r, 10_000+r.Intn(50_000)) // 13-80 KB of base64, a typical matplotlib figure
		size += len(png) + 120
		outputs = append(outputs, yjs.MapPrelim{
			"output_type": "display_data",
			"data":        map[string]any{"image/png": png, "text/plain": "<Figure size 800x500 with 1 Axes>"},
			"metadata":    map[string]any{},
		})
	}
	return yjs.MapPrelim{
		"id": id, "cell_type": "code", "source": yjs.TextPrelim(src), "execution_count": n + 1,
		"metadata": yjs.MapPrelim{"tags": []any{}, "collapsed": false}, "outputs": outputs,
	}, size
}

// genCRDTCase builds a notebook of about target bytes (as an encoded v1
// update) and 20,000 incremental updates made by a second peer, and writes
// base.bin, updates.bin (uint32le length + update, repeated) and midsv.bin
// into dir.
func genCRDTCase(b *testing.B, name, dir string, target int, seed int64) *crdtCase {
	r := rand.New(rand.NewSource(seed))
	server := yjs.NewDocWithClientID(1)
	server.Transact(func(*yjs.Transaction) {
		if err := server.GetMap("meta").Set("metadata", yjs.MapPrelim{
			"kernelspec":    map[string]any{"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
			"language_info": map[string]any{"name": "python", "version": "3.12.3", "mimetype": "text/x-python", "file_extension": ".py"},
		}); err != nil {
			b.Fatal(err)
		}
		_ = server.GetMap("meta").Set("nbformat", 4)
		_ = server.GetMap("meta").Set("nbformat_minor", 5)
		cells := server.GetArray("cells")
		for size, n := 0, 0; size < target; n++ {
			cell, sz := genCell(r, n)
			size += sz
			if err := cells.Push(cell); err != nil {
				b.Fatal(err)
			}
		}
	})
	c := &crdtCase{name: name, dir: dir, base: server.EncodeStateAsUpdate(nil)}

	// The writer: a peer editing the loaded notebook, one update per edit.
	w := yjs.NewDocWithClientID(2)
	if err := w.ApplyUpdate(c.base, nil); err != nil {
		b.Fatal(err)
	}
	w.OnUpdate(func(u []byte, txn *yjs.Transaction) {
		if txn.Local {
			c.updates = append(c.updates, u)
		}
	})
	cells := w.GetArray("cells")
	cellAt := func(i int) *yjs.Map {
		v, ok := cells.Get(i)
		if !ok {
			b.Fatalf("no cell %d", i)
		}
		return v.(*yjs.Map)
	}
	var src *yjs.Text
	cursor := 0
	moveCursor := func() {
		src, _ = cellAt(r.Intn(cells.Len())).GetText("source")
		cursor = r.Intn(src.Len() + 1)
	}
	moveCursor()
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	for len(c.updates) < crdtUpdates {
		before := len(c.updates)
		switch p := r.Intn(1000); {
		case p < 8: // insert a new (nearly empty) cell and start typing in it
			at := r.Intn(cells.Len() + 1)
			must(cells.Insert(at, yjs.MapPrelim{
				"id": fmt.Sprintf("new-%d", len(c.updates)), "cell_type": "code", "source": yjs.TextPrelim("# "),
				"execution_count": nil, "metadata": yjs.MapPrelim{}, "outputs": yjs.ArrayPrelim{},
			}))
			src, _ = cellAt(at).GetText("source")
			cursor = src.Len()
		case p < 12: // delete a cell (never the last few)
			if cells.Len() > 10 {
				must(cells.Delete(r.Intn(cells.Len()), 1))
				moveCursor()
			}
		case p < 150: // a running cell appends to its stream output
			cell := cellAt(r.Intn(cells.Len()))
			outs, ok := cell.GetArray("outputs")
			if !ok {
				continue
			}
			var text *yjs.Text
			for i := range outs.Len() {
				o, _ := outs.Get(i)
				if om, ok := o.(*yjs.Map); ok {
					if t, ok := om.GetText("text"); ok {
						text = t
						break
					}
				}
			}
			if text == nil {
				must(outs.Push(yjs.MapPrelim{"output_type": "stream", "name": "stdout", "text": yjs.TextPrelim(streamText(r, 1))}))
			} else {
				must(text.Append(streamText(r, 1)))
			}
		case p < 170: // jump to another cell or place
			moveCursor()
			continue
		case p < 260: // backspace
			if cursor > 0 {
				must(src.Delete(cursor-1, 1))
				cursor--
			}
		default: // type a character
			must(src.Insert(cursor, string(typing[r.Intn(len(typing))])))
			cursor++
		}
		if len(c.updates) > before && len(c.updates) == crdtUpdates/2 {
			c.midSV = w.EncodeStateVector()
		}
	}
	if len(c.updates) != crdtUpdates {
		b.Fatalf("generated %d updates, want %d", len(c.updates), crdtUpdates)
	}

	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	for _, u := range c.updates {
		buf.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(u))))
		buf.Write(u)
	}
	for file, data := range map[string][]byte{"base.bin": c.base, "updates.bin": buf.Bytes(), "midsv.bin": c.midSV} {
		if err := os.WriteFile(filepath.Join(dir, file), data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return c
}
