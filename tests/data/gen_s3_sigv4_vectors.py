#!/usr/bin/python3
"""Records S3 SigV4 vectors for odd keys using botocore (Debian python3-botocore),
an implementation independent of ours. Run once; the output is committed as
tests/data/s3_sigv4_vectors.json and read by the unit tests, so the tests do
not need Python. Usage: /usr/bin/python3 tests/data/gen_s3_sigv4_vectors.py > tests/data/s3_sigv4_vectors.json
"""
import datetime
import json
from unittest import mock

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ACCESS = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmx"
WHEN = datetime.datetime(2026, 11, 21, 12, 34, 56)
HOST = "127.0.0.1:57480"

KEYS = [
    "image/avatar-1.png",
    "image/with space.png",
    "image/unicodé-ñ-漢字.png",
    "image/plus+sign.png",
    "image/percent%41.png",
    "image/tilde~and=equals.png",
    "image/amp&q?hash#.png",
    "image/quote\"apos'.png",
    "image//double//slash.png",
]


def sign(method, path_key, query, headers, body, token, unsigned):
    creds = Credentials(ACCESS, SECRET, token)
    from urllib.parse import quote
    # botocore signs payloads over plain HTTP whatever it is told, so the
    # unsigned case goes over https (the scheme is not part of the signature).
    scheme = "https" if unsigned else "http"
    url = f"{scheme}://{HOST}/legacy-s3/" + quote(path_key, safe="/~")
    if query:
        url += "?" + "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in query)
    req = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
    if unsigned:
        req.context["client_config"] = mock.Mock(s3={"payload_signing_enabled": False})
    auth = S3SigV4Auth(creds, "s3", "us-east-1")
    with mock.patch("botocore.auth.datetime") as dt:
        dt.datetime.utcnow.return_value = WHEN
        dt.datetime.now.return_value = WHEN
        dt.timezone = datetime.timezone
        auth.add_auth(req)
    authz = req.headers["Authorization"]
    del req.headers["Authorization"]
    creq = auth.canonical_request(req)
    return {
        "method": method,
        "key": path_key,
        "query": query,
        "headers": headers,
        "body": body.decode(),
        "session_token": token or "",
        "unsigned_payload": unsigned,
        "canonical_request": creq,
        "authorization": authz,
    }


cases = []
for k in KEYS:
    cases.append(sign("GET", k, [], [], b"", None, False))
cases.append(sign("PUT", "image/put body.png", [], [["Content-Type", "image/png"]], b"PNG-ish body", None, False))
cases.append(sign("PUT", "image/put unsigned.png", [], [["Content-Type", "image/png"]], b"payload", None, True))
cases.append(sign("GET", "", [["list-type", "2"], ["prefix", "image/a b+c"], ["start-after", "image/x=y&z"]], [], b"", None, False))
cases.append(sign("HEAD", "image/token.png", [], [], b"", TOKEN, False))
print(json.dumps({"access_key": ACCESS, "secret_key": SECRET, "date": "20261121T123456Z", "host": HOST,
                  "region": "us-east-1", "cases": cases}, indent=1, ensure_ascii=False))
