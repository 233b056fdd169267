"""The job definitions in examples/migrate-at-scale/ are valid and run the real command.

They cannot run here (no cluster, no AWS Batch); what can go wrong without one is checked:
the files parse, the engines' retry rules match the command's exit codes, the shard count
matches the job's size, and the command line is one ``deltaglider migrate`` accepts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from deltaglider.cli import cli
from deltaglider.cli._errors import CliUsageError, ExitCode

JOBS = Path(__file__).resolve().parents[1] / "examples" / "migrate-at-scale"
PERMANENT = {
    ExitCode.FAILED,
    ExitCode.USAGE,
    ExitCode.NOT_FOUND,
    ExitCode.ACCESS_DENIED,
    ExitCode.INTEGRITY,
    ExitCode.XDELTA3,
}


def parse_migrate(args: list[str]) -> dict[str, Any]:
    """The parameters ``deltaglider ARGS`` gives the migrate command (parsing only)."""
    assert args[0] == "migrate"
    command = cli.get_command(click.Context(cli), "migrate")
    assert command is not None
    with command.make_context("migrate", list(args[1:])) as ctx:
        return dict(ctx.params)


def kubernetes_job() -> dict[str, Any]:
    documents = list(yaml.safe_load_all((JOBS / "kubernetes-indexed-job.yaml").read_text()))
    assert [d["kind"] for d in documents] == ["ServiceAccount", "Job"]
    job: dict[str, Any] = documents[1]
    assert job["apiVersion"] == "batch/v1"
    assert job["spec"]["template"]["spec"]["serviceAccountName"] == documents[0]["metadata"]["name"]
    return job


def test_kubernetes_indexed_job() -> None:
    spec = kubernetes_job()["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]

    assert spec["completionMode"] == "Indexed"
    assert pod["restartPolicy"] == "Never"  # required by podFailurePolicy
    assert spec["backoffLimitPerIndex"] >= 1
    params = parse_migrate(container["args"])
    assert params["shard"] == "auto"
    assert params["shards"] == spec["completions"]
    assert params["yes"] is True
    assert params["report_to"].startswith("s3://")
    # Definite failures fail the index; 75 (temporary), kills and OOM kills are retried.
    (fail_index,) = [r for r in spec["podFailurePolicy"]["rules"] if r["action"] == "FailIndex"]
    assert fail_index["onExitCodes"]["containerName"] == container["name"]
    assert fail_index["onExitCodes"]["operator"] == "In"
    assert set(fail_index["onExitCodes"]["values"]) == PERMANENT
    assert ExitCode.TEMPORARY not in fail_index["onExitCodes"]["values"]
    assert (
        container["resources"]["requests"]["memory"] == container["resources"]["limits"]["memory"]
    )


def test_aws_batch_array_job() -> None:
    definition = json.loads((JOBS / "aws-batch-job-definition.json").read_text())
    submit = json.loads((JOBS / "aws-batch-submit-job.json").read_text())

    assert submit["jobDefinition"] == definition["jobDefinitionName"]
    assert 2 <= submit["arrayProperties"]["size"] <= 10_000
    params = parse_migrate(definition["containerProperties"]["command"])
    # The count comes from AWS_BATCH_JOB_ARRAY_SIZE, which Batch sets in each child.
    assert params["shard"] == "auto"
    assert params["shards"] is None
    rules = definition["retryStrategy"]["evaluateOnExit"]
    assert {"onExitCode": str(int(ExitCode.TEMPORARY)), "action": "RETRY"} in rules
    assert rules[-1] == {"onReason": "*", "action": "EXIT"}
    assert definition["retryStrategy"]["attempts"] >= 2
    resources = {
        r["type"]: r["value"] for r in definition["containerProperties"]["resourceRequirements"]
    }
    assert set(resources) == {"VCPU", "MEMORY"}


def test_dockerfile_installs_xdelta3_and_the_package() -> None:
    lines = (JOBS / "Dockerfile").read_text().splitlines()
    instructions = [line.split()[0] for line in lines if line and not line.startswith(("#", " "))]

    assert instructions[0] == "FROM"
    assert any("apt-get install" in line and "xdelta3" in line for line in lines)
    assert any(line.startswith("RUN pip install") for line in lines)
    assert 'ENTRYPOINT ["deltaglider"]' in lines
    assert "USER" in instructions


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--shard", "auto", "--shards", "0"], "--shards"),
        (["--shard", "3/3"], "expected K/N"),
        (["--report-interval", "0"], "expected seconds > 0"),
    ],
)
def test_the_parser_refuses_what_it_should(args: list[str], message: str) -> None:
    """parse_migrate really parses: bad values do not slip through it."""
    with pytest.raises(CliUsageError, match=message):
        parse_migrate(["migrate", "s3://a/", "s3://b/", *args])
