"""Structural checks of deploy/k8s, rendered offline by `kubectl kustomize`.

usage: check_k8s.py RENDERED_YAML CONFIG_PROTO
Exits non-zero with one line per problem.
"""
import re
import sys

import yaml

MIB = 1 << 20
SHUTDOWN_MARGIN_S = 5  # server/main.cc: Shutdown's deadline past the grace


def parse_memory(quantity):
    units = {"Ki": 1 << 10, "Mi": MIB, "Gi": 1 << 30}
    for suffix, scale in units.items():
        if quantity.endswith(suffix):
            return int(quantity[:-len(suffix)]) * scale
    return int(quantity)


def textproto_fields(text):
    fields = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip().strip('"')
    return fields


def check(docs, proto_text, problems):
    by_kind = {}
    for doc in docs:
        for key in ("apiVersion", "kind", "metadata"):
            if key not in doc:
                problems.append("a document has no %s" % key)
        by_kind.setdefault(doc.get("kind"), []).append(doc)
    for kind in ("ConfigMap", "Deployment", "Service", "PodDisruptionBudget",
                 "HorizontalPodAutoscaler"):
        if len(by_kind.get(kind, [])) != 1:
            problems.append("want exactly one %s" % kind)
    if problems:
        return
    config_map = by_kind["ConfigMap"][0]
    deployment = by_kind["Deployment"][0]
    service = by_kind["Service"][0]
    pdb = by_kind["PodDisruptionBudget"][0]
    hpa = by_kind["HorizontalPodAutoscaler"][0]

    config = textproto_fields(config_map["data"]["config.textproto"])
    known = set(re.findall(r"^\s*optional \S+ (\w+) =", proto_text, re.M))
    for key in config:
        if key not in known:
            problems.append("config.textproto: %s is not in config.proto" % key)

    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    if deployment["spec"]["selector"]["matchLabels"] != labels:
        problems.append("Deployment selector does not match its pods")
    for name, selector in (("Service", service["spec"]["selector"]),
                           ("PodDisruptionBudget",
                            pdb["spec"]["selector"]["matchLabels"])):
        if any(labels.get(k) != v for k, v in selector.items()):
            problems.append("%s selector does not match the pods" % name)
    container = pod["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    grpc_port = int(config["listen"].rsplit(":", 1)[1])
    if ports.get("grpc") != grpc_port:
        problems.append("container port grpc is not the config's listen port")
    for probe in ("readinessProbe", "livenessProbe"):
        grpc = container.get(probe, {}).get("grpc")
        if not grpc or grpc.get("port") != grpc_port:
            problems.append("%s must be a grpc: probe on %d" % (probe,
                                                                grpc_port))
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    sleep_s = int(pre_stop[1]) if pre_stop[0] == "sleep" else 0
    needed = (sleep_s + float(config["drain_grace_seconds"]) +
              float(config.get("drain_listen_seconds", 0)) + SHUTDOWN_MARGIN_S)
    grace = pod["spec"]["terminationGracePeriodSeconds"]
    if grace < needed:
        problems.append("terminationGracePeriodSeconds %s < preStop + drain "
                        "grace + margin = %s" % (grace, needed))
    memory = parse_memory(container["resources"]["requests"]["memory"])
    budget = (int(config["state_memory_bytes"]) +
              int(config.get("max_waiting_bytes", 64 * MIB)) +
              int(config.get("prefix_cache_bytes", 0)))
    if memory < budget:
        problems.append("memory request %d < state + waiting + prefix cache "
                        "%d" % (memory, budget))
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    mounted = [m for m in container["volumeMounts"]
               if volumes.get(m["name"], {}).get("configMap", {}).get("name")
               == config_map["metadata"]["name"]]
    if not mounted or not any(
            "--config=%s/config.textproto" % m["mountPath"] in arg
            for m in mounted for arg in container["command"]):
        problems.append("the server does not read the ConfigMap's config")

    target = hpa["spec"]["scaleTargetRef"]
    if (target["kind"], target["name"]) != ("Deployment",
                                            deployment["metadata"]["name"]):
        problems.append("the HPA does not scale the Deployment")
    metrics = [m["pods"]["metric"]["name"] for m in hpa["spec"]["metrics"]
               if m["type"] == "Pods"]
    if not set(metrics) & {"slabserve_waiting", "vllm:num_requests_waiting"}:
        problems.append("the HPA does not scale on waiting requests")


def main():
    with open(sys.argv[1]) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    with open(sys.argv[2]) as f:
        proto_text = f.read()
    problems = []
    try:
        check(docs, proto_text, problems)
    except (KeyError, IndexError, TypeError, ValueError) as e:
        problems.append("missing or malformed field: %r" % e)
    for p in problems:
        print("deploy/k8s: " + p)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
