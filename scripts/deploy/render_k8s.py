#!/usr/bin/env python3
"""Renders the Kubernetes ConfigMaps/Secrets whose content lives in files owned elsewhere, and lints k8s/.

    scripts/deploy/render_k8s.py                 write the generated manifests (below)
    scripts/deploy/render_k8s.py --check         exit 1 if a generated manifest is missing or stale
    scripts/deploy/render_k8s.py --lint          the project's rules over every k8s/**/*.yaml
                                                 (needs PyYAML: .local/tools/venv/bin/python)
    scripts/deploy/render_k8s.py --sources       the generated objects and their source files, as JSON
                                                 (check_k8s.sh reads the values back with js-yaml)
    options: --source-root DIR  read the source files from DIR instead of the repository
                                (e.g. placeholder copies while their owners still write them)
             --k8s-dir DIR      the manifests' directory (default <repo>/k8s)
             --compose FILE     docker-compose.yaml whose image tags --lint compares (default <repo>/...)
             --extra FILE       (--lint) objects made outside k8s/ (dev_secrets.sh's k8s/dev-secrets.yaml):
                                referenced Secrets and ConfigMaps are looked up there too

Generated (each with a header naming its sources; never edit them by hand):
    k8s/kafka/generated-config.yaml          ConfigMap kafka-jmx-exporter  <- monitoring/kafka/jmx-exporter.yaml
    k8s/rabbitmq/generated-config.yaml       ConfigMap rabbitmq-config     <- monitoring/rabbitmq/{rabbitmq.conf,enabled_plugins}
    k8s/monitoring/generated-configmaps.yaml prometheus-config, alertmanager-config, otel-collector-config,
                                             grafana-datasources, grafana-dashboard-provider and one
                                             ConfigMap per dashboard <- monitoring/**, dashboards/*.json

No Secret is rendered here: every credential (and the RabbitMQ definitions, which hold password
hashes) comes from scripts/deploy/dev_secrets.sh in development, outside git; --lint --extra FILE
reads its Kubernetes objects (k8s/dev-secrets.yaml of its output) next to k8s/.

Rendering and --check use the Python standard library only; --lint imports yaml (PyYAML).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = "scripts/deploy/render_k8s.py"

# Kubernetes stores the whole object in the last-applied-configuration annotation on a client-side
# `kubectl apply`, and annotations are limited to 262144 bytes in total: stay well below.
MAX_OBJECT_BYTES = 240_000
# yamllint (.yamllint): max line length 140. Block scalars hold content at this indent.
MAX_LINE = 140
DATA_INDENT = 4


class Obj:
    """One ConfigMap or Secret to render."""

    def __init__(self, kind, name, namespace, sources, labels, secret=False, annotations=None):
        self.kind = kind
        self.name = name
        self.namespace = namespace
        self.sources = sources  # list of (key, relative source path)
        self.labels = labels
        self.secret = secret
        self.annotations = annotations or {}


def _labels(name, component):
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/component": component,
            "app.kubernetes.io/part-of": "pix-pubsub"}


TARGETS = {
    "k8s/kafka/generated-config.yaml": [
        Obj("ConfigMap", "kafka-jmx-exporter", "kafka",
            [("jmx-exporter.yaml", "monitoring/kafka/jmx-exporter.yaml")], _labels("kafka", "broker")),
    ],
    "k8s/rabbitmq/generated-config.yaml": [
        Obj("ConfigMap", "rabbitmq-config", "rabbitmq",
            [("rabbitmq.conf", "monitoring/rabbitmq/rabbitmq.conf"),
             ("enabled_plugins", "monitoring/rabbitmq/enabled_plugins")], _labels("rabbitmq", "broker")),
    ],
    "k8s/monitoring/generated-configmaps.yaml": [
        Obj("ConfigMap", "prometheus-config", "monitoring",
            [("prometheus.yml", "monitoring/prometheus/prometheus-k8s.yml"),
             ("alerts.yml", "monitoring/prometheus/alerts.yml")], _labels("prometheus", "monitoring")),
        Obj("ConfigMap", "alertmanager-config", "monitoring",
            [("alertmanager.yml", "monitoring/alertmanager/alertmanager.yml")], _labels("alertmanager", "monitoring")),
        Obj("ConfigMap", "otel-collector-config", "monitoring",
            [("otel-collector.yaml", "monitoring/otel/otel-collector.yaml")], _labels("otel-collector", "monitoring")),
        Obj("ConfigMap", "grafana-datasources", "monitoring",
            [("prometheus.yaml", "monitoring/grafana/provisioning/datasources/prometheus.yaml")],
            _labels("grafana", "monitoring")),
        Obj("ConfigMap", "grafana-dashboard-provider", "monitoring",
            [("pix.yaml", "monitoring/grafana/provisioning/dashboards/pix.yaml")], _labels("grafana", "monitoring")),
        Obj("ConfigMap", "grafana-dashboard-kafka-rabbit", "monitoring",
            [("grafana-dashboard-kafka-rabbit.json", "dashboards/grafana-dashboard-kafka-rabbit.json")],
            _labels("grafana", "monitoring")),
        Obj("ConfigMap", "grafana-dashboard-saga", "monitoring",
            [("grafana-dashboard-saga.json", "dashboards/grafana-dashboard-saga.json")], _labels("grafana", "monitoring")),
    ],
}


class RenderError(Exception):
    pass


# ---- YAML emission (stdlib: the shapes here are fixed, so a small emitter is enough) ------------

_PLAIN_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")


def _scalar(value: str) -> str:
    """A short one-line value: plain when unambiguous, else double-quoted."""
    if _PLAIN_SAFE.match(value) and value.lower() not in ("true", "false", "yes", "no", "on", "off", "null", "y", "n"):
        if not re.fullmatch(r"[0-9._-]+", value):
            return value
    return '"' + "".join(_escape_char(c) for c in value) + '"'


def _escape_char(c: str) -> str:
    o = ord(c)
    if c == '"':
        return '\\"'
    if c == "\\":
        return "\\\\"
    if c == "\n":
        return "\\n"
    if c == "\t":
        return "\\t"
    if c == "\r":
        return "\\r"
    if o < 0x20 or o == 0x7F:
        return "\\x%02x" % o
    if o > 0xFFFF:
        return "\\U%08x" % o
    if o >= 0x80:
        # Printable non-ASCII stays as it is, except the YAML/Unicode line and paragraph separators.
        if c in "\u0085\u2028\u2029\ufeff" or 0xD800 <= o <= 0xDFFF:
            return "\\u%04x" % o
        return c
    return c


def _unprintable(c: str) -> bool:
    o = ord(c)
    return o < 0x20 or o == 0x7F or c in "\u0085\u2028\u2029\ufeff" or 0xD800 <= o <= 0xDFFF


def _block_ok(content: str) -> bool:
    """True if `content` can be a literal block scalar that round-trips and passes yamllint."""
    if not content or content.strip() == "":
        return False
    lines = content.split("\n")
    if content.endswith("\n"):
        lines = lines[:-1]
    if content.endswith("\n\n"):
        return False  # would need "|+" with trailing empty lines (yamllint: empty-lines)
    if lines[0].startswith((" ", "\t")):
        return False  # would need an indentation indicator
    for line in lines:
        if len(line) + DATA_INDENT > MAX_LINE:
            return False
        if line != line.rstrip(" \t"):
            return False  # yamllint: trailing-spaces
        if any(_unprintable(c) for c in line):
            return False  # control characters (tabs included) need escapes
    return True


def _value(content: str, indent: int, first_prefix: int) -> list[str]:
    """Lines for `key: <value>` whose key sits at `indent - 2` spaces; the first line follows
    `first_prefix` characters (the key and its colon)."""
    pad = " " * indent
    if _block_ok(content):
        chomp = "" if content.endswith("\n") else "-"
        body = content[:-1] if content.endswith("\n") else content
        return ["|" + chomp] + [(pad + line) if line else "" for line in body.split("\n")]
    # Folded double-quoted scalar: each line ends with an escaped line break ("\"), which YAML
    # removes; a line never starts with a space (it would be stripped): that one is written \x20.
    tokens = [_escape_char(c) for c in content]
    width = MAX_LINE - indent - 1
    lines, cur, cur_len = [], [], 0
    for tok in tokens:
        t = "\\x20" if (not cur and tok == " " and lines) else tok
        limit = width if lines else MAX_LINE - first_prefix - 2
        if cur and cur_len + len(t) > limit:
            lines.append("".join(cur))
            cur, cur_len = [], 0
            t = "\\x20" if tok == " " else tok
        cur.append(t)
        cur_len += len(t)
    lines.append("".join(cur))
    out = ['"' + lines[0] + ("\\" if len(lines) > 1 else '"')]
    for i, line in enumerate(lines[1:], 1):
        out.append(pad + line + ("\\" if i < len(lines) - 1 else '"'))
    return out


def render_object(obj: Obj, contents: dict[str, str]) -> str:
    out = ["apiVersion: v1", f"kind: {obj.kind}", "metadata:", f"  name: {obj.name}", f"  namespace: {obj.namespace}",
           "  labels:"]
    out += [f"    {k}: {_scalar(v)}" for k, v in obj.labels.items()]
    annotations = {"pix.dev/generated-from": ", ".join(src for _, src in obj.sources)}
    annotations.update(obj.annotations)
    out.append("  annotations:")
    out += [f"    {k}: {_scalar(v)}" for k, v in annotations.items()]
    if obj.secret:
        out.append("type: Opaque")
        out.append("stringData:")
    else:
        out.append("data:")
    for key, _ in obj.sources:
        prefix = f"  {_scalar(key)}: "
        value = _value(contents[key], DATA_INDENT, len(prefix))
        out.append(prefix + value[0])
        out += value[1:]
    text = "\n".join(out) + "\n"
    if len(text.encode()) > MAX_OBJECT_BYTES:
        raise RenderError(f"{obj.kind} {obj.namespace}/{obj.name} would be {len(text.encode())} bytes; "
                          f"kubectl apply stores objects in an annotation limited to 256 KiB: split its sources")
    return text


def read_sources(source_root: Path) -> dict[str, str]:
    wanted = sorted({src for objs in TARGETS.values() for o in objs for _, src in o.sources})
    missing = [s for s in wanted if not (source_root / s).is_file()]
    if missing:
        raise RenderError("missing source file(s) under " + str(source_root) + ":\n" +
                          "\n".join(f"  {m}" for m in missing) +
                          "\n(render_k8s.py copies them into k8s/ and cannot run without them)")
    texts = {}
    for s in wanted:
        try:
            texts[s] = (source_root / s).read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise RenderError(f"{s}: not UTF-8 text ({e})") from e
        if s.endswith(".json"):
            try:
                json.loads(texts[s], object_pairs_hook=_no_duplicate_keys)
            except ValueError as e:
                raise RenderError(f"{s}: invalid JSON: {e}") from e
    return texts


def _no_duplicate_keys(pairs):
    keys = [k for k, _ in pairs]
    dup = {k for k in keys if keys.count(k) > 1}
    if dup:
        raise ValueError("duplicate key(s) " + ", ".join(sorted(dup)))
    return dict(pairs)


def render_all(source_root: Path) -> dict[str, str]:
    texts = read_sources(source_root)
    files = {}
    for target, objs in TARGETS.items():
        srcs = [src for o in objs for _, src in o.sources]
        header = [f"# generated by {GENERATOR} from"]
        header += [f"#   {src}{',' if i < len(srcs) - 1 else ';'}" for i, src in enumerate(srcs)]
        header += ["# do not edit: change the source files, then run " + GENERATOR,
                   "# (" + GENERATOR + " --check fails while this file is stale)."]
        docs = []
        for o in objs:
            docs.append(render_object(o, {key: texts[src] for key, src in o.sources}))
        files[target] = "\n".join(header) + "\n" + "---\n".join(docs)
    return files


# ---- lint: the project's rules over k8s/ (PyYAML) --------------------------------------------------

OUR_IMAGES = {"api-kafka", "api-rabbitmq", "pix-pubsub", "pix-kafka"}
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}
EXPECTED_NODEPORTS = {("monitoring", "prometheus"): 30090, ("monitoring", "grafana"): 30300,
                      ("monitoring", "alertmanager"): 30093, ("rabbitmq", "rabbitmq-management"): 31672}
PIX_TOPICS = {"pix.payment.requested", "pix.payment.validated", "pix.payment.settled", "pix.notification.sent",
              "pix.audit.log", "pix.dlq"}
KEDA_SPEC_KEYS = {"scaleTargetRef", "pollingInterval", "cooldownPeriod", "initialCooldownPeriod", "idleReplicaCount",
                  "minReplicaCount", "maxReplicaCount", "fallback", "advanced", "triggers"}
KEDA_TRIGGER_KEYS = {"type", "name", "metadata", "authenticationRef", "metricType", "useCachedMetrics"}
KEDA_METADATA_KEYS = {
    "kafka": {"bootstrapServers", "bootstrapServersFromEnv", "consumerGroup", "consumerGroupFromEnv", "topic",
              "topicFromEnv", "partitionLimitation", "lagThreshold", "activationLagThreshold", "offsetResetPolicy",
              "allowIdleConsumers", "excludePersistentLag", "scaleToZeroOnInvalidOffset", "limitToPartitionsWithLag",
              "ensureEvenDistributionOfPartitions", "version", "tls", "sasl", "unsafeSsl"},
    "rabbitmq": {"host", "hostFromEnv", "protocol", "queueName", "mode", "value", "activationValue", "vhostName",
                 "useRegex", "excludeUnacknowledged", "pageSize", "operation", "timeout", "unsafeSsl"},
}
KEDA_TRIGGERAUTH_KEYS = {"secretTargetRef", "env", "podIdentity", "configMapTargetRef", "hashiCorpVault",
                         "azureKeyVault", "awsSecretManager", "gcpSecretManager", "boundServiceAccountToken", "filePath"}


def _int(value, default):
    """An integer field of a manifest; a wrong type is the schema check's finding, not a crash here."""
    return value if isinstance(value, int) and not isinstance(value, bool) else default


class Lint:
    def __init__(self, k8s_dir: Path, source_root: Path, compose: Path, extra: list[Path] | None = None):
        import yaml  # noqa: PLC0415 (only --lint needs it)

        self.yaml = yaml
        self.k8s_dir = k8s_dir
        self.source_root = source_root
        self.compose = compose
        self.errors: list[str] = []
        self.checked: list[str] = []
        self.docs: list[tuple[str, dict]] = []
        # Objects made outside k8s/ (dev_secrets.sh): only looked up by references, never linted as k8s/'s.
        self.extra_docs: list[tuple[str, dict]] = []
        for path in sorted(k8s_dir.rglob("*.yaml")) + sorted(k8s_dir.rglob("*.yml")):
            self._load(path, os.path.relpath(path, ROOT), self.docs)
        for path in extra or []:
            self._load(path, str(path), self.extra_docs)

    def _load(self, path, rel, into):
        with open(path, encoding="utf-8") as f:
            for doc in self.yaml.safe_load_all(f):
                if doc is None:
                    continue
                if not isinstance(doc, dict) or "kind" not in doc:
                    self.err(rel, "a YAML document that is not a Kubernetes object")
                    continue
                into.append((rel, doc))

    def err(self, where: str, msg: str):
        self.errors.append(f"{where}: {msg}")

    # -- helpers --
    def objs(self, *kinds):
        return [(f, d) for f, d in self.docs if d.get("kind") in kinds]

    @staticmethod
    def ns(d):
        return (d.get("metadata") or {}).get("namespace", "")

    @staticmethod
    def name(d):
        return (d.get("metadata") or {}).get("name", "")

    def ident(self, f, d):
        return f"{f} {d.get('kind')} {self.ns(d) + '/' if self.ns(d) else ''}{self.name(d)}"

    @staticmethod
    def template(d):
        kind = d.get("kind")
        spec = d.get("spec") or {}
        if kind == "CronJob":
            return ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}
        return spec.get("template") or {}

    def workloads(self):
        return [(f, d) for f, d in self.docs if d.get("kind") in WORKLOAD_KINDS]

    @staticmethod
    def matches(selector: dict, labels: dict) -> bool:
        """A Service selector (plain map) or a LabelSelector (matchLabels/matchExpressions) against labels."""
        if not selector:
            return False
        if "matchLabels" in selector or "matchExpressions" in selector:
            plain = selector.get("matchLabels") or {}
            exprs = selector.get("matchExpressions") or []
        else:
            plain, exprs = selector, []
        if any(labels.get(k) != v for k, v in plain.items()):
            return False
        for e in exprs:
            key, op, values = e.get("key"), e.get("operator"), e.get("values") or []
            if (op == "In" and labels.get(key) not in values) or (op == "NotIn" and labels.get(key) in values) \
                    or (op == "Exists" and key not in labels) or (op == "DoesNotExist" and key in labels):
                return False
        return True

    def data_keys(self, ns, kind, name):
        for _, d in self.objs(kind) + [(f, d) for f, d in self.extra_docs if d.get("kind") == kind]:
            if self.ns(d) == ns and self.name(d) == name:
                return set((d.get("data") or {}).keys()) | set((d.get("stringData") or {}).keys()) \
                    | set((d.get("binaryData") or {}).keys())
        return None

    # -- rules --
    def rule_namespaces(self):
        self.checked.append("every namespaced object is in a namespace of k8s/namespaces.yaml; "
                            "each namespace enforces Pod Security 'restricted' and has a default-deny-ingress policy")
        nss = {}
        for f, d in self.objs("Namespace"):
            nss[self.name(d)] = d
            labels = (d.get("metadata") or {}).get("labels") or {}
            if labels.get("pod-security.kubernetes.io/enforce") != "restricted":
                self.err(self.ident(f, d), "pod-security.kubernetes.io/enforce is not 'restricted'")
        cluster_scoped = {"Namespace", "ClusterRole", "ClusterRoleBinding", "IngressClass", "PersistentVolume",
                          "StorageClass", "PriorityClass"}
        for f, d in self.docs:
            if d.get("kind") in cluster_scoped:
                continue
            if not self.ns(d):
                self.err(self.ident(f, d), "no metadata.namespace (every object names its namespace)")
            elif self.ns(d) not in nss:
                self.err(self.ident(f, d), f"namespace {self.ns(d)} is not defined in k8s/namespaces.yaml")
        for ns in nss:
            ok = any(self.ns(d) == ns and (d.get("spec") or {}).get("podSelector") == {}
                     and "Ingress" in ((d.get("spec") or {}).get("policyTypes") or [])
                     and not (d.get("spec") or {}).get("ingress")
                     for _, d in self.objs("NetworkPolicy"))
            if not ok:
                self.err("k8s/namespaces.yaml", f"namespace {ns} has no default-deny ingress NetworkPolicy")

    def rule_containers(self):
        self.checked.append("every container: requests+limits (cpu, memory); liveness+readiness probes (not in Jobs "
                            "or initContainers); runAsNonRoot, numeric non-root uid, allowPrivilegeEscalation false, "
                            "capabilities drop ALL, seccomp RuntimeDefault, readOnlyRootFilesystem (or a "
                            "pix.dev/writable-root-reason annotation); no host namespaces/hostPath/privileged; no API token "
                            "unless the pod has its own service account; "
                            "images pinned or ours (IfNotPresent), third-party tags equal docker-compose.yaml's")
        compose_images = self.compose_images()
        for f, d in self.workloads():
            tpl = self.template(d)
            pspec = tpl.get("spec") or {}
            annotations = (tpl.get("metadata") or {}).get("annotations") or {}
            where = self.ident(f, d)
            psc = pspec.get("securityContext") or {}
            if not pspec.get("serviceAccountName") and pspec.get("automountServiceAccountToken") is not False:
                self.err(where, "automountServiceAccountToken must be false (only pods with their own "
                                "serviceAccountName need an API token)")
            for flag in ("hostNetwork", "hostPID", "hostIPC"):
                if pspec.get(flag):
                    self.err(where, f"{flag} is set")
            for v in pspec.get("volumes") or []:
                if "hostPath" in v:
                    self.err(where, f"volume {v.get('name')} is a hostPath")
            is_job = d.get("kind") in ("Job", "CronJob")
            if is_job:
                jspec = d.get("spec") or {}
                if d.get("kind") == "Job" and ("ttlSecondsAfterFinished" not in jspec or "backoffLimit" not in jspec):
                    self.err(where, "a Job needs ttlSecondsAfterFinished and backoffLimit")
            for section in ("initContainers", "containers"):
                for c in pspec.get(section) or []:
                    cw = f"{where} {section[:-1]} {c.get('name')}"
                    res = c.get("resources") or {}
                    for part in ("requests", "limits"):
                        for r in ("cpu", "memory"):
                            if r not in (res.get(part) or {}):
                                self.err(cw, f"no resources.{part}.{r}")
                    if section == "containers" and not is_job:
                        for p in ("livenessProbe", "readinessProbe"):
                            if p not in c:
                                self.err(cw, f"no {p}")
                    csc = c.get("securityContext") or {}

                    def eff(key, csc=csc):
                        return csc[key] if key in csc else psc.get(key)

                    if eff("runAsNonRoot") is not True:
                        self.err(cw, "runAsNonRoot is not true")
                    uid = eff("runAsUser")
                    if not isinstance(uid, int) or uid == 0:
                        self.err(cw, "runAsUser is not a numeric non-root uid")
                    if csc.get("allowPrivilegeEscalation") is not False:
                        self.err(cw, "allowPrivilegeEscalation is not false")
                    if csc.get("privileged"):
                        self.err(cw, "privileged")
                    if "ALL" not in ((csc.get("capabilities") or {}).get("drop") or []):
                        self.err(cw, "capabilities.drop does not include ALL")
                    if (csc.get("capabilities") or {}).get("add"):
                        self.err(cw, "adds capabilities")
                    if (eff("seccompProfile") or {}).get("type") != "RuntimeDefault":
                        self.err(cw, "seccompProfile is not RuntimeDefault")
                    if csc.get("readOnlyRootFilesystem") is not True and "pix.dev/writable-root-reason" not in annotations:
                        self.err(cw, "readOnlyRootFilesystem is not true (or say why in the pod annotation "
                                     "pix.dev/writable-root-reason)")
                    self.check_image(cw, c, compose_images)

    def compose_images(self):
        if not self.compose.is_file():
            self.err(str(self.compose), "missing: cannot compare image tags with docker-compose.yaml")
            return {}
        with open(self.compose, encoding="utf-8") as fh:
            doc = self.yaml.safe_load(fh) or {}
        images = {}
        for svc in (doc.get("services") or {}).values():
            img = (svc or {}).get("image")
            if img and ":" in img:
                repo, tag = img.rsplit(":", 1)
                images[repo] = tag
        return images

    def check_image(self, cw, c, compose_images):
        image = c.get("image", "")
        if "@sha256:" in image:
            return
        repo, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "")
        if repo in OUR_IMAGES:
            if c.get("imagePullPolicy") not in ("IfNotPresent", "Never"):
                self.err(cw, f"{image}: our images are built into Minikube's Docker; imagePullPolicy must be "
                             "IfNotPresent (a :latest tag defaults to Always)")
            return
        if not tag or tag == "latest":
            self.err(cw, f"image {image!r} is not pinned to a version tag")
            return
        if repo in compose_images and compose_images[repo] != tag:
            self.err(cw, f"image {image} differs from docker-compose.yaml's {repo}:{compose_images[repo]}")

    def rule_pdbs_and_scaling(self):
        self.checked.append("every Deployment/StatefulSet with replicas>1, an HPA or a KEDA ScaledObject allowing >1 "
                            "has a PodDisruptionBudget; HPA-managed Deployments set no replicas; every PDB selects "
                            "pods; HPA/ScaledObject targets exist; single-writer StatefulSets (volumeClaimTemplates, "
                            "stage with a SQLite db) are never scaled above 1")
        hpa_targets = {}
        for f, d in self.objs("HorizontalPodAutoscaler"):
            ref = (d.get("spec") or {}).get("scaleTargetRef") or {}
            hpa_targets[(self.ns(d), ref.get("kind"), ref.get("name"))] = _int((d.get("spec") or {}).get("maxReplicas"), 1)
        for f, d in self.objs("ScaledObject"):
            ref = (d.get("spec") or {}).get("scaleTargetRef") or {}
            key = (self.ns(d), ref.get("kind", "Deployment"), ref.get("name"))
            hpa_targets[key] = max(hpa_targets.get(key, 0), _int((d.get("spec") or {}).get("maxReplicaCount"), 100))
        workload_keys = {(self.ns(d), d["kind"], self.name(d)): (f, d) for f, d in self.workloads()}
        for key in hpa_targets:
            if key not in workload_keys:
                self.err(f"autoscaler target {key[1]} {key[0]}/{key[2]}", "does not exist in k8s/")
        pdbs = self.objs("PodDisruptionBudget")
        for f, d in pdbs:
            sel = (d.get("spec") or {}).get("selector") or {}
            if not any(self.ns(w) == self.ns(d) and self.matches(sel, (self.template(w).get("metadata") or {}).get("labels") or {})
                       for _, w in self.workloads()):
                self.err(self.ident(f, d), "selects no pod template")
        for (ns, kind, name), (f, d) in workload_keys.items():
            if kind not in ("Deployment", "StatefulSet"):
                continue
            replicas = _int((d.get("spec") or {}).get("replicas"), 1)
            scaled = hpa_targets.get((ns, kind, name))
            if (ns, kind, name) in self._hpa_only() and "replicas" in (d.get("spec") or {}):
                self.err(self.ident(f, d), "an HPA owns its replicas: remove spec.replicas")
            single_writer = kind == "StatefulSet" and any(
                e.get("name") in ("PIX_LEDGER_DB", "PIX_AUDIT_DB")
                for c in (self.template(d).get("spec") or {}).get("containers") or [] for e in c.get("env") or [])
            if single_writer and (replicas > 1 or (scaled or 0) > 1):
                self.err(self.ident(f, d), "single SQLite writer: replicas and maxReplicaCount must stay at 1")
            if replicas > 1 or (scaled or 0) > 1:
                labels = (self.template(d).get("metadata") or {}).get("labels") or {}
                if not any(self.ns(p) == ns and self.matches((p.get("spec") or {}).get("selector") or {}, labels)
                           for _, p in pdbs):
                    self.err(self.ident(f, d), "runs more than one replica but no PodDisruptionBudget selects it")

    def _hpa_only(self):
        out = set()
        for _, d in self.objs("HorizontalPodAutoscaler"):
            ref = (d.get("spec") or {}).get("scaleTargetRef") or {}
            out.add((self.ns(d), ref.get("kind"), ref.get("name")))
        return out

    def rule_services(self):
        self.checked.append("every Service selector matches a pod template in its namespace and each targetPort is a "
                            "port of those pods; NodePorts are exactly prometheus 30090, grafana 30300, alertmanager "
                            "30093, rabbitmq-management 31672")
        nodeports = {}
        for f, d in self.objs("Service"):
            spec = d.get("spec") or {}
            sel = spec.get("selector")
            where = self.ident(f, d)
            if not sel:
                self.err(where, "no selector")
                continue
            pods = [w for _, w in self.workloads() if self.ns(w) == self.ns(d)
                    and self.matches(sel, (self.template(w).get("metadata") or {}).get("labels") or {})]
            if not pods:
                self.err(where, f"selector {sel} matches no pod template in namespace {self.ns(d)}")
                continue
            ports = set()
            for w in pods:
                for c in (self.template(w).get("spec") or {}).get("containers") or []:
                    for p in c.get("ports") or []:
                        ports.add(p.get("containerPort"))
                        if p.get("name"):
                            ports.add(p["name"])
            for p in spec.get("ports") or []:
                target = p.get("targetPort", p.get("port"))
                if target not in ports:
                    self.err(where, f"port {p.get('name') or p.get('port')}: targetPort {target} is not a container "
                                    "port of the selected pods")
                if "nodePort" in p:
                    nodeports[(self.ns(d), self.name(d))] = p["nodePort"]
            if spec.get("type") == "NodePort" and not any("nodePort" in p for p in spec.get("ports") or []):
                self.err(where, "NodePort Service without a fixed nodePort")
        if nodeports != EXPECTED_NODEPORTS:
            self.err("k8s/", f"NodePorts {sorted(nodeports.items())} differ from the contract "
                             f"{sorted(EXPECTED_NODEPORTS.items())}")

    def rule_ingress(self):
        self.checked.append("Ingress backends are Services of the same namespace with that port; pix.local serves "
                            "/kafka and /rabbit over TLS (pix-local-tls) with an ingressClassName")
        paths = set()
        for f, d in self.objs("Ingress"):
            spec = d.get("spec") or {}
            where = self.ident(f, d)
            if not spec.get("ingressClassName"):
                self.err(where, "no ingressClassName")
            tls_secrets = {t.get("secretName") for t in spec.get("tls") or []}
            if tls_secrets != {"pix-local-tls"}:
                self.err(where, f"TLS secretName {tls_secrets} is not pix-local-tls")
            for rule in spec.get("rules") or []:
                for p in (rule.get("http") or {}).get("paths") or []:
                    paths.add((rule.get("host"), p.get("path")))
                    svc = ((p.get("backend") or {}).get("service") or {})
                    port = (svc.get("port") or {}).get("number") or (svc.get("port") or {}).get("name")
                    found = [s for _, s in self.objs("Service") if self.ns(s) == self.ns(d)
                             and self.name(s) == svc.get("name")]
                    if not found:
                        self.err(where, f"backend Service {svc.get('name')} does not exist in namespace {self.ns(d)}")
                    elif not any(port in (sp.get("port"), sp.get("name"))
                                 for sp in (found[0].get("spec") or {}).get("ports") or []):
                        self.err(where, f"backend Service {svc.get('name')} has no port {port}")
        for want in (("pix.local", "/kafka"), ("pix.local", "/rabbit")):
            if want not in paths:
                self.err("k8s/ingress/", f"no Ingress path {want[0]}{want[1]}")

    def rule_references(self):
        self.checked.append("every ConfigMap/Secret a pod, Ingress or TriggerAuthentication references exists in the "
                            "same namespace, with the keys referenced")
        for f, d in self.workloads():
            ns = self.ns(d)
            where = self.ident(f, d)
            pspec = self.template(d).get("spec") or {}
            refs = []
            for v in pspec.get("volumes") or []:
                if "configMap" in v:
                    refs.append(("ConfigMap", v["configMap"].get("name"), [i["key"] for i in v["configMap"].get("items")
                                                                           or []], v["configMap"].get("optional")))
                if "secret" in v:
                    refs.append(("Secret", v["secret"].get("secretName"), [i["key"] for i in v["secret"].get("items")
                                                                           or []], v["secret"].get("optional")))
                for src in (v.get("projected") or {}).get("sources") or []:
                    for kind, key in (("ConfigMap", "configMap"), ("Secret", "secret")):
                        if key in src:
                            refs.append((kind, src[key].get("name"), [i["key"] for i in src[key].get("items") or []],
                                         src[key].get("optional")))
                if "persistentVolumeClaim" in v:
                    claim = v["persistentVolumeClaim"].get("claimName")
                    if not any(self.ns(p) == ns and self.name(p) == claim for _, p in self.objs("PersistentVolumeClaim")):
                        self.err(where, f"PersistentVolumeClaim {claim} does not exist in namespace {ns}")
            for c in (pspec.get("containers") or []) + (pspec.get("initContainers") or []):
                for e in c.get("env") or []:
                    vf = e.get("valueFrom") or {}
                    if "secretKeyRef" in vf:
                        refs.append(("Secret", vf["secretKeyRef"].get("name"), [vf["secretKeyRef"].get("key")],
                                     vf["secretKeyRef"].get("optional")))
                    if "configMapKeyRef" in vf:
                        refs.append(("ConfigMap", vf["configMapKeyRef"].get("name"), [vf["configMapKeyRef"].get("key")],
                                     vf["configMapKeyRef"].get("optional")))
                for ef in c.get("envFrom") or []:
                    for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                        if key in ef:
                            refs.append((kind, ef[key].get("name"), [], ef[key].get("optional")))
                mounts = {m.get("name") for m in c.get("volumeMounts") or []}
                declared = {v.get("name") for v in pspec.get("volumes") or []} | {
                    t.get("metadata", {}).get("name") for t in (d.get("spec") or {}).get("volumeClaimTemplates") or []}
                for m in mounts - declared:
                    self.err(f"{where} container {c.get('name')}", f"mounts volume {m} that the pod does not declare")
            for kind, name, keys, optional in refs:
                have = self.data_keys(ns, kind, name)
                if have is None:
                    if not optional:
                        self.err(where, f"{kind} {name} does not exist in namespace {ns}")
                    continue
                for k in keys:
                    if k not in have:
                        self.err(where, f"{kind} {ns}/{name} has no key {k!r}")
        for f, d in self.objs("Ingress"):
            for t in (d.get("spec") or {}).get("tls") or []:
                name = t.get("secretName")
                if self.data_keys(self.ns(d), "Secret", name) is None:
                    self.err(self.ident(f, d), f"TLS Secret {name} does not exist in namespace {self.ns(d)}")
        for f, d in self.objs("TriggerAuthentication"):
            for ref in (d.get("spec") or {}).get("secretTargetRef") or []:
                have = self.data_keys(self.ns(d), "Secret", ref.get("name"))
                if have is None or ref.get("key") not in have:
                    self.err(self.ident(f, d), f"Secret {ref.get('name')} key {ref.get('key')} does not exist")

    def rule_secrets(self):
        self.checked.append("no Secret is committed in k8s/ (credentials come from scripts/deploy/dev_secrets.sh or a "
                            "secret manager); every object read from --extra is a marked development value "
                            "(annotation pix.dev/dev-default) of a namespace of k8s/namespaces.yaml")
        for f, d in self.objs("Secret"):
            self.err(self.ident(f, d), "a Secret in k8s/: credentials are never committed (scripts/deploy/dev_secrets.sh "
                                       "makes the development ones, docs/security-deploy.md)")
        namespaces = {self.name(d) for _, d in self.objs("Namespace")}
        for f, d in self.extra_docs:
            ann = (d.get("metadata") or {}).get("annotations") or {}
            if ann.get("pix.dev/dev-default") != "true":
                self.err(self.ident(f, d), "a generated object without the annotation pix.dev/dev-default: \"true\"")
            if self.ns(d) not in namespaces:
                self.err(self.ident(f, d), f"namespace {self.ns(d)} is not in k8s/namespaces.yaml")
        if not self.extra_docs:
            self.err("render_k8s.py --lint", "no --extra objects: the Secrets k8s/ references are dev_secrets.sh's "
                                             "(check_k8s.sh passes its k8s/dev-secrets.yaml)")

    def rule_networkpolicies(self):
        self.checked.append("every port a NetworkPolicy opens is a container port of a pod it selects (a port left "
                            "over from a listener that moved is a finding)")
        for f, d in self.objs("NetworkPolicy"):
            spec = d.get("spec") or {}
            pods = [w for _, w in self.workloads() if self.ns(w) == self.ns(d)
                    and (spec.get("podSelector") == {}
                         or self.matches(spec.get("podSelector") or {}, (self.template(w).get("metadata") or {}).get("labels") or {}))]
            ports = set()
            for w in pods:
                for c in (self.template(w).get("spec") or {}).get("containers") or []:
                    for p in c.get("ports") or []:
                        ports.add(p.get("containerPort"))
                        ports.add(p.get("name"))
            for rule in spec.get("ingress") or []:
                for p in rule.get("ports") or []:
                    if p.get("port") not in ports:
                        self.err(self.ident(f, d), f"opens port {p.get('port')}, which no selected pod listens on "
                                                   f"({sorted(x for x in ports if isinstance(x, int))})")

    def rule_keda(self):
        self.checked.append("KEDA: only known spec/trigger/metadata keys (a typo fails); kafka triggers name an existing "
                            "PIX topic and the target's PIX_GROUP; authenticationRefs exist")
        trigger_auths = {(self.ns(d), self.name(d)) for _, d in self.objs("TriggerAuthentication")}
        for f, d in self.objs("TriggerAuthentication"):
            for k in (d.get("spec") or {}):
                if k not in KEDA_TRIGGERAUTH_KEYS:
                    self.err(self.ident(f, d), f"unknown TriggerAuthentication spec key {k!r}")
        for f, d in self.objs("ScaledObject"):
            where = self.ident(f, d)
            spec = d.get("spec") or {}
            for k in spec:
                if k not in KEDA_SPEC_KEYS:
                    self.err(where, f"unknown ScaledObject spec key {k!r}")
            ref = spec.get("scaleTargetRef") or {}
            target = next((w for _, w in self.workloads() if self.ns(w) == self.ns(d)
                           and w["kind"] == ref.get("kind", "Deployment") and self.name(w) == ref.get("name")), None)
            group = None
            if target:
                for c in (self.template(target).get("spec") or {}).get("containers") or []:
                    for e in c.get("env") or []:
                        if e.get("name") == "PIX_GROUP":
                            group = e.get("value")
            for t in spec.get("triggers") or []:
                for k in t:
                    if k not in KEDA_TRIGGER_KEYS:
                        self.err(where, f"unknown trigger key {k!r}")
                known = KEDA_METADATA_KEYS.get(t.get("type"))
                if known is None:
                    self.err(where, f"trigger type {t.get('type')!r} is not one this project uses (kafka, rabbitmq)")
                    continue
                md = t.get("metadata") or {}
                for k in md:
                    if k not in known:
                        self.err(where, f"unknown {t['type']} trigger metadata key {k!r}")
                if t["type"] == "kafka":
                    if md.get("topic") and md["topic"] not in PIX_TOPICS:
                        self.err(where, f"kafka trigger topic {md['topic']!r} is not a PIX topic")
                    if group is not None and md.get("consumerGroup") != group:
                        self.err(where, f"consumerGroup {md.get('consumerGroup')!r} is not the target's PIX_GROUP "
                                        f"{group!r}")
                auth = (t.get("authenticationRef") or {}).get("name")
                if auth and (self.ns(d), auth) not in trigger_auths:
                    self.err(where, f"authenticationRef {auth} does not exist in namespace {self.ns(d)}")

    def rule_prometheus(self):
        self.checked.append("prometheus-k8s.yml has prometheus.yml's global settings, rule files, job names, metrics "
                            "paths and honor_labels; annotated pods are covered by a job whose metrics path equals "
                            "their prometheus.io/path and whose port is a container port; promtool check config on "
                            "a copy with kubernetes_sd_configs replaced by static targets (Debian's promtool is "
                            "built without Kubernetes discovery)")
        k8s_path = self.source_root / "monitoring/prometheus/prometheus-k8s.yml"
        compose_path = self.source_root / "monitoring/prometheus/prometheus.yml"
        for p in (k8s_path, compose_path):
            if not p.is_file():
                self.err(str(p), "missing")
                return
        k8s = self.yaml.safe_load(k8s_path.read_text()) or {}
        comp = self.yaml.safe_load(compose_path.read_text()) or {}
        where = "monitoring/prometheus/prometheus-k8s.yml"
        if k8s.get("global") != comp.get("global"):
            self.err(where, f"global {k8s.get('global')} differs from prometheus.yml's {comp.get('global')}")
        if k8s.get("rule_files") != comp.get("rule_files"):
            self.err(where, "rule_files differ from prometheus.yml's")
        am = [t for a in (k8s.get("alerting") or {}).get("alertmanagers") or []
              for s in a.get("static_configs") or [] for t in s.get("targets") or []]
        if am != ["alertmanager.monitoring.svc:9093"]:
            self.err(where, f"alertmanager targets {am} are not [alertmanager.monitoring.svc:9093]")
        kjobs = {j["job_name"]: j for j in k8s.get("scrape_configs") or []}
        cjobs = {j["job_name"]: j for j in comp.get("scrape_configs") or []}
        if set(kjobs) != set(cjobs):
            self.err(where, f"job names {sorted(kjobs)} differ from prometheus.yml's {sorted(cjobs)}")
        for name in set(kjobs) & set(cjobs):
            for key, default in (("metrics_path", "/metrics"), ("honor_labels", False), ("scheme", "http")):
                if kjobs[name].get(key, default) != cjobs[name].get(key, default):
                    self.err(where, f"job {name}: {key} {kjobs[name].get(key, default)!r} differs from prometheus.yml's "
                                    f"{cjobs[name].get(key, default)!r}")
        ns_jobs = {}
        for name, j in kjobs.items():
            for sd in j.get("kubernetes_sd_configs") or []:
                if sd.get("role") != "pod":
                    self.err(where, f"job {name}: role {sd.get('role')!r} (the manifests annotate pods)")
                for ns in (sd.get("namespaces") or {}).get("names") or []:
                    ns_jobs.setdefault(ns, []).append(j)
        for f, d in self.workloads():
            tpl = self.template(d)
            ann = (tpl.get("metadata") or {}).get("annotations") or {}
            if ann.get("prometheus.io/scrape") != "true":
                continue
            where_w = self.ident(f, d)
            jobs = ns_jobs.get(self.ns(d), [])
            if not jobs:
                self.err(where_w, f"annotated for scraping, but no job of prometheus-k8s.yml watches namespace "
                                  f"{self.ns(d)}")
            path = ann.get("prometheus.io/path", "/metrics")
            for j in jobs:
                if j.get("metrics_path", "/metrics") != path:
                    self.err(where_w, f"prometheus.io/path {path} differs from job {j['job_name']}'s metrics_path")
            port = ann.get("prometheus.io/port")
            cports = {str(p.get("containerPort")) for c in (tpl.get("spec") or {}).get("containers") or []
                      for p in c.get("ports") or []}
            if port not in cports:
                self.err(where_w, f"prometheus.io/port {port} is not a container port")
        promtool = shutil.which("promtool")
        alerts = self.source_root / "monitoring/prometheus/alerts.yml"
        if not promtool:
            self.err("promtool", "not found (Debian package prometheus): cannot check prometheus-k8s.yml")
            return
        if not alerts.is_file():
            self.err(str(alerts), "missing")
            return
        with tempfile.TemporaryDirectory() as tmp:
            copy = dict(k8s)
            copy["scrape_configs"] = []
            for j in k8s.get("scrape_configs") or []:
                j = dict(j)
                if j.pop("kubernetes_sd_configs", None) is not None:
                    j["static_configs"] = [{"targets": ["sd-placeholder:1"]}]
                copy["scrape_configs"].append(j)
            Path(tmp, "prometheus.yml").write_text(self.yaml.safe_dump(copy, sort_keys=False))
            shutil.copy(alerts, Path(tmp, "alerts.yml"))
            r = subprocess.run([promtool, "check", "config", str(Path(tmp, "prometheus.yml"))], capture_output=True,
                               text=True, check=False)
            if r.returncode != 0:
                self.err(where, "promtool check config failed:\n" + (r.stdout + r.stderr).strip())

    def rule_labels(self):
        self.checked.append("every workload: selector matches its own template labels, app.kubernetes.io/name label; "
                            "StatefulSets name an existing headless Service")
        for f, d in self.workloads():
            where = self.ident(f, d)
            labels = (self.template(d).get("metadata") or {}).get("labels") or {}
            if "app.kubernetes.io/name" not in labels:
                self.err(where, "pod template without app.kubernetes.io/name")
            sel = (d.get("spec") or {}).get("selector")
            if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet") and not self.matches(sel or {}, labels):
                self.err(where, "spec.selector does not match the pod template's labels")
            if d["kind"] == "StatefulSet":
                svc = (d.get("spec") or {}).get("serviceName")
                found = [s for _, s in self.objs("Service") if self.ns(s) == self.ns(d) and self.name(s) == svc]
                if not found or (found[0].get("spec") or {}).get("clusterIP") != "None":
                    self.err(where, f"serviceName {svc} is not a headless Service in namespace {self.ns(d)}")

    def rule_generated(self):
        self.checked.append("each generated ConfigMap/Secret value parses back (PyYAML) to its source file, byte for byte")
        for target, objs in TARGETS.items():
            path = self.k8s_dir.parent / target
            if not path.is_file():
                self.err(target, "missing: run " + GENERATOR)
                continue
            docs = [d for d in self.yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
            for o in objs:
                doc = next((d for d in docs if d.get("kind") == o.kind and self.name(d) == o.name), None)
                if doc is None:
                    self.err(target, f"no {o.kind} {o.name}: run {GENERATOR}")
                    continue
                data = doc.get("stringData" if o.secret else "data") or {}
                for key, src in o.sources:
                    srcp = self.source_root / src
                    if srcp.is_file() and data.get(key) != srcp.read_text(encoding="utf-8"):
                        self.err(target, f"{o.name}/{key} does not read back as {src}: run {GENERATOR}")

    def run(self) -> int:
        for rule in (self.rule_generated, self.rule_namespaces, self.rule_containers, self.rule_pdbs_and_scaling, self.rule_services,
                     self.rule_ingress, self.rule_references, self.rule_secrets, self.rule_networkpolicies,
                     self.rule_keda, self.rule_prometheus, self.rule_labels):
            try:
                rule()
            except (TypeError, AttributeError, KeyError, ValueError) as e:
                # A malformed manifest (the schema checks name it): report, do not crash.
                self.err(f"lint rule {rule.__name__}", f"cannot check ({type(e).__name__}: {e})")
        print(f"lint: {len(self.docs)} objects in {os.path.relpath(self.k8s_dir, ROOT)}/")
        for c in self.checked:
            print(f"  - {c}")
        if self.errors:
            print(f"\n{len(self.errors)} problem(s):", file=sys.stderr)
            for e in self.errors:
                print(f"  {e}", file=sys.stderr)
            return 1
        print("lint: ok")
        return 0


# ---- main -------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="fail if a generated manifest is missing or stale")
    mode.add_argument("--lint", action="store_true", help="check the project's rules over k8s/ (needs PyYAML)")
    mode.add_argument("--sources", action="store_true",
                      help="print, as JSON, each generated manifest's objects: [kind, name, field, [[key, source]...]]")
    ap.add_argument("--source-root", type=Path, default=ROOT, help="where the source files are (default: the repo)")
    ap.add_argument("--k8s-dir", type=Path, default=ROOT / "k8s", help="the manifests (default: <repo>/k8s)")
    ap.add_argument("--compose", type=Path, default=ROOT / "docker-compose.yaml",
                    help="docker-compose.yaml whose image tags --lint compares")
    ap.add_argument("--extra", type=Path, action="append", default=[],
                    help="--lint: objects made outside k8s/ (dev_secrets.sh's k8s/dev-secrets.yaml)")
    args = ap.parse_args()
    source_root = args.source_root.resolve()

    if args.sources:  # check_k8s.sh reads every generated value back with a second YAML parser
        print(json.dumps({t: [[o.kind, o.name, "stringData" if o.secret else "data", o.sources] for o in objs]
                          for t, objs in TARGETS.items()}))
        return 0
    if args.lint:
        try:
            lint = Lint(args.k8s_dir.resolve(), source_root, args.compose, args.extra)
        except ImportError:
            print("render_k8s.py --lint needs PyYAML: run it with .local/tools/venv/bin/python "
                  "(scripts/deploy/tools.sh installs it)", file=sys.stderr)
            return 2
        return lint.run()

    try:
        files = render_all(source_root)
    except RenderError as e:
        print(f"render_k8s.py: {e}", file=sys.stderr)
        return 1
    out_root = args.k8s_dir.resolve().parent
    if args.check:
        stale = []
        for target, text in files.items():
            path = out_root / target
            if not path.is_file():
                stale.append(f"{target} (missing)")
            elif path.read_text(encoding="utf-8") != text:
                stale.append(f"{target} (differs from its sources)")
        if stale:
            print("render_k8s.py --check: generated manifests are stale; run scripts/deploy/render_k8s.py:",
                  file=sys.stderr)
            for s in stale:
                print(f"  {s}", file=sys.stderr)
            return 1
        for target in files:
            print(f"up to date: {target}")
        return 0
    for target, text in files.items():
        path = out_root / target
        old = path.read_text(encoding="utf-8") if path.is_file() else None
        if old != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {target}")
        else:
            print(f"unchanged {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
