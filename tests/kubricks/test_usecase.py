"""Which use case a command means without --usecase: every case of the resolution order."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kubricks.errors import SpecError
from kubricks.settings import KubricksSettings
from kubricks.spec import BUNDLED_USECASES, load_spec
from kubricks.usecase import find, remember, resolve, short


def write_spec(folder: Path, name: str) -> Path:
    """A valid spec named ``name`` (the bundled churn one, renamed)."""
    raw = yaml.safe_load((BUNDLED_USECASES / "churn.yaml").read_text())
    raw["name"] = name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture()
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> KubricksSettings:
    monkeypatch.chdir(tmp_path)
    return KubricksSettings(home=tmp_path / "home")


def test_a_fresh_home_means_the_bundled_example(settings: KubricksSettings) -> None:
    found = resolve(None, settings)
    assert found.ref == "churn" and found.why == "the only spec in the bundled examples"
    assert load_spec(found.ref, settings.usecases_dir).name == "churn"


def test_the_only_spec_of_the_user_wins_over_the_bundled_ones(settings: KubricksSettings) -> None:
    wine = write_spec(settings.home / "usecases", "wine")
    found = resolve(None, settings)
    assert found.path == wine.resolve() and found.ref == str(wine.resolve())
    assert found.why == "the only spec in home/usecases"
    assert load_spec(found.ref, settings.usecases_dir).name == "wine"


def test_with_several_specs_the_last_used_decides_else_one_line_lists_them(
    settings: KubricksSettings,
) -> None:
    write_spec(settings.home / "usecases", "wine")
    iris = write_spec(settings.home / "usecases", "iris")
    with pytest.raises(SpecError) as refused:
        resolve(None, settings)
    message = str(refused.value)
    assert "\n" not in message
    assert "iris, wine" in message and "bundled: churn" in message
    assert "a path to a spec YAML" in message and "KUBRICKS_USECASE" in message

    remember(iris, settings)
    found = resolve(None, settings)
    assert found.path == iris.resolve() and found.why == "the one last used here"


def test_a_spec_used_by_path_elsewhere_counts_as_last_used(
    settings: KubricksSettings, tmp_path: Path
) -> None:
    elsewhere = write_spec(tmp_path / "projects", "sales")
    remember(resolve(str(elsewhere), settings).path, settings)
    found = resolve(None, settings)
    assert found.path == elsewhere.resolve() and found.why == "the one last used here"
    elsewhere.unlink()  # gone: back to the bundled example
    assert resolve(None, settings).ref == "churn"


def test_the_environment_beats_the_last_used(settings: KubricksSettings) -> None:
    wine = write_spec(settings.home / "usecases", "wine")
    remember(wine, settings)
    pinned = settings.model_copy(update={"usecase": "churn"})
    found = resolve(None, pinned)
    assert found.ref == "churn" and found.why == "from KUBRICKS_USECASE"


def test_a_name_finds_the_users_spec_first_and_a_path_always_works(
    settings: KubricksSettings, tmp_path: Path
) -> None:
    mine = write_spec(settings.home / "usecases", "churn")  # shadows the bundled one
    assert find("churn", settings) == mine.resolve()
    assert resolve("churn", settings).why is None
    other = write_spec(tmp_path / "x", "other")
    assert find(str(other), settings) == other.resolve()
    assert short(str(other), settings) == str(other.resolve())
    assert short(str(mine), settings) == "churn"
    with pytest.raises(SpecError, match="no use case named 'nope'.*or a path to its YAML"):
        find("nope", settings)
    with pytest.raises(SpecError, match="missing.yaml: no such spec file"):
        find("missing.yaml", settings)


def test_a_configured_folder_replaces_home_and_bundled(
    settings: KubricksSettings, tmp_path: Path
) -> None:
    folder = tmp_path / "specs"
    only = write_spec(folder, "fraud")
    configured = settings.model_copy(update={"usecases_dir": folder})
    found = resolve(None, configured)
    assert found.ref == "fraud" and found.path == only.resolve()  # a name pipelines can load
    with pytest.raises(SpecError, match="no use case named 'churn'"):
        find("churn", configured)
