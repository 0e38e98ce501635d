"""The module's profile record against the script's hash: the same random
AISLE.APPLY calls (many users a call, several origins, replays by offset
and by id, long names, kinds over their bounds so trims run, times that
move the landmark so rebases run) sent as AISLE.APPLY to a Redis loading
aisle_redis.so and as the apply script's EVALSHA to one without it give
the same replies, every record passes the format's checks after every
call, and at the end each user's record holds exactly the hash's fields
and values. Without the module in the run (the _lua variant has none)
there is nothing to compare, and the test says so."""

import ast
import os
import random
import re
import struct
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aisle_env  # noqa: E402
import ingest_support as sup  # noqa: E402

USERS = 30
CALLS = 1500


def source(name):
    """The text of services/profile/NAME."""
    here = os.path.dirname(os.path.abspath(__file__))
    for path in (os.path.join(here, "..", "..", "services", "profile", name),
                 os.path.join("services", "profile", name)):
        if os.path.exists(path):
            with open(path) as f:
                return f.read()
    raise FileNotFoundError(name)


def apply_script():
    """The apply script's text, from profile.c's string literals and the
    precord.h string macros (the verdict letters) spliced among them."""
    macros = dict(re.findall(r'^#define (PRECORD_\w+) "([^"]*)"', source("precord.h"), re.M))
    body = source("profile.c")
    body = body[body.index("static const char profile_apply_lua[] ="):]
    body = re.sub(r"/\*.*?\*/", "", body[:body.index(";\n")], flags=re.S)
    toks = re.findall(r'"((?:[^"\\]|\\.)*)"|\b(PRECORD_\w+)\b', body)
    return "".join(ast.literal_eval('"%s"' % lit) if lit else macros[name]
                   for lit, name in toks)


def check_record(b):
    """precord_check's rules, independently: the index strictly sorted by
    (kind, name), names inside the heap, the count of marks right. No
    record (a user whose every run was held back so far) has no fields."""
    if b is None:
        return {}
    fields = sup.parse_record(b)
    count, marks, heap = struct.unpack_from("<III", b, 8)
    base, prev, seen_marks = 56 + 16 * count, None, 0
    for i in range(count):
        off, length, kind, zero, _ = struct.unpack_from("<IHBBd", b, 56 + 16 * i)
        key = (kind, b[base + off:base + off + length])
        assert off + length <= heap and zero == 0 and (prev is None or prev < key), i
        seen_marks += kind == ord("o")
        prev = key
    assert seen_marks == marks
    return fields


class RecordTest(unittest.TestCase):
    def setUp(self):
        self.procs = aisle_env.Procs()

    def tearDown(self):
        self.procs.close()

    def test_record_holds_what_the_hash_holds(self):
        if not aisle_env.redis_module_args():
            self.skipTest("no module in this run")
        mod = sup.Resp(int(self.procs.redis()[1].split(":")[1]))
        lua = sup.Resp(int(self.procs.redis(module=False)[1].split(":")[1]))
        sha = lua.cmd("SCRIPT", "LOAD", apply_script())
        rnd = random.Random(13)
        t0, ev, offsets = 1796000000000, 0, {}
        for call in range(CALLS):
            now = t0 + 3000 * call  # 3 half-lives a call: the landmark moves
            head = ["5", "3", "3", "6", "4", "50", str(now - 60000), str(now), "0", "604800",
                    "1000", "8"]
            keys, tail = [], []
            users = rnd.sample(range(USERS), rnd.randint(1, 6))
            for u in users:
                keys += ["aisle:u:{r%d}:profile" % u, "aisle:u:{r%d}:events" % u]
                fields = {}
                for _ in range(rnd.randint(0, 8)):
                    k = rnd.choice("idcgbspf")
                    name = "x" * rnd.randint(1, 300) if rnd.random() < 0.05 else \
                        "n%d" % rnd.randrange(40)
                    fields["%s:%s" % (k, name)] = str(rnd.randint(1, 9) if k not in "spf"
                                                      else now + rnd.randrange(1000))
                mark = rnd.choice(["", "o:t:%d" % (u % 3), "o:topic:%d" % (u % 2)])
                n = rnd.randint(1, 3)
                tail += [mark, str(n), str(len(fields)), str(now), str(now)]
                for _ in range(n):
                    replay = rnd.random() < 0.1 and ev > 0
                    ev += 0 if replay else 1
                    off = offsets.get((u, mark), 0) + (0 if replay else 1)
                    offsets[(u, mark)] = off
                    tail += ["e%d" % ev, str(off if mark else -1), str(now)]
                for f, v in fields.items():
                    tail += [f, v]
            args = [str(len(keys))] + keys + head + tail
            got, want = mod.cmd("AISLE.APPLY", *args), lua.cmd("EVALSHA", sha, *args)
            self.assertEqual(got, want, "call %d" % call)
            for u in users:
                check_record(mod.cmd("GET", "aisle:u:{r%d}:profile" % u, raw=True))
        for u in range(USERS):
            key = "aisle:u:{r%d}:profile" % u
            rec = check_record(mod.cmd("GET", key, raw=True))
            flat = lua.cmd("HGETALL", key)
            hashed = {flat[i]: float(flat[i + 1]) for i in range(0, len(flat), 2)}
            self.assertEqual(sorted(rec), sorted(hashed), "user %d" % u)
            for k, v in hashed.items():
                self.assertAlmostEqual(rec[k] / (v or 1), 1 if v else 0, places=9,
                                       msg="user %d field %s" % (u, k))


if __name__ == "__main__":
    unittest.main()
