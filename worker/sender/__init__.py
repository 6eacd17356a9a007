"""The library a send service embeds: :class:`BlocklistView` and its in-memory index."""

from worker.sender.view import BlocklistView, ViewLag

__all__ = ["BlocklistView", "ViewLag"]
