"""`python -m harness --help` names the app and says what it does (not "__main__ is powered by Hydra")."""

from tests.conftest import run_cli


def test_help_names_the_app_and_its_groups():
    proc = run_cli("--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("python -m harness key=value ...: measure convolution algorithms")
    assert "__main__" not in proc.stdout and "stage: full, quick, sanity" in proc.stdout
    assert "python -m harness --cfg job" in proc.stdout
