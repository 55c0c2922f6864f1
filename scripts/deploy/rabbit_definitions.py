"""monitoring/rabbitmq/definitions.template.json, offline and against the local RabbitMQ
(check_compose.sh's `definitions` steps).

offline   exactly dev_secrets.py's users, no guest, no password hashes (dev_secrets.sh adds them), tags
          and permissions as designed (the secure profile's of scripts/local/rabbitmq.sh), topic
          permissions on `pix`; the queues are src/pix/domain/topics.hpp's topics plus pix.unrouted and
          pix.dead-letter; everything in vhost /.
live      in the throwaway vhost VHOST of the local RabbitMQ (management API RABBITMQ_MGMT_URL,
          RABBITMQ_CHECK_USER/RABBITMQ_CHECK_PASSWORD, guest/guest by default), import the exchanges,
          queues and bindings and copies of the users named PREFIX<user> (random passwords) with their
          permissions and topic permissions; `pix-admin topology --skip-kafka` as the pix-admin copy
          must succeed and change nothing, as every other user fail; pix-api as api-rabbitmq and as
          notifier must publish pix.notification.sent, notifier must be refused pix.payment.requested
          and auditor any publish. Everything it made is deleted at the end. Exit 2: no RabbitMQ or no
          built programs.
cleanup   deletes VHOST and the PREFIX* users (best effort; the EXIT trap of check_compose.sh).
hash      prints a RabbitMQ password hash (salted SHA-256, rabbit_password_hashing_sha256).

    scripts/deploy/rabbit_definitions.py offline | live VHOST PREFIX | cleanup VHOST PREFIX | hash PASSWORD
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from checklib import ROOT, Checker, bin_dir, free_port, topic_names
from dev_secrets import rabbit_hash

TEMPLATE = "monitoring/rabbitmq/definitions.template.json"
# The RabbitMQ users (scripts/deploy/dev_secrets.py's RABBIT_USERS) and their tags.
USER_TAGS = {"api-rabbitmq": [], "notifier": [], "auditor": [], "pix-admin": ["administrator"], "pix-tail": [],
             "monitoring": ["monitoring"], "bench": []}


def load_defs(root=ROOT):
    with open(os.path.join(root, TEMPLATE), encoding="utf-8") as fh:
        return json.load(fh)


def check_offline(chk: Checker, d, topics):
    """The template D against the design; TOPICS: the five PIX topics (topics.hpp)."""
    users = {u["name"]: u for u in d.get("users", [])}
    chk.check(set(users) == set(USER_TAGS), f"users {', '.join(sorted(users))} (no guest)",
              f"users {sorted(users)} must be exactly {sorted(USER_TAGS)} (dev_secrets.py RABBIT_USERS)")
    for name, u in sorted(users.items()):
        chk.check("password_hash" not in u and "password" not in u,
                  f"{name}: no password in the template (dev_secrets.sh adds the hash)",
                  f"{name}: the template must hold no password or hash: dev_secrets.sh renders them from the password files")
        tags = u.get("tags")
        tags = tags.split(",") if isinstance(tags, str) else tags or []
        chk.check(sorted(t for t in tags if t) == USER_TAGS.get(name), f"{name}: tags {USER_TAGS.get(name)}",
                  f"{name}: tags {tags}, want {USER_TAGS.get(name)}")
    chk.check(sorted(v["name"] for v in d.get("vhosts", [])) == ["/", "pix-bench"], "vhosts / and pix-bench",
              "vhosts must be exactly [/, pix-bench] (bench has a vhost of its own)")
    chk.check(len(topics) == 5, f"topics.hpp: {', '.join(topics)}", "cannot read kTopicNames from src/pix/domain/topics.hpp")
    objects = ["pix", "pix.unrouted", "pix.dlx", "pix.dead-letter", "amq.gen-Xyz"] + topics
    perms = {(p["user"], p["vhost"]): p for p in d.get("permissions", [])}

    def allowed(user, vhost, kind):
        p = perms.get((user, vhost), {}).get(kind, "")
        return {o for o in objects if p and re.search(p, o)}

    every = set(objects)
    # The secure profile's permissions (scripts/local/rabbitmq.sh): objects each user may configure,
    # write and read on `/` (amq.gen-*: server-named queues, what pix-tail binds).
    want = {
        "api-rabbitmq": (set(), {"pix"}, set()),
        "notifier": (set(), {"pix"}, set()),
        "auditor": (set(), set(), {"pix.notification.sent"}),
        "pix-admin": (every, every, every),
        "pix-tail": ({"amq.gen-Xyz"}, {"amq.gen-Xyz"}, {"pix", "amq.gen-Xyz"}),
        "monitoring": None,
        "bench": None,
    }
    for user, w in sorted(want.items()):
        if w is None:
            chk.check((user, "/") not in perms, f"{user}: no permissions on /", f"{user}: must have no permissions on /")
            continue
        for kind, objs in zip(("configure", "write", "read"), w):
            got = allowed(user, "/", kind)
            chk.check(got == objs, f"{user}: {kind} on {sorted(got) or 'nothing'}",
                      f"{user}: {kind} permission covers {sorted(got)}, want {sorted(objs)}")
    for user in ("pix-admin", "bench"):
        p = perms.get((user, "pix-bench"), {})
        chk.check(all(p.get(k) == ".*" for k in ("configure", "write", "read")), f"{user}: everything on vhost pix-bench",
                  f"{user}: needs .* on vhost pix-bench")
    chk.check(set(perms) == {(u, "/") for u, w in want.items() if w} | {("pix-admin", "pix-bench"), ("bench", "pix-bench")},
              "no other permissions", f"unexpected permissions {sorted(set(perms))}")
    tps = {(t["user"], t["vhost"], t["exchange"]): t for t in d.get("topic_permissions", [])}
    keys = topics + ["pix.other", "amq.x"]

    def keys_of(user, kind):
        p = (tps.get((user, "/", "pix")) or {}).get(kind)
        return None if p is None else {k for k in keys if re.search(p, k)}

    want_tp = {"api-rabbitmq": (set(topics), set()), "notifier": ({"pix.notification.sent"}, set()),
               "pix-tail": (set(), set(topics))}
    for user, (w, r) in sorted(want_tp.items()):
        chk.check(keys_of(user, "write") == w and keys_of(user, "read") == r,
                  f"{user}: topic permissions on pix: write {sorted(w) or 'nothing'}, read {sorted(r) or 'nothing'}",
                  f"{user}: topic permissions on pix write {keys_of(user, 'write')}, read {keys_of(user, 'read')}; "
                  f"want {sorted(w)}, {sorted(r)}")
    chk.check(set(tps) == {(u, "/", "pix") for u in want_tp}, "no other topic permissions",
              f"unexpected topic permissions {sorted(tps)}")
    qnames = {q["name"] for q in d.get("queues", [])}
    chk.check(qnames == set(topics) | {"pix.unrouted", "pix.dead-letter"}, "queues: the five topics + pix.unrouted + pix.dead-letter",
              f"queues {sorted(qnames)} differ from the five topics + pix.unrouted + pix.dead-letter")
    for kind in ("exchanges", "queues", "bindings"):
        chk.check(all(o.get("vhost") == "/" for o in d.get(kind, [])), f"{kind} in vhost /", f"{kind} must all be in vhost /")


# ---- the live check --------------------------------------------------------------------------------
class Mgmt:
    """The management HTTP API of the local RabbitMQ."""

    def __init__(self):
        self.base = os.environ.get("RABBITMQ_MGMT_URL", "http://127.0.0.1:15672").rstrip("/")
        user = os.environ.get("RABBITMQ_CHECK_USER", "guest")
        pw = os.environ.get("RABBITMQ_CHECK_PASSWORD", "guest")
        self.auth = "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()

    def call(self, method, path, body=None, ok_codes=(200, 201, 204)):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Authorization": self.auth, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=15) as r:
                code, text = r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            code, text = e.code, e.read().decode(errors="replace")
        if code not in ok_codes:
            raise RuntimeError(f"{method} {path}: HTTP {code} {text[:300]}")
        return json.loads(text) if text.strip() else None


def q(s):
    return urllib.parse.quote(s, safe="")


def _args(o):
    return json.dumps(o["arguments"], sort_keys=True)


def topology_of(exchanges, queues, bindings):
    """Exchanges, queues and bindings as comparable sorted tuples."""
    return {
        "exchanges": sorted((e["name"], e["type"], e["durable"], e["auto_delete"], e["internal"], _args(e)) for e in exchanges),
        "queues": sorted((x["name"], x["durable"], x["auto_delete"], _args(x)) for x in queues),
        "bindings": sorted((b["source"], b["destination"], b["destination_type"], b["routing_key"], _args(b)) for b in bindings),
    }


def snapshot(m, vhost):
    """What VHOST holds (the default exchange, amq.* and its bindings left out)."""
    return topology_of([e for e in m.call("GET", f"/api/exchanges/{q(vhost)}") if e["name"] and not e["name"].startswith("amq.")],
                       m.call("GET", f"/api/queues/{q(vhost)}"),
                       [b for b in m.call("GET", f"/api/bindings/{q(vhost)}") if b["source"]])


def from_defs(d):
    return topology_of(d["exchanges"], d["queues"], d["bindings"])


def diff(a, b):
    """`- kind item` for what only A has, `+ kind item` for what only B has."""
    out = []
    for k in a:
        for x in sorted(set(a[k]) - set(b[k])):
            out.append(f"- {k[:-1]} {x}")
        for x in sorted(set(b[k]) - set(a[k])):
            out.append(f"+ {k[:-1]} {x}")
    return out


def http(method, url, body=None, timeout=5):
    req = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as e:
        return 0, str(e)


def cleanup(m, vhost, prefix):
    m.call("DELETE", f"/api/vhosts/{q(vhost)}", ok_codes=(200, 204, 404))
    for name in USER_TAGS:
        m.call("DELETE", f"/api/users/{q(prefix + name)}", ok_codes=(200, 204, 404))


def start_api(api_bin, url):
    """pix-api --broker rabbit on a free port (plain HTTP, no auth: this checks the broker side);
    returns (process, port, last /readyz code)."""
    p = free_port()
    env = dict(os.environ, PIX_LOG_FORMAT="text", PIX_LOG_LEVEL="warn")
    for k in [k for k in env if k.startswith(("PIX_RABBIT_", "PIX_TLS_", "PIX_AUTH", "PIX_JWKS"))]:
        env.pop(k)
    proc = subprocess.Popen([api_bin, "--broker", "rabbit", "--listen", "127.0.0.1", "--port", str(p),
                             "--rabbit-url", url, "--exchange", "pix"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.time() + 30
    code = 0
    while time.time() < deadline and proc.poll() is None:
        code, _ = http("GET", f"http://127.0.0.1:{p}/readyz", timeout=2)
        if code == 200:
            break
        time.sleep(0.3)
    return proc, p, code


def stop(proc):
    proc.terminate()
    try:
        return proc.communicate(timeout=20)[0] or ""
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()[0] or ""


def publish_body(topic):
    return json.dumps({"topic": topic, "value": {"transactionId": "defs-check", "status": "notified",
                                                 "amount": 1, "payer": "a", "receiver": "b"}}).encode()


def check_live(chk: Checker, vhost, prefix, root=ROOT) -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    m = Mgmt()
    try:
        ov = m.call("GET", "/api/overview")
    except Exception as e:  # noqa: BLE001 - any failure here means "not reachable"
        print(f"ERR the local RabbitMQ management API is not reachable at {m.base} ({e}).\n"
              f"    Start the brokers first (scripts/local/brokers.sh start, or scripts/local/rabbitmq.sh start).",
              file=sys.stderr)
        return 2
    chk.ok(f"RabbitMQ {ov.get('rabbitmq_version')} management API at {m.base}")
    bindir = bin_dir(root)
    admin_bin, api_bin = os.path.join(bindir, "pix-admin"), os.path.join(bindir, "pix-api")
    for b in (admin_bin, api_bin):
        if not os.access(b, os.X_OK):
            print(f"ERR {os.path.relpath(b, root)} is missing: build first (scripts/local/build.sh release)", file=sys.stderr)
            return 2
    host = os.environ.get("RABBITMQ_AMQP_HOST", "127.0.0.1")
    port = int(os.environ.get("RABBITMQ_PORT", "5672"))
    d = load_defs(root)
    procs = []
    passwords = {u["name"]: os.urandom(16).hex() for u in d["users"]}
    try:
        m.call("PUT", f"/api/vhosts/{q(vhost)}", {"description": "scripts/deploy/check_compose.sh (temporary)"})
        chk.ok(f"throwaway vhost {vhost}")
        # users: copies named <prefix><user> with fresh random passwords, the template's tags, and its
        # permissions and topic permissions on `/`, moved to the throwaway vhost
        users = [dict(u, name=prefix + u["name"], password_hash=rabbit_hash(passwords[u["name"]]),
                      hashing_algorithm="rabbit_password_hashing_sha256") for u in d["users"]]
        perms = [dict(p, user=prefix + p["user"], vhost=vhost) for p in d["permissions"] if p["vhost"] == "/"]
        tperms = [dict(t, user=prefix + t["user"], vhost=vhost) for t in d.get("topic_permissions", []) if t["vhost"] == "/"]
        m.call("POST", "/api/definitions", {"users": users, "permissions": perms, "topic_permissions": tperms})
        chk.ok(f"imported {len(users)} user copies ({prefix}*) with {len(perms)} permissions and {len(tperms)} topic "
               f"permissions on {vhost}")

        def strip(objs):
            return [{k: v for k, v in o.items() if k != "vhost"} for o in objs]

        m.call("POST", f"/api/definitions/{q(vhost)}",
               {"exchanges": strip(d["exchanges"]), "queues": strip(d["queues"]), "bindings": strip(d["bindings"])})
        imported = snapshot(m, vhost)
        dd = diff(from_defs(d), imported)
        chk.check(not dd, f"POST /api/definitions/{vhost}: {len(imported['exchanges'])} exchanges, {len(imported['queues'])} "
                  f"queues, {len(imported['bindings'])} bindings as in the template",
                  "the import differs from the template:\n      " + "\n      ".join(dd))

        def url(user):
            return f"amqp://{q(prefix + user)}:{q(passwords[user])}@{host}:{port}/{q(vhost)}"

        def topology(user):
            return subprocess.run([admin_bin, "topology", "--skip-kafka", "--rabbit-url", url(user)],
                                  capture_output=True, text=True, timeout=60)

        r = topology("pix-admin")
        chk.check(r.returncode == 0, f"pix-admin topology --skip-kafka as {prefix}pix-admin: success (no PRECONDITION_FAILED)",
                  f"pix-admin topology against the imported definitions failed (exit {r.returncode}):\n{r.stdout}{r.stderr}")
        after = snapshot(m, vhost)
        dd = diff(imported, after)
        chk.check(not dd, "pix-admin topology added and changed nothing: the template is exactly its topology",
                  "pix-admin topology declared what the template lacks:\n      " + "\n      ".join(dd))
        for user in sorted(u for u in USER_TAGS if u != "pix-admin"):
            r = topology(user)
            chk.check(r.returncode != 0, f"{user} may not declare the topology (no configure permission)",
                      f"{user} could run pix-admin topology (exit {r.returncode}): it must have no configure permission")
        # publish through pix-api: allowed for api-rabbitmq and notifier, refused where the
        # (topic) permissions say so
        published = 0
        for user, topic, allowed in (("api-rabbitmq", "pix.notification.sent", True), ("notifier", "pix.notification.sent", True),
                                     ("notifier", "pix.payment.requested", False), ("auditor", "pix.notification.sent", False)):
            proc, p, code = start_api(api_bin, url(user))
            procs.append(proc)
            if allowed and not chk.check(code == 200, f"pix-api as {user}: /readyz 200",
                                         f"pix-api as {user} never became ready (last /readyz {code})"):
                print(stop(proc)[-2000:], file=sys.stderr)
                continue
            code, text = http("POST", f"http://127.0.0.1:{p}/rabbit", publish_body(topic), timeout=15) \
                if code == 200 else (code, "not ready")
            if allowed:
                if chk.check(code == 200, f"pix-api as {user}: POST /rabbit {topic} -> 200",
                             f"pix-api as {user}: POST /rabbit {topic} -> {code} {text[:200]}"):
                    published += 1
            else:
                chk.check(code != 200, f"pix-api as {user}: {topic} refused ({code})",
                          f"pix-api as {user} could publish {topic}: its permissions must refuse it")
            stop(proc)
        # the messages reached pix.notification.sent, nothing reached pix.payment.requested (stats lag)
        deadline, n = time.time() + 20, -1
        while time.time() < deadline:
            n = m.call("GET", f"/api/queues/{q(vhost)}/{q('pix.notification.sent')}").get("messages")
            if n == published:
                break
            time.sleep(1)
        chk.check(n == published and published == 2, f"pix.notification.sent holds the {published} published message(s)",
                  f"pix.notification.sent holds {n} message(s), {published} were published")
        n = m.call("GET", f"/api/queues/{q(vhost)}/{q('pix.payment.requested')}").get("messages")
        chk.check(not n, "pix.payment.requested got nothing from the refused publish", f"pix.payment.requested holds {n} message(s)")
    except RuntimeError as e:
        chk.bad(str(e))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        try:
            cleanup(m, vhost, prefix)
            chk.ok(f"deleted vhost {vhost} and the user copies")
        except Exception as e:  # noqa: BLE001
            chk.bad(f"cleanup of {vhost}: {e}")
    return chk.finish("definitions.template.json (live)")


def main(argv) -> int:
    cmd, args = (argv[0], argv[1:]) if argv else ("", [])
    chk = Checker()
    if cmd == "hash" and len(args) == 1:
        print(rabbit_hash(args[0]))
        return 0
    if cmd == "offline" and not args:
        check_offline(chk, load_defs(), topic_names())
        return chk.finish("definitions.template.json (offline)")
    if cmd == "live" and len(args) == 2:
        return check_live(chk, *args)
    if cmd == "cleanup" and len(args) == 2:
        try:
            cleanup(Mgmt(), *args)
        except Exception:  # noqa: BLE001 - best effort, the main path reports
            pass
        return 0
    print("usage: rabbit_definitions.py offline | live VHOST PREFIX | cleanup VHOST PREFIX | hash PASSWORD", file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
