#!/usr/bin/python3
"""deploy/ against the binary it deploys: every manifest parses; the flags
the Deployments, the CronJob and the systemd units pass exist in that
command's --help; ports, probes and Services agree with the addresses the
flags set and with the paths the HTTP endpoint serves; the ConfigMap is
deploy/aisle.yaml and `aisle config check` accepts it; the embedding job
writes snapshots where serve reads them; the Secret holds the environment
variables the configuration names."""

import glob
import os
import re
import shlex
import subprocess
import tempfile
import sys
import unittest

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aisle_env  # noqa: E402

DEPLOY = os.path.join(aisle_env.ROOT, "deploy")
# Commands whose first word is a group: the command is two words.
GROUPS = {"embed", "ctl", "config", "model"}


def aisle(*args):
    return subprocess.run([aisle_env.aisle_binary()] + list(args), capture_output=True,
                          text=True, timeout=60)


def help_text(cmd):
    r = aisle(*cmd, "--help")
    return r.stdout + r.stderr


def invocations(words):
    """[(command words, {flag: value})] of every `aisle ...` in a word list
    (a container's command + args, or a shell line split into words)."""
    out, i = [], 0
    while i < len(words):
        w = os.path.basename(words[i])
        if w != "aisle" and not (i == 0 and words[i] in ("serve", "ingest")):
            i += 1
            continue
        j = i + 1 if w == "aisle" else i
        cmd = [words[j]]
        if words[j] in GROUPS:
            cmd.append(words[j + 1])
        j += len(cmd)
        flags = {}
        while j < len(words) and words[j] not in ("&&", ";", "||"):
            if words[j].startswith("--"):
                name, eq, val = words[j].partition("=")
                if not eq and j + 1 < len(words) and not words[j + 1].startswith("--"):
                    val, j = words[j + 1], j + 1
                flags[name] = val
            j += 1
        out.append((cmd, flags))
        i = j
    return out


def load_manifests():
    docs = []
    for path in sorted(glob.glob(os.path.join(DEPLOY, "k8s", "*.yaml"))):
        with open(path) as f:
            docs += [(os.path.basename(path), d) for d in yaml.safe_load_all(f) if d]
    return docs


def pod_spec(doc):
    if doc["kind"] == "Deployment":
        return doc["spec"]["template"]["spec"]
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return None


def container_words(c):
    words = list(c.get("command", [])) + list(c.get("args", []))
    if words[:2] == ["/bin/sh", "-c"]:
        words = shlex.split(words[2])
    return words


class Deploy(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.docs = load_manifests()
        cls.by_kind = {}
        for _, d in cls.docs:
            cls.by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
        with open(os.path.join(DEPLOY, "aisle.yaml")) as f:
            cls.config_text = f.read()
        cls.config = yaml.safe_load(cls.config_text)
        cls.helps = {}

    def assert_flags_exist(self, where, cmd, flags):
        key = " ".join(cmd)
        if key not in self.helps:
            self.helps[key] = help_text(cmd)
        for flag in flags:
            self.assertRegex(self.helps[key], r"(^|\s|\[)%s\b" % re.escape(flag),
                             "%s: aisle %s has no %s" % (where, key, flag))

    def test_kinds_present(self):
        for kind in ("Deployment", "Service", "HorizontalPodAutoscaler", "CronJob", "ConfigMap",
                     "Secret", "PersistentVolumeClaim"):
            self.assertIn(kind, self.by_kind)
        self.assertEqual(set(self.by_kind["Deployment"]), {"aisle-serve", "aisle-ingest"})

    def test_flags_used_exist(self):
        n = 0
        for name, d in self.docs:
            spec = pod_spec(d)
            for c in (spec or {}).get("containers", []):
                for cmd, flags in invocations(container_words(c)):
                    self.assert_flags_exist(name, cmd, flags)
                    n += 1
        for path in glob.glob(os.path.join(DEPLOY, "systemd", "*.service")):
            with open(path) as f:
                for line in f:
                    if line.startswith("ExecStart="):
                        words = shlex.split(line.split("=", 1)[1].replace("%i", "9465"))
                        for cmd, flags in invocations(words):
                            self.assert_flags_exist(os.path.basename(path), cmd, flags)
                            n += 1
        self.assertGreaterEqual(n, 8)

    def test_ports_and_probes_match_the_endpoint(self):
        defaults = {"serve": 9464, "ingest": 9465}
        for name, d in self.by_kind["Deployment"].items():
            c = pod_spec(d)["containers"][0]
            (cmd, flags), = invocations(container_words(c))
            ports = {p["name"]: p["containerPort"] for p in c["ports"]}
            http = int(flags["--http-listen"].rsplit(":", 1)[1])
            self.assertEqual(http, defaults[cmd[0]], name)
            self.assertEqual(ports["http"], http, name)
            self.assertTrue(flags["--http-listen"].startswith("0.0.0.0:"),
                            "%s: a probe from the kubelet needs a pod address" % name)
            self.assertEqual(c["readinessProbe"]["httpGet"]["path"], "/readyz")
            self.assertEqual(c["livenessProbe"]["httpGet"]["path"], "/healthz")
            for probe in ("readinessProbe", "livenessProbe"):
                self.assertEqual(c[probe]["httpGet"]["port"], "http")
            ann = d["spec"]["template"]["metadata"]["annotations"]
            self.assertEqual(int(ann["prometheus.io/port"]), http)
            self.assertEqual(ann["prometheus.io/path"], "/metrics")
            self.assertIn("memory", c["resources"]["requests"])
            self.assertEqual(flags["--config"], "/etc/aisle/aisle.yaml")
            if cmd[0] == "serve":
                self.assertEqual(ports["grpc"], int(flags["--listen"].rsplit(":", 1)[1]))
        svc = self.by_kind["Service"]["aisle-serve"]
        c = pod_spec(self.by_kind["Deployment"]["aisle-serve"])["containers"][0]
        names = {p["name"] for p in c["ports"]}
        for p in svc["spec"]["ports"]:
            self.assertIn(p["targetPort"], names)
        self.assertEqual(svc["spec"]["selector"],
                         self.by_kind["Deployment"]["aisle-serve"]["spec"]["selector"]["matchLabels"])

    def local_credentials(self):
        """Flags that put a certificate made here, and a tokens file, where
        the Secrets the manifest mounts would be."""
        d = tempfile.mkdtemp(prefix="aisle-deploy-tls-")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=localhost", "-keyout", "tls.key", "-out", "tls.crt"],
                       cwd=d, check=True, capture_output=True)
        with open(os.path.join(d, "tokens"), "w") as f:
            f.write("app %s\n" % ("0" * 64))
        return ["--tls-cert", os.path.join(d, "tls.crt"), "--tls-key", os.path.join(d, "tls.key"),
                "--tokens-file", os.path.join(d, "tokens")]

    def test_manifest_args_start_and_serve_the_probed_paths(self):
        """Each Deployment's own arguments start the process (with
        deploy/aisle.yaml, and local Kafka, Redis and ports swapped in by
        flags, which override the file), and its probe paths answer."""
        import urllib.error
        import urllib.request
        procs = aisle_env.Procs()
        exported = set()
        try:
            _, redis = procs.redis()
            _, brokers = procs.kafka()
            for name, d in sorted(self.by_kind["Deployment"].items()):
                c = pod_spec(d)["containers"][0]
                args = [a.replace("/etc/aisle/aisle.yaml", os.path.join(DEPLOY, "aisle.yaml"))
                        for a in container_words(c)]
                args += ["--kafka-brokers", brokers, "--redis", redis, "--http-listen",
                         "127.0.0.1:0"] + (["--listen", "127.0.0.1:0", "--dim", "8"] +
                                           self.local_credentials() if args[0] == "serve" else [])
                _, port = procs.start(name, [aisle_env.aisle_binary()] + args,
                                      "aisle %s: http on port " % args[0])
                for probe in ("livenessProbe", "readinessProbe"):
                    path = c[probe]["httpGet"]["path"]
                    try:
                        code = urllib.request.urlopen("http://127.0.0.1:%s%s" % (port, path),
                                                      timeout=5).status
                    except urllib.error.HTTPError as e:
                        code = e.code
                    self.assertIn(code, (200, 503), "%s %s" % (name, path))
                with urllib.request.urlopen("http://127.0.0.1:%s/metrics" % port) as r:
                    exported |= set(re.findall(r"^# TYPE (\S+)", r.read().decode(), re.M))
        finally:
            self.assertEqual(procs.close(), [])
        # Every metric an alert reads is one the processes export.
        with open(os.path.join(DEPLOY, "prometheus", "alerts.yaml")) as f:
            rules = [r for g in yaml.safe_load(f)["groups"] for r in g["rules"]]
        self.assertGreaterEqual(len(rules), 10)
        with open(os.path.join(DEPLOY, "OPERATIONS.md")) as f:
            anchors = {re.sub(r"[^a-z0-9 -]", "", l.lstrip("#").strip().lower()).replace(" ", "-")
                       for l in f if l.startswith("#")}
        for r in rules:
            for m in re.findall(r"\b((?:aisle|process)_[a-z_]+)", r["expr"]):
                self.assertIn(re.sub(r"_(bucket|count|sum)$", "", m), exported,
                              "%s reads %s" % (r["alert"], m))
            page, _, anchor = r["annotations"]["runbook"].partition("#")
            self.assertEqual(page, "deploy/OPERATIONS.md")
            self.assertIn(anchor, anchors, "%s: no such section" % r["alert"])

    def test_hpa_targets_exist(self):
        for name, h in self.by_kind["HorizontalPodAutoscaler"].items():
            self.assertIn(h["spec"]["scaleTargetRef"]["name"], self.by_kind["Deployment"], name)
            self.assertLessEqual(h["spec"]["minReplicas"], h["spec"]["maxReplicas"])

    def test_configmap_is_the_example_config_and_it_checks(self):
        cm = self.by_kind["ConfigMap"]["aisle-config"]
        self.assertEqual(cm["data"]["aisle.yaml"].strip(), self.config_text.strip())
        r = aisle("config", "check", os.path.join(DEPLOY, "aisle.yaml"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(",", self.config["kafka"]["brokers"], "a real Kafka cluster has brokers")

    def test_cronjob_writes_where_serve_reads(self):
        cj = self.by_kind["CronJob"]["aisle-embed"]
        c = pod_spec(cj)["containers"][0]
        calls = dict((" ".join(cmd), flags) for cmd, flags in invocations(container_words(c)))
        self.assertEqual(calls["embed train"]["--out"], self.config["serve"]["snapshots"])
        self.assertIn("ctl index", calls)  # then every replica reloads
        claim = lambda spec: {v["persistentVolumeClaim"]["claimName"]
                              for v in spec["volumes"] if "persistentVolumeClaim" in v}
        self.assertEqual(claim(pod_spec(cj)),
                         claim(pod_spec(self.by_kind["Deployment"]["aisle-serve"])))

    def test_secret_holds_the_environment_the_config_names(self):
        example = aisle("config", "example").stdout
        secret = self.by_kind["Secret"]["aisle-kafka"]
        for key in secret["stringData"]:
            self.assertIn(key, example)
        for name, d in self.by_kind["Deployment"].items():
            env = pod_spec(d)["containers"][0]["envFrom"]
            self.assertIn({"secretRef": {"name": "aisle-kafka"}}, env, name)


if __name__ == "__main__":
    unittest.main(verbosity=2)
