#!/usr/bin/env python3
"""Fails if a target marked `test = false` in its manifest has unit tests: they would never run
(and clippy, which runs inside the test build, would never see them)."""
import pathlib
import re
import sys
import tomllib

TEST_ATTR = re.compile(r"#\[(cfg\(test\)|test\]|tokio::test)")
root = pathlib.Path(__file__).resolve().parent.parent
found = []
for manifest in sorted(root.glob("*/Cargo.toml")):
    crate = manifest.parent
    src = crate / "src"
    spec = tomllib.loads(manifest.read_text())
    files = []
    if spec.get("lib", {}).get("test") is False:
        files += [f for f in src.rglob("*.rs") if f.relative_to(src).parts[0] != "bin"]
    for binary in spec.get("bin", []):
        if binary.get("test") is False:
            path = crate / binary.get("path", "src/main.rs")
            # A binary rooted at src/main.rs owns the modules beside it.
            files += list(src.glob("*.rs")) if path == src / "main.rs" else [path]
    found += [f for f in sorted(set(files)) if TEST_ATTR.search(f.read_text())]
for f in found:
    print(f"{f.relative_to(root)}: has unit tests, but its target says `test = false`", file=sys.stderr)
sys.exit(1 if found else 0)
