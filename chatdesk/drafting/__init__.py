"""Drafting engines: plain Python, no ORM. A DraftContext goes in, a DraftResult comes out."""
