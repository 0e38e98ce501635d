#!/usr/bin/python3
"""`aisle demo --once` on a small shop: the embedded defaults start, the tour
prints recommendations with reasons and a freshness figure, and the demo
stops its redis-server child on the way out."""

import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aisle_env  # noqa: E402


class Demo(unittest.TestCase):
    def test_demo_tour(self):
        r = subprocess.run([aisle_env.aisle_binary(), "demo", "--once", "--listen",
                            "127.0.0.1:0", "--items", "600", "--users", "30",
                            "--signals-per-user", "10"],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        out = r.stdout
        self.assertIn("Catalog: 600 products", out)
        self.assertIn("Signals: 300 from 30 shoppers", out)
        self.assertRegex(out, r"u00000 likes \w+ and \w+")
        self.assertIn("Similar to", out)
        self.assertRegex(out, r"Freshness: .* led their recommendations \d+ ms later")
        self.assertIn("Stopped; redis-server and the Kafka mock cluster are gone.", out)
        redis_port = re.search(r"redis 127\.0\.0\.1:(\d+)", out).group(1)
        self.assertFalse(aisle_env._redis_ping(int(redis_port)), "redis child still up")


if __name__ == "__main__":
    unittest.main(verbosity=2)
