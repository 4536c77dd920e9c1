"""CloudTrail's own formats, shared by the CloudTrail sources: key names, record
files, digest files and the reconciliation of what was listed with what was read."""
