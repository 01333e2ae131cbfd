"""Where the desk's static files are found: STATICFILES_DIRS, less the test tools kept beside them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from django.contrib.staticfiles.finders import FileSystemFinder

# Vendored for the tests alone (tests/test_browser_axe.py injects axe-core from disk): never served by
# Daphne's /static/, never copied to STATIC_ROOT by collectstatic.
TEST_TOOLS = ("vendor/axe-core",)


def _is_test_tool(path: str) -> bool:
    relative = os.path.normpath(path).replace(os.sep, "/").lstrip("/")
    return any(relative == tool or relative.startswith(f"{tool}/") for tool in TEST_TOOLS)


class DeskFileSystemFinder(FileSystemFinder):
    """Django's FileSystemFinder, blind to TEST_TOOLS."""

    def find_location(self, root: str, path: str, prefix: str | None = None) -> str | None:
        if _is_test_tool(path):
            return None
        found: str | None = super().find_location(root, path, prefix)
        return found

    def list(self, ignore_patterns: Any) -> Iterator[tuple[str, Any]]:
        for path, storage in super().list(ignore_patterns):
            if not _is_test_tool(path):
                yield path, storage
