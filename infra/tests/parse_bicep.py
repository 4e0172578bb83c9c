"""Parses every .bicep file given with tree-sitter-bicep and prints one JSON line per file.

Without options: the error and missing nodes found (none means the file parses cleanly).
With --model: the file's declarations as data, for the infra tests to assert on:
  params    {name: {"type", "decorators", and "default" when it has one}}
  vars      {name: value}
  resources [{"symbol", "type", "api", "existing", "decorators", "body"}]
  modules   [{"symbol", "path", "decorators", "body"}]
  outputs   {name: {"type", "value"}}
A value is a JSON object, array, string (a literal, escapes resolved), number, boolean or null;
a condition is {"if": value, "then": value, "else": value}, a loop {"for": its header, "body":
value}; anything else (a reference, a call, an interpolated string, an operator) is {"expr": its
source text, each run of white space and each comment outside strings made one space}.
"""
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


ESCAPES = {"\\'": "'", "\\\\": "\\", "\\n": "\n", "\\r": "\r", "\\t": "\t", "\\$": "$"}


def named(node):
    return [c for c in node.named_children if c.type != "comment"]


def text(node, source):
    return source[node.start_byte:node.end_byte].decode()


def string(node, source):
    raw = text(node, source)
    if raw.startswith("'''"):
        return raw[3:-3]
    if any(c.type == "interpolation" for c in node.children):
        return {"expr": raw}
    return "".join(
        ESCAPES.get(text(c, source), text(c, source)[1:])
        if c.type == "escape_sequence"
        else text(c, source)
        for c in node.children
        if c.type in ("string_content", "escape_sequence")
    )


def normalized(code):
    """`code` with each run of white space and every `//` comment outside a string made one
    space: the same expression however it is laid out."""
    out, i, quoted = [], 0, False
    while i < len(code):
        c = code[i]
        if quoted:
            out.append(code[i : i + 2] if c == "\\" else c)
            i += 2 if c == "\\" else 1
            quoted = c != "'"
            continue
        if c == "'":
            quoted = True
        elif code.startswith("//", i):
            i = code.find("\n", i) if "\n" in code[i:] else len(code)
            c = " "
        if c.isspace():
            if out and out[-1] != " ":
                out.append(" ")
        else:
            out.append(c)
        i += 1
    return "".join(out).strip()


def value(node, source):
    kind = node.type
    if kind == "object":
        out = {}
        for prop in named(node):
            if prop.type != "object_property":
                continue
            key, val = named(prop)[0], named(prop)[-1]
            name = string(key, source) if key.type == "string" else text(key, source)
            out[name["expr"] if isinstance(name, dict) else name] = value(val, source)
        return out
    if kind == "array":
        # Elements are separated by commas or new lines; the grammar splits some one-line
        # elements (`[resourceGroup().id]`) in two nodes, which are one element here.
        groups, group, last = [], [], None
        for c in node.children[1:-1]:
            if c.type == "," or (last is not None and b"\n" in source[last:c.start_byte]):
                groups, group = groups + ([group] if group else []), []
            if c.type not in (",", "comment"):
                group.append(c)
            last = c.end_byte
        groups += [group] if group else []
        return [
            value(g[0], source)
            if len(g) == 1
            else {"expr": normalized(source[g[0].start_byte:g[-1].end_byte].decode())}
            for g in groups
        ]
    if kind == "string":
        return string(node, source)
    if kind == "boolean":
        return text(node, source) == "true"
    if kind == "number":
        return int(text(node, source))
    if kind == "null":
        return None
    if kind == "ternary_expression":
        condition, then, otherwise = named(node)
        return {"if": value(condition, source), "then": value(then, source), "else": value(otherwise, source)}
    if kind == "parenthesized_expression" and len(named(node)) == 1:
        return value(named(node)[0], source)
    if kind == "for_statement":
        body = named(node)[-1]
        header = text(node, source)[: body.start_byte - node.start_byte]
        return {"for": normalized(header.strip(" \n[").rstrip(": \n")), "body": value(body, source)}
    return {"expr": normalized(text(node, source))}


def model(root, source):
    out = {"params": {}, "vars": {}, "resources": [], "modules": [], "outputs": {}}
    decorators = []
    for node in named(root):
        kind = node.type
        parts = named(node)
        if kind == "decorators":
            decorators = [normalized(text(d, source)) for d in named(node)]
            continue
        if kind == "parameter_declaration":
            param = {"type": text(parts[1], source), "decorators": decorators}
            if len(parts) > 2:
                param["default"] = value(parts[2], source)
            out["params"][text(parts[0], source)] = param
        elif kind == "variable_declaration":
            out["vars"][text(parts[0], source)] = value(parts[-1], source)
        elif kind == "resource_declaration":
            kind_api = string(parts[1], source)
            resource_type, _, api = kind_api.partition("@")
            out["resources"].append({
                "symbol": text(parts[0], source),
                "type": resource_type,
                "api": api,
                "existing": any(c.type == "existing" for c in node.children),
                "decorators": decorators,
                "body": value(parts[-1], source),
            })
        elif kind == "module_declaration":
            out["modules"].append({
                "symbol": text(parts[0], source),
                "path": string(parts[1], source),
                "decorators": decorators,
                "body": value(parts[-1], source),
            })
        elif kind == "output_declaration":
            out["outputs"][text(parts[0], source)] = {
                "type": text(parts[1], source),
                "value": value(parts[-1], source),
            }
        decorators = []
    return out


as_model = sys.argv[1:2] == ["--model"]
for path in sys.argv[2 if as_model else 1:]:
    with open(path, "rb") as f:
        source = f.read()
    tree = parser.parse(source)
    if as_model:
        print(json.dumps({"file": path, **model(tree.root_node, source)}))
    else:
        print(json.dumps({"file": path, "problems": problems(tree.root_node, source)}))
