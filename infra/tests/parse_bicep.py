"""Parses every .bicep file given with tree-sitter-bicep; prints one JSON line per file with the
error and missing nodes found (none means the file parses cleanly)."""
import json
import sys

import tree_sitter_bicep
from tree_sitter import Language, Parser

parser = Parser(Language(tree_sitter_bicep.language()))


def problems(node, source):
    found = []
    stack = [node]
    while stack:
        n = stack.pop()
        if n.type == "ERROR" or n.is_missing:
            line = n.start_point[0] + 1
            text = source[n.start_byte:n.end_byte].decode(errors="replace")[:60]
            found.append(f"line {line}: {'missing ' + n.type if n.is_missing else 'error'} near {text!r}")
        stack.extend(n.children)
    return found


for path in sys.argv[1:]:
    with open(path, "rb") as f:
        source = f.read()
    tree = parser.parse(source)
    print(json.dumps({"file": path, "problems": problems(tree.root_node, source)}))
