"""Deployment files: the Kubernetes manifests validated against a pinned Kubernetes version's
schemas (kubernetes-validate, strict: unknown fields fail), their probes, limits, security
context and settings names; and the Containerfile, which cannot be built here (no container
runtime in CI), parsed and checked: every COPY source exists and is in the build context, the
pinned model packages are installed from uv.lock and verified by `faceproof models` at build
time, a non-root user, `faceproof serve` on 0.0.0.0 and a health check."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from faceproof.models import REGISTRY
from faceproof.settings import Settings

ROOT = Path(__file__).parents[1]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
KUBERNETES_VERSION = "1.33.0"  # the oldest minor still supported upstream when this was written


def _manifest_files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def _documents(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc is not None]


def _resources() -> list[dict[str, Any]]:
    return [doc for path in _manifest_files() for doc in _documents(path)]


def _of_kind(kind: str) -> list[dict[str, Any]]:
    return [r for r in _resources() if r["kind"] == kind]


def _pod_specs() -> list[tuple[str, dict[str, Any]]]:
    """(workload name, pod spec) of every Deployment and Job."""
    return [
        (r["metadata"]["name"], r["spec"]["template"]["spec"])
        for r in _resources()
        if r["kind"] in ("Deployment", "Job")
    ]


# --- Kubernetes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", _manifest_files(), ids=lambda p: p.name)
def test_manifest_validates_against_pinned_kubernetes(path: Path) -> None:
    documents = _documents(path)
    assert documents, f"{path.name} holds no resource"
    for doc in documents:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_validator_rejects_an_unknown_field() -> None:
    deployment = _of_kind("Deployment")[0]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readynessProbe"] = container["readinessProbe"]  # a typo strict mode must catch
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    assert sorted(kustomization["resources"]) == [p.name for p in _manifest_files()]
    names = {image["name"] for image in kustomization["images"]}
    for workload, spec in _pod_specs():
        for container in spec["containers"]:
            assert container["image"] in names, f"{workload}: image not set by kustomization"


def test_the_expected_resources_exist() -> None:
    kinds = {(r["kind"], r["metadata"]["name"]) for r in _resources()}
    assert {
        ("Deployment", "faceproof-api"),
        ("Service", "faceproof-api"),
        ("HorizontalPodAutoscaler", "faceproof-api"),
        ("PodDisruptionBudget", "faceproof-api"),
        ("Job", "faceproof-db-upgrade"),
        ("Deployment", "faceproof-registry"),
        ("Service", "faceproof-registry"),
        ("Service", "faceproof-postgres"),
        ("Service", "faceproof-redis"),
        ("ConfigMap", "faceproof-config"),
    } <= kinds
    assert not _of_kind("Secret"), "secrets are created by the operator, never committed"
    external = {
        s["metadata"]["name"]: s["spec"] for s in _of_kind("Service") if "externalName" in s["spec"]
    }
    assert {n: s["type"] for n, s in external.items()} == {
        "faceproof-postgres": "ExternalName",
        "faceproof-redis": "ExternalName",
    }


def test_every_deployment_has_probes_limits_and_a_locked_down_pod() -> None:
    deployments = _of_kind("Deployment")
    assert len(deployments) == 2
    for deployment in deployments:
        name = deployment["metadata"]["name"]
        spec = deployment["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] != 0, name
        assert spec["automountServiceAccountToken"] is False, name
        mounts_tmp_emptydir = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        for container in spec["containers"]:
            for probe in ("readinessProbe", "livenessProbe"):
                assert container[probe]["httpGet"]["port"] == "http", (name, probe)
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][bound]), (name, bound)
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["capabilities"]["drop"] == ["ALL"], name
            tmp = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
            assert tmp, f"{name}: a read-only root needs a writable /tmp"
            assert tmp[0]["name"] in mounts_tmp_emptydir, name
            assert any(p["name"] == "http" for p in container["ports"]), name
    (api,) = [d for d in deployments if d["metadata"]["name"] == "faceproof-api"]
    container = api["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["args"][:3] == ["serve", "--host", "0.0.0.0"]


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_services_hpa_pdb_and_job_point_at_real_workloads() -> None:
    deployments = {d["metadata"]["name"]: d for d in _of_kind("Deployment")}
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]
        assert _selects(deployment["spec"]["selector"]["matchLabels"], pod["metadata"]["labels"])
        services = [
            s
            for s in _of_kind("Service")
            if "selector" in s["spec"]
            and _selects(s["spec"]["selector"], pod["metadata"]["labels"])
        ]
        assert len(services) == 1, f"{name}: exactly one Service selects its pods"
        ports = {p["name"] for p in pod["spec"]["containers"][0]["ports"]}
        assert {p["targetPort"] for p in services[0]["spec"]["ports"]} <= ports, name
    (hpa,) = _of_kind("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == "faceproof-api"
    assert hpa["spec"]["minReplicas"] >= 2
    (pdb,) = _of_kind("PodDisruptionBudget")
    api_labels = deployments["faceproof-api"]["spec"]["template"]["metadata"]["labels"]
    assert _selects(pdb["spec"]["selector"]["matchLabels"], api_labels)
    assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]  # drains can proceed
    (job,) = _of_kind("Job")
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["db", "upgrade"]
    registry = deployments["faceproof-registry"]["spec"]["template"]["spec"]["containers"][0]
    assert registry["args"][:2] == ["registry", "serve"]


def _known_variables() -> set[str]:
    """FACEPROOF_* names faceproof reads: the settings, and the few the CLI reads itself."""
    names = {f"FACEPROOF_{field.upper()}" for field in Settings.model_fields}
    for source in (ROOT / "src" / "faceproof").rglob("*.py"):
        text = source.read_text(encoding="utf-8")
        names |= set(re.findall(r"os\.environ\.get\(\s*\"(FACEPROOF_\w+)\"", text))
    return names


def _used_variables() -> dict[str, str]:
    """Every variable name the manifests set, with where it is set."""
    used: dict[str, str] = {}
    for config in _of_kind("ConfigMap"):
        used |= dict.fromkeys(config["data"], f"ConfigMap {config['metadata']['name']}")
    for workload, spec in _pod_specs():
        for container in spec["containers"]:
            used |= {e["name"]: workload for e in container.get("env", [])}
    return used


def _documented_secret_variables() -> set[str]:
    """The FACEPROOF_* keys docs/deployment.md puts into faceproof-secrets."""
    text = (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
    return set(re.findall(r"--from-literal=(FACEPROOF_\w+)=", text))


def test_every_variable_the_manifests_use_is_a_real_setting() -> None:
    known = _known_variables()
    assert "FACEPROOF_RECEIPT_PREVIOUS_KEYS" in known
    used = _used_variables()
    secrets = _documented_secret_variables()
    assert {
        "FACEPROOF_DATABASE_URL",
        "FACEPROOF_PSEUDONYM_KEY",
        "FACEPROOF_CHALLENGE_KEY",
        "FACEPROOF_REGISTRY_KEY",
        "FACEPROOF_REDIS_URL",  # several replicas share held cards and limits through it
    } <= secrets
    unknown = {n: w for n, w in used.items() if n not in known} | {
        n: "docs/deployment.md" for n in secrets if n not in known
    }
    assert unknown == {}, f"not read by faceproof (a typo is silently ignored): {unknown}"
    # Secrets never go into the ConfigMap.
    assert not secrets & set(used)
    # Production needs these from somewhere: config or secret.
    required = {
        "FACEPROOF_ENVIRONMENT",
        "FACEPROOF_DATABASE_URL",
        "FACEPROOF_RECEIPT_KEY_PATH",
        "FACEPROOF_PSEUDONYM_KEY",
        "FACEPROOF_CHALLENGE_KEY",
    }
    assert required <= set(used) | secrets
    (config,) = _of_kind("ConfigMap")
    assert config["data"]["FACEPROOF_ENVIRONMENT"] == "production"


def test_configmap_values_are_accepted_by_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    (config,) = _of_kind("ConfigMap")
    for name, value in config["data"].items():
        monkeypatch.setenv(name, value)
    # What the operator's Secret adds (placeholders of the right shape, not real secrets).
    monkeypatch.setenv("FACEPROOF_DATABASE_URL", "postgresql+psycopg://u:p@faceproof-postgres/db")
    monkeypatch.setenv("FACEPROOF_PSEUDONYM_KEY", "x" * 40)
    monkeypatch.setenv("FACEPROOF_CHALLENGE_KEY", "ab" * 32)
    settings = Settings()
    assert settings.migrate_on_start is False
    assert settings.receipt_previous_key_paths == (Path("/etc/faceproof/receipt-retired"),)
    mounts = {
        m["mountPath"]
        for d in _of_kind("Deployment")
        if d["metadata"]["name"] == "faceproof-api"
        for m in d["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    }
    assert str(settings.effective_receipt_key_path.parent) in mounts
    assert str(settings.receipt_previous_key_paths[0]) in mounts


# --- the Containerfile --------------------------------------------------------------------------


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of deploy/Containerfile, continuation lines joined."""
    text = (DEPLOY / "Containerfile").read_text(encoding="utf-8")
    logical = re.sub(
        r"\\\n",
        " ",
        "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")),
    )
    out = []
    for line in logical.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            out.append((keyword.upper(), " ".join(rest.split())))
    return out


def _ignored() -> list[str]:
    lines = (ROOT / ".containerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_ignore_files_agree_and_keep_the_context_small() -> None:
    assert (ROOT / ".dockerignore").read_text() == (ROOT / ".containerignore").read_text()
    patterns = set(_ignored())
    assert {".git", ".venv", "tests", "faceproof-data", "**/*.pem"} <= patterns


def test_containerfile_copies_only_what_exists_and_is_in_the_context() -> None:
    copies = [args for keyword, args in _instructions() if keyword == "COPY"]
    assert copies
    ignored = _ignored()
    sources = []
    for args in copies:
        parts = shlex.split(args)
        if any(p.startswith("--from=") for p in parts):
            continue
        sources += [p for p in parts[:-1] if not p.startswith("--")]
    assert set(sources) == {"pyproject.toml", "uv.lock", "README.md", "src"}
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not any(Path(source).match(p.removeprefix("**/")) for p in ignored), source


def test_containerfile_builds_the_documented_image() -> None:
    steps = _instructions()
    text = "\n".join(f"{k} {a}" for k, a in steps)
    assert "python:3.11-slim-bookworm" in text
    runs = [a for k, a in steps if k == "RUN"]
    apt = next(r for r in runs if "apt-get install" in r)
    assert {"tesseract-ocr", "tesseract-ocr-kor", "fonts-nanum"} <= set(apt.split())
    assert any("uv sync --frozen --no-dev" in r for r in runs)
    # The models are verified after the environment is copied into the final stage.
    stages = [i for i, (k, _) in enumerate(steps) if k == "FROM"]
    final = steps[stages[-1] :]
    copy_venv = next(i for i, (k, a) in enumerate(final) if k == "COPY" and "venv" in a)
    verify = next(i for i, (k, a) in enumerate(final) if k == "RUN" and "faceproof models" in a)
    assert copy_venv < verify
    users = [a for k, a in final if k == "USER"]
    assert users, "the image must not run as root"
    assert users[-1].split(":")[0] not in ("0", "root")
    health = next(a for k, a in final if k == "HEALTHCHECK")
    assert "/healthz" in health
    entrypoint = next(a for k, a in final if k == "ENTRYPOINT")
    cmd = next(a for k, a in final if k == "CMD")
    assert entrypoint == '["faceproof"]'
    assert cmd.startswith('["serve", "--host", "0.0.0.0"')


def test_model_packages_are_pinned_in_the_project_and_the_lock() -> None:
    """`uv sync --frozen` installs exactly the packages the model registry hashes."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    lock = tomllib.loads((ROOT / "uv.lock").read_text(encoding="utf-8"))
    locked = {p["name"]: p["version"] for p in lock["package"]}
    pinned = dict(d.split("==", 1) for d in project["project"]["dependencies"] if "==" in d)
    for spec in REGISTRY.values():
        assert pinned.get(spec.source_package) == spec.source_version, spec.model_id
        assert locked.get(spec.source_package) == spec.source_version, spec.model_id
