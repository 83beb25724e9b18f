package yjs_test

import (
	"encoding/json"
	"fmt"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/yjs"
)

// A peer adds a notebook cell in one transaction; another peer applies the
// resulting update and learns what changed.
func Example() {
	sidecar := yjs.NewDocWithClientID(1)
	var update []byte
	sidecar.OnUpdate(func(u []byte, txn *yjs.Transaction) {
		if txn.Local {
			update = u // send as a y-protocols Update message
		}
	})
	cells := sidecar.GetArray("cells")
	_ = cells.Push(yjs.MapPrelim{
		"id": "c1", "cell_type": "code", "execution_count": nil,
		"source": yjs.TextPrelim("print('hi')"), "metadata": yjs.MapPrelim{}, "outputs": yjs.ArrayPrelim{},
	})

	lab := yjs.NewDocWithClientID(2)
	lab.OnAfterTransaction(func(txn *yjs.Transaction) {
		for _, c := range txn.Changes() {
			fmt.Println("changed:", c.Path, "list:", c.List)
		}
	})
	if err := lab.ApplyUpdate(update, "websocket"); err != nil {
		panic(err)
	}
	out, _ := json.Marshal(lab.GetArray("cells").ToJSON())
	fmt.Println(string(out))
	// Output:
	// changed: [cells] list: true
	// [{"cell_type":"code","execution_count":null,"id":"c1","metadata":{},"outputs":[],"source":"print('hi')"}]
}
