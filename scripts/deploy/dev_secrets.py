#!/usr/bin/env python3
"""Development secrets of the secured deployment (docker-compose.yaml and k8s/): made once, kept.

    scripts/deploy/dev_secrets.sh [ensure] [--dir DIR] [--access acl|owner|world] [--renew-certs] [--quiet]
    scripts/deploy/dev_secrets.sh token [--dir DIR] [--scope TOPIC ...] [--ttl 1h] [--subject NAME]
    scripts/deploy/dev_secrets.sh k8s [--dir DIR]      print the path of the Kubernetes Secrets (after ensure)
    scripts/deploy/dev_secrets.sh k8s --type kubernetes.io/tls
                                                      print those Secrets' YAML instead (make_tls_secret.sh)
    scripts/deploy/dev_secrets.sh list [--dir DIR]     every file, its mode, who reads it and where it goes
    scripts/deploy/dev_secrets.sh definitions --dir DIR
                  only (re)write DIR/rabbitmq/definitions.json from DIR/passwords/rabbitmq/* (e.g. a
                  directory of real secrets: nothing else is made or changed, no CA is created)

EVERYTHING HERE IS A DEVELOPMENT VALUE: a local CA, certificates signed by it, random passwords, a
token issuer key, the saga's decision-signing keys. It is good for one machine or a throwaway
cluster; docs/security-deploy.md says how real ones are made, rotated, and which of these files
each of them replaces.

`ensure` (the default) makes what is missing and nothing else, so running it again changes nothing:
  - ca/ca.crt, ca/ca.key                 the development CA (EC P-256, 10 years)
  - tls/<name>.crt, .key                 one certificate per server (825 days), with the SANs of its
                                         compose service name, its Kubernetes Service names,
                                         localhost and 127.0.0.1 (SERVERS below); re-issued when
                                         missing, due within 30 days, of other SANs, not matching
                                         its key or not signed by the current CA (--renew-certs:
                                         all of them, same CA)
  - tls/kafka.keystore.pem,              Kafka's PEM keystores (key, certificate, CA) of the client
    tls/kafka-controller.keystore.pem    listeners and of the KRaft controller listener
  - passwords/kafka/<principal>          one SCRAM-SHA-512 password per Kafka principal
  - passwords/rabbitmq/<user>            one password per RabbitMQ user (not the Kafka ones: a
                                         broker never learns the other broker's passwords)
  - passwords/grafana-admin, passwords/rabbitmq-erlang-cookie
  - rabbitmq/definitions.json            monitoring/rabbitmq/definitions.template.json with each
                                         user's salted SHA-256 password hash
  - jwt/issuer.pem, jwt/jwks.json        the development token issuer (ES256; `pix-token init`
                                         when a build has pix-token, else OpenSSL)
  - jwt/pix-sim.token                    a bearer token for the simulator (scope
                                         pix.payment.requested, 30 days; re-issued a day before
                                         it expires)
  - decision-keys/antifraud.json,        the saga's decision-signing keys (HMAC-SHA-256, a JWK of
    decision-keys/settlement.json        32 random bytes with kid <stage>-<8 hex> and pix_stage):
                                         each signs its stage's decisions and is trusted by the
                                         next stage (antifraud's by settlement, settlement's by
                                         the notifier); made once, never replaced
  - k8s/dev-secrets.yaml                 every Kubernetes Secret (and the JWKS ConfigMap) the
                                         manifests of k8s/ reference, from the files above
Passwords are 48 hex digits; private keys, decision keys and passwords are mode 0600, directories 0700.

Containers read these files through compose `secrets:`, which docker-compose bind-mounts with the
host file's owner and mode. --access decides how the images' users (pix 10001, Kafka 1000,
RabbitMQ 999, Grafana 472) may read the files they are given:
  acl    (default on Linux) mode 0600 plus one POSIX ACL entry (setfacl u:UID:r) for each uid that
         reads the file, nothing for anyone else; `ls -l` shows rw-r-----+ (the ACL mask)
  owner  0600 only: for Docker Desktop, rootless Docker or Podman, where containers act as you
  world  0644 for every file a container reads (any local user can read them; a throwaway CI
         runner, or a file system without ACLs)
The mode is remembered in DIR/.access: later runs (and `k8s`, make_tls_secret.sh) keep it.
Env: PIX_SECRETS_DIR (the directory; default <repo>/.local/dev-secrets), PIX_TOKEN_BIN (pix-token;
default build/release/src/pix-token, else build/debug/src/pix-token).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import secrets as pyrandom
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DIR = ROOT / ".local" / "dev-secrets"
TEMPLATE = ROOT / "monitoring" / "rabbitmq" / "definitions.template.json"
GENERATOR = "scripts/deploy/dev_secrets.sh"

# The development token issuer (pix-token's defaults, which the APIs are configured to accept).
ISSUER = "https://pix-pubsub.local/dev-issuer"
AUDIENCE = "pix-api"
SIM_TOKEN_TTL = "30d"
SIM_TOKEN_RENEW_S = 86400

CA_DAYS = 3650
LEAF_DAYS = 825
RENEW_DAYS = 30
CA_CN = "pix-pubsub development CA (docker-compose.yaml, k8s/)"

# Kafka SCRAM-SHA-512 principals: the components' own (pix_acls in src/pix/kafka/acls.hpp), the
# Kafka super user pix-admin (topology, ACLs) and the brokers' own kafka-broker.
KAFKA_PRINCIPALS = ("api-kafka", "antifraud", "settlement", "notifier", "auditor", "pix-tail", "pix-admin",
                    "kafka-broker")
# RabbitMQ users (monitoring/rabbitmq/definitions.template.json holds their tags and permissions).
RABBIT_USERS = ("api-rabbitmq", "notifier", "auditor", "pix-admin", "pix-tail", "monitoring", "bench")

# Which compose services log in as which principal (they read its password file, as uid 10001).
COMPOSE_KAFKA_CLIENTS = {"api-kafka": ("api-kafka",), "antifraud": ("antifraud",), "settlement": ("settlement",),
                         "notifier": ("notifier",), "auditor": ("auditor",), "pix-admin": ("topology",)}
COMPOSE_RABBIT_CLIENTS = {"api-rabbitmq": ("api-rabbitmq",), "notifier": ("notifier",), "auditor": ("auditor",),
                          "pix-admin": ("topology",)}

# The saga's decision-signing keys (HMAC-SHA-256, src/pix/security/decision_signature.hpp): the stage
# whose decisions a key signs -> (the stage that signs with it, PIX_DECISION_KEY; the stage that acts
# only on decisions it signed, PIX_TRUST_KEYS). No other component holds them.
DECISION_KEYS = {"antifraud": ("antifraud", "settlement"), "settlement": ("settlement", "notifier")}
DECISION_SECRET_BYTES = 32

# The uids the images run as: who reads which file.
UID_PIX, UID_KAFKA, UID_RABBITMQ, UID_GRAFANA = 10001, 1000, 999, 472

# The KRaft controller listener's identity (a Kafka super user): the subject of its certificate.
CONTROLLER_PRINCIPAL = "User:CN=kafka-controller"


@dataclass(frozen=True)
class Server:
    cn: str
    sans: tuple[str, ...]
    eku: str
    key_readers: tuple[int, ...] = ()


def _k8s_names(service: str, namespace: str) -> tuple[str, ...]:
    return (f"DNS:{service}.{namespace}.svc", f"DNS:{service}.{namespace}.svc.cluster.local")


LOCAL = ("DNS:localhost", "IP:127.0.0.1")
SERVERS = {
    # Kafka's client listeners (compose kafka:9092 and localhost for the host port; Kubernetes the
    # Service and every pod's name under the headless Service, which the brokers advertise).
    # clientAuth too: a broker presents it when it connects to another broker.
    "kafka": Server("kafka", ("DNS:kafka", *LOCAL, *_k8s_names("kafka", "kafka"),
                              "DNS:*.kafka-headless.kafka.svc.cluster.local"), "serverAuth, clientAuth"),
    # The KRaft controller listener (mutual TLS; its subject is the super user CN=kafka-controller):
    # the broker connects to the voters kafka:9093 (compose) or kafka-N.kafka-headless...:9093.
    "kafka-controller": Server("kafka-controller", ("DNS:kafka", *LOCAL,
                                                    "DNS:*.kafka-headless.kafka.svc.cluster.local"),
                               "serverAuth, clientAuth"),
    # DNS:127.0.0.1 next to IP:127.0.0.1: rabbitmq-c 0.11 (the C++ clients) checks the host name
    # against DNS-type SANs only.
    "rabbitmq": Server("rabbitmq", ("DNS:rabbitmq", *LOCAL, "DNS:127.0.0.1", *_k8s_names("rabbitmq", "rabbitmq"),
                                    "DNS:*.rabbitmq-headless.rabbitmq.svc.cluster.local"), "serverAuth",
                       (UID_RABBITMQ,)),
    "api-kafka": Server("api-kafka", ("DNS:api-kafka", *LOCAL, *_k8s_names("api-kafka", "api-kafka")), "serverAuth",
                        (UID_PIX,)),
    "api-rabbitmq": Server("api-rabbitmq", ("DNS:api-rabbitmq", *LOCAL, *_k8s_names("api-rabbitmq", "api-rabbitmq")),
                           "serverAuth", (UID_PIX,)),
    # The Kubernetes Ingress (https://pix.local, k8s/ingress/).
    "pix-ingress": Server("pix.local", ("DNS:pix.local",), "serverAuth"),
}


@dataclass
class FileSpec:
    """One file of the directory: private (0600) or public (0644), and the uids that read it."""

    private: bool
    readers: tuple[int, ...] = ()
    what: str = ""
    used_by: str = ""


def file_specs() -> dict[str, FileSpec]:
    specs: dict[str, FileSpec] = {
        "README.txt": FileSpec(False, what="what this directory is"),
        ".access": FileSpec(False, what="the --access mode, kept for later runs"),
        "ca/ca.crt": FileSpec(False, what="development CA certificate", used_by="every TLS client and server"),
        "ca/ca.key": FileSpec(True, what="development CA key", used_by="this script only (never mounted)"),
        "tls/kafka.keystore.pem": FileSpec(True, (UID_KAFKA,), "Kafka client listeners' PEM keystore", "kafka"),
        "tls/kafka-controller.keystore.pem": FileSpec(True, (UID_KAFKA,), "KRaft controller listener's keystore",
                                                      "kafka"),
        "passwords/grafana-admin": FileSpec(True, (UID_GRAFANA,), "Grafana admin password", "grafana"),
        "passwords/rabbitmq-erlang-cookie": FileSpec(True, (), "Erlang cookie", "rabbitmq (Kubernetes)"),
        "rabbitmq/definitions.json": FileSpec(True, (UID_RABBITMQ,), "RabbitMQ users (hashes), permissions, topology",
                                              "rabbitmq"),
        "jwt/issuer.pem": FileSpec(True, (), "development token issuer's ES256 key", "pix-token / this script only"),
        "jwt/jwks.json": FileSpec(False, (), "the issuer's public JWKS", "api-kafka, api-rabbitmq"),
        "jwt/pix-sim.token": FileSpec(True, (UID_PIX,), "bearer token of the simulator", "pix-sim (profile sim)"),
        "k8s/dev-secrets.yaml": FileSpec(True, (), "the Kubernetes Secrets", "kubectl apply"),
    }
    for name, srv in SERVERS.items():
        specs[f"tls/{name}.crt"] = FileSpec(False, (), f"certificate of {srv.cn}", name)
        specs[f"tls/{name}.key"] = FileSpec(True, srv.key_readers, f"private key of {srv.cn}", name)
    for p in KAFKA_PRINCIPALS:
        readers = (UID_KAFKA, UID_PIX) if p in COMPOSE_KAFKA_CLIENTS else (UID_KAFKA,)
        specs[f"passwords/kafka/{p}"] = FileSpec(True, readers, f"SCRAM-SHA-512 password of Kafka principal {p}",
                                                 ", ".join(["kafka (SCRAM at format time)", *COMPOSE_KAFKA_CLIENTS.get(p, ())]))
    for u in RABBIT_USERS:
        specs[f"passwords/rabbitmq/{u}"] = FileSpec(True, (UID_PIX,) if u in COMPOSE_RABBIT_CLIENTS else (),
                                                    f"password of RabbitMQ user {u}",
                                                    ", ".join(COMPOSE_RABBIT_CLIENTS.get(u, ("host tools, Kubernetes",))))
    for stage, (signer, verifier) in DECISION_KEYS.items():
        specs[f"decision-keys/{stage}.json"] = FileSpec(True, (UID_PIX,), f"{stage}'s decision-signing key (HS256)",
                                                        f"{signer} (signs), {verifier} (verifies)")
    return specs


# ---- Kubernetes objects rendered from the files ------------------------------------------------------


@dataclass
class K8sObject:
    kind: str
    namespace: str
    name: str
    data: dict[str, tuple[str, str]]  # key -> ("file", relpath) | ("literal", value) | ("url", template)
    type: str = "Opaque"
    component: str = ""
    labels: dict[str, str] = field(default_factory=dict)


def _user(ns, broker, user, component):
    return K8sObject("Secret", ns, f"{broker}-user-{user}",
                     {"username": ("literal", user), "password": ("file", f"passwords/{broker}/{user}")},
                     component=component)


def _ca(ns, component):
    return K8sObject("Secret", ns, "pix-ca", {"ca.crt": ("file", "ca/ca.crt")}, component=component)


def _tls(ns, name, server, component, ca=False):
    data = {"tls.crt": ("file", f"tls/{server}.crt"), "tls.key": ("file", f"tls/{server}.key")}
    if ca:
        data["ca.crt"] = ("file", "ca/ca.crt")
    return K8sObject("Secret", ns, name, data, type="kubernetes.io/tls", component=component)


def k8s_objects() -> list[K8sObject]:
    out = [
        _ca("kafka", "broker"),
        K8sObject("Secret", "kafka", "kafka-tls", {"keystore.pem": ("file", "tls/kafka.keystore.pem"),
                                                   "controller-keystore.pem": ("file", "tls/kafka-controller.keystore.pem")},
                  component="broker"),
        K8sObject("Secret", "kafka", "kafka-scram", {p: ("file", f"passwords/kafka/{p}") for p in KAFKA_PRINCIPALS},
                  component="broker"),
        _user("kafka", "kafka", "pix-admin", "admin"),
        _tls("rabbitmq", "rabbitmq-tls", "rabbitmq", "broker", ca=True),
        K8sObject("Secret", "rabbitmq", "rabbitmq-definitions",
                  {"definitions.json": ("file", "rabbitmq/definitions.json")}, component="broker"),
        K8sObject("Secret", "rabbitmq", "rabbitmq-erlang-cookie",
                  {"cookie": ("file", "passwords/rabbitmq-erlang-cookie")}, component="broker"),
    ]
    for api, broker, user in (("api-kafka", "kafka", "api-kafka"), ("api-rabbitmq", "rabbitmq", "api-rabbitmq")):
        out += [
            _ca(api, "api"),
            _tls(api, f"{api}-tls", api, "api"),
            _tls(api, "pix-local-tls", "pix-ingress", "api"),
            _user(api, broker, user, "api"),
            K8sObject("ConfigMap", api, "pix-jwks", {"jwks.json": ("file", "jwt/jwks.json")}, component="api"),
        ]
    out.append(_ca("pix-saga", "saga"))
    for stage in ("antifraud", "settlement", "notifier", "auditor"):
        out.append(_user("pix-saga", "kafka", stage, "saga"))
    for stage in ("notifier", "auditor"):
        out.append(_user("pix-saga", "rabbitmq", stage, "saga"))
    # The decision-signing keys: mounted into the stage that signs with it and the one that verifies.
    for stage in DECISION_KEYS:
        out.append(K8sObject("Secret", "pix-saga", f"decision-key-{stage}",
                             {"key.json": ("file", f"decision-keys/{stage}.json")}, component="saga"))
    # KEDA's rabbitmq scaler (k8s/autoscaling/): the management API over HTTPS as `monitoring`.
    out.append(K8sObject("Secret", "pix-saga", "keda-rabbitmq", {
        "host": ("url", "https://monitoring:{passwords/rabbitmq/monitoring}@rabbitmq.rabbitmq.svc.cluster.local:15671/"),
        "tls": ("literal", "enable"),
        "ca": ("file", "ca/ca.crt"),
    }, component="autoscaling"))
    out += [
        _ca("monitoring", "monitoring"),
        K8sObject("Secret", "monitoring", "grafana-admin", {"admin-user": ("literal", "admin"),
                                                            "admin-password": ("file", "passwords/grafana-admin")},
                  component="monitoring"),
    ]
    return out


# ---- small helpers -----------------------------------------------------------------------------------


class Failure(Exception):
    pass


def say(msg: str, quiet: bool = False):
    if not quiet:
        print(msg)


def run(cmd: list[str], *, input_bytes: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, input=input_bytes, capture_output=True, check=False)
    if check and r.returncode != 0:
        raise Failure(f"{' '.join(cmd[:3])} ... failed (exit {r.returncode}): {r.stderr.decode(errors='replace').strip()}")
    return r


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def write_atomic(path: Path, data: bytes, private: bool) -> bool:
    """Writes `data` to `path` (temp file + rename) unless it already holds exactly that. True if written."""
    if path.is_file() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600 if private else 0o644)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return True


# ---- RabbitMQ password hashes (rabbit_password_hashing_sha256) -------------------------------------


def rabbit_hash(password: str, salt: bytes | None = None) -> str:
    salt = os.urandom(4) if salt is None else salt
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def rabbit_hash_matches(h: str, password: str) -> bool:
    try:
        raw = base64.b64decode(h, validate=True)
    except ValueError:
        return False
    return len(raw) == 36 and rabbit_hash(password, raw[:4]) == h


# ---- the PKI ---------------------------------------------------------------------------------------------


def new_key(path: Path):
    tmp = path.with_name(f".{path.name}.new")
    run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(tmp)])
    os.chmod(tmp, 0o600)
    return tmp


def cert_sans(crt: Path) -> list[str]:
    r = run(["openssl", "x509", "-in", str(crt), "-noout", "-ext", "subjectAltName"], check=False)
    if r.returncode != 0:
        return []
    lines = r.stdout.decode().splitlines()[1:]
    out = []
    for part in ",".join(lines).split(","):
        part = part.strip()
        if part:
            out.append(part.replace("IP Address:", "IP:"))
    return sorted(out)


def why_reissue(crt: Path, key: Path, ca: Path | None, sans: tuple[str, ...] | None) -> str:
    if not crt.is_file() or not key.is_file() or crt.stat().st_size == 0 or key.stat().st_size == 0:
        return "missing"
    if run(["openssl", "x509", "-in", str(crt), "-noout", "-checkend", str(RENEW_DAYS * 86400)],
           check=False).returncode != 0:
        return f"expires within {RENEW_DAYS} days"
    pub_crt = run(["openssl", "x509", "-in", str(crt), "-noout", "-pubkey"], check=False).stdout
    pub_key = run(["openssl", "pkey", "-in", str(key), "-pubout"], check=False).stdout
    if not pub_crt or pub_crt != pub_key:
        return "does not match its key"
    if ca is not None and run(["openssl", "verify", "-CAfile", str(ca), str(crt)], check=False).returncode != 0:
        return "not signed by the current CA"
    if sans is not None and cert_sans(crt) != sorted(sans):
        return f"SANs changed (has {', '.join(cert_sans(crt))})"
    return ""


def make_ca(d: Path):
    crt, key = d / "ca/ca.crt", d / "ca/ca.key"
    crt.parent.mkdir(parents=True, exist_ok=True)
    tmpkey = new_key(key)
    with tempfile.TemporaryDirectory(dir=d) as tmp:
        cnf = Path(tmp, "ca.cnf")
        cnf.write_text(f"""[req]
distinguished_name = dn
prompt = no
x509_extensions = v3_ca
[dn]
CN = {CA_CN}
[v3_ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
""")
        out = Path(tmp, "ca.crt")
        run(["openssl", "req", "-x509", "-new", "-config", str(cnf), "-key", str(tmpkey), "-sha256", "-days",
             str(CA_DAYS), "-set_serial", "0x" + pyrandom.token_hex(16), "-out", str(out)])
        os.chmod(out, 0o644)
        os.replace(tmpkey, key)
        os.replace(out, crt)


def issue(d: Path, name: str, srv: Server):
    crt, key = d / f"tls/{name}.crt", d / f"tls/{name}.key"
    crt.parent.mkdir(parents=True, exist_ok=True)
    tmpkey = new_key(key)
    with tempfile.TemporaryDirectory(dir=d) as tmp:
        req = Path(tmp, "req.cnf")
        req.write_text(f"[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = {srv.cn}\n")
        ext = Path(tmp, "ext.cnf")
        ext.write_text(f"""basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = {srv.eku}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = {', '.join(srv.sans)}
""")
        csr, out = Path(tmp, "req.csr"), Path(tmp, "crt.pem")
        run(["openssl", "req", "-new", "-config", str(req), "-key", str(tmpkey), "-out", str(csr)])
        run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(d / "ca/ca.crt"), "-CAkey", str(d / "ca/ca.key"),
             "-sha256", "-days", str(LEAF_DAYS), "-set_serial", "0x" + pyrandom.token_hex(16), "-extfile", str(ext),
             "-out", str(out)])
        os.chmod(out, 0o644)
        os.replace(tmpkey, key)
        os.replace(out, crt)


def ensure_pki(d: Path, renew: bool, quiet: bool) -> list[str]:
    made = []
    why = why_reissue(d / "ca/ca.crt", d / "ca/ca.key", None, None)
    new_ca = bool(why)
    if why:
        make_ca(d)
        made.append(f"ca/ca.crt ({why})")
    for name, srv in SERVERS.items():
        why = "new CA" if new_ca else why_reissue(d / f"tls/{name}.crt", d / f"tls/{name}.key", d / "ca/ca.crt", srv.sans)
        if renew and not why:
            why = "--renew-certs"
        if why:
            issue(d, name, srv)
            made.append(f"tls/{name}.crt ({why})")
    # Kafka's PEM keystores: private key, its certificate, then the CA.
    ca = (d / "ca/ca.crt").read_bytes()
    for name in ("kafka", "kafka-controller"):
        data = (d / f"tls/{name}.key").read_bytes() + (d / f"tls/{name}.crt").read_bytes() + ca
        if write_atomic(d / f"tls/{name}.keystore.pem", data, private=True):
            made.append(f"tls/{name}.keystore.pem")
    return made


# ---- passwords -------------------------------------------------------------------------------------------


def new_password() -> str:
    return pyrandom.token_hex(24)


def ensure_passwords(d: Path) -> list[str]:
    made = []
    names = [f"passwords/kafka/{p}" for p in KAFKA_PRINCIPALS] + [f"passwords/rabbitmq/{u}" for u in RABBIT_USERS]
    names += ["passwords/grafana-admin", "passwords/rabbitmq-erlang-cookie"]
    for rel in names:
        p = d / rel
        if p.is_file() and p.read_text().strip():
            continue
        write_atomic(p, new_password().encode(), private=True)
        made.append(rel)
    return made


def read_password(d: Path, rel: str) -> str:
    text = (d / rel).read_text()
    if not re.fullmatch(r"[A-Za-z0-9._~-]+", text):
        raise Failure(f"{rel}: a password must be one line of [A-Za-z0-9._~-] without a newline (it goes into URLs, "
                      f"Kafka's --add-scram and JAAS); replace it")
    return text


# ---- the saga's decision-signing keys ------------------------------------------------------------------


def new_decision_key(stage: str) -> bytes:
    """A key document as pix-admin decision-key writes it: one line, members in this order."""
    doc = {"kty": "oct", "alg": "HS256", "kid": f"{stage}-{pyrandom.token_hex(4)}",
           "k": b64url(pyrandom.token_bytes(DECISION_SECRET_BYTES)), "pix_stage": stage}
    return (json.dumps(doc, separators=(",", ":")) + "\n").encode()


def parse_decision_key(text: str) -> dict:
    """The key document, checked as the stages load it (kty oct, alg HS256, kid, pix_stage, k of 32+
    bytes); Failure otherwise."""
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise Failure(f"not JSON ({e})") from None
    if not isinstance(doc, dict):
        raise Failure("not a JSON object")
    for name in ("kty", "alg", "kid", "k", "pix_stage"):
        if not isinstance(doc.get(name), str) or not doc[name]:
            raise Failure(f'"{name}" must be a non-empty string')
    if (doc["kty"], doc["alg"]) != ("oct", "HS256"):
        raise Failure('"kty" must be "oct" and "alg" "HS256"')
    try:
        secret = b64url_decode(doc["k"])
    except ValueError:
        raise Failure('"k" is not base64url') from None
    if len(secret) < DECISION_SECRET_BYTES:
        raise Failure(f'"k" holds {len(secret)} bytes; at least {DECISION_SECRET_BYTES} are required')
    return doc


def read_decision_key(d: Path, stage: str) -> dict:
    rel = f"decision-keys/{stage}.json"
    try:
        doc = parse_decision_key((d / rel).read_text())
    except Failure as e:
        raise Failure(f"{rel}: {e}; replace it (or delete it and run {GENERATOR} for a new development key)") from None
    if doc["pix_stage"] != stage:
        raise Failure(f"{rel}: a key of stage {doc['pix_stage']!r}, not {stage!r}")
    return doc


def ensure_decision_keys(d: Path) -> list[str]:
    """Makes each missing (or empty) key; an existing one is never replaced, only checked."""
    made = []
    for stage in DECISION_KEYS:
        rel = f"decision-keys/{stage}.json"
        p = d / rel
        if not (p.is_file() and p.read_text().strip()):
            write_atomic(p, new_decision_key(stage), private=True)
            made.append(rel)
        read_decision_key(d, stage)
    return made


# ---- RabbitMQ definitions ------------------------------------------------------------------------------


def render_definitions(d: Path, template: Path = TEMPLATE) -> bytes:
    tpl = json.loads(template.read_text())
    old = {}
    if (d / "rabbitmq/definitions.json").is_file():
        try:
            old = {u["name"]: u.get("password_hash", "")
                   for u in json.loads((d / "rabbitmq/definitions.json").read_text()).get("users", [])}
        except (ValueError, KeyError, TypeError):
            old = {}
    names = [u["name"] for u in tpl.get("users", [])]
    if sorted(names) != sorted(RABBIT_USERS):
        raise Failure(f"{template.relative_to(ROOT) if template.is_relative_to(ROOT) else template}: users {names} "
                      f"differ from dev_secrets.py's RABBIT_USERS {list(RABBIT_USERS)}")
    for u in tpl["users"]:
        if "password_hash" in u:
            raise Failure(f"{template}: user {u['name']} has a password_hash: the template holds none")
        pw = read_password(d, f"passwords/rabbitmq/{u['name']}")
        # Keep the old salt while the password is unchanged, so the file changes only with a password.
        h = old.get(u["name"], "")
        u["password_hash"] = h if h and rabbit_hash_matches(h, pw) else rabbit_hash(pw)
        u["hashing_algorithm"] = "rabbit_password_hashing_sha256"
    return (json.dumps(tpl, indent=1) + "\n").encode()


# ---- the token issuer: pix-token when a build has it, else OpenSSL ---------------------------------------


def pix_token_bin() -> str | None:
    env = os.environ.get("PIX_TOKEN_BIN")
    if env:
        return env if os.access(env, os.X_OK) else None
    for preset in ("release", "debug"):
        p = ROOT / "build" / preset / "src" / "pix-token"
        if os.access(p, os.X_OK):
            return str(p)
    return None


def public_point(key: Path) -> tuple[bytes, bytes]:
    """(x, y) of an EC P-256 key: the last 65 bytes of its DER SubjectPublicKeyInfo are 04 || x || y."""
    der = run(["openssl", "pkey", "-in", str(key), "-pubout", "-outform", "DER"]).stdout
    point = der[-65:]
    if len(der) != 91 or point[0] != 4:
        raise Failure(f"{key}: not an EC P-256 key")
    return point[1:33], point[33:]


def jwk_of(key: Path) -> dict:
    x, y = public_point(key)
    x64, y64 = b64url(x), b64url(y)
    # RFC 7638 thumbprint: the required members, sorted, no white space.
    thumb = json.dumps({"crv": "P-256", "kty": "EC", "x": x64, "y": y64}, separators=(",", ":"), sort_keys=True)
    return {"kty": "EC", "crv": "P-256", "x": x64, "y": y64, "kid": b64url(hashlib.sha256(thumb.encode()).digest()),
            "use": "sig", "alg": "ES256"}


def ensure_issuer(d: Path) -> list[str]:
    made = []
    jwt_dir = d / "jwt"
    jwt_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(jwt_dir, 0o700)
    key, jwks = jwt_dir / "issuer.pem", jwt_dir / "jwks.json"
    tool = pix_token_bin()
    if not key.is_file():
        if tool:
            run([tool, "init", "--dir", str(jwt_dir)])
        else:
            tmp = new_key(key)
            os.replace(tmp, key)
        made.append("jwt/issuer.pem")
    want = jwk_of(key)
    have = None
    try:
        have = json.loads(jwks.read_text())["keys"][0]
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        pass
    if not have or (have.get("x"), have.get("y"), have.get("kid")) != (want["x"], want["y"], want["kid"]):
        write_atomic(jwks, (json.dumps({"keys": [want]}, separators=(",", ":")) + "\n").encode(), private=False)
        made.append("jwt/jwks.json")
    return made


def _der_ecdsa_to_raw(sig: bytes) -> bytes:
    """DER SEQUENCE { INTEGER r, INTEGER s } -> r || s, 32 bytes each (JWS ES256, RFC 7518 3.4)."""
    if sig[0] != 0x30:
        raise Failure("unexpected ECDSA signature encoding")
    i = 2 if sig[1] < 0x80 else 2 + (sig[1] & 0x7F)
    out = b""
    for _ in range(2):
        if sig[i] != 0x02:
            raise Failure("unexpected ECDSA signature encoding")
        n = sig[i + 1]
        out += sig[i + 2:i + 2 + n].lstrip(b"\0").rjust(32, b"\0")
        i += 2 + n
    return out


def parse_ttl(text: str) -> int:
    m = re.fullmatch(r"(\d+)([smhd])", text)
    if not m:
        raise Failure(f"--ttl {text}: use 30s, 15m, 1h or 2d")
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def issue_token(d: Path, subject: str, scopes: list[str], ttl: str) -> str:
    ttl_s = parse_ttl(ttl)
    key = d / "jwt/issuer.pem"
    if not key.is_file():
        raise Failure(f"no issuer key in {d}/jwt: run {GENERATOR} first")
    tool = pix_token_bin()
    if tool:
        cmd = [tool, "issue", "--dir", str(d / "jwt"), "--subject", subject, "--ttl", ttl]
        for s in scopes:
            cmd += ["--scope", s]
        return run(cmd).stdout.decode().strip()
    now = int(time.time())
    header = {"alg": "ES256", "typ": "JWT", "kid": jwk_of(key)["kid"]}
    claims = {"iss": ISSUER, "sub": subject, "aud": AUDIENCE, "iat": now, "exp": now + ttl_s,
              "scope": " ".join(f"publish:{s}" for s in scopes), "jti": b64url(os.urandom(16))}
    signing_input = b64url(json.dumps(header, separators=(",", ":")).encode()) + "." + \
        b64url(json.dumps(claims, separators=(",", ":")).encode())
    der = run(["openssl", "dgst", "-sha256", "-sign", str(key)], input_bytes=signing_input.encode()).stdout
    return signing_input + "." + b64url(_der_ecdsa_to_raw(der))


def token_claims(token: str) -> dict:
    try:
        header, payload, _ = token.split(".")
        return {"header": json.loads(b64url_decode(header)), **json.loads(b64url_decode(payload))}
    except (ValueError, TypeError):
        return {}


def ensure_sim_token(d: Path) -> list[str]:
    path = d / "jwt/pix-sim.token"
    kid = jwk_of(d / "jwt/issuer.pem")["kid"]
    if path.is_file():
        c = token_claims(path.read_text().strip())
        if c.get("header", {}).get("kid") == kid and c.get("exp", 0) - time.time() > SIM_TOKEN_RENEW_S:
            return []
    write_atomic(path, issue_token(d, "pix-sim", ["pix.payment.requested"], SIM_TOKEN_TTL).encode(), private=True)
    return ["jwt/pix-sim.token"]


# ---- Kubernetes rendering --------------------------------------------------------------------------------


def _yaml_value(value: str, key_prefix_len: int) -> list[str]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import render_k8s  # noqa: PLC0415 - the same YAML emitter as the generated ConfigMaps

    return render_k8s._value(value, render_k8s.DATA_INDENT, key_prefix_len)  # noqa: SLF001


def _scalar(value: str) -> str:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import render_k8s  # noqa: PLC0415

    return render_k8s._scalar(value)  # noqa: SLF001


def object_values(d: Path, obj: K8sObject) -> dict[str, str]:
    out = {}
    for key, (how, what) in obj.data.items():
        if how == "file":
            out[key] = (d / what).read_text()
        elif how == "literal":
            out[key] = what
        else:
            out[key] = re.sub(r"\{([^}]+)\}", lambda m: read_password(d, m.group(1)), what)
    return out


def render_k8s_objects(d: Path) -> bytes:
    docs = []
    for obj in k8s_objects():
        lines = ["apiVersion: v1", f"kind: {obj.kind}", "metadata:", f"  name: {obj.name}",
                 f"  namespace: {obj.namespace}", "  labels:", "    app.kubernetes.io/part-of: pix-pubsub"]
        if obj.component:
            lines.append(f"    app.kubernetes.io/component: {obj.component}")
        lines += ["  annotations:",
                  '    pix.dev/dev-default: "true"',
                  f"    pix.dev/generated-by: {GENERATOR}",
                  f"    pix.dev/replace: {_scalar('see docs/security-deploy.md, Real secrets')}"]
        if obj.kind == "Secret":
            lines.append(f"type: {obj.type}")
            lines.append("stringData:")
        else:
            lines.append("data:")
        for key, value in object_values(d, obj).items():
            prefix = f"  {_scalar(key)}: "
            if "\n" in value.rstrip("\n"):
                v = _yaml_value(value, len(prefix))
            else:
                # One-line values (passwords, URLs) always quoted: a hex password such as 1234e5
                # must not read back as a number.
                v = [json.dumps(value)]
            lines.append(prefix + v[0])
            lines += v[1:]
        docs.append("\n".join(lines) + "\n")
    header = ("# DEVELOPMENT VALUES, generated by scripts/deploy/dev_secrets.sh from the files next to this\n"
              "# directory: every Secret (and the JWKS ConfigMap) that k8s/ references. Apply it after\n"
              "# k8s/namespaces.yaml:  kubectl apply -f " + str(d / "k8s/dev-secrets.yaml") + "\n"
              "# Never commit it; real deployments create these objects from a secret manager instead\n"
              "# (docs/security-deploy.md, Real secrets).\n")
    return (header + "---\n".join(docs)).encode()


def documents_of_type(text: str, secret_type: str) -> str:
    """The documents of a k8s/dev-secrets.yaml whose `type:` is SECRET_TYPE (kubernetes.io/tls...)."""
    docs = text.split("\n---\n")
    return "\n---\n".join(doc.strip("\n") for doc in docs if f"\ntype: {secret_type}\n" in doc + "\n")


# ---- access for the containers -------------------------------------------------------------------------


def apply_access(d: Path, access: str):
    specs = file_specs()
    for root, dirs, _ in os.walk(d):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o700)
    os.chmod(d, 0o700)
    setfacl = shutil.which("setfacl") if access == "acl" else None
    if access == "acl" and not setfacl:
        raise Failure("--access acl needs setfacl (Debian/Ubuntu: apt-get install acl). Or use --access owner "
                      "(Docker Desktop, rootless Docker, Podman) or --access world (every local user may read the "
                      "development secrets)")
    for rel, spec in specs.items():
        p = d / rel
        if not p.is_file():
            continue
        if not spec.private:
            os.chmod(p, 0o644)
            continue
        if access == "world" and spec.readers:
            os.chmod(p, 0o644)
            continue
        os.chmod(p, 0o600)
        if setfacl:
            r = run([setfacl, "-b", str(p)], check=False)
            for uid in spec.readers:
                if r.returncode == 0:
                    r = run([setfacl, "-m", f"u:{uid}:r", str(p)], check=False)
            if r.returncode != 0:
                raise Failure(f"setfacl on {p} failed ({r.stderr.decode().strip()}): the file system may not support "
                              "ACLs; use --access world or --access owner")


# ---- commands --------------------------------------------------------------------------------------------


README = """DEVELOPMENT SECRETS - made by scripts/deploy/dev_secrets.sh for docker-compose.yaml and k8s/.

Everything in this directory is a development value: a local CA, certificates it signed, random
passwords, a token issuer key and the saga's decision-signing keys, for one machine or a throwaway cluster. Never commit it (it is
under .local/, which .gitignore excludes) and never use it for anything reachable by others.
docs/security-deploy.md lists each file, what reads it, and how real secrets replace it.
"""


def cmd_ensure(d: Path, access: str | None, renew: bool, quiet: bool, template: Path = TEMPLATE) -> list[str]:
    if shutil.which("openssl") is None:
        raise Failure("openssl not found")
    access = resolve_access(d, access)
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    made = []
    if write_atomic(d / "README.txt", README.encode(), private=False):
        made.append("README.txt")
    made += ensure_pki(d, renew, quiet)
    made += ensure_passwords(d)
    for rel in [f"passwords/kafka/{p}" for p in KAFKA_PRINCIPALS] + [f"passwords/rabbitmq/{u}" for u in RABBIT_USERS]:
        read_password(d, rel)
    if write_atomic(d / "rabbitmq/definitions.json", render_definitions(d, template), private=True):
        made.append("rabbitmq/definitions.json")
    made += ensure_issuer(d)
    made += ensure_sim_token(d)
    made += ensure_decision_keys(d)
    if write_atomic(d / "k8s/dev-secrets.yaml", render_k8s_objects(d), private=True):
        made.append("k8s/dev-secrets.yaml")
    apply_access(d, access)
    write_atomic(d / ".access", f"{access}\n".encode(), private=False)
    if made:
        say(f"dev secrets in {d}: made {', '.join(made)}", quiet)
    else:
        say(f"dev secrets in {d}: up to date (nothing changed)", quiet)
    say(f"  access: {access} (containers read their files as uid 10001 pix, 1000 kafka, 999 rabbitmq, 472 grafana)",
        quiet)
    return made


def cmd_list(d: Path):
    print(f"{'file':40} {'mode':5} {'read by (uid)':14} used by")
    for rel, spec in sorted(file_specs().items()):
        p = d / rel
        mode = oct(p.stat().st_mode & 0o777)[2:] if p.is_file() else "-"
        readers = ",".join(str(u) for u in spec.readers) or ("all" if not spec.private else "owner")
        print(f"{rel:40} {mode:5} {readers:14} {spec.used_by}")


def resolve_access(d: Path, access: str | None) -> str:
    """--access, else the mode the directory was made with (.access), else acl on Linux (owner elsewhere).
    Checked before anything is written: acl needs setfacl."""
    if access is None:
        try:
            access = (d / ".access").read_text().strip() or None
        except OSError:
            access = None
    if access is None:
        access = "acl" if sys.platform.startswith("linux") else "owner"
    if access not in ("acl", "owner", "world"):
        raise Failure(f"{d}/.access: unknown access mode {access!r}")
    if access == "acl" and not shutil.which("setfacl"):
        raise Failure("--access acl (the default on Linux) needs setfacl: apt-get install acl. Or choose --access owner "
                      "(Docker Desktop, rootless Docker, Podman: containers act as you) or --access world (every local "
                      "user may read the development secrets); the choice is remembered in the directory")
    return access


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog=GENERATOR, description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("command", nargs="?", default="ensure", choices=["ensure", "token", "k8s", "list", "definitions"])
    ap.add_argument("--dir", type=Path, default=Path(os.environ.get("PIX_SECRETS_DIR") or DEFAULT_DIR))
    ap.add_argument("--access", choices=["acl", "owner", "world"], default=None)
    ap.add_argument("--renew-certs", action="store_true", help="re-issue every server certificate (same CA)")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--template", type=Path, default=TEMPLATE, help=argparse.SUPPRESS)
    ap.add_argument("--scope", action="append", default=None, help="token: topic it may publish to (repeatable)")
    ap.add_argument("--ttl", default="1h", help="token: lifetime (30s, 15m, 1h, 2d)")
    ap.add_argument("--subject", default="dev-client", help="token: sub claim")
    ap.add_argument("--type", dest="secret_type", default=None,
                    help="k8s: print the YAML of the Secrets of this type (kubernetes.io/tls) instead of the path")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `... | head` ends quietly
    d = args.dir if args.dir.is_absolute() else Path.cwd() / args.dir
    try:
        if args.command == "ensure":
            cmd_ensure(d, args.access, args.renew_certs, args.quiet, args.template)
        elif args.command == "token":
            print(issue_token(d, args.subject, args.scope or ["pix.payment.requested"], args.ttl))
        elif args.command == "k8s":
            cmd_ensure(d, args.access, args.renew_certs, True, args.template)
            if args.secret_type:
                print(documents_of_type((d / "k8s/dev-secrets.yaml").read_text(), args.secret_type))
            else:
                print(d / "k8s/dev-secrets.yaml")
        elif args.command == "list":
            cmd_list(d)
        elif args.command == "definitions":
            for u in RABBIT_USERS:
                read_password(d, f"passwords/rabbitmq/{u}")
            changed = write_atomic(d / "rabbitmq/definitions.json", render_definitions(d, args.template), private=True)
            print(f"{d / 'rabbitmq/definitions.json'}: {'written' if changed else 'unchanged'}")
    except Failure as e:
        print(f"ERR {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
