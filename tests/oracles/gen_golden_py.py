"""Generates notebook golden vectors with jupyter_ydoc (pinned in
requirements.txt), the library jupyter-collaboration's server uses.

    .venv/bin/python tests/oracles/gen_golden_py.py sidecar/yjs/testdata/notebook-py

Same layout as gen_golden.mjs: NN-name.update.hex is the update of one step
(the diff from the state before the step), NN-name.json the roots
"state", "meta" and "cells" after it (Yjs toJSON shape, keys sorted).
"""

import json
import os
import sys

from pycrdt import Array, Doc, Map, Text
from jupyter_ydoc import YNotebook


def main(out):
    os.makedirs(out, exist_ok=True)
    doc = Doc(client_id=4343)  # deterministic client ID
    nb = YNotebook(doc)
    n = 0

    def roots_json():
        return {
            "state": doc.get("state", type=Map).to_py(),
            "meta": doc.get("meta", type=Map).to_py(),
            "cells": doc.get("cells", type=Array).to_py(),
        }

    def step(name, fn):
        nonlocal n
        before = doc.get_state()
        fn()
        n += 1
        base = os.path.join(out, "%02d-%s" % (n, name))
        with open(base + ".update.hex", "w") as f:
            f.write(doc.get_update(before).hex() + "\n")
        with open(base + ".json", "w") as f:
            json.dump(roots_json(), f, indent=1, sort_keys=True, ensure_ascii=False)
            f.write("\n")

    step(
        "create-notebook-2-cells",
        lambda: nb.set(
            {
                "nbformat": 4,
                "nbformat_minor": 5,
                "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
                "cells": [
                    {"id": "cell-a", "cell_type": "code", "source": "print('héllo')", "metadata": {}, "outputs": [], "execution_count": None},
                    {"id": "cell-b", "cell_type": "markdown", "source": "# Title", "metadata": {}},
                ],
            }
        ),
    )
    cells = doc.get("cells", type=Array)
    step(
        "insert-cell",
        lambda: cells.insert(
            1,
            nb.create_ycell({"id": "cell-c", "cell_type": "code", "source": "x = 1", "metadata": {}, "outputs": [], "execution_count": None}),
        ),
    )

    def edit_source():
        src = cells[1]["source"]
        src.insert(len(src), "\nx")

    step("edit-source", edit_source)

    def set_count():
        cells[1]["execution_count"] = 3

    step("set-execution-count", set_count)

    def add_stream():
        cells[0]["outputs"].append(Map({"output_type": "stream", "name": "stdout", "text": Text("héllo\n")}))

    step("add-stream-output", add_stream)

    def append_stream():
        t = cells[0]["outputs"][0]["text"]
        t.insert(len(t), "more\n")

    step("append-stream-text", append_stream)
    step("delete-cell", lambda: cells.__delitem__(2))
    with open(os.path.join(out, "full.update.hex"), "w") as f:
        f.write(doc.get_update().hex() + "\n")
    with open(os.path.join(out, "full.json"), "w") as f:
        json.dump(roots_json(), f, indent=1, sort_keys=True, ensure_ascii=False)
        f.write("\n")
    print("wrote", n, "steps to", out)


if __name__ == "__main__":
    main(sys.argv[1])
