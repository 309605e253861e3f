"""Identities for the credential tests, on the real gateway: roles and an
OpenID Connect provider in its IAM, web identity tokens signed for them, and
credserver.py (container credentials, IMDSv2, the OIDC issuer) as a
subprocess. STS is served by the cluster's second gateway
(ASSETMV_STS_ENDPOINT_URL, scripts/rgw.sh). What the gateway's STS supports,
and what stands in for AWS: docs/clouds.md.
"""
import base64
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time

import boto3

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CEPH_CONF = os.path.join(ROOT, ".local", "ceph", "ceph.conf")
STS = os.environ.get("ASSETMV_STS_ENDPOINT_URL", "")
S3_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:*"],
                                                  "Resource": ["arn:aws:s3:::*"]}]}


def rgw_admin(*argv, check=True):
    return subprocess.run(["radosgw-admin", "-c", CEPH_CONF, *argv], capture_output=True, text=True, check=check,
                          timeout=60)


def ensure_role(name, principal, action):
    """A gateway role `name` that `principal` may assume by `action`, allowed
    every S3 action (the buckets' own policies still apply); its ARN."""
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": principal,
                                                     "Action": [action]}]}
    r = rgw_admin("role", "create", f"--role-name={name}", "--path=/",
                  f"--assume-role-policy-doc={json.dumps(trust)}", check=False)
    if r.returncode != 0 and not any(w in (r.stderr + r.stdout).lower() for w in ("exists", "already in use")):
        raise RuntimeError(f"role create {name}: {r.stderr}")
    rgw_admin("role-policy", "put", f"--role-name={name}", "--policy-name=s3", f"--policy-doc={json.dumps(S3_ALL)}")
    return f"arn:aws:iam:::role/{name}"


def gateway_user_role(name="assetmv-mover"):
    """A role the gateway's own test user may assume (AssumeRole)."""
    return ensure_role(name, {"AWS": ["arn:aws:iam:::user/assetmv"]}, "sts:AssumeRole")


class CredServer:
    """credserver.py as a subprocess: `url` once it listens, `stats()` after stop()."""

    def __init__(self, mode, *args, env=None):
        self.tmp = tempfile.mkdtemp()
        port_file = os.path.join(self.tmp, "port")
        self.stats_file = os.path.join(self.tmp, "stats.json")
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "credserver.py"), "--mode", mode,
                                      "--port-file", port_file, "--stats-file", self.stats_file, *args],
                                     env=env or dict(os.environ, AWS_ENDPOINT_URL=STS))
        deadline = time.time() + 10
        while not os.path.exists(port_file):
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError("credserver did not start")
            time.sleep(0.05)
        self.port = int(open(port_file).read())
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=60)
        if not os.path.exists(self.stats_file):
            return {}
        with open(self.stats_file) as f:
            return json.load(f)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class OidcIssuer:
    """An OpenID Connect issuer the gateway trusts: its own key and
    certificate, served by credserver.py, registered in the gateway's IAM
    with a client id; token() signs web identity tokens as a Kubernetes
    service-account token is signed for IRSA."""

    CLIENT_ID = "sts.amazonaws.com"  # the audience EKS projects into IRSA tokens

    def __init__(self):
        self.tmp = tempfile.mkdtemp()
        self.key, self.cert = os.path.join(self.tmp, "key.pem"), os.path.join(self.tmp, "cert.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.key, "-out",
                        self.cert, "-days", "2", "-subj", "/CN=assetmv-test-oidc"], check=True, capture_output=True)
        self.server = CredServer("oidc", "--cert", self.cert)
        self.url = self.server.url
        der = subprocess.run(["openssl", "x509", "-in", self.cert, "-outform", "DER"], check=True,
                             capture_output=True).stdout
        iam = boto3.client("iam", endpoint_url=STS, region_name="us-east-1")
        iam.create_open_id_connect_provider(Url=self.url, ClientIDList=[self.CLIENT_ID],
                                            ThumbprintList=[hashlib.sha1(der).hexdigest()])
        self.provider_arn = f"arn:aws:iam:::oidc-provider/127.0.0.1:{self.server.port}"
        self.role_arn = ensure_role(f"assetmv-web-{self.server.port}", {"Federated": [self.provider_arn]},
                                    "sts:AssumeRoleWithWebIdentity")

    def token(self, lifetime=3600, subject="system:serviceaccount:assetmv:assetmv"):
        now = int(time.time())
        header = b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "assetmv-test"}).encode())
        claims = b64url(json.dumps({"iss": self.url, "aud": self.CLIENT_ID, "sub": subject, "iat": now,
                                    "exp": now + lifetime}).encode())
        signed = f"{header}.{claims}".encode()
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.key], input=signed, check=True,
                             capture_output=True).stdout
        return f"{header}.{claims}.{b64url(sig)}"

    def close(self):
        self.server.stop()
        try:
            iam = boto3.client("iam", endpoint_url=STS, region_name="us-east-1")
            iam.delete_open_id_connect_provider(OpenIDConnectProviderArn=self.provider_arn)
        except Exception:  # noqa: BLE001 - a leftover provider on a throw-away gateway is harmless
            pass
