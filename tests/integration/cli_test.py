#!/usr/bin/python3
"""The aisle binary's command line: help for every command, clear errors and
exit status 2 for bad flags."""

import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aisle_env  # noqa: E402

COMMANDS = ["serve", "ingest", "demo", "synth", "kafka-mock"]


def run(*args):
    return subprocess.run([aisle_env.aisle_binary()] + list(args), capture_output=True,
                          text=True, timeout=30)


class Cli(unittest.TestCase):
    def test_help_lists_commands(self):
        r = run("--help")
        self.assertEqual(r.returncode, 0)
        for c in COMMANDS:
            self.assertIn(c, r.stdout)

    def test_each_command_explains_its_flags(self):
        for c in COMMANDS:
            r = run(c, "--help")
            self.assertEqual(r.returncode, 0, c)
            self.assertIn("Usage: aisle " + c, r.stdout)
            self.assertIn("--help", r.stdout)

    def test_bad_flags_exit_2_with_a_clear_error(self):
        cases = [
            (["serve", "--bogus"], "unknown"),
            (["serve", "--redis", "x:1"], "--kafka-brokers is required"),
            (["serve", "--kafka-brokers", "k:1", "--redis", "r:1"], "--insecure"),
            (["ingest", "--kafka-brokers", "x:1"], "--redis is required"),
            (["serve", "--kafka-brokers", "k:1", "--redis", "r:1", "--dim", "0"], "--dim"),
            (["demo", "--items", "lots"], "--items must be a whole number"),
            (["kafka-mock", "extra"], "unexpected argument"),
            (["nonsense"], "unknown command"),
            ([], "Usage"),
        ]
        for args, msg in cases:
            r = run(*args)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn(msg, r.stderr, args)

    def test_unreachable_listen_address_is_an_error(self):
        r = run("serve", "--listen", "256.1.1.1:1", "--kafka-brokers", "127.0.0.1:1",
                "--redis", "127.0.0.1:1", "--insecure")
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot listen", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
