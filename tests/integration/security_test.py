#!/usr/bin/python3
"""Transport security and access control on a real server: TLS and mTLS
handshakes from grpcio with certificates made by openssl at test time, a
certificate reload on SIGHUP, every role and token case (gRPC, and the HTTP
console's paths), `aisle ctl` over TLS, mTLS and tokens, its Kafka settings,
the request-size limit, a Shop call that carries no message (it used to leak its call, which
LeakSanitizer reports at exit under --config=asan), and Health turning
NOT_SERVING while Redis is down."""

import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aisle_env  # noqa: E402

APP_TOKEN = "app-token-0123456789"
ADMIN_TOKEN = "admin-token-9876543210"


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            "/CN=" + name, "-keyout", name + ".key", "-out", name + ".pem", cwd=d)


def make_cert(d, name, ca, cn, server):
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + cn, "-keyout",
            name + ".key", "-out", name + ".csr", cwd=d)
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n" if server
                else "extendedKeyUsage=clientAuth\n")
    openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
            "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", name + ".pem", cwd=d)


def read(d, f):
    with open(os.path.join(d, f), "rb") as fh:
        return fh.read()


class Security(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pb, _ = aisle_env.protos()
        cls.dir = tempfile.mkdtemp(prefix="aisle-tls-")
        d = cls.dir
        for ca in ("ca", "ca2"):
            make_ca(d, ca)
        make_cert(d, "server", "ca", "localhost", True)
        make_cert(d, "server2", "ca2", "localhost", True)
        make_cert(d, "client", "ca", "shop-app", False)
        with open(os.path.join(d, "tokens"), "w") as f:
            f.write("# role sha256-of-token\n")
            f.write("app %s\n" % hashlib.sha256(APP_TOKEN.encode()).hexdigest())
            f.write("admin %s  # operators\n" % hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest())
        # serve reads the files named here; the reload test swaps their contents
        for f in ("server.pem", "server.key"):
            with open(os.path.join(d, "live-" + f), "wb") as out:
                out.write(read(d, f))
        cls.procs = aisle_env.Procs()
        try:
            cls.redis_proc, cls.redis = cls.procs.redis()
            _, cls.brokers = cls.procs.kafka()
            tls = ["--tls-cert", os.path.join(d, "live-server.pem"),
                   "--tls-key", os.path.join(d, "live-server.key"),
                   "--tokens-file", os.path.join(d, "tokens")]
            cls.serve, cls.addr = cls.procs.serve(cls.brokers, cls.redis, 4, tls)
            cls.mserve, cls.maddr = cls.procs.serve(
                cls.brokers, cls.redis, 4,
                ["--tls-cert", os.path.join(d, "server.pem"),
                 "--tls-key", os.path.join(d, "server.key"),
                 "--tls-client-ca", os.path.join(d, "ca.pem")])
        except Exception:
            cls.procs.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.procs.close_checked()

    def channel(self, addr=None, ca="ca.pem", client=False):
        creds = grpc.ssl_channel_credentials(
            root_certificates=read(self.dir, ca),
            private_key=read(self.dir, "client.key") if client else None,
            certificate_chain=read(self.dir, "client.pem") if client else None)
        return grpc.secure_channel(addr or self.addr, creds,
                                   options=[("grpc.ssl_target_name_override", "localhost")])

    def call(self, ch, method, req, resp, token=None, timeout=5):
        f = ch.unary_unary("/aisle.v1.Recommender/" + method,
                           request_serializer=req.SerializeToString,
                           response_deserializer=resp.FromString)
        md = [("authorization", "Bearer " + token)] if token else None
        return f(req, metadata=md, timeout=timeout)

    def recommend(self, ch, token, user="u1"):
        return self.call(ch, "Recommend", self.pb.RecommendRequest(user_id=user, limit=3),
                         self.pb.RecommendResponse, token)

    def code_of(self, fn):
        try:
            fn()
        except grpc.RpcError as e:
            return e.code()
        return grpc.StatusCode.OK

    def test_tls_and_tokens(self):
        with self.channel() as ch:
            self.assertEqual(self.code_of(lambda: self.recommend(ch, None)),
                             grpc.StatusCode.UNAUTHENTICATED)
            self.assertEqual(self.code_of(lambda: self.recommend(ch, "not-a-token")),
                             grpc.StatusCode.UNAUTHENTICATED)
            self.assertEqual(self.code_of(lambda: self.recommend(ch, APP_TOKEN)),
                             grpc.StatusCode.OK)
            self.assertEqual(self.code_of(lambda: self.recommend(ch, ADMIN_TOKEN)),
                             grpc.StatusCode.OK)
            delete = lambda tok: self.call(ch, "DeleteProfile",  # noqa: E731
                                           self.pb.DeleteProfileRequest(user_id="u1"),
                                           self.pb.DeleteProfileResponse, tok)
            self.assertEqual(self.code_of(lambda: delete(APP_TOKEN)),
                             grpc.StatusCode.PERMISSION_DENIED)
            self.assertEqual(self.code_of(lambda: delete(ADMIN_TOKEN)), grpc.StatusCode.OK)
            # Health needs no token (probes carry none).
            aisle_env.wait_for(lambda: aisle_env.healthy(ch), 20, "TLS serve to be SERVING")
        # The token never reaches the log.
        self.assertNotIn(APP_TOKEN, self.procs.log(self.serve))

    def http(self, path, token=None, proc=None):
        """(status, body) of GET path on serve's HTTP address."""
        req = urllib.request.Request("http://%s%s" % ((proc or self.serve).http, path))
        if token:
            req.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def test_http_paths_take_the_same_tokens(self):
        self.assertEqual(self.http("/metrics")[0], 200)  # Prometheus and probes carry none
        self.assertEqual(self.http("/healthz")[0], 200)
        self.assertEqual(self.http("/console")[0], 200)  # the page itself holds no data
        self.assertEqual(self.http("/api/index")[0], 401)
        self.assertEqual(self.http("/api/index", "not-a-token")[0], 401)
        self.assertEqual(self.http("/api/index", APP_TOKEN)[0], 200)
        self.assertEqual(self.http("/api/catalog/search?q=x")[0], 401)
        self.assertEqual(self.http("/api/experiments", APP_TOKEN)[0], 403)
        status, body = self.http("/api/experiments", ADMIN_TOKEN)
        self.assertEqual(status, 200, body)
        # The console's calls reach the TLS server through its private socket
        # as the operator's token: the app role may look a user up.
        status, body = self.http("/api/user?user=u1", APP_TOKEN)
        self.assertEqual(status, 200, body)
        self.assertIn('"recommendations"', body)
        self.assertEqual(self.http("/api/user?user=u1")[0], 401)
        self.assertNotIn(ADMIN_TOKEN, self.procs.log(self.serve))

    def ctl(self, *args, token=None, env=None):
        e = dict(os.environ, **(env or {}))
        e.pop("AISLE_TOKEN", None)
        if token:
            e["AISLE_TOKEN"] = token
        return subprocess.run([aisle_env.aisle_binary(), "ctl"] + list(args), env=e,
                              capture_output=True, text=True, timeout=30)

    def test_ctl_over_tls_with_tokens(self):
        tls = ["--server", self.addr, "--tls-ca", os.path.join(self.dir, "ca.pem"),
               "--tls-server-name", "localhost"]
        r = self.ctl("recommend", "u1", *tls, token=APP_TOKEN)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.ctl("recommend", "u1", *tls)
        self.assertEqual(r.returncode, 1)
        self.assertIn("UNAUTHENTICATED", r.stderr)
        r = self.ctl("profile", "delete", "u9", *tls, token=APP_TOKEN)
        self.assertIn("PERMISSION_DENIED", r.stderr)
        r = self.ctl("profile", "delete", "u9", *tls, token=ADMIN_TOKEN)
        self.assertIn(r.returncode, (0, 4), r.stderr)  # erased, or no such user: allowed
        # Plaintext to a TLS port does not get through.
        self.assertNotEqual(self.ctl("recommend", "u1", "--server", self.addr,
                                     "--timeout-ms", "2000", token=APP_TOKEN).returncode, 0)
        r = self.ctl("index", "status", "--http", self.serve.http, token=APP_TOKEN)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotEqual(self.ctl("index", "status", "--http", self.serve.http).returncode, 0)
        self.assertNotIn(APP_TOKEN, r.stdout + r.stderr)

    def test_ctl_over_mtls(self):
        tls = ["--server", self.maddr, "--tls-ca", os.path.join(self.dir, "ca.pem"),
               "--tls-server-name", "localhost", "--timeout-ms", "3000"]
        client = ["--tls-cert", os.path.join(self.dir, "client.pem"),
                  "--tls-key", os.path.join(self.dir, "client.key")]
        r = self.ctl("recommend", "u1", *(tls + client))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotEqual(self.ctl("recommend", "u1", *tls).returncode, 0)
        r = self.ctl("recommend", "u1", *(tls + ["--tls-cert", os.path.join(self.dir, "client.pem")]))
        self.assertEqual(r.returncode, 2)  # a certificate without its key is a usage error
        r = self.ctl("recommend", "u1", "--tls-ca", os.path.join(self.dir, "missing.pem"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("missing.pem", r.stderr)

    def test_ctl_kafka_settings(self):
        secret = "hunter2-do-not-print"
        r = self.ctl("track", "u1", "view", "i1", "--kafka-brokers", self.brokers,
                     "--kafka-opt", "security.protocol=carrier-pigeon",
                     env={"AISLE_KAFKA_SASL_PASSWORD": secret})
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("security.protocol", r.stderr)
        self.assertNotIn(secret, r.stdout + r.stderr)
        r = self.ctl("track", "u1", "view", "i1", "--kafka-brokers", self.brokers,
                     "--kafka-opt", "client.rack=r1")
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_plaintext_client_is_refused(self):
        with grpc.insecure_channel(self.addr) as ch:
            self.assertEqual(self.code_of(lambda: self.recommend(ch, APP_TOKEN)),
                             grpc.StatusCode.UNAVAILABLE)

    def test_mtls_requires_a_client_certificate(self):
        with self.channel(self.maddr) as ch:
            self.assertEqual(self.code_of(lambda: self.recommend(ch, None)),
                             grpc.StatusCode.UNAVAILABLE)
        with self.channel(self.maddr, client=True) as ch:
            self.assertEqual(self.code_of(lambda: self.recommend(ch, None)), grpc.StatusCode.OK)

    def serve_certificate(self, name, ca):
        """Puts name's certificate in the files serve reads, sends SIGHUP and
        waits until a client trusting only ca gets through."""
        for f in ("pem", "key"):
            with open(os.path.join(self.dir, "live-server." + f), "wb") as out:
                out.write(read(self.dir, name + "." + f))
        self.serve.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while time.time() < deadline:
            with self.channel(ca=ca) as ch:
                if self.code_of(lambda: self.recommend(ch, APP_TOKEN)) == grpc.StatusCode.OK:
                    return True
            time.sleep(0.1)
        return False

    def test_certificates_reload_on_sighup(self):
        self.assertTrue(self.serve_certificate("server2", "ca2.pem"),
                        "the reloaded certificate was not served")
        self.assertIn("certificates reloaded", self.procs.log(self.serve))
        # A broken file is refused and the current certificate stays.
        with open(os.path.join(self.dir, "live-server.key"), "w") as out:
            out.write("not a key\n")
        self.serve.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        with self.channel(ca="ca2.pem") as ch:
            self.assertEqual(self.code_of(lambda: self.recommend(ch, APP_TOKEN)),
                             grpc.StatusCode.OK)
        self.assertIn("reload refused", self.procs.log(self.serve))
        self.assertTrue(self.serve_certificate("server", "ca.pem"))

    def test_bad_tls_files_are_refused_at_start(self):
        d = self.dir
        cases = [(["--tls-cert", os.path.join(d, "server.pem"),
                   "--tls-key", os.path.join(d, "client.key")], "does not match"),
                 (["--tls-cert", os.path.join(d, "tokens"),
                   "--tls-key", os.path.join(d, "server.key")], "holds no PEM certificate"),
                 (["--tls-cert", os.path.join(d, "missing.pem"),
                   "--tls-key", os.path.join(d, "server.key")], "missing.pem"),
                 (["--tls-cert", os.path.join(d, "server.pem")], "go together")]
        for extra, msg in cases:
            r = subprocess.run([aisle_env.aisle_binary(), "serve", "--listen", "127.0.0.1:0",
                                "--kafka-brokers", self.brokers, "--redis", self.redis] + extra,
                               capture_output=True, text=True, timeout=30)
            self.assertNotEqual(r.returncode, 0, extra)
            self.assertIn(msg, r.stderr, extra)
            self.assertNotIn("PRIVATE KEY", r.stderr)

    def test_request_size_limit(self):
        with self.channel(self.maddr, client=True) as ch:
            big = self.pb.RecommendRequest(user_id="u" * 200000, limit=3)
            code = self.code_of(lambda: self.call(ch, "Recommend", big, self.pb.RecommendResponse))
            self.assertEqual(code, grpc.StatusCode.RESOURCE_EXHAUSTED)

    def test_shop_without_a_message(self):
        with self.channel(self.maddr, client=True) as ch:
            shop = ch.stream_stream("/aisle.v1.Recommender/Shop",
                                    request_serializer=lambda b: b,
                                    response_deserializer=lambda b: b)
            for _ in range(20):
                with self.assertRaises(grpc.RpcError) as cm:
                    list(shop(iter(()), timeout=5))
                self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
            # Recommend still answers: the stream workers are not stuck.
            self.assertEqual(self.code_of(lambda: self.recommend(ch, None)), grpc.StatusCode.OK)

    def test_redis_auth_from_the_environment(self):
        """A Redis with requirepass: serve authenticates on every connection
        with AISLE_REDIS_PASSWORD, and without it Health says NOT_SERVING."""
        port = aisle_env.free_port()
        self.procs.start("redis-auth", ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                        "--save", "", "--appendonly", "no",
                                        "--requirepass", "s3cret-pass"])
        time.sleep(0.3)
        addr = "127.0.0.1:%d" % port
        env = dict(os.environ, AISLE_REDIS_PASSWORD="s3cret-pass")
        good, gaddr = self.procs.start("serve-auth", [
            aisle_env.aisle_binary(), "serve", "--insecure", "--listen", "127.0.0.1:0",
            "--http-listen", "127.0.0.1:0", "--kafka-brokers", self.brokers, "--redis", addr,
            "--dim", "4"], "aisle serve: listening on port ", env=env)
        bad, baddr = self.procs.start("serve-noauth", [
            aisle_env.aisle_binary(), "serve", "--insecure", "--listen", "127.0.0.1:0",
            "--http-listen", "127.0.0.1:0", "--kafka-brokers", self.brokers, "--redis", addr,
            "--dim", "4"], "aisle serve: listening on port ")
        with grpc.insecure_channel("127.0.0.1:" + gaddr) as ch:
            aisle_env.wait_for(lambda: aisle_env.healthy(ch), 20, "SERVING with AUTH")
        with grpc.insecure_channel("127.0.0.1:" + baddr) as ch:
            time.sleep(1)
            self.assertFalse(aisle_env.healthy(ch))
        self.assertNotIn("s3cret-pass", self.procs.log(good) + self.procs.log(bad))

    def test_z_health_follows_redis(self):
        """Last: the Redis restart costs each worker's connection one call."""
        with self.channel(self.maddr, client=True) as ch:
            aisle_env.wait_for(lambda: aisle_env.healthy(ch), 20, "SERVING")
            port = self.redis.split(":")[1]
            self.procs.stop(self.redis_proc)
            try:
                aisle_env.wait_for(lambda: not aisle_env.healthy(ch), 10, "NOT_SERVING")
            finally:
                self.redis_proc, _ = self.procs.start(
                    "redis", ["redis-server", "--port", port, "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no"])
            aisle_env.wait_for(lambda: aisle_env.healthy(ch), 20, "SERVING again")


if __name__ == "__main__":
    unittest.main(verbosity=2)
