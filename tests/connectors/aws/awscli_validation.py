"""The AWS CLI's own CloudTrail log validation, run on a bucket, as a second opinion.

``aws cloudtrail validate-logs`` (awscli, Apache-2.0) walks each account/region's
digest chain back from the newest digest with its ``DigestTraverser``, checks
each digest's signature with ``Sha256RSADigestValidator`` against the keys of
``ListPublicKeys``, and hashes every log file a valid digest lists.  Here the
same classes run with clients the test gives them (moto for S3, the
ListPublicKeys stand-in for CloudTrail), and the command's own status lines are
kept instead of printed.

The CloudTrail client is made as the CLI makes its clients: with its scalar
parsers, which leave blobs as the base64 text on the wire (the validator
decodes ``Value`` itself), where a plain botocore client decodes them.

awscli carries its own botocore and, once imported, makes a later
``import botocore`` load that copy; the AWS conftest has imported boto3 (and
with it botocore and s3transfer) before this module, so every client in the
test process stays on the one botocore.  (Importing awscli also adds its data
folder, which holds no service model, to ``AWS_DATA_PATH``.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import botocore.session
from awscli.customizations.cloudtrail.validation import (
    CloudTrailValidateLogs,
    DigestProvider,
    DigestTraverser,
    PublicKeyProvider,
)
from awscli.customizations.scalarparse import add_scalar_parsers

_STATUS = re.compile(r"^(?:Digest|Log) file\ts3://(?P<path>\S+)\t(?P<verdict>valid|INVALID: .*)$")


@dataclass
class Verdicts:
    """What awscli said of each digest and log file, by ``s3://`` path."""

    files: dict[str, str] = field(default_factory=dict)
    """``valid`` or awscli's ``INVALID: ...`` reason."""
    gaps: list[str] = field(default_factory=list)
    """Breaks in a chain awscli reports without failing (a restart of logging)."""


class _OneClient:
    """awscli's S3 client provider seam: moto's client serves every bucket."""

    def __init__(self, s3: Any) -> None:
        self._s3 = s3

    def get_client(self, bucket: str) -> Any:
        return self._s3


class _Recorder(CloudTrailValidateLogs):  # type: ignore[misc]
    """validate-logs keeping its status lines."""

    def __init__(self, s3: Any) -> None:
        super().__init__(session=None)
        self.s3_client_provider = _OneClient(s3)
        self.verdicts = Verdicts()

    def _write_status(self, message: str, is_error: bool = False) -> None:
        found = _STATUS.match(message)
        if found:
            self.verdicts.files[f"s3://{found['path']}"] = found["verdict"]
        else:
            self.verdicts.gaps.append(message)


def cli_client(service: str, endpoint: str, region: str) -> Any:
    """A client made as the AWS CLI makes one: blobs and timestamps left as on the wire."""
    session = botocore.session.get_session()
    add_scalar_parsers(session)
    return session.create_client(service, endpoint_url=endpoint, region_name=region)


def validate_logs(
    s3: Any,
    cloudtrail: Any,
    bucket: str,
    *,
    organization: str | None,
    account: str,
    region: str,
    home_region: str,
    trail: str,
    since: datetime,
    until: datetime,
) -> Verdicts:
    """awscli's verdicts on one account/region's digests ending in ``[since, until]``."""
    command = _Recorder(s3)
    traverser = DigestTraverser(
        digest_provider=DigestProvider(
            command.s3_client_provider,
            account_id=account,
            trail_name=trail,
            trail_home_region=home_region,
            trail_source_region=region,
            organization_id=organization,
        ),
        starting_bucket=bucket,
        starting_prefix=None,
        public_key_provider=PublicKeyProvider(cloudtrail),
        on_invalid=command._on_invalid_digest,
        on_gap=command._on_digest_gap,
        on_missing=command._on_missing_digest,
    )
    # The loop of CloudTrailValidateLogs._call, whose traverser would ask
    # DescribeTrails and Organizations for what is given here.
    for digest in traverser.traverse_digests(since, until):
        path = f"s3://{digest['digestS3Bucket']}/{digest['digestS3Object']}"
        command.verdicts.files[path] = "valid"
        for log in digest["logFiles"]:
            command._download_log(log)
    return command.verdicts
