"""Tests of secure_contract.py and of the lint rules render_k8s.py gained with it
(python3 -m pytest scripts/deploy; validate.sh pytest)."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import dev_secrets as ds  # noqa: E402
import secure_contract as sc  # noqa: E402

try:
    import yaml  # noqa: F401
    HAVE_YAML = True
except ImportError:
    HAVE_YAML = False

CA = "/run/secrets/pix-ca.crt"
JAAS = 'org.apache.kafka.common.security.scram.ScramLoginModule required username="kafka-broker" ' \
       'password="${dir:/run/secrets/kafka-scram:kafka-broker}";'
SCRAM_USERS = ["api-kafka", "antifraud", "settlement", "notifier", "auditor", "pix-tail", "pix-admin", "kafka-broker"]


def broker():
    env = {
        "KAFKA_LISTENERS": "INTERNAL://:9092,CONTROLLER://:9093",
        "KAFKA_ADVERTISED_LISTENERS": "INTERNAL://kafka:9092",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "INTERNAL:SASL_SSL,CONTROLLER:SSL",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@kafka:9093",
        "KAFKA_INTER_BROKER_LISTENER_NAME": "INTERNAL",
        "KAFKA_SASL_ENABLED_MECHANISMS": "SCRAM-SHA-512",
        "KAFKA_SASL_MECHANISM_INTER_BROKER_PROTOCOL": "SCRAM-SHA-512",
        "KAFKA_CONFIG_PROVIDERS": "dir",
        "KAFKA_CONFIG_PROVIDERS_DIR_CLASS": "org.apache.kafka.common.config.provider.DirectoryConfigProvider",
        "KAFKA_LISTENER_NAME_INTERNAL_SCRAM___SHA___512_SASL_JAAS_CONFIG": JAAS,
        "KAFKA_SSL_KEYSTORE_TYPE": "PEM",
        "KAFKA_SSL_KEYSTORE_LOCATION": "/run/secrets/kafka-tls.keystore.pem",
        "KAFKA_SSL_TRUSTSTORE_LOCATION": CA,
        "KAFKA_LISTENER_NAME_CONTROLLER_SSL_KEYSTORE_LOCATION": "/run/secrets/kafka-controller.keystore.pem",
        "KAFKA_LISTENER_NAME_CONTROLLER_SSL_CLIENT_AUTH": "required",
        "KAFKA_AUTHORIZER_CLASS_NAME": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND": "false",
        "KAFKA_SUPER_USERS": "User:pix-admin;User:kafka-broker;User:CN=kafka-controller",
        "PIX_KAFKA_SCRAM_USERS": " ".join(SCRAM_USERS),
        "PIX_KAFKA_SCRAM_DIR": "/run/secrets/kafka-scram",
    }
    files = {CA: "ca/ca.crt", "/run/secrets/kafka-tls.keystore.pem": "tls/kafka.keystore.pem",
             "/run/secrets/kafka-controller.keystore.pem": "tls/kafka-controller.keystore.pem"}
    files.update({f"/run/secrets/kafka-scram/{u}": f"passwords/kafka/{u}" for u in SCRAM_USERS})
    return sc.Unit("broker", "kafka", env=env, files=files)


def kafka_client(component, user):
    return sc.Unit(component, component, command=["pix-admin", "topology", "--kafka-acls"] if component == "topology" else [],
                   env={"PIX_KAFKA_BOOTSTRAP": "kafka:9092", "PIX_KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
                        "PIX_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "PIX_KAFKA_USERNAME": user,
                        "PIX_KAFKA_PASSWORD_FILE": f"/run/secrets/kafka-password-{user}", "PIX_KAFKA_CA": CA},
                   files={CA: "ca/ca.crt", f"/run/secrets/kafka-password-{user}": f"passwords/kafka/{user}"})


class GeneratedSecrets:
    """A fresh dev_secrets.py directory for the whole class (cls.gen), removed at the end."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="pix-test-contract.")
        cls.gen = Path(cls.tmp.name) / "gen"
        ds.cmd_ensure(cls.gen, "owner", False, True)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()


class Rules(GeneratedSecrets, unittest.TestCase):

    def kafka_report(self, units):
        r = sc.Report()
        sc.Contract(units, self.gen, "compose", r).rule_kafka()
        return r

    def good_kafka(self):
        return [broker(), kafka_client("antifraud", "antifraud"), kafka_client("topology", "pix-admin")]

    def test_good_kafka_passes(self):
        self.assertEqual(self.kafka_report(self.good_kafka()).bad, [])

    def test_plaintext_listener_fails(self):
        units = self.good_kafka()
        units[0].env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"] = "INTERNAL:PLAINTEXT,CONTROLLER:SSL"
        self.assertTrue(any("plaintext" in b for b in self.kafka_report(units).bad))

    def test_anonymous_access_fails(self):
        units = self.good_kafka()
        units[0].env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] = "true"
        self.assertTrue(any("StandardAuthorizer" in b for b in self.kafka_report(units).bad))

    def test_borrowed_principal_fails(self):
        units = self.good_kafka()
        units[1] = kafka_client("antifraud", "pix-admin")
        bad = self.kafka_report(units).bad
        self.assertTrue(any("want 'antifraud'" in b for b in bad))
        self.assertTrue(any("only the topology may be a super user" in b for b in bad))

    def test_principal_without_scram_credentials_fails(self):
        units = self.good_kafka()
        units[0].env["PIX_KAFKA_SCRAM_USERS"] = " ".join(u for u in SCRAM_USERS if u != "antifraud")
        bad = self.kafka_report(units).bad
        self.assertTrue(any("not one of the broker's PIX_KAFKA_SCRAM_USERS" in b for b in bad))

    def test_someone_elses_password_file_fails(self):
        units = self.good_kafka()
        units[1].files["/run/secrets/kafka-password-antifraud"] = "passwords/kafka/settlement"
        self.assertTrue(any("must be a mount of passwords/kafka/antifraud" in b for b in self.kafka_report(units).bad))

    def test_topology_without_acls_fails(self):
        units = self.good_kafka()
        units[2].command = ["pix-admin", "topology"]
        self.assertTrue(any("--kafka-acls" in b for b in self.kafka_report(units).bad))

    def test_unmounted_file_and_inline_password_fail(self):
        u = sc.Unit("svc", "antifraud", env={"PIX_KAFKA_PASSWORD_FILE": "/run/secrets/nope", "PIX_KAFKA_PASSWORD": "x",
                                             "PIX_RABBIT_URL": "amqps://u:pw@rabbitmq:5671/"})
        r = sc.Report()
        sc.Contract([u], self.gen, "compose", r).rule_files()
        self.assertTrue(any("not mounted" in b for b in r.bad))
        self.assertTrue(any("PIX_KAFKA_PASSWORD carries a value" in b for b in r.bad))
        self.assertTrue(any("URL with a password" in b for b in r.bad))

    def test_rabbit_client_rules(self):
        conf = (sc.ROOT / "monitoring/rabbitmq/rabbitmq.conf").read_text()
        rabbit = sc.Unit("rabbitmq", "rabbitmq", files={CA: "ca/ca.crt", "/run/secrets/rabbitmq-tls.crt": "tls/rabbitmq.crt",
                                                        "/run/secrets/rabbitmq-tls.key": "tls/rabbitmq.key",
                                                        "/run/secrets/rabbitmq-definitions.json": "rabbitmq/definitions.json"})
        ok = sc.Unit("notifier", "notifier", env={"PIX_RABBIT_URL": "amqps://notifier@rabbitmq:5671/",
                                                  "PIX_RABBIT_PASSWORD_FILE": "/run/secrets/p", "PIX_RABBIT_CA": CA},
                     files={"/run/secrets/p": "passwords/rabbitmq/notifier", CA: "ca/ca.crt"})
        r = sc.Report()
        sc.Contract([rabbit, ok], self.gen, "compose", r).rule_rabbitmq("rabbitmq", conf)
        self.assertEqual(r.bad, [])
        plain = sc.Unit("auditor", "auditor", env={"PIX_RABBIT_URL": "amqp://auditor@rabbitmq:5672/"})
        r = sc.Report()
        sc.Contract([rabbit, plain], self.gen, "compose", r).rule_rabbitmq("rabbitmq", conf)
        self.assertTrue(any("must be amqps://" in b for b in r.bad))
        r = sc.Report()
        sc.Contract([rabbit], self.gen, "compose", r).rule_rabbitmq("rabbitmq", conf + "\nlisteners.tcp.default = 5672\n")
        self.assertTrue(any("no listeners.tcp" in b for b in r.bad))

    def test_api_rules(self):
        files = {CA: "ca/ca.crt", "/run/secrets/c": "tls/api-kafka.crt", "/run/secrets/k": "tls/api-kafka.key",
                 "/run/secrets/j": "jwt/jwks.json"}
        env = {"PIX_AUTH": "jwt", "PIX_JWKS": "/run/secrets/j", "PIX_JWT_ISSUER": ds.ISSUER, "PIX_TLS_CERT": "/run/secrets/c",
               "PIX_TLS_KEY": "/run/secrets/k"}
        hc = ("compose", f"CMD curl -fsS --cacert {CA} -o /dev/null https://127.0.0.1:5000/readyz")
        good = sc.Unit("api-kafka", "api-kafka", env=dict(env), files=files, probes=[hc])
        other = sc.Unit("api-rabbitmq", "api-rabbitmq", env=dict(env), files=files, probes=[hc])
        r = sc.Report()
        sc.Contract([good, other], self.gen, "compose", r).rule_apis({"api-kafka": ["api-kafka", "127.0.0.1"],
                                                                      "api-rabbitmq": ["api-rabbitmq"]})
        kafka_bad = [b for b in r.bad if b.startswith("api-kafka")]
        self.assertEqual(kafka_bad, [])
        self.assertTrue(any(b.startswith("api-rabbitmq") and "tls/api-rabbitmq.crt" in b for b in r.bad))
        noauth = sc.Unit("api-kafka", "api-kafka", env=dict(env, PIX_AUTH="none"), files=files,
                         probes=[("compose", "CMD curl http://127.0.0.1:5000/readyz")])
        r = sc.Report()
        sc.Contract([noauth, other], self.gen, "compose", r).rule_apis({"api-kafka": ["api-kafka"], "api-rabbitmq": []})
        self.assertTrue(any("--auth jwt" in b for b in r.bad))
        self.assertTrue(any("healthcheck must GET https" in b for b in r.bad))

    def test_scrape_rule(self):
        prom = sc.Unit("prometheus", "prometheus", files={CA: "ca/ca.crt"})
        good = ("scrape_configs:\n" + "".join(f"  - job_name: {j}\n    scheme: https\n    tls_config:\n      ca_file: {CA}\n"
                                              for j in ("api-kafka", "api-rabbitmq")))
        r = sc.Report()
        sc.Contract([prom], self.gen, "compose", r).rule_scrape(good, None)
        self.assertEqual(r.bad, [])
        r = sc.Report()
        sc.Contract([prom], self.gen, "compose", r).rule_scrape(good.replace("https", "http", 1), None)
        self.assertEqual(len(r.bad), 1)
        r = sc.Report()
        sc.Contract([prom], self.gen, "k8s", r).rule_scrape(good, {"api-kafka": "api-kafka.api-kafka.svc",
                                                                   "api-rabbitmq": "api-rabbitmq.api-rabbitmq.svc"})
        self.assertEqual(len(r.bad), 2)  # no server_name: pod IPs are not in the certificates

    def test_facts(self):
        self.assertEqual(sc.acl_principals(), {"api-kafka", "antifraud", "settlement", "notifier", "auditor", "pix-tail"})
        self.assertTrue(sc.san_matches(["DNS:*.kafka-headless.kafka.svc.cluster.local"],
                                       "kafka-0.kafka-headless.kafka.svc.cluster.local"))
        self.assertFalse(sc.san_matches(["DNS:*.kafka-headless.kafka.svc.cluster.local"], "a.b.kafka-headless.kafka.svc.cluster.local"))
        self.assertTrue(sc.san_matches(["IP:127.0.0.1"], "127.0.0.1"))

    def test_kafka_props_match_pix_kafka_run(self):
        """The check maps KAFKA_* exactly as the image's wrapper does."""
        env = {"KAFKA_LISTENER_NAME_INTERNAL_SCRAM___SHA___512_SASL_JAAS_CONFIG": "x y",
               "KAFKA_LISTENER_NAME_SASL__SSL_SSL_CLIENT_AUTH": "requested", "KAFKA_NODE_ID": "1", "KAFKA_HEAP_OPTS": "-Xmx1g"}
        script = (sc.ROOT / "deploy/images/kafka/pix-kafka-run.sh").read_text()
        func = script[script.index("render_properties() {"):script.index("\n}\n", script.index("render_properties() {")) + 3]
        out = subprocess.run(["bash", "-c", func + "\nrender_properties"], capture_output=True, text=True,
                             env={"PATH": os.environ["PATH"], **env}, check=True).stdout
        got = dict(line.split("=", 1) for line in out.splitlines() if line and not line.startswith("#"))
        self.assertEqual(got, sc.kafka_props(env))
        self.assertEqual(got["listener.name.internal.scram-sha-512.sasl.jaas.config"], "x y")
        self.assertEqual(got["listener.name.sasl_ssl.ssl.client.auth"], "requested")


AF_KEY = "/run/decision-keys/antifraud/key.json"
ST_KEY = "/run/decision-keys/settlement/key.json"


def saga_units(platform="compose"):
    """The four stages as docker-compose.yaml / k8s/ configure them: antifraud signs, settlement
    trusts anti-fraud and signs, the notifier trusts settlement, the auditor holds no key."""
    af = sc.Unit("antifraud", "antifraud", env={"PIX_DECISION_KEY": AF_KEY},
                 files={AF_KEY: "decision-keys/antifraud.json"})
    st = sc.Unit("settlement", "settlement", env={"PIX_DECISION_KEY": ST_KEY, "PIX_TRUST_KEYS": AF_KEY},
                 files={AF_KEY: "decision-keys/antifraud.json", ST_KEY: "decision-keys/settlement.json"})
    nt = sc.Unit("notifier", "notifier", env={"PIX_TRUST_KEYS": ST_KEY}, files={ST_KEY: "decision-keys/settlement.json"})
    au = sc.Unit("auditor", "auditor", files={CA: "ca/ca.crt"})
    units = [af, st, nt, au]
    if platform == "k8s":
        for u in units:
            u.modes = {path: (0o400, True) for path in u.files}
    return units


class Decisions(GeneratedSecrets, unittest.TestCase):
    """rule_decisions: who signs with and who trusts which decision key, and nothing else."""

    def report(self, units, platform="compose", gen=None):
        r = sc.Report()
        sc.Contract(units, gen or self.gen, platform, r).rule_decisions()
        return r

    def test_good_saga_passes(self):
        for platform in ("compose", "k8s"):
            r = self.report(saga_units(platform), platform)
            self.assertEqual(r.bad, [], platform)
            self.assertTrue(any("kid antifraud-" in g for g in r.good))

    def test_command_line_flags_count_like_the_variables(self):
        units = saga_units()
        st = units[1]
        st.env = {}
        st.command = ["pix-settlement", "--decision-key", ST_KEY, f"--trust-key={AF_KEY}"]
        self.assertEqual(self.report(units).bad, [])

    def test_trust_keys_is_a_list(self):
        units = saga_units()
        old = "/run/decision-keys/antifraud/old.json"
        units[1].env["PIX_TRUST_KEYS"] = f"{AF_KEY},{old}"
        units[1].files[old] = "decision-keys/antifraud.json"  # two kids during a rotation
        self.assertEqual(self.report(units).bad, [])
        units[1].files[old] = "decision-keys/settlement.json"
        self.assertTrue(any("old.json must be a mount of decision-keys/antifraud.json" in b for b in self.report(units).bad))

    def test_signer_without_key_fails(self):
        for i, name in ((0, "antifraud"), (1, "settlement")):
            units = saga_units()
            del units[i].env["PIX_DECISION_KEY"]
            bad = self.report(units).bad
            self.assertTrue(any(b.startswith(name) and "needs PIX_DECISION_KEY" in b for b in bad), bad)

    def test_verifier_without_trust_fails(self):
        for i, name in ((1, "settlement"), (2, "notifier")):
            units = saga_units()
            del units[i].env["PIX_TRUST_KEYS"]
            bad = self.report(units).bad
            self.assertTrue(any(b.startswith(name) and "needs PIX_TRUST_KEYS" in b for b in bad), bad)

    def test_key_of_the_wrong_stage_fails(self):
        units = saga_units()
        units[2].env["PIX_TRUST_KEYS"] = AF_KEY  # the notifier trusting anti-fraud
        units[2].files = {AF_KEY: "decision-keys/antifraud.json"}
        bad = self.report(units).bad
        self.assertTrue(any("must be a mount of decision-keys/settlement.json" in b for b in bad), bad)
        self.assertTrue(any("decision-keys/antifraud.json, which it does not use" in b for b in bad), bad)
        units = saga_units()
        units[0].files[AF_KEY] = "decision-keys/settlement.json"  # anti-fraud signing with settlement's key
        self.assertTrue(any(b.startswith("antifraud") and "must be a mount of decision-keys/antifraud.json" in b
                            for b in self.report(units).bad))

    def test_unmounted_key_fails(self):
        units = saga_units()
        units[2].files = {}
        self.assertTrue(any("must be a mount of decision-keys/settlement.json (settlement's key; is missing)" in b
                            for b in self.report(units).bad))

    def test_key_given_where_it_is_not_needed_fails(self):
        units = saga_units()
        units[3].files["/run/decision-keys/settlement/key.json"] = "decision-keys/settlement.json"  # the auditor
        units[2].files[AF_KEY] = "decision-keys/antifraud.json"  # the notifier
        bad = self.report(units).bad
        self.assertTrue(any(b.startswith("auditor") and "decision-keys/settlement.json, which it does not use" in b
                            for b in bad), bad)
        self.assertTrue(any(b.startswith("notifier") and "decision-keys/antifraud.json, which it does not use" in b
                            for b in bad), bad)

    def test_settings_on_the_wrong_stage_fail(self):
        units = saga_units()
        units[2].env["PIX_DECISION_KEY"] = ST_KEY  # the notifier signs nothing
        units[0].env["PIX_TRUST_KEYS"] = AF_KEY  # anti-fraud verifies nothing
        units[3].command = ["pix-auditor", "--trust-key", ST_KEY]
        bad = self.report(units).bad
        self.assertTrue(any(b.startswith("notifier") and "notifier signs no decisions" in b for b in bad), bad)
        self.assertTrue(any(b.startswith("antifraud") and "antifraud verifies no decisions" in b for b in bad), bad)
        self.assertTrue(any(b.startswith("auditor") and "auditor verifies no decisions" in b for b in bad), bad)

    def test_allow_unsigned_fails(self):
        units = saga_units()
        units[1].env["PIX_ALLOW_UNSIGNED"] = "true"
        units[3].command = ["pix-auditor", "--allow-unsigned"]
        units[2].command = ["pix-notifier", "--allow-unsigned=false"]
        bad = [b for b in self.report(units).bad if "--allow-unsigned" in b]
        self.assertEqual(sorted(b.split(":")[0] for b in bad), ["auditor", "notifier", "settlement"])

    def test_missing_stage_fails(self):
        units = saga_units()[:2] + saga_units()[3:]
        self.assertTrue(any("expected one notifier container, found 0" in b for b in self.report(units).bad))

    def test_k8s_modes(self):
        units = saga_units("k8s")
        units[1].modes[AF_KEY] = (0o644, True)  # a Secret volume without defaultMode
        units[2].modes[ST_KEY] = (0o400, False)
        bad = self.report(units, "k8s").bad
        self.assertTrue(any(b.startswith("settlement") and "defaultMode 0400 (is 0644, read-only)" in b for b in bad), bad)
        self.assertTrue(any(b.startswith("notifier") and "(is 0400, writable)" in b for b in bad), bad)
        self.assertEqual(self.report(units, "compose").bad, [])  # compose: the host file's mode (dev_secrets.sh)

    def test_key_not_made_by_dev_secrets_fails(self):
        with tempfile.TemporaryDirectory() as tmp:
            gen = Path(tmp, "gen")
            shutil.copytree(self.gen, gen)
            (gen / "decision-keys/settlement.json").write_text((gen / "decision-keys/antifraud.json").read_text())
            bad = self.report(saga_units(), gen=gen).bad
            self.assertTrue(any("not a key dev_secrets.sh makes" in b and "a key of stage 'antifraud'" in b for b in bad), bad)

    def test_unsigned_mentions(self):
        doc = {"kind": "ConfigMap", "data": {"PIX_ALLOW_UNSIGNED": "true"},
               "spec": {"containers": [{"args": ["--x", "--allow-unsigned"]}]}, "comment-free": "allow signed"}
        self.assertEqual(sc.unsigned_mentions(doc), ["data.PIX_ALLOW_UNSIGNED", "spec.containers[0].args[1] = '--allow-unsigned'"])
        self.assertEqual(sc.unsigned_mentions({"env": [{"name": "PIX_DECISION_KEY", "value": AF_KEY}]}), [])


@unittest.skipUnless(HAVE_YAML, "PyYAML")
class K8sUnits(unittest.TestCase):
    """k8s_units models Secret volumes: files, their modes and read-only mounts."""

    def test_secret_volume_modes(self):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            (root / "k8s").mkdir()
            (root / "k8s/x.yaml").write_text(yaml.safe_dump({
                "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "pix-notifier", "namespace": "pix-saga"},
                "spec": {"template": {"spec": {
                    "containers": [{"name": "notifier", "image": "pix-pubsub:latest", "command": ["pix-notifier"],
                                    "env": [{"name": "PIX_TRUST_KEYS", "value": ST_KEY}],
                                    "volumeMounts": [{"name": "k", "mountPath": "/run/decision-keys/settlement",
                                                      "readOnly": True},
                                                     {"name": "p", "mountPath": "/run/secrets"}]}],
                    "volumes": [{"name": "k", "secret": {"secretName": "decision-key-settlement", "defaultMode": 0o400}},
                                {"name": "p", "projected": {"defaultMode": 0o440, "sources": [
                                    {"secret": {"name": "pix-ca", "items": [{"key": "ca.crt", "path": "pix-ca.crt",
                                                                             "mode": 0o444}]}}]}}]}}}}))
            units, _ = sc.k8s_units(root, sc.Report())
        (u,) = units
        self.assertEqual(u.component, "notifier")
        self.assertEqual(u.files[ST_KEY], "decision-keys/settlement.json")
        self.assertEqual(u.modes[ST_KEY], (0o400, True))
        self.assertEqual(u.modes[CA], (0o444, False))


@unittest.skipUnless(HAVE_YAML and shutil.which("docker-compose"), "PyYAML and docker-compose")
class Repository(GeneratedSecrets, unittest.TestCase):
    """The repository's own docker-compose.yaml and k8s/ hold the contract."""

    def test_compose(self):
        self.assertEqual(sc.check_compose(sc.ROOT, self.gen).bad, [])

    def test_k8s(self):
        self.assertEqual(sc.check_k8s(sc.ROOT, self.gen).bad, [])


@unittest.skipUnless(HAVE_YAML, "PyYAML")
class LintRules(unittest.TestCase):
    """render_k8s.py --lint: no committed Secret; NetworkPolicy ports are container ports."""

    def lint(self, text):
        import render_k8s
        with tempfile.TemporaryDirectory() as tmp:
            k8s = Path(tmp, "k8s")
            k8s.mkdir()
            Path(k8s, "x.yaml").write_text(text)
            lint = render_k8s.Lint(k8s, sc.ROOT, sc.ROOT / "docker-compose.yaml", [])
            lint.rule_secrets()
            lint.rule_networkpolicies()
            return lint.errors

    def test_committed_secret_and_stale_port(self):
        errors = self.lint("""apiVersion: v1
kind: Secret
metadata: {name: s, namespace: n}
stringData: {password: x}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: d, namespace: n}
spec:
  template:
    metadata: {labels: {app: d}}
    spec:
      containers:
        - name: c
          ports: [{name: amqps, containerPort: 5671}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: p, namespace: n}
spec:
  podSelector: {matchLabels: {app: d}}
  ingress:
    - ports: [{protocol: TCP, port: 5672}, {protocol: TCP, port: 5671}]
""")
        self.assertTrue(any("credentials are never committed" in e for e in errors))
        self.assertTrue(any("opens port 5672" in e for e in errors))
        self.assertFalse(any("opens port 5671" in e for e in errors))


if __name__ == "__main__":
    unittest.main()
