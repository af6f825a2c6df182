"""Print a unified diff that marks only the named top-level definitions of a module (or
methods of its classes, as `Class.method`) as added, for `mutmut run --use-patch-file`:
mutmut then mutates those lines and no others.

    python devtools/scripts/mutation_scope.py deployments/services.py TRANSITIONS _act _transition
    python devtools/scripts/mutation_scope.py planner/engine.py fits Engine._choose_victims
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path


def scoped_lines(source: str, names: set[str]) -> set[int]:
    lines: set[int] = set()
    defined: set[str] = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            found = {node.name}
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            found = {t.id for t in targets if isinstance(t, ast.Name)}
        else:
            continue
        defined |= found
        if found & names:
            lines |= set(range(node.lineno, node.end_lineno + 1))
        if isinstance(node, ast.ClassDef):
            for member in node.body:
                if isinstance(member, ast.FunctionDef):
                    dotted = f"{node.name}.{member.name}"
                    defined.add(dotted)
                    if dotted in names:
                        first = min([member.lineno, *(d.lineno for d in member.decorator_list)])
                        lines |= set(range(first, member.end_lineno + 1))
    if names - defined:
        raise SystemExit(
            f"not defined (top level, or Class.method): {', '.join(sorted(names - defined))}"
        )
    return lines


def patch(path: str, names: set[str]) -> str:
    source = Path(path).read_text()
    text = source.splitlines()
    marked = scoped_lines(source, names)
    kept = [line for number, line in enumerate(text, 1) if number not in marked]
    body = [(" " if n not in marked else "+") + line for n, line in enumerate(text, 1)]
    header = [f"--- a/{path}", f"+++ b/{path}", f"@@ -1,{len(kept)} +1,{len(text)} @@"]
    return "\n".join(header + body) + "\n"


if __name__ == "__main__":
    sys.stdout.write(patch(sys.argv[1], set(sys.argv[2:])))
