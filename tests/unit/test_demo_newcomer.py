"""The newcomer's demo cannot stall silently.

- ``docker/run.sh`` (local mode) gives Odoo a CA bundle that trusts the demo
  stand-in's CA in addition to any bundle already configured, never instead of
  it: checked with real TLS handshakes, with and without ``REQUESTS_CA_BUNDLE``
  preset in the environment (``--print-ca-bundle`` writes and names the bundle
  local mode exports).
- The demo driver reports the last error of a retrying job and stops at once
  on a permanent cause (``harness.JobWatch``).

The fault suite plays the demo against a real Odoo started with that bundle
while ``REQUESTS_CA_BUNDLE`` names a bundle without the stand-in's CA.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import certifi
import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
RUN_SH = ROOT / "docker" / "run.sh"


def _load_harness():
    sys.path.insert(0, str(ROOT / "tests" / "e2e"))
    spec = importlib.util.spec_from_file_location(
        "qtc_e2e_harness", ROOT / "tests" / "e2e" / "harness.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


harness = _load_harness()


def certificates(path):
    return {
        "".join(block.split())
        for block in harness.PEM_CERTIFICATE_RE.findall(Path(path).read_text())
    }


def clean_environ(tmp_path, **extra):
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in harness.CA_BUNDLE_VARIABLES
    }
    env["QTC_STANDIN_DIR"] = str(tmp_path / "standin")
    env.update(extra)
    return env


def bundle_of_run_sh(env):
    """The bundle ``docker/run.sh`` gives Odoo in local mode, as it says."""
    proc = subprocess.run(
        ["bash", str(RUN_SH), "--print-ca-bundle"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return Path(proc.stdout.strip().splitlines()[-1])


def standin_files(directory):
    return {
        "cert": str(directory / "server.pem"),
        "key": str(directory / "server.key"),
    }


def handshake(server, bundle):
    """An HTTPS request to ``server`` verified against ``bundle`` only."""
    session = requests.Session()
    session.trust_env = False
    return session.get(
        f"{server.instance_url}/services/data/v61.0/limits", verify=bundle
    )


@pytest.fixture
def corporate(tmp_path):
    """A bundle as a corporate machine presets it: a CA of its own (signing a
    server on 127.0.0.1), without the demo stand-in's CA."""
    directory = tmp_path / "corporate"
    files = {
        "cert": directory / "server.pem",
        "key": directory / "server.key",
        "ca": directory / "ca.pem",
    }
    harness.make_certificates(files, ca_name="Example Corp proxy CA")
    return {name: str(path) for name, path in files.items()}


def test_without_a_preset_bundle_the_standin_and_public_roots_are_trusted(
    tmp_path,
):
    bundle = bundle_of_run_sh(clean_environ(tmp_path))
    assert bundle.parent == tmp_path / "standin"
    assert certificates(certifi.where()) <= certificates(bundle)
    assert certificates(tmp_path / "standin" / "ca.pem") <= certificates(bundle)
    standin = harness.SalesforceStandIn(0, standin_files(tmp_path / "standin"), "")
    with standin:
        assert handshake(standin, str(bundle)).status_code == 401  # TLS passed


def test_a_preset_bundle_stays_trusted_beside_the_standin(tmp_path, corporate):
    env = clean_environ(tmp_path, REQUESTS_CA_BUNDLE=corporate["ca"])
    preset = Path(corporate["ca"]).read_text()
    bundle = bundle_of_run_sh(env)
    assert Path(corporate["ca"]).read_text() == preset, "the preset file is kept"
    assert bundle != Path(corporate["ca"])
    assert certificates(corporate["ca"]) <= certificates(bundle)
    assert certificates(certifi.where()) <= certificates(bundle)
    standin = harness.SalesforceStandIn(0, standin_files(tmp_path / "standin"), "")
    corporate_server = harness.SalesforceStandIn(0, corporate, "")
    with standin, corporate_server:
        # The preset bundle alone does not trust the stand-in: what happened
        # to the newcomer whose REQUESTS_CA_BUNDLE was kept as it was.
        with pytest.raises(requests.exceptions.SSLError):
            handshake(standin, corporate["ca"])
        assert handshake(standin, str(bundle)).status_code == 401
        assert handshake(corporate_server, str(bundle)).status_code == 401


def test_ssl_cert_file_is_kept_too_and_rebuilding_does_not_grow(tmp_path, corporate):
    env = clean_environ(tmp_path, SSL_CERT_FILE=corporate["ca"])
    bundle = bundle_of_run_sh(env)
    assert certificates(corporate["ca"]) <= certificates(bundle)
    size = len(certificates(bundle))
    # run.sh started again from a shell where it already exported its bundle.
    again = bundle_of_run_sh({**env, "REQUESTS_CA_BUNDLE": str(bundle)})
    assert again == bundle
    assert len(certificates(again)) == size
    assert certificates(corporate["ca"]) <= certificates(again)


# ------------------------------------------------------------- JobWatch


class FakeRpc:
    def __init__(self, jobs):
        self.jobs = jobs

    def search_read(self, model, domain, fields, order=None):
        assert model == "qtc.job"
        states = next(value for name, _op, value in domain if name == "state")
        return [dict(job) for job in self.jobs if job["state"] in states]


def job(state="pending", attempts=1, message="", **values):
    return {
        "id": 7,
        "name": "Process event 04lQTCDEMO0000001A",
        "state": state,
        "attempts": attempts,
        "max_attempts": 5,
        "error_kind": "transient",
        "error_message": message,
        **values,
    }


def test_retrying_job_is_reported_once_per_attempt():
    lines = []
    rpc = FakeRpc([job(message="GET https://127.0.0.1:8443/x timed out")])
    watch = harness.JobWatch(rpc, out=lines.append)
    watch.check([])
    watch.check([])
    assert len(lines) == 1
    assert "is retrying (attempt 1 of 5)" in lines[0]
    assert "timed out" in lines[0]
    rpc.jobs[0]["attempts"] = 2
    watch.check([])
    assert len(lines) == 2
    assert "timed out" in watch.last_error


@pytest.mark.parametrize(
    ("found", "cause"),
    [
        (
            job(
                message="POST https://127.0.0.1:8443/services/oauth2/token "
                "unreachable (SSLError)"
            ),
            "SSL certificate failure",
        ),
        (
            job(message="token endpoint answered invalid_client: bad secret"),
            "authentication failure",
        ),
        (
            job(state="failed", error_kind="business", message="Unmapped X"),
            "business error",
        ),
        (job(state="dead", attempts=5, message="503"), "dead job"),
    ],
)
def test_permanent_causes_stop_at_once_with_the_error(found, cause):
    watch = harness.JobWatch(FakeRpc([found]), out=lambda line: None)
    with pytest.raises(harness.JobFailure) as caught:
        watch.check([])
    text = str(caught.value)
    assert text.startswith(cause)
    assert found["error_message"] in text
    assert found["name"] in text
