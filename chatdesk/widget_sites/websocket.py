"""The Origin check of the customer websocket: the desk's own hosts, WIDGET_ALLOWED_ORIGINS and every widget
site's origins (WidgetSite.origins), the last read from the database at most once per SITE_ORIGINS_CACHE_S
in each Daphne process."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async
from channels.security.websocket import OriginValidator
from django.db import DatabaseError

from chatdesk.widget_sites import selectors

logger = logging.getLogger(__name__)

# How long a Daphne process keeps the sites' origins: an origin a manager adds (or removes) on /sites/ is
# admitted (or refused) by every process within this many seconds.
SITE_ORIGINS_CACHE_S = 5.0


@dataclass
class SiteOriginsCache:
    """The sites' origins as last read, and when (by `clock`) they are read again."""

    origins: tuple[str, ...] = ()
    expires_at: float = 0.0
    clock: Callable[[], float] = time.monotonic

    async def get(self) -> tuple[str, ...]:
        """The cached origins, read again once expired. While the database cannot be read the last list is
        kept (an error here would fail the handshake of the desk's own pages too) and read again later."""
        now = self.clock()
        if now >= self.expires_at:
            try:
                self.origins = tuple(await database_sync_to_async(selectors.site_origins)())
            except DatabaseError:
                logger.warning("could not read the widget sites' origins; keeping the last list", exc_info=True)
            self.expires_at = now + SITE_ORIGINS_CACHE_S
        return self.origins

    def clear(self) -> None:
        self.origins, self.expires_at = (), 0.0


site_origins_cache = SiteOriginsCache()


class SiteOriginValidator(OriginValidator):
    """channels' OriginValidator whose allowed list is `allowed_origins` (fixed when routing is built) plus
    every widget site's origins, as cached by site_origins_cache. A refused origin gets the handshake's 403."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        allowed = [*self.allowed_origins, *await site_origins_cache.get()]
        # A validator per connection: the shared one's list is never changed under another connection.
        return await OriginValidator(self.application, allowed)(scope, receive, send)
