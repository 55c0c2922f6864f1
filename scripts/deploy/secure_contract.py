#!/usr/bin/env python3
"""The secured deployment's contract, checked offline over docker-compose.yaml and k8s/.

    scripts/deploy/secure_contract.py compose     docker-compose.yaml (needs docker-compose and PyYAML)
    scripts/deploy/secure_contract.py k8s         k8s/ with the Secrets dev_secrets.sh renders
    options: --gen-dir DIR   use this dev_secrets.sh output instead of making one in a temporary directory

Both targets are reduced to the same model, one Unit per container (its program, command, environment
and the files it finds under /run/secrets with the dev_secrets.sh file each comes from), and checked
by the same rules:

  files      every path under /run/secrets (or /run/decision-keys) that a container is told about
             (PIX_*_FILE, PIX_*_CA, PIX_TLS_*, PIX_JWKS, PIX_DECISION_KEY, PIX_TRUST_KEYS, KAFKA_* and
             GF_*__FILE variables, the JAAS DirectoryConfigProvider
             directory, the files of a mounted configuration: rabbitmq.conf, prometheus.yml, the
             command-line arguments) is mounted in that container, from a file dev_secrets.sh produces; every
             compose secret and every Secret/ConfigMap k8s/ references but does not define is one
             dev_secrets.sh makes (with those keys); no Secret is committed in k8s/
  inline     no password, token or key in the files themselves: no *PASSWORD*/*TOKEN*/*SECRET*
             variable with a value, no password in a URL
  kafka      every Kafka client (PIX_KAFKA_BOOTSTRAP) uses sasl_ssl + SCRAM-SHA-512, its own
             principal (api-kafka, antifraud, ..., pix-admin for the topology) with that principal's
             password file and the CA; that principal has SCRAM credentials in the broker's setup
             (PIX_KAFKA_SCRAM_USERS, each password file mounted at PIX_KAFKA_SCRAM_DIR/<user>) and
             is one of pix_acls' principals (src/pix/kafka/acls.hpp) or, for the topology only, a
             super user; the broker has no PLAINTEXT/SASL_PLAINTEXT listener, SASL_SSL with
             SCRAM-SHA-512 on every client listener, the controller listener on SSL with required
             client certificates, StandardAuthorizer with allow.everyone.if.no.acl.found=false,
             super.users exactly pix-admin, kafka-broker and the controller certificate's subject,
             hostname verification on, and certificates whose SANs name the advertised hosts and
             the controller voters; the topology runs `pix-admin topology --kafka-acls`
  rabbitmq   no amqp:// URL anywhere; every RabbitMQ client uses amqps://<its user>@<broker>:5671/
             with no password in the URL, its own password file and the CA; the user exists in
             definitions.template.json with permissions on that vhost; rabbitmq.conf has no TCP
             listener, AMQPS on 5671, the management API on HTTPS only, and its certificate,
             key, CA and load_definitions are mounted in the broker from dev_secrets.sh's files
  apis       pix-api runs with --auth jwt (PIX_AUTH), the development JWKS and issuer, TLS with
             its own certificate and key whose SANs name the service (and 127.0.0.1 for compose's
             healthcheck); compose healthchecks use https://127.0.0.1:PORT with --cacert of the
             mounted CA, Kubernetes probes scheme HTTPS
  decisions  the saga's decisions are signed: antifraud and settlement sign with their own key
             (PIX_DECISION_KEY / --decision-key: one file, a mount of decision-keys/<stage>.json),
             settlement trusts anti-fraud's key and the notifier settlement's (PIX_TRUST_KEYS /
             --trust-key: each file a mount of decision-keys/<upstream>.json); every such file is a
             key dev_secrets.sh made for that stage (pix_stage, kid, HS256, 32+ bytes); no other
             component is given a decision key or a decision-key setting, and a key is mounted only
             into its signer and its verifier (least privilege); in Kubernetes each key file is
             mounted read-only with no group/other mode bits (defaultMode 0400); nothing sets
             PIX_ALLOW_UNSIGNED or --allow-unsigned (not in a container's command or environment,
             nor anywhere in docker-compose.yaml / k8s/: a ConfigMap, an anchor, a variable)
  scrape     the Prometheus jobs of the APIs use scheme https with the mounted CA (no
             insecure_skip_verify); in Kubernetes a server_name the API certificate names
  ingress    (k8s) re-encryption to HTTPS backends with verification against a generated CA
             Secret, the proxy-ssl-name in the backend's certificate, the TLS Secret a generated
             kubernetes.io/tls Secret for the host
  keda       (k8s) every kafka trigger uses sasl scram_sha512 + tls with the measured stage's own
             principal (Secret kafka-user-<stage>) and a CA; the rabbitmq trigger reads the
             management API over https://<a user of the definitions>@...:15671/ with tls and a CA
Exit 1 on any finding; every rule that held is printed.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
import dev_secrets  # noqa: E402

SECRETS_DIR_DEFAULT = "./.local/dev-secrets"
SECRET_FILE_RE = re.compile(r"^\$\{PIX_SECRETS_DIR:-" + re.escape(SECRETS_DIR_DEFAULT) + r"\}/(?P<rel>\S+)$")
# The paths of mounted secrets: /run/secrets/..., and the decision keys' /run/decision-keys/<stage>/
# (their own volumes in Kubernetes: a mount inside the read-only projected /run/secrets cannot be made).
RUN_SECRETS_RE = re.compile(r"/run/(?:secrets|decision-keys)/[A-Za-z0-9._/-]*[A-Za-z0-9_-]")

# Which principal / user each component logs in as.
KAFKA_PRINCIPAL = {"api-kafka": "api-kafka", "antifraud": "antifraud", "settlement": "settlement",
                   "notifier": "notifier", "auditor": "auditor", "topology": "pix-admin"}
RABBIT_USER = {"api-rabbitmq": "api-rabbitmq", "notifier": "notifier", "auditor": "auditor", "topology": "pix-admin"}
SUPER_USERS = {"User:pix-admin", "User:kafka-broker", dev_secrets.CONTROLLER_PRINCIPAL}
API_PORTS = {"api-kafka": "5000", "api-rabbitmq": "5001"}
# The saga's decision keys (dev_secrets.DECISION_KEYS): component -> the stage whose key it signs
# with (PIX_DECISION_KEY) / whose keys it trusts (PIX_TRUST_KEYS).
SIGNS_WITH = {signer: stage for stage, (signer, _) in dev_secrets.DECISION_KEYS.items()}
TRUSTS = {verifier: stage for stage, (_, verifier) in dev_secrets.DECISION_KEYS.items()}
UNSIGNED_RE = re.compile(r"allow[-_]unsigned", re.I)
# The k8s workloads by component.
K8S_COMPONENT = {("api-kafka", "Deployment", "api-kafka"): "api-kafka",
                 ("api-rabbitmq", "Deployment", "api-rabbitmq"): "api-rabbitmq",
                 ("pix-saga", "StatefulSet", "pix-antifraud"): "antifraud",
                 ("pix-saga", "StatefulSet", "pix-settlement"): "settlement",
                 ("pix-saga", "StatefulSet", "pix-notifier"): "notifier",
                 ("pix-saga", "StatefulSet", "pix-auditor"): "auditor",
                 ("kafka", "Job", "pix-topology"): "topology",
                 ("kafka", "StatefulSet", "kafka"): "kafka",
                 ("rabbitmq", "StatefulSet", "rabbitmq"): "rabbitmq",
                 ("monitoring", "Deployment", "prometheus"): "prometheus"}


@dataclass
class Unit:
    """One container: what it runs, its environment, and the files it has under /run/secrets."""

    where: str
    component: str
    command: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    # container path -> the dev_secrets.sh file it holds (relative path), or None when unknown
    files: dict[str, str | None] = field(default_factory=dict)
    # texts of the configuration files mounted into it (path -> text), scanned for /run/secrets paths
    configs: dict[str, str] = field(default_factory=dict)
    # (scheme, host/port spec, path) of each HTTP probe/healthcheck; healthcheck command text (compose)
    probes: list[tuple[str, str]] = field(default_factory=list)
    env_from_secret: set[str] = field(default_factory=set)
    # container path -> (file mode, mounted read-only) where the platform says (Kubernetes volumes)
    modes: dict[str, tuple[int, bool]] = field(default_factory=dict)


class Report:
    def __init__(self):
        self.good: list[str] = []
        self.bad: list[str] = []

    def check(self, cond, good, bad):
        (self.good if cond else self.bad).append(good if cond else bad)
        return bool(cond)

    def fail(self, msg):
        self.bad.append(msg)


# ---- facts from the repository -------------------------------------------------------------------


def acl_principals(root: Path = ROOT) -> set[str]:
    """The usernames pix_acls grants rights to: the defaults of struct Principals in acls.hpp."""
    text = (root / "src/pix/kafka/acls.hpp").read_text()
    m = re.search(r"struct Principals\s*\{(.*?)\};", text, re.S)
    return set(re.findall(r'std::string\s+\w+\s*=\s*"([^"]+)"', m.group(1))) if m else set()


def rabbit_template(root: Path = ROOT) -> dict:
    return json.loads((root / "monitoring/rabbitmq/definitions.template.json").read_text())


def parse_rabbit_conf(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if "=" in line:
            k, _, v = line.partition("=")
            out[k.strip()] = v.strip()
    return out


def kafka_props(env: dict[str, str]) -> dict[str, str]:
    """KAFKA_* variables as server properties, with the image's mapping (pix-kafka-run)."""
    skip = {"KAFKA_VERSION", "KAFKA_HEAP_OPTS", "KAFKA_LOG4J_OPTS", "KAFKA_OPTS", "KAFKA_JMX_OPTS",
            "KAFKA_JVM_PERFORMANCE_OPTS", "KAFKA_GC_LOG_OPTS", "KAFKA_LOG4J_ROOT_LOGLEVEL", "KAFKA_LOG4J_LOGGERS",
            "KAFKA_TOOLS_LOG4J_LOGLEVEL", "KAFKA_JMX_HOSTNAME"}
    out = {}
    for k, v in env.items():
        if k.startswith("KAFKA_") and k not in skip:
            key = k[len("KAFKA_"):].lower().replace("_", ".").replace("...", "-").replace("..", "_")
            out[key] = v
    return out


def san_matches(sans: list[str], host: str) -> bool:
    for s in sans:
        kind, _, value = s.partition(":")
        if kind == "IP" and value == host:
            return True
        if kind == "DNS":
            if value == host:
                return True
            if value.startswith("*.") and "." in host and host.split(".", 1)[1] == value[2:]:
                return True
    return False


def cert_subject_cn(crt: Path) -> str:
    r = subprocess.run(["openssl", "x509", "-in", str(crt), "-noout", "-subject", "-nameopt", "RFC2253"],
                       capture_output=True, text=True, check=False)
    return r.stdout.strip().removeprefix("subject=")


# ---- the rules -------------------------------------------------------------------------------------------


class Contract:
    def __init__(self, units: list[Unit], gen: Path, platform: str, report: Report, root: Path = ROOT):
        self.units = units
        self.gen = gen
        self.platform = platform  # compose | k8s
        self.r = report
        self.root = root
        self.by_component: dict[str, list[Unit]] = {}
        for u in units:
            self.by_component.setdefault(u.component, []).append(u)

    def one(self, component) -> Unit | None:
        found = self.by_component.get(component) or []
        if len(found) != 1:
            self.r.fail(f"{self.platform}: expected one {component} container, found {len(found)}")
            return None
        return found[0]

    def sans(self, rel: str | None) -> list[str]:
        if not rel or not (self.gen / rel).is_file():
            return []
        return dev_secrets.cert_sans(self.gen / rel)

    def cert_of(self, rel: str | None) -> str | None:
        """tls/x.keystore.pem -> tls/x.crt (the keystore holds that certificate)."""
        if rel and rel.endswith(".keystore.pem"):
            return rel[: -len(".keystore.pem")] + ".crt"
        return rel

    # -- files under /run/secrets --
    def rule_files(self):
        for u in self.units:
            wanted = {}
            for k, v in u.env.items():
                for path in RUN_SECRETS_RE.findall(v):
                    wanted.setdefault(path, f"${k}")
            for arg in u.command:
                for path in RUN_SECRETS_RE.findall(arg):
                    wanted.setdefault(path, "its command line")
            for name, text in u.configs.items():
                for path in RUN_SECRETS_RE.findall(text):
                    wanted.setdefault(path, name)
            before = len(self.r.bad)
            for path, why in sorted(wanted.items()):
                if any(f.startswith(path.rstrip("/") + "/") for f in u.files):
                    continue  # a directory of mounted files (PIX_KAFKA_SCRAM_DIR, ${dir:...})
                src = u.files.get(path, "missing")
                if src == "missing":
                    self.r.fail(f"{u.where}: {why} names {path}, which is not mounted in this container")
                elif src is None:
                    self.r.fail(f"{u.where}: {path} ({why}) does not come from a file scripts/deploy/dev_secrets.sh makes")
                elif not (self.gen / src).is_file():
                    self.r.fail(f"{u.where}: {path} ({why}) is {src}, which scripts/deploy/dev_secrets.sh does not make")
            if len(self.r.bad) == before:
                self.r.good.append(f"{u.where}: the {len(wanted)} /run/secrets path(s) it is told about are mounted "
                                   "from dev_secrets.sh files")
            for k, v in u.env.items():
                if re.search(r"PASSWORD|TOKEN|SECRET", k) and not re.search(r"_FILE$", k) and k not in u.env_from_secret:
                    self.r.fail(f"{u.where}: {k} carries a value: credentials come from files (use {k}_FILE or a "
                                f"*_FILE variable)")
                for url in re.findall(r"[a-z][a-z0-9+.-]*://[^\s\"']+", v):
                    if urlsplit(url).password:
                        self.r.fail(f"{u.where}: {k} has a URL with a password in it")

    # -- Kafka --
    def rule_kafka(self):
        broker = self.one("kafka")
        if broker is None:
            return
        props = kafka_props(broker.env)
        where = broker.where
        protomap = dict(p.split(":", 1) for p in props.get("listener.security.protocol.map", "").split(",") if ":" in p)
        controllers = {c.strip() for c in props.get("controller.listener.names", "").split(",") if c.strip()}
        listeners = [x.split("://", 1)[0] for x in props.get("listeners", "").split(",") if "://" in x]
        self.r.check(protomap and all(protomap.get(name) for name in listeners),
                     f"{where}: every listener has a security protocol", f"{where}: listeners {listeners} vs map {protomap}")
        plain = [name for name, p in protomap.items() if p in ("PLAINTEXT", "SASL_PLAINTEXT")]
        self.r.check(not plain, f"{where}: no plaintext listener", f"{where}: plaintext listener(s) {plain}")
        clients = [name for name in listeners if name not in controllers]
        self.r.check(clients and all(protomap.get(name) == "SASL_SSL" for name in clients),
                     f"{where}: client listeners {clients} are SASL_SSL",
                     f"{where}: client listeners {[(l, protomap.get(l)) for l in clients]} must all be SASL_SSL")
        for c in controllers:
            self.r.check(protomap.get(c) == "SSL" and props.get(f"listener.name.{c.lower()}.ssl.client.auth") == "required",
                         f"{where}: controller listener {c} is SSL with required client certificates",
                         f"{where}: controller listener {c} must be SSL with listener.name.{c.lower()}.ssl.client.auth=required")
        ibl = props.get("inter.broker.listener.name")
        self.r.check(protomap.get(ibl) == "SASL_SSL" and props.get("sasl.mechanism.inter.broker.protocol") == "SCRAM-SHA-512",
                     f"{where}: brokers talk SASL_SSL with SCRAM-SHA-512", f"{where}: inter-broker {ibl} must be SASL_SSL, SCRAM-SHA-512")
        self.r.check(props.get("sasl.enabled.mechanisms") == "SCRAM-SHA-512", f"{where}: SCRAM-SHA-512 only",
                     f"{where}: sasl.enabled.mechanisms={props.get('sasl.enabled.mechanisms')}, want SCRAM-SHA-512")
        self.r.check(props.get("authorizer.class.name") == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
                     and props.get("allow.everyone.if.no.acl.found") == "false",
                     f"{where}: StandardAuthorizer, deny without an ACL",
                     f"{where}: needs StandardAuthorizer and allow.everyone.if.no.acl.found=false")
        supers = {s.strip() for s in props.get("super.users", "").split(";") if s.strip()}
        self.r.check(supers == SUPER_USERS, f"{where}: super users {sorted(supers)}",
                     f"{where}: super.users {sorted(supers)}, want exactly {sorted(SUPER_USERS)}")
        self.r.check(props.get("ssl.endpoint.identification.algorithm", "https") == "https",
                     f"{where}: host name verification on", f"{where}: ssl.endpoint.identification.algorithm must stay https")
        # keystores, truststore, certificates naming the hosts
        for key in [k for k in props if k.endswith("ssl.keystore.location") or k.endswith("ssl.truststore.location")]:
            src = broker.files.get(props[key])
            self.r.check(src is not None, f"{where}: {key} is mounted ({src})", f"{where}: {key}={props[key]} is not mounted")
        ks = self.cert_of(broker.files.get(props.get("ssl.keystore.location", "")))
        sans = self.sans(ks)
        for adv in props.get("advertised.listeners", "").split(","):
            host = adv.split("://", 1)[-1].rsplit(":", 1)[0]
            host = re.sub(r"\$\([A-Z_]+\)", "kafka-0", host)
            self.r.check(san_matches(sans, host), f"{where}: broker certificate names advertised host {host}",
                         f"{where}: the broker certificate ({ks}) does not name advertised host {host}: clients refuse it")
        for c in controllers:
            cks = self.cert_of(broker.files.get(props.get(f"listener.name.{c.lower()}.ssl.keystore.location", "")))
            csans = self.sans(cks)
            for voter in props.get("controller.quorum.voters", "").split(","):
                host = voter.split("@", 1)[-1].rsplit(":", 1)[0]
                self.r.check(san_matches(csans, host), f"{where}: controller certificate names voter {host}",
                             f"{where}: the controller certificate ({cks}) does not name voter {host}")
            if cks and (self.gen / cks).is_file():
                subject = "User:" + cert_subject_cn(self.gen / cks)
                self.r.check(subject in supers, f"{where}: the controller's principal {subject} is a super user",
                             f"{where}: the controller certificate's subject {subject} is not in super.users")
        # JAAS of every SASL listener: the broker's own login, its password through DirectoryConfigProvider
        scram_dir = broker.env.get("PIX_KAFKA_SCRAM_DIR", "")
        self.r.check(props.get("config.providers") == "dir" and props.get("config.providers.dir.class", "").endswith(
            "DirectoryConfigProvider"), f"{where}: DirectoryConfigProvider for the broker's password",
            f"{where}: config.providers dir (DirectoryConfigProvider) must be configured")
        for name in clients:
            jaas = props.get(f"listener.name.{name.lower()}.scram-sha-512.sasl.jaas.config", "")
            self.r.check('username="kafka-broker"' in jaas and f"${{dir:{scram_dir}:kafka-broker}}" in jaas,
                         f"{where}: listener {name} logs in as kafka-broker, password from {scram_dir}",
                         f"{where}: listener {name} needs a ScramLoginModule JAAS config as kafka-broker with "
                         f"password=\"${{dir:{scram_dir}:kafka-broker}}\"")
        users = broker.env.get("PIX_KAFKA_SCRAM_USERS", "").split()
        acl = acl_principals(self.root)
        want_users = acl | {"pix-admin", "kafka-broker"}
        self.r.check(set(users) == want_users, f"{where}: SCRAM users {sorted(users)} = pix_acls' principals + pix-admin + kafka-broker",
                     f"{where}: PIX_KAFKA_SCRAM_USERS {sorted(users)} != pix_acls' principals + pix-admin + kafka-broker "
                     f"{sorted(want_users)}")
        for user in users:
            src = broker.files.get(f"{scram_dir}/{user}")
            self.r.check(src == f"passwords/kafka/{user}", f"{where}: SCRAM user {user} formatted from passwords/kafka/{user}",
                         f"{where}: {scram_dir}/{user} must be mounted from passwords/kafka/{user} (is {src})")
        # the clients
        for u in self.units:
            if "PIX_KAFKA_BOOTSTRAP" not in u.env:
                continue
            e = u.env
            want = KAFKA_PRINCIPAL.get(u.component)
            self.r.check(e.get("PIX_KAFKA_SECURITY_PROTOCOL") == "sasl_ssl" and e.get("PIX_KAFKA_SASL_MECHANISM") == "SCRAM-SHA-512",
                         f"{u.where}: Kafka over sasl_ssl, SCRAM-SHA-512",
                         f"{u.where}: PIX_KAFKA_SECURITY_PROTOCOL must be sasl_ssl and PIX_KAFKA_SASL_MECHANISM SCRAM-SHA-512")
            user = e.get("PIX_KAFKA_USERNAME")
            self.r.check(want is not None and user == want, f"{u.where}: Kafka principal {user} (its own)",
                         f"{u.where}: PIX_KAFKA_USERNAME {user!r}, want {want!r} (each component its own principal)")
            if user:
                self.r.check(user in users, f"{u.where}: {user} has SCRAM credentials in the broker's setup",
                             f"{u.where}: {user} is not one of the broker's PIX_KAFKA_SCRAM_USERS")
                is_acl = user in acl
                is_super = f"User:{user}" in supers
                self.r.check(is_acl or (is_super and u.component == "topology"),
                             f"{u.where}: {user} is {'one of pix_acls principals' if is_acl else 'the super user (topology)'}",
                             f"{u.where}: {user} is not one of pix_acls' principals ({sorted(acl)})"
                             + (" (only the topology may be a super user)" if is_super else ""))
            pw = u.files.get(e.get("PIX_KAFKA_PASSWORD_FILE", ""), "missing")
            self.r.check(pw == f"passwords/kafka/{user}", f"{u.where}: password file is {user}'s own",
                         f"{u.where}: PIX_KAFKA_PASSWORD_FILE must be a mount of passwords/kafka/{user} (is {pw})")
            ca = u.files.get(e.get("PIX_KAFKA_CA", ""), "missing")
            self.r.check(ca == "ca/ca.crt", f"{u.where}: brokers verified against the CA",
                         f"{u.where}: PIX_KAFKA_CA must be a mount of ca/ca.crt (is {ca})")
        topo = self.one("topology")
        if topo:
            self.r.check("--kafka-acls" in topo.command or topo.env.get("PIX_KAFKA_ACLS") in ("1", "true"),
                         f"{topo.where}: pix-admin topology --kafka-acls",
                         f"{topo.where}: the topology must declare the ACLs (pix-admin topology --kafka-acls)")

    # -- RabbitMQ --
    def rule_rabbitmq(self, broker_host: str, conf_text: str):
        tpl = rabbit_template(self.root)
        users = {u["name"] for u in tpl.get("users", [])}
        perms = {(p["user"], p["vhost"]) for p in tpl.get("permissions", [])}
        self.r.check("guest" not in users, "definitions.template.json: no guest", "definitions.template.json has a guest user")
        for u in self.units:
            url = u.env.get("PIX_RABBIT_URL")
            if url is None:
                continue
            p = urlsplit(url)
            user = unquote(p.username or "")
            vhost = unquote(p.path[1:]) if len(p.path) > 1 else "/"
            want = RABBIT_USER.get(u.component)
            self.r.check(p.scheme == "amqps" and p.hostname == broker_host and p.port == 5671 and p.password is None,
                         f"{u.where}: amqps://{user}@{broker_host}:5671 (no password in the URL)",
                         f"{u.where}: PIX_RABBIT_URL must be amqps://<user>@{broker_host}:5671/ without a password")
            self.r.check(user == want, f"{u.where}: RabbitMQ user {user} (its own)", f"{u.where}: RabbitMQ user {user!r}, want {want!r}")
            self.r.check(user in users and (user, vhost) in perms, f"{u.where}: {user} has permissions on vhost {vhost}",
                         f"{u.where}: {user} is not a user of definitions.template.json with permissions on vhost {vhost}")
            pw = u.files.get(u.env.get("PIX_RABBIT_PASSWORD_FILE", ""), "missing")
            self.r.check(pw == f"passwords/rabbitmq/{user}", f"{u.where}: password file is {user}'s own",
                         f"{u.where}: PIX_RABBIT_PASSWORD_FILE must be a mount of passwords/rabbitmq/{user} (is {pw})")
            ca = u.files.get(u.env.get("PIX_RABBIT_CA", ""), "missing")
            self.r.check(ca == "ca/ca.crt", f"{u.where}: broker verified against the CA",
                         f"{u.where}: PIX_RABBIT_CA must be a mount of ca/ca.crt (is {ca})")
        broker = self.one("rabbitmq")
        if broker is None:
            return
        conf = parse_rabbit_conf(conf_text)
        where = f"{broker.where} (rabbitmq.conf)"
        self.r.check(conf.get("listeners.tcp") == "none" and not any(k.startswith("listeners.tcp.") for k in conf),
                     f"{where}: no plain AMQP listener", f"{where}: needs listeners.tcp = none and no listeners.tcp.*")
        self.r.check(conf.get("listeners.ssl.default") == "5671", f"{where}: AMQPS on 5671", f"{where}: listeners.ssl.default must be 5671")
        self.r.check(not any(k.startswith("management.tcp.") for k in conf) and conf.get("management.ssl.port"),
                     f"{where}: management over HTTPS only ({conf.get('management.ssl.port')})",
                     f"{where}: the management listener must be management.ssl.* only")
        self.r.check(conf.get("ssl_options.verify") == "verify_peer", f"{where}: verify_peer", f"{where}: ssl_options.verify must be verify_peer")
        for key, rel in (("ssl_options.cacertfile", "ca/ca.crt"), ("ssl_options.certfile", "tls/rabbitmq.crt"),
                         ("ssl_options.keyfile", "tls/rabbitmq.key"), ("management.ssl.cacertfile", "ca/ca.crt"),
                         ("management.ssl.certfile", "tls/rabbitmq.crt"), ("management.ssl.keyfile", "tls/rabbitmq.key"),
                         ("load_definitions", "rabbitmq/definitions.json")):
            src = broker.files.get(conf.get(key, ""), "missing")
            self.r.check(src == rel, f"{where}: {key} is a mount of {rel}", f"{where}: {key}={conf.get(key)} must be a mount of {rel} (is {src})")
        self.r.check(san_matches(self.sans("tls/rabbitmq.crt"), broker_host), f"{where}: certificate names {broker_host}",
                     f"{where}: tls/rabbitmq.crt does not name {broker_host}")

    # -- APIs --
    def rule_apis(self, api_hosts: dict[str, list[str]]):
        for name, port in API_PORTS.items():
            u = self.one(name)
            if u is None:
                continue
            e = u.env
            auth = e.get("PIX_AUTH", "none")
            for i, a in enumerate(u.command):
                if a == "--auth" and i + 1 < len(u.command):
                    auth = u.command[i + 1]
                elif a.startswith("--auth="):
                    auth = a.split("=", 1)[1]
            self.r.check(auth == "jwt", f"{u.where}: --auth jwt", f"{u.where}: the API must run with --auth jwt (PIX_AUTH=jwt), not {auth}")
            self.r.check(u.files.get(e.get("PIX_JWKS", "")) == "jwt/jwks.json", f"{u.where}: JWKS from dev_secrets.sh (read-only mount)",
                         f"{u.where}: PIX_JWKS must be a mount of jwt/jwks.json")
            self.r.check(e.get("PIX_JWT_ISSUER") == dev_secrets.ISSUER, f"{u.where}: issuer {dev_secrets.ISSUER}",
                         f"{u.where}: PIX_JWT_ISSUER {e.get('PIX_JWT_ISSUER')!r} is not the development issuer {dev_secrets.ISSUER}")
            crt, key = u.files.get(e.get("PIX_TLS_CERT", "")), u.files.get(e.get("PIX_TLS_KEY", ""))
            self.r.check(crt == f"tls/{name}.crt" and key == f"tls/{name}.key", f"{u.where}: TLS with its own certificate and key",
                         f"{u.where}: PIX_TLS_CERT/PIX_TLS_KEY must be mounts of tls/{name}.crt and tls/{name}.key (are {crt}, {key})")
            for host in api_hosts[name]:
                self.r.check(san_matches(self.sans(crt), host), f"{u.where}: certificate names {host}",
                             f"{u.where}: {crt} does not name {host}")
            ca_paths = [p for p, s in u.files.items() if s == "ca/ca.crt"]
            for kind, text in u.probes:
                if self.platform == "compose":
                    self.r.check(f"https://127.0.0.1:{port}/readyz" in text and any(f"--cacert {p}" in text for p in ca_paths),
                                 f"{u.where}: healthcheck over https with the CA",
                                 f"{u.where}: healthcheck must GET https://127.0.0.1:{port}/readyz with --cacert <the mounted CA>")
                else:
                    self.r.check(kind == "HTTPS", f"{u.where}: {text} over HTTPS", f"{u.where}: {text} must be scheme: HTTPS")
            self.r.check(u.probes, f"{u.where}: has probes", f"{u.where}: no healthcheck/probes")

    # -- the saga's decision keys --
    def option_values(self, u: Unit, flag: str, env: str, many: bool) -> list[str] | None:
        """The files of an option as the program sees it (CLI11: the command line, else the
        variable; PIX_TRUST_KEYS is a comma-separated list); None when neither sets it."""
        values = []
        for i, a in enumerate(u.command):
            if a == flag and i + 1 < len(u.command):
                values.append(u.command[i + 1])
            elif a.startswith(flag + "="):
                values.append(a.split("=", 1)[1])
        if values:
            return values
        if env not in u.env:
            return None
        v = u.env[env]
        return [x.strip() for x in v.split(",") if x.strip()] if many else [v]

    def decision_key_file(self, u: Unit, path: str, stage: str, what: str) -> bool:
        """`path` is mounted in `u` from decision-keys/<stage>.json, a key dev_secrets.sh made for `stage`."""
        rel = f"decision-keys/{stage}.json"
        src = u.files.get(path, "missing")
        if not self.r.check(src == rel, f"{u.where}: {what} {path} is a mount of {rel}",
                            f"{u.where}: {what} {path} must be a mount of {rel} ({stage}'s key; is {src})"):
            return False
        try:
            doc = dev_secrets.read_decision_key(self.gen, stage)
        except (OSError, dev_secrets.Failure) as e:
            self.r.fail(f"{u.where}: {what} {path}: {rel} is not a key dev_secrets.sh makes ({e})")
            return False
        self.r.good.append(f"{u.where}: {rel} is {stage}'s HS256 key (kid {doc['kid']})")
        if self.platform == "k8s":
            mode, ro = u.modes.get(path, (0o644, False))
            self.r.check(ro and not mode & 0o077, f"{u.where}: {path} mounted read-only, mode {mode:04o}",
                         f"{u.where}: {path} must be mounted readOnly from a volume with defaultMode 0400 (is "
                         f"{mode:04o}{', read-only' if ro else ', writable'}): group and others must not read a "
                         "decision key")
        return True

    def rule_decisions(self):
        for comp in sorted(set(SIGNS_WITH) | set(TRUSTS)):
            self.one(comp)
        before = len(self.r.bad)
        for u in self.units:
            unsigned = sorted({k for k in u.env if UNSIGNED_RE.search(k)} |
                              {a.split("=", 1)[0] for a in u.command if UNSIGNED_RE.search(a)})
            if unsigned:
                self.r.fail(f"{u.where}: {', '.join(unsigned)}: --allow-unsigned (PIX_ALLOW_UNSIGNED) is for "
                            "development only; the deployment runs with its decision keys")
            stage = SIGNS_WITH.get(u.component)
            sign = self.option_values(u, "--decision-key", "PIX_DECISION_KEY", many=False)
            if stage:
                if self.r.check(sign and len(sign) == 1, f"{u.where}: signs its decisions (PIX_DECISION_KEY)",
                                f"{u.where}: needs PIX_DECISION_KEY (or --decision-key), one file: {stage}'s key "
                                f"(is {sign})"):
                    self.decision_key_file(u, sign[0], stage, "PIX_DECISION_KEY")
            elif sign is not None:
                self.r.fail(f"{u.where}: PIX_DECISION_KEY/--decision-key set, but {u.component} signs no decisions")
            upstream = TRUSTS.get(u.component)
            trust = self.option_values(u, "--trust-key", "PIX_TRUST_KEYS", many=True)
            if upstream:
                if self.r.check(trust, f"{u.where}: acts only on {upstream}'s signed decisions (PIX_TRUST_KEYS)",
                                f"{u.where}: needs PIX_TRUST_KEYS (or --trust-key): {upstream}'s key"):
                    for path in trust:
                        self.decision_key_file(u, path, upstream, "PIX_TRUST_KEYS")
            elif trust is not None:
                self.r.fail(f"{u.where}: PIX_TRUST_KEYS/--trust-key set, but {u.component} verifies no decisions")
            # least privilege: a key only where it signs or is verified
            need = {f"decision-keys/{s}.json" for s in (stage, upstream) if s}
            held = {src for src in u.files.values() if src and src.startswith("decision-keys/")}
            if held - need:
                self.r.fail(f"{u.where}: is given {', '.join(sorted(held - need))}, which it does not use: a decision "
                            "key goes only to the stage that signs with it and the one that verifies it")
            elif held:
                self.r.good.append(f"{u.where}: holds only the decision key(s) it uses ({', '.join(sorted(held))})")
        if len(self.r.bad) == before:
            self.r.good.append(f"{self.platform}: no other container holds a decision key or a decision-key setting, none "
                               f"runs with --allow-unsigned ({len(self.units)} containers)")

    # -- Prometheus scrape jobs of the APIs --
    def rule_scrape(self, prometheus_yml: str, server_names: dict[str, str] | None):
        import yaml  # noqa: PLC0415

        prom = self.one("prometheus")
        if prom is None:
            return
        cfg = yaml.safe_load(prometheus_yml) or {}
        jobs = {j["job_name"]: j for j in cfg.get("scrape_configs") or []}
        for name in API_PORTS:
            j = jobs.get(name)
            if not self.r.check(j, f"prometheus job {name} exists", f"prometheus: no job {name}"):
                continue
            tls = j.get("tls_config") or {}
            ca = prom.files.get(tls.get("ca_file", ""), "missing")
            self.r.check(j.get("scheme") == "https" and ca == "ca/ca.crt" and not tls.get("insecure_skip_verify"),
                         f"prometheus job {name}: https, verified against the mounted CA",
                         f"prometheus job {name}: needs scheme https and tls_config.ca_file = a mount of ca/ca.crt "
                         f"(is {ca}), no insecure_skip_verify")
            if server_names is not None:
                sn = tls.get("server_name")
                self.r.check(sn == server_names[name] and san_matches(self.sans(f"tls/{name}.crt"), sn or ""),
                             f"prometheus job {name}: server_name {sn} is in the API certificate",
                             f"prometheus job {name}: tls_config.server_name {sn!r} must be {server_names[name]} "
                             "(pod IPs are not in the certificate)")


def unsigned_mentions(node, where: str = "") -> list[str]:
    """Where a parsed YAML document names --allow-unsigned / PIX_ALLOW_UNSIGNED (a key or a value;
    comments are not parsed): the development escape hatch has no place in the deployment."""
    out = []
    if isinstance(node, dict):
        for k, v in node.items():
            if UNSIGNED_RE.search(str(k)):
                out.append(f"{where}.{k}".lstrip("."))
            out += unsigned_mentions(v, f"{where}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += unsigned_mentions(v, f"{where}[{i}]")
    elif isinstance(node, str) and UNSIGNED_RE.search(node):
        out.append(f"{where.lstrip('.')} = {node!r}")
    return out


# ---- compose -----------------------------------------------------------------------------------------------


def compose_units(root: Path, report: Report) -> tuple[list[Unit], dict]:
    import yaml  # noqa: PLC0415

    raw_text = (root / "docker-compose.yaml").read_text()
    raw = yaml.safe_load(raw_text)
    # The file's own defaults: no PIX_* of this shell, no .env (an empty env file instead).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIX_", "COMPOSE_"))}
    with tempfile.NamedTemporaryFile("w", suffix=".env") as empty:
        out = subprocess.run(["docker-compose", "-f", str(root / "docker-compose.yaml"), "--env-file", empty.name,
                              "config"], capture_output=True, text=True, cwd=root, env=env, check=False)
    if out.returncode != 0:
        report.fail("docker-compose config failed: " + out.stderr.strip())
        return [], raw
    cfg = yaml.safe_load(out.stdout)
    sources = {}
    for name, spec in (raw.get("secrets") or {}).items():
        f = (spec or {}).get("file", "")
        m = SECRET_FILE_RE.match(f)
        if report.check(m, f"compose secret {name}: ${{PIX_SECRETS_DIR}}/{m.group('rel') if m else ''}",
                        f"compose secret {name}: file must be ${{PIX_SECRETS_DIR:-{SECRETS_DIR_DEFAULT}}}/<file> (is {f!r}); "
                        "no environment: or external: secrets"):
            sources[name] = m.group("rel")
    units = []
    used = set()
    for sname, svc in (cfg.get("services") or {}).items():
        u = Unit(f"compose service {sname}", "pix-sim" if sname == "pix-sim" else sname)
        if sname == "topology":
            u.component = "topology"
        cmd = svc.get("command") or []
        u.command = [str(c) for c in (cmd if isinstance(cmd, list) else cmd.split())]
        u.env = {k: str(v).replace("$$", "$") for k, v in (svc.get("environment") or {}).items()}
        for s in svc.get("secrets") or []:
            src = s["source"] if isinstance(s, dict) else s
            target = (s.get("target") if isinstance(s, dict) else None) or src
            path = target if target.startswith("/") else f"/run/secrets/{target}"
            used.add(src)
            if src not in (raw.get("secrets") or {}):
                report.fail(f"{u.where}: secret {src} is not declared")
            u.files[path] = sources.get(src)
        for v in svc.get("volumes") or []:
            # docker-compose 1.29 prints the short syntax (/abs/src:/dst[:ro]), compose v2 the long one.
            src = v.get("source") if isinstance(v, dict) and v.get("type") == "bind" else \
                (v.split(":", 1)[0] if isinstance(v, str) and v.startswith("/") else None)
            if src:
                host = Path(src)
                files = [host] if host.is_file() else sorted(p for p in host.rglob("*") if p.is_file()) if host.is_dir() else []
                for f in files:
                    try:
                        u.configs[str(f.relative_to(root))] = f.read_text()
                    except (UnicodeDecodeError, ValueError):
                        pass
        hc = svc.get("healthcheck") or {}
        if hc.get("test"):
            t = hc["test"]
            u.probes.append(("compose", " ".join(t) if isinstance(t, list) else str(t)))
        units.append(u)
    for name in set(sources) - used:
        report.fail(f"compose secret {name} is declared but no service uses it")
    return units, raw


def check_compose(root: Path, gen: Path) -> Report:
    report = Report()
    units, raw = compose_units(root, report)
    if not units:
        return report
    raw_text = (root / "docker-compose.yaml").read_text()
    report.check(not re.search(r"\bamqp://", raw_text), "docker-compose.yaml: no amqp:// URL",
                 "docker-compose.yaml names an amqp:// URL: RabbitMQ is AMQPS only")
    report.check("PLAINTEXT" not in raw_text, "docker-compose.yaml: no PLAINTEXT", "docker-compose.yaml mentions PLAINTEXT")
    for name, spec in (raw.get("secrets") or {}).items():
        m = SECRET_FILE_RE.match((spec or {}).get("file", ""))
        if m:
            report.check((gen / m.group("rel")).is_file(), f"compose secret {name}: dev_secrets.sh makes {m.group('rel')}",
                         f"compose secret {name}: {m.group('rel')} is not a file scripts/deploy/dev_secrets.sh makes")
    c = Contract(units, gen, "compose", report, root)
    c.rule_files()
    c.rule_kafka()
    c.rule_rabbitmq("rabbitmq", (root / "monitoring/rabbitmq/rabbitmq.conf").read_text())
    c.rule_apis({"api-kafka": ["api-kafka", "127.0.0.1"], "api-rabbitmq": ["api-rabbitmq", "127.0.0.1"]})
    c.rule_scrape((root / "monitoring/prometheus/prometheus.yml").read_text(), None)
    c.rule_decisions()
    found = unsigned_mentions(raw)
    report.check(not found, "docker-compose.yaml: nothing sets --allow-unsigned / PIX_ALLOW_UNSIGNED",
                 f"docker-compose.yaml: --allow-unsigned is for development only, yet it names it at {found}")
    # the simulator: HTTPS to api-kafka, verified against the CA, with the token dev_secrets.sh mints for it
    sim = next((u for u in units if u.component == "pix-sim"), None)
    if report.check(sim, "compose service pix-sim (profile sim) exists", "compose: no pix-sim"):
        args = dict(zip(sim.command, sim.command[1:]))
        report.check(args.get("--url", "").startswith("https://api-kafka:5000/")
                     and sim.files.get(args.get("--ca", "")) == "ca/ca.crt"
                     and sim.files.get(args.get("--bearer-file", "")) == "jwt/pix-sim.token",
                     "pix-sim: https://api-kafka:5000, --ca the mounted CA, --bearer-file its token from dev_secrets.sh",
                     "pix-sim: needs --url https://api-kafka:5000/..., --ca <mounted ca/ca.crt> and --bearer-file "
                     "<mounted jwt/pix-sim.token>")
    return report


# ---- Kubernetes -----------------------------------------------------------------------------------------------


def _generated(gen: Path):
    """{(namespace, kind, name): {key: dev_secrets file or None (literal)}} and the Secrets' types."""
    objs, types = {}, {}
    for o in dev_secrets.k8s_objects():
        objs[(o.namespace, o.kind, o.name)] = {k: (what if how == "file" else None) for k, (how, what) in o.data.items()}
        types[(o.namespace, o.name)] = o.type
    return objs, types


def k8s_docs(root: Path):
    import yaml  # noqa: PLC0415

    docs = []
    for f in sorted(glob.glob(str(root / "k8s/**/*.yaml"), recursive=True)):
        with open(f, encoding="utf-8") as fh:
            for d in yaml.safe_load_all(fh):
                if isinstance(d, dict) and "kind" in d:
                    docs.append((os.path.relpath(f, root), d))
    return docs


def k8s_units(root: Path, report: Report):
    gen_objs, _ = _generated(Path("."))
    docs = k8s_docs(root)
    configmaps = {(d["metadata"].get("namespace"), d["metadata"]["name"]): d.get("data") or {}
                  for _, d in docs if d["kind"] == "ConfigMap"}
    units = []
    for f, d in docs:
        kind = d["kind"]
        if kind not in ("Deployment", "StatefulSet", "Job", "DaemonSet", "CronJob"):
            continue
        meta = d["metadata"]
        ns, name = meta.get("namespace"), meta["name"]
        tpl = (d.get("spec") or {}).get("template") or {}
        pspec = tpl.get("spec") or {}
        vols = {v["name"]: v for v in pspec.get("volumes") or []}
        inits = {c["name"] for c in pspec.get("initContainers") or []}
        for c in (pspec.get("initContainers") or []) + (pspec.get("containers") or []):
            comp = K8S_COMPONENT.get((ns, kind, name), f"{ns}/{name}")
            if c["name"] in inits:
                comp = f"{comp} (init {c['name']})"
            u = Unit(f"{f} {kind} {ns}/{name} container {c['name']}", comp)
            u.command = [str(x) for x in (c.get("command") or []) + (c.get("args") or [])]
            for e in c.get("env") or []:
                if "value" in e:
                    u.env[e["name"]] = str(e["value"])
                elif "valueFrom" in e:
                    u.env[e["name"]] = ""
                    u.env_from_secret.add(e["name"])
            for m in c.get("volumeMounts") or []:
                v = vols.get(m["name"]) or {}
                base = m["mountPath"].rstrip("/")
                sources = []  # (kind, name, items, the volume's defaultMode)
                if "secret" in v:
                    sources.append(("Secret", v["secret"].get("secretName"), v["secret"].get("items"),
                                    v["secret"].get("defaultMode", 0o644)))
                if "configMap" in v:
                    sources.append(("ConfigMap", v["configMap"].get("name"), v["configMap"].get("items"),
                                    v["configMap"].get("defaultMode", 0o644)))
                for src in (v.get("projected") or {}).get("sources") or []:
                    for k8, key in (("Secret", "secret"), ("ConfigMap", "configMap")):
                        if key in src:
                            sources.append((k8, src[key].get("name"), src[key].get("items"),
                                            v["projected"].get("defaultMode", 0o644)))
                for k8, oname, items, default_mode in sources:
                    keys = gen_objs.get((ns, k8, oname))
                    committed = configmaps.get((ns, oname)) if k8 == "ConfigMap" else None
                    pairs = [(i["key"], i.get("path", i["key"]), i.get("mode", default_mode)) for i in items] if items \
                        else [(k, k, default_mode) for k in (keys or committed or {})]
                    for key, path, fmode in pairs:
                        full = f"{base}/{path}"
                        if m.get("subPath"):
                            if m["subPath"] != path:
                                continue
                            full = base
                        u.files[full] = (keys or {}).get(key) if keys is not None else None
                        u.modes[full] = (int(fmode), bool(m.get("readOnly")))
                        if committed is not None and key in committed:
                            u.configs[f"ConfigMap {ns}/{oname} {key}"] = committed[key]
            for p in ("startupProbe", "livenessProbe", "readinessProbe"):
                hg = (c.get(p) or {}).get("httpGet")
                if hg:
                    u.probes.append((hg.get("scheme", "HTTP"), f"{p} {hg.get('path')}"))
            units.append(u)
    return units, docs


def check_k8s(root: Path, gen: Path) -> Report:
    report = Report()
    units, docs = k8s_units(root, report)
    gen_objs, gen_types = _generated(gen)
    defined = {(d["metadata"].get("namespace"), d["kind"], d["metadata"]["name"]): d for _, d in docs}
    # no committed Secret; every referenced Secret/ConfigMap defined here or generated (with its keys)
    for f, d in docs:
        if d["kind"] == "Secret":
            report.fail(f"{f}: Secret {d['metadata']['name']} is committed: credentials come from "
                        "scripts/deploy/dev_secrets.sh (development) or a secret manager, never from git")
    for f in sorted(glob.glob(str(root / "k8s/**/*.yaml"), recursive=True)):
        text = Path(f).read_text()
        rel = os.path.relpath(f, root)
        report.check(not re.search(r"\bamqp://", text), f"{rel}: no amqp:// URL", f"{rel}: names an amqp:// URL")
        report.check(not re.search(r"\b(SASL_)?PLAINTEXT\b", text), f"{rel}: no PLAINTEXT listener/protocol",
                     f"{rel}: mentions PLAINTEXT")
    refs = set()
    for f, d in docs:
        ns = d["metadata"].get("namespace")
        tpl = ((d.get("spec") or {}).get("template") or {}).get("spec") or {}
        for v in tpl.get("volumes") or []:
            if "secret" in v:
                refs.add((ns, "Secret", v["secret"]["secretName"], tuple(i["key"] for i in v["secret"].get("items") or [])))
            for src in (v.get("projected") or {}).get("sources") or []:
                for k8, key in (("Secret", "secret"), ("ConfigMap", "configMap")):
                    if key in src:
                        refs.add((ns, k8, src[key]["name"], tuple(i["key"] for i in src[key].get("items") or [])))
        for c in (tpl.get("containers") or []) + (tpl.get("initContainers") or []):
            for e in c.get("env") or []:
                ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    refs.add((ns, "Secret", ref["name"], (ref["key"],)))
        if d["kind"] == "TriggerAuthentication":
            for ref in (d.get("spec") or {}).get("secretTargetRef") or []:
                refs.add((ns, "Secret", ref["name"], (ref["key"],)))
        if d["kind"] == "Ingress":
            for t in (d.get("spec") or {}).get("tls") or []:
                refs.add((ns, "Secret", t["secretName"], ("tls.crt", "tls.key")))
    for ns, kind, name, keys in sorted(refs):
        if (ns, kind, name) in defined:
            continue
        have = gen_objs.get((ns, kind, name))
        if report.check(have is not None, f"{kind} {ns}/{name}: made by dev_secrets.sh",
                        f"{kind} {ns}/{name} is referenced but neither in k8s/ nor made by scripts/deploy/dev_secrets.sh"):
            missing = [k for k in keys if k not in have]
            report.check(not missing, f"{kind} {ns}/{name}: has {', '.join(keys) or 'its keys'}",
                         f"{kind} {ns}/{name} (dev_secrets.sh) lacks key(s) {missing}")
            for k, rel in have.items():
                if rel:
                    report.check((gen / rel).is_file(), f"{kind} {ns}/{name}/{k} from {rel}",
                                 f"{kind} {ns}/{name}/{k}: {rel} is not made by dev_secrets.sh")
    conf = next((v for (ns, k, n), d in defined.items() if k == "ConfigMap" and n == "rabbitmq-config"
                 for key, v in (d.get("data") or {}).items() if key == "rabbitmq.conf"), "")
    prom = next((v for (ns, k, n), d in defined.items() if k == "ConfigMap" and n == "prometheus-config"
                 for key, v in (d.get("data") or {}).items() if key == "prometheus.yml"), "")
    c = Contract(units, gen, "k8s", report, root)
    c.rule_files()
    c.rule_kafka()
    c.rule_rabbitmq("rabbitmq.rabbitmq.svc.cluster.local", conf)
    c.rule_apis({"api-kafka": ["api-kafka.api-kafka.svc", "api-kafka.api-kafka.svc.cluster.local"],
                 "api-rabbitmq": ["api-rabbitmq.api-rabbitmq.svc", "api-rabbitmq.api-rabbitmq.svc.cluster.local"]})
    c.rule_scrape(prom, {"api-kafka": "api-kafka.api-kafka.svc", "api-rabbitmq": "api-rabbitmq.api-rabbitmq.svc"})
    c.rule_decisions()
    before = len(report.bad)
    for f, d in docs:
        found = unsigned_mentions(d)
        if found:
            report.fail(f"{f} {d['kind']} {d['metadata'].get('name')}: --allow-unsigned is for development only, yet "
                        f"it names it at {found}")
    if len(report.bad) == before:
        report.good.append(f"k8s/: none of its {len(docs)} objects sets --allow-unsigned / PIX_ALLOW_UNSIGNED")
    # Ingress: re-encrypt to the APIs, verified
    for f, d in docs:
        if d["kind"] != "Ingress":
            continue
        ns = d["metadata"]["namespace"]
        ann = d["metadata"].get("annotations") or {}
        where = f"{f} Ingress {ns}/{d['metadata']['name']}"
        sec = ann.get("nginx.ingress.kubernetes.io/proxy-ssl-secret", "")
        sns, _, sname = sec.partition("/")
        ca_ok = sns == ns and (gen_objs.get((ns, "Secret", sname)) or {}).get("ca.crt") == "ca/ca.crt"
        name = ann.get("nginx.ingress.kubernetes.io/proxy-ssl-name", "")
        backends = {p["backend"]["service"]["name"] for r in (d["spec"].get("rules") or [])
                    for p in (r.get("http") or {}).get("paths") or []}
        report.check(ann.get("nginx.ingress.kubernetes.io/backend-protocol") == "HTTPS"
                     and ann.get("nginx.ingress.kubernetes.io/proxy-ssl-verify") == "on" and ca_ok,
                     f"{where}: re-encrypts to HTTPS, verifying against {sec}",
                     f"{where}: needs backend-protocol HTTPS, proxy-ssl-verify on and proxy-ssl-secret {ns}/<a CA Secret "
                     f"of dev_secrets.sh with ca.crt> (is {sec!r})")
        for b in backends:
            report.check(san_matches(c.sans(f"tls/{b}.crt"), name), f"{where}: proxy-ssl-name {name} is in {b}'s certificate",
                         f"{where}: proxy-ssl-name {name!r} is not a SAN of tls/{b}.crt")
        for t in d["spec"].get("tls") or []:
            obj = gen_objs.get((ns, "Secret", t["secretName"])) or {}
            ok = gen_types.get((ns, t["secretName"])) == "kubernetes.io/tls" and all(
                san_matches(c.sans(obj.get("tls.crt")), h) for h in t.get("hosts") or [])
            report.check(ok, f"{where}: TLS Secret {t['secretName']} is a kubernetes.io/tls Secret for {t.get('hosts')}",
                         f"{where}: TLS Secret {t['secretName']} must be a kubernetes.io/tls Secret of dev_secrets.sh "
                         f"naming {t.get('hosts')}")
    # KEDA: the kafka triggers log in over SASL_SSL as the stage they measure; rabbitmq over HTTPS
    auths = {(d["metadata"]["namespace"], d["metadata"]["name"]): {r["parameter"]: (r["name"], r["key"])
                                                                   for r in (d.get("spec") or {}).get("secretTargetRef") or []}
             for _, d in docs if d["kind"] == "TriggerAuthentication"}
    acl = acl_principals(root)
    for f, d in docs:
        if d["kind"] != "ScaledObject":
            continue
        ns = d["metadata"]["namespace"]
        target = (d["spec"].get("scaleTargetRef") or {})
        comp = K8S_COMPONENT.get((ns, target.get("kind", "Deployment"), target.get("name")))
        where = f"{f} ScaledObject {ns}/{d['metadata']['name']}"
        for t in d["spec"].get("triggers") or []:
            md = t.get("metadata") or {}
            auth = auths.get((ns, (t.get("authenticationRef") or {}).get("name")), {})
            if t.get("type") == "kafka":
                user_ref, pw_ref, ca_ref = auth.get("username"), auth.get("password"), auth.get("ca")
                user = (gen_objs.get((ns, "Secret", user_ref[0])) or {}) if user_ref else {}
                want = f"kafka-user-{KAFKA_PRINCIPAL.get(comp, '?')}"
                ok = (md.get("sasl") == "scram_sha512" and md.get("tls") == "enable" and user_ref == (want, "username")
                      and pw_ref == (want, "password") and ca_ref and (gen_objs.get((ns, "Secret", ca_ref[0])) or {})
                      .get(ca_ref[1]) == "ca/ca.crt" and KAFKA_PRINCIPAL.get(comp) in acl and "password" in user)
                report.check(ok, f"{where}: kafka trigger over SASL_SSL (scram_sha512) as {KAFKA_PRINCIPAL.get(comp)}, CA verified",
                             f"{where}: a kafka trigger needs sasl scram_sha512, tls enable and a TriggerAuthentication with "
                             f"username/password from Secret {want} and ca from a CA Secret")
            elif t.get("type") == "rabbitmq":
                host_ref, tls_ref, ca_ref = auth.get("host"), auth.get("tls"), auth.get("ca")
                obj = next((o for o in dev_secrets.k8s_objects() if host_ref and (o.namespace, o.name) == (ns, host_ref[0])), None)
                # the template names the password file in braces: a placeholder for parsing
                url = re.sub(r"\{[^}]*\}", "PASSWORD", (obj.data.get(host_ref[1]) or ("", ""))[1]) if obj else ""
                tls = (obj.data.get(tls_ref[1]) or ("", ""))[1] if obj and tls_ref else ""
                users = {u["name"] for u in rabbit_template(root).get("users", [])}
                ok = url.startswith("https://") and ":15671/" in url and urlsplit(url).username in users and tls == "enable" \
                    and ca_ref is not None and md.get("protocol") == "http"
                report.check(ok, f"{where}: rabbitmq trigger over HTTPS as {urlsplit(url).username}",
                             f"{where}: the rabbitmq trigger needs host https://<user of the definitions>@...:15671/, tls "
                             f"enable and a ca (TriggerAuthentication), protocol http")
    # the API's TLS Secrets are kubernetes.io/tls
    for api in API_PORTS:
        report.check(gen_types.get((api, f"{api}-tls")) == "kubernetes.io/tls", f"Secret {api}/{api}-tls is kubernetes.io/tls",
                     f"Secret {api}/{api}-tls must be of type kubernetes.io/tls")
    return report


# ---- main ----------------------------------------------------------------------------------------------------


def run(target: str, gen_dir: Path | None, root: Path = ROOT) -> int:
    with tempfile.TemporaryDirectory(prefix="pix-secure-contract.") as tmp:
        gen = gen_dir
        if gen is None:
            gen = Path(tmp) / "dev-secrets"
            dev_secrets.cmd_ensure(gen, "owner", False, True)
            print(f"    dev_secrets.sh output for the check: {gen} ({sum(1 for _ in gen.rglob('*') if _.is_file())} files)")
        report = check_compose(root, gen) if target == "compose" else check_k8s(root, gen)
    for g in report.good:
        print(f"    ok   {g}")
    for b in report.bad:
        print(f"    FAIL {b}", file=sys.stderr)
    print(f"secure contract ({target}): {len(report.good)} checks held, {len(report.bad)} failed")
    return 1 if report.bad else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__)
    ap.add_argument("target", choices=["compose", "k8s"])
    ap.add_argument("--gen-dir", type=Path, default=None)
    args = ap.parse_args(argv)
    try:
        return run(args.target, args.gen_dir)
    except dev_secrets.Failure as e:
        print(f"ERR dev_secrets.sh: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
