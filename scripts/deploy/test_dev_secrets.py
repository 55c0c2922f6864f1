"""Tests of dev_secrets.py (python3 -m pytest scripts/deploy; validate.sh pytest)."""

import base64
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dev_secrets as ds  # noqa: E402


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def _pix_admin() -> str | None:
    """pix-admin of a build, when it has the decision-key subcommand."""
    for preset in ("release", "debug"):
        p = ds.ROOT / "build" / preset / "src" / "pix-admin"
        if os.access(p, os.X_OK):
            r = subprocess.run([str(p), "--help"], capture_output=True, text=True, check=False)
            if "decision-key" in r.stdout:
                return str(p)
    return None


PIX_ADMIN = _pix_admin()


class Generated(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="pix-test-dev-secrets.")
        cls.d = Path(cls.tmp.name) / "s"
        cls.made = ds.cmd_ensure(cls.d, "owner", False, True)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_every_specified_file_is_made(self):
        for rel in ds.file_specs():
            self.assertTrue((self.d / rel).is_file(), rel)

    def test_second_run_changes_nothing(self):
        before = {p: p.stat().st_mtime_ns for p in self.d.rglob("*") if p.is_file()}
        self.assertEqual(ds.cmd_ensure(self.d, "owner", False, True), [])
        after = {p: p.stat().st_mtime_ns for p in self.d.rglob("*") if p.is_file()}
        self.assertEqual(before, after)

    def test_modes(self):
        for rel, spec in ds.file_specs().items():
            self.assertEqual(mode(self.d / rel), 0o600 if spec.private else 0o644, rel)
        for p in [self.d, *[q for q in self.d.rglob("*") if q.is_dir()]]:
            self.assertEqual(mode(p), 0o700, p)

    def test_certificates(self):
        for name, srv in ds.SERVERS.items():
            crt = self.d / f"tls/{name}.crt"
            r = subprocess.run(["openssl", "verify", "-CAfile", str(self.d / "ca/ca.crt"), str(crt)], capture_output=True)
            self.assertEqual(r.returncode, 0, f"{name}: {r.stderr}")
            self.assertEqual(ds.cert_sans(crt), sorted(srv.sans))
            self.assertEqual(ds.why_reissue(crt, self.d / f"tls/{name}.key", self.d / "ca/ca.crt", srv.sans), "")
        for name in ("kafka", "kafka-controller"):
            ks = (self.d / f"tls/{name}.keystore.pem").read_bytes()
            want = (self.d / f"tls/{name}.key").read_bytes() + (self.d / f"tls/{name}.crt").read_bytes() + \
                (self.d / "ca/ca.crt").read_bytes()
            self.assertEqual(ks, want)
        self.assertEqual(ds.why_reissue(self.d / "tls/api-kafka.crt", self.d / "tls/api-kafka.key", self.d / "ca/ca.crt",
                                        ("DNS:other",))[:12], "SANs changed")
        self.assertEqual(ds.why_reissue(self.d / "tls/api-kafka.crt", self.d / "tls/kafka.key", None, None),
                         "does not match its key")

    def test_definitions_hash_the_password_files(self):
        defs = json.loads((self.d / "rabbitmq/definitions.json").read_text())
        tpl = json.loads(ds.TEMPLATE.read_text())
        self.assertEqual([u["name"] for u in defs["users"]], [u["name"] for u in tpl["users"]])
        self.assertNotIn("guest", {u["name"] for u in defs["users"]})
        for u in defs["users"]:
            pw = (self.d / f"passwords/rabbitmq/{u['name']}").read_text()
            self.assertTrue(ds.rabbit_hash_matches(u["password_hash"], pw), u["name"])
        for key in ("permissions", "topic_permissions", "exchanges", "queues", "bindings", "vhosts"):
            self.assertEqual(defs[key], tpl[key], key)

    def test_jwks_is_the_issuer_key(self):
        jwks = json.loads((self.d / "jwt/jwks.json").read_text())
        self.assertEqual(jwks["keys"], [ds.jwk_of(self.d / "jwt/issuer.pem")])

    def test_sim_token(self):
        c = ds.token_claims((self.d / "jwt/pix-sim.token").read_text())
        self.assertEqual((c["iss"], c["aud"], c["sub"]), (ds.ISSUER, ds.AUDIENCE, "pix-sim"))
        self.assertEqual(c["scope"], "publish:pix.payment.requested")
        self.assertEqual(c["header"]["kid"], ds.jwk_of(self.d / "jwt/issuer.pem")["kid"])
        self.assertGreater(c["exp"] - c["iat"], 29 * 86400)

    def test_k8s_objects_hold_the_files(self):
        try:
            import yaml
        except ImportError:
            self.skipTest("PyYAML")
        docs = [x for x in yaml.safe_load_all((self.d / "k8s/dev-secrets.yaml").read_text()) if x]
        by = {(x["metadata"]["namespace"], x["kind"], x["metadata"]["name"]): x for x in docs}
        for o in ds.k8s_objects():
            doc = by[(o.namespace, o.kind, o.name)]
            self.assertEqual(doc["metadata"]["annotations"]["pix.dev/dev-default"], "true")
            data = doc["stringData"] if o.kind == "Secret" else doc["data"]
            for key, (how, what) in o.data.items():
                self.assertIsInstance(data[key], str, f"{o.name}/{key}")
                if how == "file":
                    self.assertEqual(data[key], (self.d / what).read_text(), f"{o.name}/{key}")
            if o.kind == "Secret":
                self.assertEqual(doc["type"], o.type)
        self.assertEqual(len(docs), len(ds.k8s_objects()))

    def test_a_deleted_password_is_replaced_and_only_its_hash_changes(self):
        d = Path(self.tmp.name) / "rotate"
        shutil.copytree(self.d, d)
        old = json.loads((d / "rabbitmq/definitions.json").read_text())
        (d / "passwords/rabbitmq/notifier").unlink()
        made = ds.cmd_ensure(d, "owner", False, True)
        self.assertIn("passwords/rabbitmq/notifier", made)
        new = json.loads((d / "rabbitmq/definitions.json").read_text())
        for a, b in zip(old["users"], new["users"]):
            if a["name"] == "notifier":
                self.assertNotEqual(a["password_hash"], b["password_hash"])
            else:
                self.assertEqual(a["password_hash"], b["password_hash"], a["name"])

    def test_access_world_opens_only_what_containers_read(self):
        d = Path(self.tmp.name) / "world"
        shutil.copytree(self.d, d)
        ds.apply_access(d, "world")
        for rel, spec in ds.file_specs().items():
            want = 0o644 if (not spec.private or spec.readers) else 0o600
            self.assertEqual(mode(d / rel), want, rel)
        self.assertEqual(mode(d / "ca/ca.key"), 0o600)
        self.assertEqual(mode(d / "jwt/issuer.pem"), 0o600)

    def acl_of(self, copy, rel):
        """getfacl of `rel` in a copy of the generated directory with --access acl applied."""
        d = Path(self.tmp.name) / copy
        shutil.copytree(self.d, d)
        try:
            ds.apply_access(d, "acl")
        except ds.Failure as e:
            self.skipTest(str(e))
        return subprocess.run(["getfacl", "-n", "-p", str(d / rel)], capture_output=True, text=True).stdout

    @unittest.skipUnless(shutil.which("setfacl") and shutil.which("getfacl"), "setfacl/getfacl (package acl)")
    def test_access_acl(self):
        acl = self.acl_of("acl", "passwords/kafka/api-kafka")
        self.assertIn(f"user:{ds.UID_KAFKA}:r--", acl)
        self.assertIn(f"user:{ds.UID_PIX}:r--", acl)
        self.assertIn("other::---", acl)

    def test_bad_password_refused(self):
        d = Path(self.tmp.name) / "bad"
        shutil.copytree(self.d, d)
        (d / "passwords/kafka/antifraud").write_text("has space\n")
        with self.assertRaises(ds.Failure):
            ds.cmd_ensure(d, "owner", False, True)

    def test_decision_keys(self):
        kids = set()
        for stage in ("antifraud", "settlement"):
            text = (self.d / f"decision-keys/{stage}.json").read_text()
            self.assertTrue(text.endswith("}\n") and text.count("\n") == 1, stage)  # one line
            doc = json.loads(text)
            # the members, in the order pix-admin decision-key writes them
            self.assertEqual(list(doc), ["kty", "alg", "kid", "k", "pix_stage"])
            self.assertEqual((doc["kty"], doc["alg"], doc["pix_stage"]), ("oct", "HS256", stage))
            self.assertRegex(doc["kid"], rf"^{stage}-[0-9a-f]{{8}}$")
            self.assertNotIn("=", doc["k"])  # base64url without padding
            self.assertEqual(len(ds.b64url_decode(doc["k"])), 32)
            self.assertEqual(ds.read_decision_key(self.d, stage), doc)
            self.assertEqual(ds.file_specs()[f"decision-keys/{stage}.json"].readers, (ds.UID_PIX,))
            kids.add(doc["k"])
        self.assertEqual(len(kids), 2, "two different secrets")
        self.assertIn("decision-keys/antifraud.json", self.made)
        self.assertIn("decision-keys/settlement.json", self.made)

    def test_decision_key_secrets(self):
        objs = {(o.namespace, o.kind, o.name): o for o in ds.k8s_objects()}
        for stage in ("antifraud", "settlement"):
            o = objs[("pix-saga", "Secret", f"decision-key-{stage}")]
            self.assertEqual(o.data, {"key.json": ("file", f"decision-keys/{stage}.json")})
            self.assertEqual(o.type, "Opaque")
        self.assertFalse([k for k in objs if k[2].startswith("decision-key") and k[0] != "pix-saga"])

    def test_an_existing_decision_key_is_never_replaced(self):
        d = Path(self.tmp.name) / "keys"
        shutil.copytree(self.d, d)
        mine = ('{"kty":"oct","alg":"HS256","kid":"antifraud-real","k":"' + ds.b64url(b"\1" * 40) +
                '","pix_stage":"antifraud"}')  # not generated here, no newline: kept as it is
        (d / "decision-keys/antifraud.json").write_text(mine)
        settlement = (d / "decision-keys/settlement.json").read_text()
        self.assertEqual(ds.cmd_ensure(d, "owner", False, True), ["k8s/dev-secrets.yaml"])  # the Secret follows it
        self.assertEqual((d / "decision-keys/antifraud.json").read_text(), mine)
        self.assertEqual(mode(d / "decision-keys/antifraud.json"), 0o600)
        # a deleted (or emptied) key is made again, with a new kid; the other one stays
        (d / "decision-keys/antifraud.json").write_text("")
        self.assertEqual(ds.cmd_ensure(d, "owner", False, True), ["decision-keys/antifraud.json", "k8s/dev-secrets.yaml"])
        self.assertNotEqual(json.loads((d / "decision-keys/antifraud.json").read_text())["kid"], "antifraud-real")
        self.assertEqual((d / "decision-keys/settlement.json").read_text(), settlement)

    def test_bad_decision_key_refused_not_replaced(self):
        d = Path(self.tmp.name) / "badkey"
        shutil.copytree(self.d, d)
        settlement = (d / "decision-keys/settlement.json").read_text()
        short = '{"kty":"oct","alg":"HS256","kid":"antifraud-1","k":"' + ds.b64url(b"x" * 16) + '","pix_stage":"antifraud"}'
        for bad, why in ((settlement, "a key of stage 'settlement'"), ("{not json", "not JSON"),
                         (short, "at least 32"), (settlement.replace("HS256", "HS512"), '"alg" "HS256"')):
            (d / "decision-keys/antifraud.json").write_text(bad)
            with self.assertRaises(ds.Failure) as e:
                ds.cmd_ensure(d, "owner", False, True)
            self.assertIn(why, str(e.exception))
            self.assertIn("decision-keys/antifraud.json", str(e.exception))
            self.assertEqual((d / "decision-keys/antifraud.json").read_text(), bad)

    @unittest.skipUnless(shutil.which("setfacl") and shutil.which("getfacl"), "setfacl/getfacl (package acl)")
    def test_access_acl_decision_keys(self):
        acl = self.acl_of("acl-keys", "decision-keys/settlement.json")
        self.assertIn(f"user:{ds.UID_PIX}:r--", acl)
        self.assertNotIn(f"user:{ds.UID_KAFKA}:", acl)
        self.assertIn("other::---", acl)

    @unittest.skipUnless(PIX_ADMIN, "a build whose pix-admin has decision-key")
    def test_pix_admin_writes_the_same_format(self):
        d = Path(self.tmp.name) / "pix-admin-key"
        d.mkdir()
        subprocess.run([PIX_ADMIN, "decision-key", "--stage", "settlement", "--out", str(d / "k.json")],
                       capture_output=True, check=True)
        text = (d / "k.json").read_text()
        doc = ds.parse_decision_key(text)
        self.assertEqual(list(doc), list(json.loads(ds.new_decision_key("settlement"))))
        self.assertRegex(doc["kid"], r"^settlement-[0-9a-f]{8}$")
        self.assertEqual(len(text.splitlines()), 1)
        self.assertEqual(mode(d / "k.json"), 0o600)


class Tokens(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="pix-test-token.")
        self.d = Path(self.tmp.name)
        (self.d / "jwt").mkdir()
        key = ds.new_key(self.d / "jwt/issuer.pem")
        os.replace(key, self.d / "jwt/issuer.pem")

    def tearDown(self):
        self.tmp.cleanup()

    def test_openssl_fallback_signs_es256(self):
        with mock.patch.dict(os.environ, {"PIX_TOKEN_BIN": "/nonexistent/pix-token"}):
            token = ds.issue_token(self.d, "alice", ["pix.payment.requested", "pix.audit.log"], "15m")
        header, payload, sig = token.split(".")
        raw = ds.b64url_decode(sig)
        self.assertEqual(len(raw), 64)

        def der_int(b):
            b = b.lstrip(b"\0") or b"\0"
            if b[0] & 0x80:
                b = b"\0" + b
            return b"\x02" + bytes([len(b)]) + b
        body = der_int(raw[:32]) + der_int(raw[32:])
        der = b"\x30" + bytes([len(body)]) + body
        (self.d / "sig").write_bytes(der)
        (self.d / "pub.pem").write_bytes(subprocess.run(["openssl", "pkey", "-in", str(self.d / "jwt/issuer.pem"),
                                                         "-pubout"], capture_output=True, check=True).stdout)
        r = subprocess.run(["openssl", "dgst", "-sha256", "-verify", str(self.d / "pub.pem"), "-signature",
                            str(self.d / "sig")], input=f"{header}.{payload}".encode(), capture_output=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        c = ds.token_claims(token)
        self.assertEqual(c["scope"], "publish:pix.payment.requested publish:pix.audit.log")
        self.assertEqual(c["exp"] - c["iat"], 900)
        self.assertEqual(c["header"], {"alg": "ES256", "typ": "JWT", "kid": ds.jwk_of(self.d / "jwt/issuer.pem")["kid"]})

    @unittest.skipUnless(ds.pix_token_bin(), "a build with pix-token")
    def test_pix_token_agrees_on_the_kid(self):
        d = self.d / "tool"
        subprocess.run([ds.pix_token_bin(), "init", "--dir", str(d)], capture_output=True, check=True)
        made = json.loads((d / "jwks.json").read_text())["keys"][0]
        self.assertEqual(made, ds.jwk_of(d / "issuer.pem"))

    def test_der_to_raw(self):
        der = bytes.fromhex("3006020100020101")  # r = 0, s = 1
        self.assertEqual(ds._der_ecdsa_to_raw(der), b"\0" * 32 + b"\0" * 31 + b"\1")

    def test_ttl(self):
        self.assertEqual(ds.parse_ttl("2d"), 172800)
        with self.assertRaises(ds.Failure):
            ds.parse_ttl("1w")

    def test_rabbit_hash(self):
        h = ds.rabbit_hash("secret", b"\x01\x02\x03\x04")
        self.assertTrue(ds.rabbit_hash_matches(h, "secret"))
        self.assertFalse(ds.rabbit_hash_matches(h, "other"))
        self.assertEqual(len(base64.b64decode(h)), 36)


if __name__ == "__main__":
    unittest.main()


def test_documents_of_type():
    text = ("# header\napiVersion: v1\nkind: Secret\nmetadata:\n  name: a\ntype: kubernetes.io/tls\nstringData:\n  k: v\n"
            "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: b\ntype: Opaque\n"
            "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: c\ntype: kubernetes.io/tls\n")
    docs = ds.documents_of_type(text, "kubernetes.io/tls").split("\n---\n")
    assert [d.split("name: ")[1].split("\n")[0] for d in docs] == ["a", "c"]
    assert ds.documents_of_type(text, "kubernetes.io/dockerconfigjson") == ""
