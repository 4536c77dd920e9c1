"""Change records as first-class data: the book of records and the coverage query.

The record model itself lives in :mod:`connectors.changerecord`, shared with
the sources that receive records and validate them where they arrive.
"""
