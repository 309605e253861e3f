"""Credential endpoints for the end-to-end tests, following AWS's published
protocols, handing out keys the local gateway really accepts (no such
endpoint exists outside AWS, so these stand in for it):

  container  the ECS task role / EKS Pod Identity endpoint: GET of any path
             whose Authorization header is --token (when given) answers
             {"AccessKeyId", "SecretAccessKey", "Token", "Expiration"};
             another token is 401.
  imds       EC2 instance metadata, IMDSv2 only: PUT /latest/api/token with
             X-aws-ec2-metadata-token-ttl-seconds gives a session token;
             GET /latest/meta-data/iam/security-credentials/ with
             X-aws-ec2-metadata-token gives the role's name, and GET of
             .../ROLE its keys ({"Code": "Success", ... , "Expiration"});
             a GET without a valid token is 401, as IMDSv2 answers.
  oidc       an OpenID Connect issuer for the gateway's STS
             (AssumeRoleWithWebIdentity): /.well-known/openid-configuration
             and its jwks_uri, the x5c of --cert.

Keys (--keys):
  sts     temporary keys from the gateway's STS (AWS_ENDPOINT_URL): AssumeRole
          of --role-arn with the environment's AWS_ACCESS_KEY_ID /
          AWS_SECRET_ACCESS_KEY
  rotate  a new S3 key of gateway user --uid at every fetch, said to expire
          --lifetime seconds later and removed from the gateway then
          (radosgw-admin key rm): a client that keeps it is refused.
          --revoke-early N removes the Nth key a quarter into its life
          instead, unannounced, while it is in use.

--hang answers nothing (a metadata service that does not answer).

Usage: credserver.py --mode container|imds|oidc --port-file F [--stats-file F]
                     [--keys sts|rotate] [--role-arn ARN] [--uid UID]
                     [--lifetime S] [--revoke-early N] [--token T]
                     [--cert PEM] [--hang]
The port (127.0.0.1, chosen by the kernel) is written to --port-file once it
listens; --stats-file gets what it did (keys handed out, revoked, requests)
as JSON on SIGTERM.
"""
import argparse
import base64
import datetime
import http.server
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CEPH_CONF = os.path.join(os.environ.get("ASSETMV_STATE", os.path.join(ROOT, ".local")), "ceph", "ceph.conf")
ROLE_NAME = "assetmv-instance-role"


def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Keys:
    """Mints keys the gateway accepts, and revokes the rotated ones on time."""

    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.stats = {"requests": 0, "handed_out": 0, "revoked": 0, "revoked_early": 0, "refused": 0,
                      "handed_at": [], "revoked_at": []}
        self.timers = []
        self.outstanding = set()  # rotated keys not revoked yet

    def admin(self, *argv):
        subprocess.run(["radosgw-admin", "-c", CEPH_CONF, *argv], check=True, capture_output=True, timeout=60)

    def mint(self):
        if self.args.keys == "sts":
            import boto3  # Debian's python3-boto3; only this mode needs it
            sts = boto3.client("sts", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1")
            c = sts.assume_role(RoleArn=self.args.role_arn, RoleSessionName=f"credserver-{os.getpid()}",
                                DurationSeconds=900)["Credentials"]
            with self.lock:
                self.stats["handed_out"] += 1
            return {"AccessKeyId": c["AccessKeyId"], "SecretAccessKey": c["SecretAccessKey"],
                    "Token": c["SessionToken"], "Expiration": c["Expiration"].strftime("%Y-%m-%dT%H:%M:%SZ")}
        access = "ROT" + secrets.token_hex(8).upper()
        secret = secrets.token_urlsafe(30)
        self.admin("key", "create", f"--uid={self.args.uid}", "--key-type=s3", f"--access-key={access}",
                   f"--secret={secret}")
        now = time.time()
        with self.lock:
            self.stats["handed_out"] += 1
            self.stats["handed_at"].append(now)
            self.outstanding.add(access)
            n = self.stats["handed_out"]
        early = self.args.revoke_early == n
        delay = self.args.lifetime / 4 if early else self.args.lifetime
        t = threading.Timer(delay, self.revoke, (access, early))
        t.daemon = True
        t.start()
        self.timers.append(t)
        # No Token: a gateway user's own key is no session.
        return {"AccessKeyId": access, "SecretAccessKey": secret, "Expiration": iso(now + self.args.lifetime)}

    def revoke(self, access, early=False):
        with self.lock:
            if access not in self.outstanding:
                return
            self.outstanding.discard(access)
        try:
            self.admin("key", "rm", f"--uid={self.args.uid}", "--key-type=s3", f"--access-key={access}")
        except subprocess.CalledProcessError as e:
            print(f"credserver: cannot revoke {access}: {e.stderr}", file=sys.stderr)
            return
        with self.lock:
            self.stats["revoked"] += 1
            self.stats["revoked_early"] += 1 if early else 0
            self.stats["revoked_at"].append(time.time())


def handler_for(args, keys):
    session_tokens = set()
    jwks = None
    if args.mode == "oidc":
        der = subprocess.run(["openssl", "x509", "-in", args.cert, "-outform", "DER"], check=True,
                             capture_output=True).stdout
        jwks = {"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": "assetmv-test",
                          "x5c": [base64.b64encode(der).decode()]}]}

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def reply(self, status, body, content_type="application/json"):
            data = body.encode() if isinstance(body, str) else body
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def count(self):
            with keys.lock:
                keys.stats["requests"] += 1

        def hang(self):
            time.sleep(3600)

        def do_PUT(self):
            self.count()
            if args.hang:
                return self.hang()
            length = int(self.headers.get("Content-Length", "0"))
            self.rfile.read(length)
            if args.mode != "imds" or self.path != "/latest/api/token":
                return self.reply(404, "not found", "text/plain")
            ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
            if not ttl or not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                return self.reply(400, "bad ttl", "text/plain")
            token = secrets.token_urlsafe(32)
            session_tokens.add(token)
            self.reply(200, token, "text/plain")

        def do_GET(self):
            self.count()
            if args.hang:
                return self.hang()
            if args.mode == "oidc":
                base = f"http://127.0.0.1:{self.server.server_address[1]}"
                if self.path.startswith("/.well-known/openid-configuration"):
                    return self.reply(200, json.dumps({"issuer": base, "jwks_uri": base + "/keys"}))
                return self.reply(200, json.dumps(jwks))
            if args.mode == "container":
                if args.token and self.headers.get("Authorization") != args.token:
                    with keys.lock:
                        keys.stats["refused"] += 1
                    return self.reply(401, json.dumps({"message": "bad authorization token"}))
                return self.reply(200, json.dumps(keys.mint()))
            # imds
            if self.headers.get("X-aws-ec2-metadata-token") not in session_tokens:
                with keys.lock:
                    keys.stats["refused"] += 1
                return self.reply(401, "", "text/plain")
            prefix = "/latest/meta-data/iam/security-credentials/"
            if self.path == prefix:
                return self.reply(200, ROLE_NAME, "text/plain")
            if self.path == prefix + ROLE_NAME:
                doc = {"Code": "Success", "LastUpdated": iso(time.time()), "Type": "AWS-HMAC", **keys.mint()}
                return self.reply(200, json.dumps(doc))
            self.reply(404, "not found", "text/plain")

    return Handler


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mode", choices=["container", "imds", "oidc"], required=True)
    p.add_argument("--port-file", required=True)
    p.add_argument("--stats-file")
    p.add_argument("--keys", choices=["sts", "rotate"], default="sts")
    p.add_argument("--role-arn")
    p.add_argument("--uid", default="assetmv")
    p.add_argument("--lifetime", type=float, default=60)
    p.add_argument("--revoke-early", type=int, default=0)
    p.add_argument("--token")
    p.add_argument("--cert")
    p.add_argument("--hang", action="store_true")
    args = p.parse_args()
    keys = Keys(args)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler_for(args, keys))
    server.daemon_threads = True

    def stop(*_):
        for access in list(keys.outstanding):  # leave no key of ours on the gateway
            keys.revoke(access)
        if args.stats_file:
            with keys.lock:
                with open(args.stats_file, "w") as f:
                    json.dump(keys.stats, f)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(args.port_file + ".tmp", args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
