"""Runs a `lowbit ... --json` command and checks that it printed one JSON object with the fields
the command promises, none of them null (nlohmann::json writes a NaN or infinity as null) (argv:
the field paths, dot-separated, list items by index, then "--", then the command)."""
import json
import subprocess
import sys

separator = sys.argv.index("--")
fields, command = sys.argv[1:separator], sys.argv[separator + 1:]
result = subprocess.run(command, capture_output=True, text=True, check=True)
document = json.loads(result.stdout)
for path in fields:
    value = document
    for key in path.split("."):
        value = value[int(key)] if isinstance(value, list) else value[key]
    if value is None:
        sys.exit(f"{path} is null: not a finite number")
    print(f"{path} = {json.dumps(value)[:60]}")
