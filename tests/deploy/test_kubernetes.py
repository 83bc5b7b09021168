"""deploy/kubernetes agrees with the code: web replicas and probes, one worker per queue, one beat, migrations."""

from __future__ import annotations

import yaml
from django.conf import settings

from .conftest import KUBE_DIR, ROOT, command_of, queues_of


def _by_kind(kube: list[dict], kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in kube if doc["kind"] == kind}


def _container(doc: dict) -> dict:
    containers = doc["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def _gunicorn_port() -> int:
    namespace: dict = {}
    exec((ROOT / "deploy" / "gunicorn.conf.py").read_text(), namespace)  # noqa: S102 - our own config file
    return int(namespace["bind"].rsplit(":", 1)[1])


def test_every_resource_file_exists_and_parses(kube):
    kinds = sorted({doc["kind"] for doc in kube})
    assert kinds == ["ConfigMap", "Deployment", "Ingress", "Job", "Namespace", "Service"]
    for path in KUBE_DIR.glob("*.yaml"):
        list(yaml.safe_load_all(path.read_text()))


def test_web_is_a_replicated_deployment_with_health_and_readiness_probes(kube):
    web = _by_kind(kube, "Deployment")["resnet-lti-web"]
    assert web["spec"]["replicas"] >= 2
    container = _container(web)
    assert command_of(container) == ["gunicorn", "-c", "deploy/gunicorn.conf.py", "config.wsgi"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["http"] == _gunicorn_port()
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}


def test_the_service_selects_the_web_pods_and_the_ingress_routes_to_it(kube):
    web = _by_kind(kube, "Deployment")["resnet-lti-web"]
    service = _by_kind(kube, "Service")["resnet-lti-web"]
    labels = web["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert web["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    ingress = _by_kind(kube, "Ingress")["resnet-lti"]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "resnet-lti-web", "port": {"name": service["spec"]["ports"][0]["name"]}}
    assert ingress["spec"]["tls"]


def test_one_worker_deployment_per_queue_and_only_the_gpu_one_asks_for_gpus(kube):
    workers = {
        name: doc
        for name, doc in _by_kind(kube, "Deployment").items()
        if command_of(_container(doc))[:4] == ["celery", "-A", "config", "worker"]
    }
    queues = {name: queues_of(command_of(_container(doc))) for name, doc in workers.items()}
    assert sorted(tuple(sorted(q)) for q in queues.values()) == [("default",), ("gpu",)]
    routed = {r["queue"] for r in settings.CELERY_TASK_ROUTES.values()} | {settings.CELERY_TASK_DEFAULT_QUEUE}
    assert set().union(*queues.values()) == routed
    for name, doc in workers.items():
        resources = _container(doc)["resources"]
        if queues[name] == {"gpu"}:
            assert resources["limits"]["nvidia.com/gpu"] == 1
            assert resources["requests"]["nvidia.com/gpu"] == 1
            assert _container(doc)["image"] == "resnet-lti-worker"
            assert "command" not in _container(doc)  # keep the image's entry point (cgroups for the sandboxes)
            command = command_of(_container(doc))
            assert command[command.index("--pool") + 1] == "solo"
        else:
            assert "nvidia.com/gpu" not in resources.get("limits", {})
            assert _container(doc)["image"] == "resnet-lti-web"


def test_beat_is_a_single_replica_that_is_never_doubled_during_a_rollout(kube):
    beats = [d for d in _by_kind(kube, "Deployment").values() if command_of(_container(d))[3:4] == ["beat"]]
    assert len(beats) == 1
    assert beats[0]["spec"]["replicas"] == 1
    assert beats[0]["spec"]["strategy"]["type"] == "Recreate"


def test_migrations_run_as_a_job_with_the_web_image(kube):
    job = _by_kind(kube, "Job")["resnet-lti-migrate"]
    container = _container(job)
    assert command_of(container) == ["python", "manage.py", "migrate", "--noinput"]
    assert container["image"] == "resnet-lti-web"


def test_every_pod_reads_the_configmap_and_the_secret(kube):
    configmaps = _by_kind(kube, "ConfigMap")
    secret = yaml.safe_load((KUBE_DIR / "secret.example.yaml").read_text())
    for doc in kube:
        if doc["kind"] in {"Deployment", "Job"}:
            refs = _container(doc)["envFrom"]
            assert {"configMapRef": {"name": "resnet-lti-config"}} in refs
            assert {"secretRef": {"name": secret["metadata"]["name"]}} in refs
    assert configmaps["resnet-lti-config"]["data"]["DJANGO_ENV"] == "production"
    assert "secret.example.yaml" not in yaml.safe_load((KUBE_DIR / "kustomization.yaml").read_text())["resources"]


def test_kustomization_maps_both_images(kube):
    kustomization = yaml.safe_load((KUBE_DIR / "kustomization.yaml").read_text())
    mapped = {image["name"] for image in kustomization["images"]}
    used = {_container(d)["image"] for d in kube if d["kind"] in {"Deployment", "Job"}}
    assert used == mapped == {"resnet-lti-web", "resnet-lti-worker"}
