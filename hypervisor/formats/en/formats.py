"""Date formats for English (FORMAT_MODULE_PATH): times to the second, with the time zone,
in the admin's lists and forms (Django's own English format shows "Dec. 5, 2026, 10 p.m.")."""

DATETIME_FORMAT = "Y-m-d H:i:s T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i:s T"
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i:s"
