"""Simplified Chinese: "2026年11月10日 09:05"; numbers grouped by thousands with a comma, as Intl writes them
for zh-Hans (Django's own zh_Hans formats group nothing)."""

DATETIME_FORMAT = "Y年n月j日 H:i:s"  # 2026年11月10日 09:05:40
SHORT_DATETIME_FORMAT = "Y年n月j日 H:i"  # 2026年11月10日 09:05
TIME_FORMAT = "H:i:s"  # 09:05:40
THOUSAND_SEPARATOR = ","
NUMBER_GROUPING = 3
