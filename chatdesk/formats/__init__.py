"""The desk's own date, time and number formats per language (settings.FORMAT_MODULE_PATH), over Django's.

They follow what browsers' Intl.DateTimeFormat and Intl.NumberFormat write for the same language, so a time
drawn by a page's script reads like one the server rendered (docs/i18n.md › Dates, times and numbers).
Only the formats set here differ from Django's; every other one is Django's for that language."""
