"""What the AWS sources share: access (credentials, clients, errors), doctor's checks,
the source base, and the S3 and SQS readers."""
