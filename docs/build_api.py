"""Build the API reference (``make docs``): pdoc renders fedot's numpydoc docstrings to HTML.

Every warning pdoc raises (an unresolvable name, a docstring it cannot parse, a module that fails to
import) is an error here, so ``make docs`` in CI fails on them; warnings raised by dependencies at
import time (deprecations) are not pdoc's and are left alone.

The lazily imported names of ``fedot.strategies`` (PEP 562 ``__getattr__``) are bound in the package
first, so pdoc finds them as ordinary members.

Usage: ``python docs/build_api.py [OUT_DIR]`` (default ``site/api``).
"""

from __future__ import annotations

import importlib
import sys
import warnings
from pathlib import Path

import pdoc
import pdoc.render

MODULES = ["fedot", "fedot.clients"]


def main(out: Path) -> int:
    """Render every module of fedot to ``out``; return 1 if pdoc warned, else 0."""
    strategies = importlib.import_module("fedot.strategies")
    for name in strategies.__all__:
        setattr(strategies, name, getattr(strategies, name))
    pdoc.render.configure(docformat="numpy", math=True, search=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pdoc.pdoc(*MODULES, output_directory=out)
    own = [w for w in caught if "pdoc" in Path(w.filename).parts]
    for w in own:
        sys.stderr.write(f"error: pdoc: {w.message} ({w.filename}:{w.lineno})\n")
    pages = len(list(out.rglob("*.html")))
    if own:
        sys.stderr.write(f"error: make docs: {len(own)} pdoc warning(s); {pages} pages written\n")
        return 1
    sys.stdout.write(f"API reference: {pages} pages in {out}/index.html\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("site/api")))
