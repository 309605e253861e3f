"""A fault-injecting proxy for the end-to-end tests (tc netem is not available
here, and Toxiproxy is not packaged).

  http mode  sits between assetmv and the S3 gateway. It reads each HTTP/1.1
             request, and with probability RATE injects FAULT instead of a
             plain pass-through:
               latency       wait BASE_MS plus up to JITTER_MS, then forward
                             (applied to every request when RATE is 1)
               reset         forward, then send half the answer and reset the
                             connection (the server did the work)
               blackhole     swallow the request; never answer
               e500 / e503   answer 500 InternalError / 503 SlowDown without
                             forwarding
               copy_error    CopyObject only: answer 200 with an <Error> body
                             without forwarding (S3's late failure of a copy)
               delete_denied DeleteObjects only: answer 200 with every key
                             refused AccessDenied, without forwarding (an
                             object lock, or a policy that denies those keys)
               truncate      forward, then send the headers and half the body
                             and close (the answer is shorter than announced)
               partial       a store with only the basics of S3, as GCS's
                             XML API is: 501 NotImplemented to
                             DeleteObjects (POST ?delete), UploadPartCopy (a
                             PUT with partNumber and x-amz-copy-source) and
                             object tagging (?tagging), every time, without
                             forwarding (RATE is ignored)
  tcp mode   sits between assetmv and PostgreSQL, copies bytes both ways, and
             with --kill-every SECONDS resets every open connection that often;
             with --blackhole-at S --blackhole-for D it forwards nothing from
             S seconds after start for D seconds (connections stay open, their
             bytes vanish; a connection that lost bytes stays dead); with
             --delay-ms N every byte arrives N ms after it was sent, each way
             (a database N ms away: a round trip costs 2N), order kept.

Usage: faultproxy.py --mode http|tcp --upstream HOST:PORT --port-file F
                     [--fault NAME --rate R [--after N]] [--base-ms N --jitter-ms N]
                     [--kill-every S] [--blackhole-at S --blackhole-for D]
                     [--seed N] [--stats-file F]
                     [--tls-cert PEM --tls-key PEM]
The port it listens on (127.0.0.1, chosen by the kernel) is written to
--port-file once it accepts; --stats-file gets the count of injected faults
by kind when it gets SIGTERM.
"""
import argparse
import asyncio
import json
import random
import re
import signal
import socket
import ssl
import struct
import sys

HEADER_LIMIT = 64 * 1024  # S3 headers are a few hundred bytes; more is a bug


def abort(writer):
    """Closes with a TCP reset (SO_LINGER 0), the way a crashed peer or a middlebox does."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


async def read_head(reader):
    """The start line and headers of one message, or None at a clean end of stream."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if e.partial:
            raise
        return None
    if len(head) > HEADER_LIMIT:
        raise ValueError("header too long")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return head, lines[0], headers


async def read_body(reader, headers, has_body=True, is_request=False):
    if not has_body:
        return b""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        raw = b""
        while True:
            size_line = await reader.readuntil(b"\r\n")
            raw += size_line
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                while True:  # trailers, then the empty line
                    line = await reader.readuntil(b"\r\n")
                    raw += line
                    if line == b"\r\n":
                        return raw
            raw += await reader.readexactly(size + 2)
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"]))
    if is_request:
        return b""  # a request without either header has no body
    return await reader.read()  # a response without either is delimited by the end of the connection


def delete_denied_response(request_body):
    """A DeleteObjects answer refusing each key the request names, as S3 does per key."""
    keys = re.findall(rb"<Key>(.*?)</Key>", request_body, re.S)
    errors = b"".join(b"<Error><Key>" + k + b"</Key><Code>AccessDenied</Code><Message>Access Denied (injected by "
                      b"faultproxy)</Message></Error>" for k in keys)
    body = b'<?xml version="1.0" encoding="UTF-8"?>\n<DeleteResult>' + errors + b"</DeleteResult>"
    return (f"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: {len(body)}\r\n"
            f"x-amz-request-id: faultproxy\r\n\r\n").encode() + body


def error_response(status, reason, code, message):
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
            f'<RequestId>faultproxy</RequestId></Error>').encode()
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\nContent-Length: {len(body)}\r\n"
            f"x-amz-request-id: faultproxy\r\n\r\n").encode() + body


class Proxy:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.stats = {"requests": 0, "connections": 0}
        self.up_host, up_port = args.upstream.rsplit(":", 1)
        self.up_port = int(up_port)
        self.open = set()  # (client writer, upstream writer) pairs, for tcp kills

    def count(self, what):
        self.stats[what] = self.stats.get(what, 0) + 1

    def pick(self, is_copy, is_delete=False):
        fault = self.args.fault
        if self.stats["requests"] <= self.args.after:
            return None
        if not fault or self.rng.random() >= self.args.rate:
            return None
        if fault == "copy_error" and not is_copy or fault == "delete_denied" and not is_delete:
            return None
        return fault

    @staticmethod
    def lacking(method, start, is_copy):
        """The partial store's refusals: which basic-S3-only gap a request hits, if any."""
        target = start.split(" ")[1] if " " in start else ""
        query = target.split("?", 1)[1] if "?" in target else ""
        params = {q.split("=", 1)[0] for q in query.split("&") if q}
        if method == "POST" and "delete" in params:
            return "no_multi_delete"
        if is_copy and "partNumber" in params:
            return "no_upload_part_copy"
        if "tagging" in params:
            return "no_tagging"
        return None

    # ---- http ---------------------------------------------------------------

    async def http_client(self, creader, cwriter):
        self.count("connections")
        upstream = None
        try:
            while True:
                req = await read_head(creader)
                if req is None:
                    break
                head, start, headers = req
                body = await read_body(creader, headers, is_request=True)
                self.stats["requests"] += 1
                method = start.split(" ", 1)[0]
                is_copy = method == "PUT" and "x-amz-copy-source" in headers
                is_delete = method == "POST" and re.search(r"[?&]delete(=|&|$)", start.split(" ")[1]) is not None
                fault = self.lacking(method, start, is_copy) if self.args.fault == "partial" else \
                    self.pick(is_copy, is_delete)
                if fault:
                    self.count(fault)
                if fault == "latency":
                    await asyncio.sleep((self.args.base_ms + self.rng.uniform(0, self.args.jitter_ms)) / 1000)
                elif fault == "blackhole":
                    await creader.read()  # until the client gives up
                    break
                elif fault and fault.startswith("no_"):
                    cwriter.write(error_response(501, "Not Implemented", "NotImplemented",
                                                 "A header you provided implies functionality that is not implemented"))
                    await cwriter.drain()
                    continue
                elif fault == "delete_denied":
                    cwriter.write(delete_denied_response(body))
                    await cwriter.drain()
                    continue
                elif fault in ("e500", "e503", "copy_error"):
                    cwriter.write({"e500": error_response(500, "Internal Server Error", "InternalError",
                                                          "injected by faultproxy"),
                                   "e503": error_response(503, "Slow Down", "SlowDown", "injected by faultproxy"),
                                   "copy_error": error_response(200, "OK", "InternalError",
                                                                "injected by faultproxy")}[fault])
                    await cwriter.drain()
                    continue
                if upstream is None:
                    upstream = await asyncio.open_connection(self.up_host, self.up_port)
                ureader, uwriter = upstream
                uwriter.write(head + body)
                await uwriter.drain()
                resp = await read_head(ureader)
                if resp is None:
                    break
                rhead, rstart, rheaders = resp
                status = int(rstart.split(" ")[1])
                has_body = method != "HEAD" and status not in (204, 304) and not 100 <= status < 200
                rbody = await read_body(ureader, rheaders, has_body)
                if fault == "reset":
                    whole = rhead + rbody
                    cwriter.write(whole[:len(whole) // 2])
                    await cwriter.drain()
                    abort(cwriter)
                    break
                if fault == "truncate" and len(rbody) > 1:
                    cwriter.write(rhead + rbody[:len(rbody) // 2])
                    await cwriter.drain()
                    break
                cwriter.write(rhead + rbody)
                await cwriter.drain()
                if rheaders.get("connection", "").lower() == "close" or "content-length" not in rheaders and \
                        has_body and rheaders.get("transfer-encoding", "").lower() != "chunked":
                    break
        except (ConnectionError, asyncio.IncompleteReadError, ValueError, OSError, ssl.SSLError):
            pass
        finally:
            if upstream is not None:
                upstream[1].close()
            cwriter.close()

    # ---- tcp ----------------------------------------------------------------

    async def tcp_client(self, creader, cwriter):
        self.count("connections")
        if self.stats["connections"] <= self.args.reset_first:  # refused as it starts: a failover, a restart
            self.count("reset_at_start")
            abort(cwriter)
            return
        try:
            ureader, uwriter = await asyncio.open_connection(self.up_host, self.up_port)
        except OSError:
            abort(cwriter)
            return
        pair = (cwriter, uwriter)
        self.open.add(pair)

        dead = [False]

        async def pipe(r, w):
            # With a delay, a reader stamps each chunk and a writer releases it
            # when its time comes: the stream is late, not slower.
            queue = asyncio.Queue() if self.args.delay_ms else None

            async def release():
                while (item := await queue.get()) is not None:
                    due, data = item
                    await asyncio.sleep(max(0.0, due - asyncio.get_running_loop().time()))
                    w.write(data)
                    await w.drain()

            writer = asyncio.get_running_loop().create_task(release()) if queue else None
            try:
                while data := await r.read(65536):
                    if dead[0] or self.blackholed():
                        if not dead[0]:
                            self.count("blackholed_connections")
                        dead[0] = True  # its stream has a hole: never usable again
                        continue
                    if queue:
                        queue.put_nowait((asyncio.get_running_loop().time() + self.args.delay_ms / 1000, data))
                        continue
                    w.write(data)
                    await w.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                if writer:
                    queue.put_nowait(None)
                    try:
                        await writer
                    except (ConnectionError, OSError):
                        pass
                w.close()

        await asyncio.gather(pipe(creader, uwriter), pipe(ureader, cwriter))
        self.open.discard(pair)

    def blackholed(self):
        if not self.args.blackhole_for:
            return False
        since = asyncio.get_running_loop().time() - self.started
        return self.args.blackhole_at <= since < self.args.blackhole_at + self.args.blackhole_for

    async def killer(self):
        while True:
            await asyncio.sleep(self.args.kill_every)
            for cw, uw in list(self.open):
                self.count("kill")
                abort(cw)
                abort(uw)
            self.open.clear()

    async def main(self):
        handler = self.http_client if self.args.mode == "http" else self.tcp_client
        self.started = asyncio.get_running_loop().time()
        tls = None
        if self.args.tls_cert:  # a TLS front, for the certificate tests
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.load_cert_chain(self.args.tls_cert, self.args.tls_key)
        server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=tls)
        port = server.sockets[0].getsockname()[1]
        if self.args.mode == "tcp" and self.args.kill_every:
            asyncio.get_running_loop().create_task(self.killer())
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        with open(self.args.port_file, "w") as f:
            f.write(str(port))
        async with server:
            await stop.wait()
        if self.args.stats_file:
            with open(self.args.stats_file, "w") as f:
                json.dump(self.stats, f)


def main(argv):
    p = argparse.ArgumentParser()
    p.add_argument("--mode", choices=["http", "tcp"], required=True)
    p.add_argument("--upstream", required=True)
    p.add_argument("--port-file", required=True)
    p.add_argument("--stats-file")
    p.add_argument("--fault", choices=["latency", "reset", "blackhole", "e500", "e503", "copy_error", "truncate",
                                       "partial", "delete_denied"])
    p.add_argument("--rate", type=float, default=0.0)
    p.add_argument("--after", type=int, default=0, help="pass this many requests through untouched first")
    p.add_argument("--base-ms", type=float, default=0.0)
    p.add_argument("--jitter-ms", type=float, default=0.0)
    p.add_argument("--kill-every", type=float, default=0.0)
    p.add_argument("--reset-first", type=int, default=0, help="tcp: reset the first N connections at once")
    p.add_argument("--blackhole-at", type=float, default=0.0)
    p.add_argument("--blackhole-for", type=float, default=0.0)
    p.add_argument("--delay-ms", type=float, default=0.0, help="tcp: every byte arrives this much later, each way")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--tls-cert", help="serve TLS with this certificate (PEM)")
    p.add_argument("--tls-key")
    asyncio.run(Proxy(p.parse_args(argv)).main())


if __name__ == "__main__":
    main(sys.argv[1:])
