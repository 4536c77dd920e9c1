"""The digest verifier against an independent one: the AWS CLI's validate-logs code.

Digests are made by tests/connectors/aws/digests.py from AWS's documentation, put in moto,
and tampered with in the ways an intruder (or an accident) would.  auditcorr's
DigestChecker and awscli's DigestTraverser then judge the same bucket, both
taking the public key from the ListPublicKeys stand-in; they must accept and
reject exactly the same digests and log files.  awscli does not look for log
files that no digest lists (auditcorr's ``missing_digest``): those are files
neither accepts.
"""

from __future__ import annotations

import gzip
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from awscli_validation import Verdicts, cli_client, validate_logs
from digests import HOME_REGION, SINCE, TRAIL_KEY, UNTIL, Digests, SigningKey, write_digests
from lookupserver import LookupServer, PublicKey
from motoserver import REGION, client
from trail import ACCOUNTS, Uploaded, put_records, upload_trail

from connectors.cloudtrail.digests import ChainState, DigestChecker, PublicKeys
from connectors.cloudtrail.keys import parse_key

TRAIL = "org-trail"
_MISSING_PREVIOUS = re.compile(r"^previous digest (\S+) is missing$")


@dataclass
class Trail:
    """A bucket as a trail with log file validation left it, and the clients to judge it."""

    s3: Any
    bucket: str
    uploaded: Uploaded
    made: Digests
    cloudtrail: Any
    """auditcorr's CloudTrail client (boto3)."""
    cli_cloudtrail: Any
    """awscli's, made as the CLI makes it."""
    published: list[PublicKey]
    """What the ListPublicKeys stand-in serves."""

    def stream(self, *, digests: int = 3) -> str:
        """An account/region with at least that many digests."""
        return next(s for s, keys in sorted(self.made.keys.items()) if len(keys) >= digests)

    def logs_of(self, stream: str) -> list[str]:
        return [k for k in self.uploaded.keys if _stream(k) == stream]

    def listed_in(self, digest: str) -> list[str]:
        content = gzip.decompress(self.s3.get_object(Bucket=self.bucket, Key=digest)["Body"].read())
        return [str(entry["s3Object"]) for entry in orjson.loads(content)["logFiles"]]

    def path(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"


def _stream(key: str) -> str:
    parsed = parse_key(key)
    assert parsed is not None
    return parsed.stream


@pytest.fixture
def trail(moto_endpoint: str, lookup_server: LookupServer, tmp_path: Path) -> Trail:
    s3 = client("s3", moto_endpoint)
    bucket = f"trail-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    uploaded = upload_trail(
        s3, bucket, tmp_path, 80, span=timedelta(hours=2, minutes=10), accounts=ACCOUNTS[:2]
    )
    made = write_digests(s3, bucket, uploaded.keys, trail=TRAIL)
    lookup_server.public_keys.append(TRAIL_KEY.listed())
    return Trail(
        s3,
        bucket,
        uploaded,
        made,
        client("cloudtrail", lookup_server.endpoint),
        cli_client("cloudtrail", lookup_server.endpoint, REGION),
        lookup_server.public_keys,
    )


@dataclass(frozen=True)
class Judgement:
    """Paths a verifier accepted and rejected; ``unlisted``: log files no valid digest lists."""

    accepted: frozenset[str]
    rejected: frozenset[str]
    unlisted: frozenset[str] = frozenset()


def auditcorr(trail: Trail, keys: PublicKeys) -> Judgement:
    """DigestChecker's results; a missing digest counts against the digest, as awscli has it."""
    checker = DigestChecker(trail.s3, trail.bucket, keys)
    accepted: set[str] = set()
    rejected: set[str] = set()
    unlisted: set[str] = set()
    for stream in trail.made.keys:
        account, region = stream.split("/")
        folder = trail.logs_of(stream)[0].split(f"/{region}/")[0] + f"/{region}/"
        check = checker.check(
            account=account,
            region=region,
            logs_folder=folder,
            since=SINCE,
            until=UNTIL,
            chain=ChainState(),
        )
        accepted |= {trail.path(k) for k in check.verified}
        for result in check.results:
            gone = _MISSING_PREVIOUS.match(result.detail)
            if result.status == "valid":
                accepted.add(result.path)
            elif result.status == "missing_digest":
                unlisted.add(result.path)
            elif gone:
                rejected.add(trail.path(gone[1]))
            else:
                rejected.add(result.path)
    return Judgement(frozenset(accepted), frozenset(rejected), frozenset(unlisted))


def awscli(trail: Trail) -> tuple[Judgement, Verdicts]:
    """validate-logs' verdicts over every account/region of the trail."""
    everything = Verdicts()
    for stream in trail.made.keys:
        account, region = stream.split("/")
        root = parse_key(trail.logs_of(stream)[0])
        assert root is not None
        found = validate_logs(
            trail.s3,
            trail.cli_cloudtrail,
            trail.bucket,
            organization=root.organization,
            account=account,
            region=region,
            home_region=HOME_REGION,
            trail=TRAIL,
            since=SINCE,
            until=UNTIL,
        )
        everything.files.update(found.files)
        everything.gaps += found.gaps
    files = everything.files
    return Judgement(
        frozenset(p for p, v in files.items() if v == "valid"),
        frozenset(p for p, v in files.items() if v != "valid"),
    ), everything


def good_chain(trail: Trail) -> set[str]:
    """Nothing touched."""
    return set()


def tampered_log_file(trail: Trail) -> set[str]:
    """A listed log file rewritten with a forged record."""
    key = trail.uploaded.keys[3]
    put_records(trail.s3, trail.bucket, key, [{"eventID": "forged"}])
    return {trail.path(key)}


def deleted_log_file(trail: Trail) -> set[str]:
    """A log file a digest lists, deleted."""
    key = trail.uploaded.keys[7]
    trail.s3.delete_object(Bucket=trail.bucket, Key=key)
    return {trail.path(key)}


def appended_log_file(trail: Trail) -> set[str]:
    """Forged records appended to a listed log file as a second gzip member."""
    key = trail.uploaded.keys[5]
    body = trail.s3.get_object(Bucket=trail.bucket, Key=key)["Body"].read()
    forged = gzip.compress(orjson.dumps({"Records": [{"eventID": "forged"}]}))
    trail.s3.put_object(Bucket=trail.bucket, Key=key, Body=body + forged)
    return {trail.path(key)}


def uncompressed_log_file(trail: Trail) -> set[str]:
    """A listed log file replaced by its own contents, uncompressed."""
    key = trail.uploaded.keys[6]
    body = trail.s3.get_object(Bucket=trail.bucket, Key=key)["Body"].read()
    trail.s3.put_object(Bucket=trail.bucket, Key=key, Body=gzip.decompress(body))
    return {trail.path(key)}


def tampered_digest(trail: Trail) -> set[str]:
    """A digest that no longer lists one of its log files, its signature metadata kept."""
    key = trail.made.keys[trail.stream()][1]
    head = trail.s3.head_object(Bucket=trail.bucket, Key=key)
    content = orjson.loads(
        gzip.decompress(trail.s3.get_object(Bucket=trail.bucket, Key=key)["Body"].read())
    )
    content["logFiles"] = content["logFiles"][1:]
    trail.s3.put_object(
        Bucket=trail.bucket,
        Key=key,
        Body=gzip.compress(orjson.dumps(content)),
        Metadata=head["Metadata"],
    )
    return {trail.path(key)}


def unreadable_digest(trail: Trail) -> set[str]:
    """A digest overwritten with bytes that are not gzip, its metadata kept."""
    key = trail.made.keys[trail.stream()][1]
    head = trail.s3.head_object(Bucket=trail.bucket, Key=key)
    trail.s3.put_object(Bucket=trail.bucket, Key=key, Body=b"{}", Metadata=head["Metadata"])
    return {trail.path(key)}


def digest_without_algorithm(trail: Trail) -> set[str]:
    """A digest whose object lost its ``signature-algorithm`` metadata."""
    key = trail.made.keys[trail.stream()][1]
    head = trail.s3.head_object(Bucket=trail.bucket, Key=key)
    body = trail.s3.get_object(Bucket=trail.bucket, Key=key)["Body"].read()
    metadata = {"signature": head["Metadata"]["signature"]}
    trail.s3.put_object(Bucket=trail.bucket, Key=key, Body=body, Metadata=metadata)
    return {trail.path(key)}


def moved_digest(trail: Trail) -> set[str]:
    """A valid digest copied to the place of a later one."""
    first, *_, last = trail.made.keys[trail.stream()]
    later = last.replace("0000Z.json.gz", "5900Z.json.gz")
    source = {"Bucket": trail.bucket, "Key": first}
    trail.s3.copy_object(Bucket=trail.bucket, Key=later, CopySource=source)
    return {trail.path(later)}


def broken_chain_link(trail: Trail) -> set[str]:
    """A digest in the middle of a chain, deleted: the next one names it."""
    key = trail.made.keys[trail.stream()][1]
    trail.s3.delete_object(Bucket=trail.bucket, Key=key)
    return {trail.path(key)}


def restarted_chain(trail: Trail) -> set[str]:
    """Logging turned off and on: a new chain whose first digest names no previous one."""
    stream = trail.stream()
    first = trail.made.keys[stream][0]
    later = [k for k in trail.logs_of(stream) if k not in trail.listed_in(first)]
    write_digests(trail.s3, trail.bucket, later, trail=TRAIL)
    return set()


def unlisted_log_file(trail: Trail) -> set[str]:
    """A log file slipped into the bucket that no digest lists: no verifier accepts it."""
    key = trail.uploaded.keys[10].replace(".json.gz", "X.json.gz")
    put_records(trail.s3, trail.bucket, key, [])
    return set()


def wrong_key(trail: Trail) -> set[str]:
    """One account/region's digests signed with a key CloudTrail does not publish."""
    stream = trail.stream()
    write_digests(trail.s3, trail.bucket, trail.logs_of(stream), signer=SigningKey.generate())
    return {trail.path(k) for k in trail.made.keys[stream]}


def key_out_of_period(trail: Trail) -> set[str]:
    """Digests signed with a published key whose period ended a week before them."""
    stream = trail.stream()
    retired = SigningKey.generate(
        valid_from=SINCE - timedelta(days=60), valid_until=SINCE - timedelta(days=7)
    )
    trail.published.append(retired.listed())
    write_digests(trail.s3, trail.bucket, trail.logs_of(stream), signer=retired)
    return {trail.path(k) for k in trail.made.keys[stream]}


def forged_with_published_fingerprint(trail: Trail) -> set[str]:
    """Digests signed with another key but naming the published key's fingerprint."""
    stream = trail.stream()
    forger = SigningKey.generate()
    impostor = _Impostor(forger.private, fingerprint_of=TRAIL_KEY)
    write_digests(trail.s3, trail.bucket, trail.logs_of(stream), signer=impostor)
    return {trail.path(k) for k in trail.made.keys[stream]}


@dataclass(frozen=True)
class _Impostor(SigningKey):
    """A key that claims another key's fingerprint."""

    fingerprint_of: SigningKey = TRAIL_KEY

    @property
    def fingerprint(self) -> str:
        return self.fingerprint_of.fingerprint


CASES: list[Callable[[Trail], set[str]]] = [
    good_chain,
    tampered_log_file,
    deleted_log_file,
    appended_log_file,
    uncompressed_log_file,
    tampered_digest,
    unreadable_digest,
    digest_without_algorithm,
    moved_digest,
    broken_chain_link,
    restarted_chain,
    unlisted_log_file,
    wrong_key,
    key_out_of_period,
    forged_with_published_fingerprint,
]


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__)
def test_auditcorr_and_awscli_reach_the_same_verdicts(
    case: Callable[[Trail], set[str]], trail: Trail, tmp_path: Path
) -> None:
    """Both verifiers accept and reject the same digests and log files, and the tampered ones."""
    expected = case(trail)
    theirs, verdicts = awscli(trail)
    ours = auditcorr(trail, PublicKeys(trail.cloudtrail))
    assert ours.accepted == theirs.accepted
    assert ours.rejected == theirs.rejected, verdicts.files
    assert ours.rejected == expected
    assert bool(verdicts.gaps) == (case is restarted_chain), "awscli saw the restart, only there"
    assert ours.accepted, "what was left alone still verifies"
    assert not ours.accepted & ours.unlisted
    offline = auditcorr(trail, PublicKeys(None, [TRAIL_KEY.write_pem(tmp_path / "key.pem")]))
    assert offline == ours, "key files and ListPublicKeys give the same verdicts"
