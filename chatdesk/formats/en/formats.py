"""English: "Nov 10, 2026, 9:05 AM" as Intl's dateStyle medium, timeStyle short; seconds where they matter."""

DATETIME_FORMAT = "M j, Y, g:i:s A"  # Nov 10, 2026, 9:05:40 AM
SHORT_DATETIME_FORMAT = "M j, Y, g:i A"  # Nov 10, 2026, 9:05 AM
TIME_FORMAT = "g:i:s A"  # 9:05:40 AM
