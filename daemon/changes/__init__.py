"""Change records as first-class data: the book of records and the coverage query.

The record model is the contract :mod:`connectors.contracts.change_record`, shared with
the sources that receive records and validate them where they arrive.
"""
