"""Lines of the top-level Python files by kind: docstrings, comments, blank lines and code.
Run from the repository root: python docs/experiments/line-budget/count.py > docs/experiments/line-budget/count.md"""
import ast
from pathlib import Path

CORE = ("quantizer.py", "vqvae.py", "losses.py", "bert.py", "masking.py", "decoding.py", "tasks.py", "refine.py")


def kinds(path):
    """(lines, docstring, comment, blank, code) line counts of one file."""
    source = path.read_text()
    lines = source.splitlines()
    docstring = set()
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            docstring.update(range(body[0].lineno, body[0].end_lineno + 1))
    comment = sum(1 for i, line in enumerate(lines, 1) if line.strip().startswith("#") and i not in docstring)
    blank = sum(1 for line in lines if not line.strip())
    return len(lines), len(docstring), comment, blank, len(lines) - len(docstring) - comment - blank


def main():
    rows = {path.name: kinds(path) for path in sorted(Path(".").glob("*.py"))}
    print("| file | lines | docstrings | comments | blank | code |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, counts in sorted(rows.items(), key=lambda item: -item[1][0]):
        print(f"| {name}{' (core)' if name in CORE else ''} | " + " | ".join(map(str, counts)) + " |")
    for label, names in (("core method files", CORE), ("all", list(rows))):
        total = [sum(rows[name][i] for name in names) for i in range(5)]
        print(f"| **{label}** | " + " | ".join(f"**{n}**" for n in total) + " |")


if __name__ == "__main__":
    main()
