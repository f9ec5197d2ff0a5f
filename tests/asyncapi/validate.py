"""Checks recorded WebSocket messages against the AsyncAPI document (crates/vuoro-protocol/asyncapi.json).

Usage: validate.py ASYNCAPI_JSON RECORD_DIR   (with jsonschema_rs, which tests/schemathesis/.venv has)

RECORD_DIR holds the records the daemons of the test suites wrote (`VUORO_RECORD_WS`: one JSON message a
line). A snapshot or event goes by its topic's kind to that topic's channel; any other message to the
socket channel's messages the daemon sends. Every message must match one of them; one that matches none
fails the run, printed with the errors of the message nearest to it. No record, or an empty one, fails too.
"""

import collections
import json
import pathlib
import sys

import jsonschema_rs


def message_refs(doc, channel):
    """The components/messages names the daemon sends on `channel` (its `send` operations)."""
    names = []
    for op in doc["operations"].values():
        if op["action"] != "send" or op["channel"]["$ref"] != f"#/channels/{channel}":
            continue
        for m in op["messages"]:
            ref = doc["channels"][channel]["messages"][m["$ref"].rsplit("/", 1)[1]]["$ref"]
            names.append(ref.rsplit("/", 1)[1])
    return names


def tag_mismatch(errors, tag):
    """Whether the errors say the message's `tag` (`type`, `kind`) is not this schema's."""
    return any(list(e.instance_path)[-1:] == [tag] and e.kind.name in ("const", "enum") for e in errors)


def explain(error):
    """(path, message) of the errors that tell why: inside a `oneOf` (an event by kind), those of the
    branch whose `kind` the message has, else of the branch with the fewest errors."""
    context = getattr(error.kind, "context", None)
    if error.kind.name == "oneOf" and context:
        branch = min(context, key=lambda b: (tag_mismatch(b, "kind"), len(b)))
        return [pe for sub in branch for pe in explain(sub)]
    return [("/".join(str(p) for p in error.instance_path), error.message)]


def main():
    doc_path, record_dir = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    doc = json.loads(doc_path.read_text())
    validators = {}
    for name, m in doc["components"]["messages"].items():
        # The payload's schema with the document's components beside it, for its references.
        schema = {"allOf": [m["payload"]], "components": doc["components"]}
        validators[name] = jsonschema_rs.Draft7Validator(schema, validate_formats=True)
    by_kind = {}
    for name, ch in doc["channels"].items():
        if name != "socket":
            by_kind[ch["address"].split(":", 1)[0]] = message_refs(doc, name)
    control = message_refs(doc, "socket")

    files = sorted(record_dir.glob("*.jsonl")) if record_dir.is_dir() else []
    seen = collections.Counter()
    failures = 0
    total = 0
    for f in files:
        for n, line in enumerate(f.read_text().splitlines(), 1):
            if not line.strip():
                continue
            total += 1
            where = f"{f.name}:{n}"
            try:
                msg = json.loads(line)
            except ValueError as e:
                print(f"{where}: not JSON ({e}): {line[:300]}")
                failures += 1
                continue
            candidates = control
            if isinstance(msg, dict) and msg.get("type") in ("snapshot", "event") and isinstance(msg.get("topic"), str):
                candidates = by_kind.get(msg["topic"].split(":", 1)[0], [])
            results = [(name, list(validators[name].iter_errors(msg))) for name in candidates]
            ok = [name for name, errs in results if not errs]
            if ok:
                seen[ok[0]] += 1
                continue
            failures += 1
            if failures > 20:
                continue
            print(f"\n{where}: matches no message of the document:\n  {line[:2000]}")
            if not results:
                print(f"  (no channel for topic kind of {msg.get('topic')!r})")
                continue
            name, errs = min(results, key=lambda r: (tag_mismatch(r[1], "type"), len(r[1])))
            print(f"  nearest: {name}")
            for e in errs[:5]:
                for path, text in explain(e):
                    print(f"    at /{path}: {text[:500]}")
    sent = set(control).union(*by_kind.values())
    unseen = sorted(sent - set(seen))
    print(f"\n{total} messages in {len(files)} records checked against {doc_path}: {failures} match no message.")
    print("by message: " + ", ".join(f"{k} {v}" for k, v in sorted(seen.items())))
    if unseen:
        print("documented messages the daemon did not send in these runs: " + ", ".join(unseen))
    if total == 0:
        print(f"no messages recorded under {record_dir}: the suites' daemons recorded nothing")
        return 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
