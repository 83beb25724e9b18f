"""Differential oracle for sidecar/yjs: pycrdt (yrs) behind a line-based JSON
protocol, the same one as yjs_oracle.mjs. One request per stdin line, one
reply per stdout line.

Documents use three roots: "a" (Array), "m" (Map), "t" (Text).
Requests:
  {"op":"apply","updates":[b64...],"sv":b64?}
      new doc, apply the updates in order; reply {json, sv, state, diff?}.
  {"op":"gen","seed":n,"peers":k,"steps":s}
      seeded random session of k peers editing concurrently with partial
      syncs; reply {updates:[b64...], json, state, sv}. Text is ASCII because
      pycrdt's text indexes are not UTF-16.
  {"op":"notebook","updates":[b64...]}
      apply to a jupyter_ydoc YNotebook; reply {notebook: nb.get()}.
  {"op":"ping"}
Canonical JSON: bytes -> {"$bytes": base64}.
"""

import base64
import json
import random
import sys
import traceback

from pycrdt import Array, Doc, Map, Text


def b64(b):
    return base64.b64encode(bytes(b)).decode()


def canon(v):
    if isinstance(v, (bytes, bytearray)):
        return {"$bytes": b64(v)}
    if isinstance(v, list):
        return [canon(x) for x in v]
    if isinstance(v, dict):
        return {k: canon(x) for k, x in v.items()}
    return v


def roots(doc):
    return doc.get("a", type=Array), doc.get("m", type=Map), doc.get("t", type=Text)


def doc_json(doc):
    a, m, t = roots(doc)
    return canon({"a": a.to_py(), "m": m.to_py(), "t": str(t)})


def apply(req):
    doc = Doc()
    roots(doc)
    for u in req["updates"]:
        doc.apply_update(base64.b64decode(u))
    out = {
        "json": doc_json(doc),
        "sv": b64(doc.get_state()),
        "state": b64(doc.get_update()),
    }
    if req.get("sv") is not None:
        out["diff"] = b64(doc.get_update(base64.b64decode(req["sv"])))
    return out


def gen(req):
    r = random.Random(req["seed"])
    peers = req.get("peers", 3)
    steps = req.get("steps", 60)
    chars = ["a", "b", "c", " ", "\n"]

    def s():
        return "".join(r.choice(chars) for _ in range(1 + r.randrange(4)))

    def any_val(depth=0):
        k = r.randrange(7 if depth > 1 else 9)
        if k == 0:
            return r.randrange(1000) - 500
        if k == 1:
            return r.random() * 100
        if k == 2:
            return s()
        if k == 3:
            return r.random() < 0.5
        if k == 4:
            return None
        if k == 5:
            return 2**40 + r.randrange(1000)
        if k == 6:
            return bytes([r.randrange(256), r.randrange(256)])
        if k == 7:
            return {"x": any_val(depth + 1), "y": s()}
        return [any_val(depth + 1), any_val(depth + 1)]

    def new_type():
        k = r.randrange(3)
        if k == 0:
            return Text(s())
        if k == 1:
            d = {"source": Text(s()), "n": r.randrange(10)}
            if r.random() < 0.5:
                d["outputs"] = Array([any_val()])
            return Map(d)
        return Array([any_val(), any_val()])

    docs, updates = [], []
    for i in range(peers):
        # yrs draws client IDs up to 2^53; exercise large varUints too.
        d = Doc(client_id=1 + r.randrange((1 << 53) - 2 if req["seed"] % 2 else 1 << 30))
        roots(d)
        docs.append(d)

    def collect(doc):
        a, m, t = roots(doc)
        out = [a, m, t]

        def walk(v):
            if isinstance(v, Array):
                out.append(v)
                for x in v:
                    walk(x)
            elif isinstance(v, Map):
                out.append(v)
                for x in v.values():
                    walk(x)
            elif isinstance(v, Text):
                out.append(v)

        for x in a:
            walk(x)
        for x in m.values():
            walk(x)
        return out

    def edit(doc):
        types = collect(doc)
        ty = types[r.randrange(3)] if r.random() < 0.6 else r.choice(types)
        if isinstance(ty, Text):
            n = len(ty)
            if n > 0 and r.random() < 0.35:
                i = r.randrange(n)
                del ty[i : i + 1 + r.randrange(min(4, n - i))]
            else:
                ty.insert(r.randrange(n + 1), s())
        elif isinstance(ty, Array):
            n = len(ty)
            if n > 0 and r.random() < 0.3:
                i = r.randrange(n)
                del ty[i : i + 1 + r.randrange(min(3, n - i))]
            else:
                i = r.randrange(n + 1)
                for _ in range(1 + r.randrange(3)):
                    ty.insert(i, new_type() if r.random() < 0.3 else any_val())
                    i += 1
        else:
            key = "k%d" % r.randrange(5)
            x = r.random()
            if x < 0.2:
                if key in ty:
                    del ty[key]
            elif x < 0.45:
                ty[key] = new_type()
            else:
                ty[key] = any_val()

    def sync(a, b):
        b.apply_update(a.get_update(b.get_state()))

    for _ in range(steps):
        x = r.random()
        if x < 0.2:
            a, b = r.choice(docs), r.choice(docs)
            if a is not b:
                sync(a, b)
        else:
            d = r.choice(docs)
            before = d.get_state()
            with d.transaction():
                for _ in range(1 + (r.randrange(3) if r.random() < 0.2 else 0)):
                    edit(d)
            # The local update of this transaction: everything new since before.
            updates.append(d.get_update(before))
    for a in docs:
        for b in docs:
            if a is not b:
                sync(a, b)
    j = json.dumps(doc_json(docs[0]), sort_keys=True)
    for d in docs:
        if json.dumps(doc_json(d), sort_keys=True) != j:
            raise RuntimeError("oracle peers diverged for seed %d" % req["seed"])
    return {
        "updates": [b64(u) for u in updates],
        "json": doc_json(docs[0]),
        "state": b64(docs[0].get_update()),
        "sv": b64(docs[0].get_state()),
    }


def notebook(req):
    """The notebook as jupyter_ydoc's YNotebook (the server side) reads it."""
    from jupyter_ydoc import YNotebook

    doc = Doc()
    nb = YNotebook(doc)
    for u in req["updates"]:
        doc.apply_update(base64.b64decode(u))
    return {"notebook": canon(nb.get())}


HANDLERS = {"apply": apply, "gen": gen, "notebook": notebook, "ping": lambda req: {"pong": True, "pycrdt": True}}


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            reply = HANDLERS[req["op"]](req)
        except Exception:  # report to the Go side instead of dying
            reply = {"error": traceback.format_exc()}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
