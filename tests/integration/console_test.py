#!/usr/bin/python3
"""The admin console in a real browser: Debian's headless Chromium, driven
over the DevTools protocol, loads /console from a running aisle serve, looks
up a user (profile and recommendations), asks Shop a question and watches
the answer stream in, searches the catalog, checks what the page shows, and
saves a screenshot (console.png in Bazel's test outputs, or the log dir)."""

import base64
import importlib
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request
import uuid

import grpc
from confluent_kafka import Producer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aisle_env  # noqa: E402

DIM = 8
CHROMIUM = "/usr/bin/chromium"


class DevTools:
    """The DevTools protocol over a WebSocket, with the standard library
    only: a masked text frame per command, answers matched by id."""

    def __init__(self, ws_url):
        host_port, path = ws_url[len("ws://"):].split("/", 1)
        host, port = host_port.split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(("GET /%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n" % (path, host_port, key)).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        assert b" 101 " in head.split(b"\r\n")[0], head
        self.next_id = 0

    def _recv_exact(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("DevTools closed the connection")
            data += chunk
        return data

    def _recv_message(self):
        parts = []
        while True:
            b0, b1 = self._recv_exact(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._recv_exact(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._recv_exact(8))[0]
            parts.append(self._recv_exact(n))
            if b0 & 0x80:  # FIN
                return b"".join(parts).decode()

    def call(self, method, **params):
        self.next_id += 1
        payload = json.dumps({"id": self.next_id, "method": method, "params": params}).encode()
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else
                                bytes([0x80 | 126]) + struct.pack(">H", n) if n < 65536 else
                                bytes([0x80 | 127]) + struct.pack(">Q", n))
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
        while True:
            msg = json.loads(self._recv_message())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError("%s: %s" % (method, msg["error"]))
                return msg["result"]

    def js(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError("%s: %s" % (expr, r["exceptionDetails"]))
        return r["result"].get("value")

    def wait(self, expr, what, timeout=20):
        aisle_env.wait_for(lambda: self.js(expr), timeout, what, 0.1)


class Console(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pb, cls.ev = aisle_env.protos()
        cls.procs = aisle_env.Procs()
        try:
            _, redis = cls.procs.redis()
            _, brokers = cls.procs.kafka()
            p = Producer({"bootstrap.servers": brokers, "linger.ms": 1})
            for i in range(30):
                v = [0.0] * DIM
                v[i % DIM] = 1.0
                it = cls.ev.CatalogItem(item_id="q%02d" % i, title="Crema kettle %d" % i,
                                        creator_id="c%d" % (i % 4), category="coffee",
                                        price_cents=1500 + 100 * i, in_stock=True, brand="Crema",
                                        embedding=v)
                p.produce("aisle.catalog", key=it.item_id, value=it.SerializeToString())
            for i in (1, 2):
                s = cls.ev.Signal(event_id=uuid.uuid4().hex, user_id="shopper", kind=cls.ev.LIKE,
                                  item_id="q%02d" % i, ts_ms=int(time.time() * 1000))
                p.produce("aisle.signals", key="shopper", value=s.SerializeToString())
            p.flush(10)
            cls.serve, http = cls.procs.start(
                "serve", [aisle_env.aisle_binary(), "serve", "--insecure", "--listen", "127.0.0.1:0",
                          "--http-listen", "127.0.0.1:0", "--kafka-brokers", brokers,
                          "--redis", redis, "--dim", str(DIM)], "aisle serve: http on port ")
            cls.base = "http://127.0.0.1:" + http
            grpc_port = cls.serve.stdout.readline().decode().rsplit(" ", 1)[1].strip()
            xp = importlib.import_module("aisle.v1.experiments_pb2")
            exp = xp.Experiment(name="one_per_creator", layer="rank", salt="c1", share_bp=10000,
                                description="a creator cap of one", variants=[xp.Variant(
                                    name="capped", weight=1, overrides=[xp.ParamOverride(
                                        param="rank.creator_cap", value="1")])])
            with grpc.insecure_channel("127.0.0.1:" + grpc_port) as ch:
                ch.unary_unary("/aisle.v1.Admin/SetExperiment",
                               request_serializer=xp.SetExperimentRequest.SerializeToString,
                               response_deserializer=xp.ExperimentSet.FromString)(
                    xp.SetExperimentRequest(experiment=exp), timeout=10)
            cls.procs.ingest(brokers, redis)
            aisle_env.wait_for(lambda: b'"id":"q01"' in urllib.request.urlopen(
                cls.base + "/api/user?user=shopper").read(), 20, "the profile", 0.2)
            cls.profile_dir = tempfile.mkdtemp(prefix="aisle-chromium-")
            cls.chrome, _ = cls.procs.start("chromium", [
                CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--user-data-dir=" + cls.profile_dir,
                "--remote-debugging-port=0", "--window-size=1400,1100", "about:blank"])
            aisle_env.wait_for(lambda: "DevTools listening on" in cls.procs.log(cls.chrome), 30,
                               "chromium to start", 0.1)
            line = [l for l in cls.procs.log(cls.chrome).splitlines()
                    if "DevTools listening on" in l][0]
            port = line.split("ws://", 1)[1].split("/")[0].split(":")[1]
            pages = json.loads(urllib.request.urlopen("http://127.0.0.1:%s/json/list" % port).read())
            cls.dt = DevTools([t for t in pages if t["type"] == "page"][0]["webSocketDebuggerUrl"])
        except Exception:
            cls.procs.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.procs.close_checked(ignore=("chromium",))

    def test_console_in_a_browser(self):
        dt = self.dt
        dt.call("Page.enable")
        dt.call("Page.navigate", url=self.base + "/console")
        dt.wait("document.readyState === 'complete' && !!document.getElementById('user')",
                "the console to load")
        self.assertEqual(dt.js("document.title"), "Aisle console")
        dt.wait("document.getElementById('index').textContent.includes('30 items')",
                "the index status")
        self.assertIn("catalog caught up", dt.js("document.getElementById('feed').textContent"))

        # A lookup, as a person does it: type, press the button.
        dt.js("document.getElementById('user').value = 'shopper';"
              "document.querySelector('#user-form button').click()")
        dt.wait("!!document.querySelector('#recs table')", "the recommendations")
        page = dt.js("document.getElementById('user-out').innerText")
        self.assertIn("shopper", page)
        self.assertIn("q01", page)            # in the profile's items
        self.assertIn("Crema kettle", page)   # recommended items, with titles
        self.assertIn("Similar to", page)     # and their reasons
        self.assertRegex(page, r"request [0-9a-f]{8}-")
        self.assertIn("rank / one_per_creator → capped",
                      dt.js("document.getElementById('assignments').innerText"))
        self.assertIn("from ", page)          # each item's sources
        dt.wait("!!document.querySelector('#exp-out table')", "the experiments panel")
        exps = dt.js("document.getElementById('exp-out').innerText")
        self.assertIn("one_per_creator", exps)
        self.assertIn("rank.creator_cap=1", exps)

        # A Shop request: the answer streams into the page.
        dt.js("document.getElementById('shop-q').value = 'a kettle under $30';"
              "document.querySelector('#shop-form button').click()")
        dt.wait("document.getElementById('answer').dataset.done === '1'", "the Shop answer")
        answer = dt.js("document.getElementById('answer').innerText")
        self.assertIn("under $30", answer)
        self.assertIn("Crema kettle", dt.js("document.getElementById('shop-items').innerText"))

        dt.js("document.getElementById('cat-q').value = 'kettle 2';"
              "document.querySelector('#cat-form button').click()")
        dt.wait("!!document.querySelector('#cat-out table')", "the catalog search")
        self.assertIn("q02", dt.js("document.getElementById('cat-out').innerText"))

        dt.wait("document.getElementById('v-rps').textContent !== '–'", "the first plot point")
        # Ingest beside serving: the group's lag, read from Kafka by serve.
        dt.wait("document.getElementById('v-lag').textContent === '0'", "the ingest lag plot")
        size = dt.call("Page.getLayoutMetrics")["cssContentSize"]
        shot = base64.b64decode(dt.call(
            "Page.captureScreenshot", format="png", captureBeyondViewport=True,
            clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"],
                  "scale": 1})["data"])
        self.assertEqual(shot[:8], b"\x89PNG\r\n\x1a\n")
        out = os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR", self.procs.logdir)
        with open(os.path.join(out, "console.png"), "wb") as f:
            f.write(shot)
        print("screenshot: %s (%d bytes)" % (os.path.join(out, "console.png"), len(shot)),
              file=sys.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
