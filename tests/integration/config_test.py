#!/usr/bin/python3
"""The YAML configuration file: `aisle config example` is valid YAML whose
every key names a flag the command accepts, with the default its --help
states; `aisle config check` accepts it and prints the effective values;
errors name the file, the line and the reason; flags override the file;
secrets come from the environment and are never printed."""

import os
import re
import subprocess
import sys
import tempfile
import json
import unittest

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aisle_env  # noqa: E402


def run(*args, env=None):
    return subprocess.run([aisle_env.aisle_binary()] + list(args), capture_output=True,
                          text=True, timeout=60, env=env)


def write(text):
    f = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
    f.write(text)
    f.close()
    return f.name


def example_keys(text):
    """[(dotted key, flag, value or None when commented out)] of the example."""
    keys, path, flag = [], [], None
    for line in text.splitlines():
        m = re.match(r"^( *)# .*\[--([a-z-]+)\]$", line)
        if m:
            flag = m.group(2)
            continue
        m = re.match(r"^( *)(# )?([a-z_]+):(?: (.*))?$", line)
        if not m:
            continue
        depth = len(m.group(1)) // 2
        path = path[:depth]
        if flag is None:  # a section
            path.append(m.group(3))
            continue
        keys.append((".".join(path + [m.group(3)]), flag, None if m.group(2) else m.group(4)))
        flag = None
    return keys


class Config(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        r = run("config", "example")
        assert r.returncode == 0, r.stderr
        cls.example = r.stdout

    def test_example_is_yaml_and_check_accepts_it(self):
        doc = yaml.safe_load(self.example)
        self.assertEqual(doc["serve"]["http"]["listen"], "127.0.0.1:9464")
        self.assertEqual(doc["ingest"]["http"]["listen"], "127.0.0.1:9465")
        # The settings files, read again when they change; the page-token key
        # is a secret and only named.
        self.assertIn("# scorer_file: /etc/aisle/scorer.txt", self.example)
        self.assertIn("# rules_file: /etc/aisle/rules.txt", self.example)
        self.assertIn("AISLE_PAGE_SECRET", self.example)
        path = write(self.example)
        r = run("config", "check", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("threads: 4  # line", r.stdout)
        self.assertIn("# snapshots: /var/lib/aisle/snapshots  # not set", r.stdout)
        self.assertIsInstance(yaml.safe_load(r.stdout), dict)

    def test_every_key_is_a_flag_with_the_help_default(self):
        keys = example_keys(self.example)
        self.assertGreater(len(keys), 40)
        helps = {c: run(c, "--help").stdout for c in ("serve", "ingest", "ctl", "synth", "demo")}
        shared = {"kafka.brokers": ["serve", "ingest", "ctl", "synth"],
                  "log.level": ["serve", "ingest", "demo"]}
        for key, flag, value in keys:
            cmds = shared.get(key) or ([key.split(".")[0]] if key.split(".")[0] in helps
                                       else ["serve", "ingest"])
            for cmd in cmds:
                m = re.search(r"^\s+--%s\b.*$" % re.escape(flag), helps[cmd], re.M)
                self.assertTrue(m, "%s: aisle %s has no --%s" % (key, cmd, flag))
                d = re.search(r"\(default ([^;), ]+)", m.group(0))
                if d and value is not None and not (key == "log.level" and cmd == "demo"):
                    self.assertEqual(d.group(1).split(",")[0].rstrip(":"),
                                     value.split(",")[0], "%s default" % key)

    def check_error(self, text, line, *words):
        path = write(text)
        r = run("config", "check", path)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("%s:%d: " % (path, line), r.stderr)
        for w in words:
            self.assertIn(w, r.stderr)
        return r.stderr

    def test_errors_name_file_line_and_reason(self):
        self.check_error("kafka:\n  brokers: k:1\nserve:\n  treads: 4\n", 4,
                         "unknown key serve.treads")
        self.check_error("redis:\n  address: r:1\n\nserve:\n  threads: lots\n", 5,
                         "serve.threads", "--threads must be a whole number")
        self.check_error("log:\n  level: loud\n", 2, "log.level", "debug, info, warn or error")
        self.check_error("synth:\n  items: lots\n", 2, "synth.items", "not 'lots'")
        self.check_error("demo:\n  seed: -1\n", 2, "demo.seed", "--seed")
        self.check_error("serve:\n  http: 5\n", 2, "serve.http should be a mapping")
        self.check_error("serve:\n  listen: [1\n", 3, "not YAML")
        self.check_error("serve:\n  threads: 1\n  threads: 2\n", 3, "given twice")
        self.check_error("serve:\n  model:\n", 2, "has no value")
        self.check_error("profile:\n  kind_weights: view=x\n", 2, "--kind-weights")
        self.check_error("ingest:\n  kafka_options:\n    - sasl.password=hunter2\n", 3,
                         "secrets do not belong in the file", "AISLE_KAFKA_SASL_PASSWORD")
        self.check_error("redis:\n  password: hunter2\n", 2, "secrets do not belong")
        r = run("serve", "--config", "/nonexistent.yaml")
        self.assertEqual(r.returncode, 2)
        self.assertIn("/nonexistent.yaml", r.stderr)

    def test_secrets_come_from_the_environment_and_stay_hidden(self):
        path = write("kafka:\n  brokers: k:1\nredis:\n  address: r:1\n")
        env = dict(os.environ, AISLE_KAFKA_SASL_USERNAME="svc",
                   AISLE_KAFKA_SASL_PASSWORD="hunter2-secret")
        r = run("config", "check", path, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("AISLE_KAFKA_SASL_PASSWORD: set", r.stdout)
        self.assertNotIn("hunter2", r.stdout + r.stderr)

    def test_flags_override_the_file(self):
        procs = aisle_env.Procs()
        try:
            _, redis = procs.redis()
            _, brokers = procs.kafka()
            path = write("kafka:\n  brokers: %s\nredis:\n  address: %s\nlog:\n  format: text\n"
                         "serve:\n  listen: 127.0.0.1:0\n  http:\n    listen: 127.0.0.1:0\n"
                         "  dim: 8\n  threads: 2\n  insecure: true\n" % (brokers, redis))
            p, _ = procs.start("serve", [aisle_env.aisle_binary(), "serve", "--config", path,
                                         "--log-format", "json"], "aisle serve: http on port ")
            procs.stop(p)
            with open(p.logfile) as f:
                lines = [l for l in f if l.startswith("{")]
            self.assertTrue(lines)
            rec = json.loads(lines[0])  # the flag's json beat the file's text
            self.assertIn("component", rec)
        finally:
            self.assertEqual(procs.close(), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
