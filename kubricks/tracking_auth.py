"""An MLflow server app: MLflow's basic auth plus the one rule it cannot express.

Basic auth grants one permission per registered model (READ, EDIT, MANAGE), and registering a
version and moving an alias both need EDIT, so whoever may register versions could also move
``@champion``. This app keeps every basic-auth check and then refuses, with a 403, each
request that moves an alias (setting or deleting one; renaming or deleting a model, or deleting
a version, that an alias points at) unless it comes from an admin or from the gate's user,
named by ``KUBRICKS_TRACKING_GATE_USERNAME`` when the server starts::

    mlflow server --app-name kubricks-auth

It is registered in the ``mlflow.app`` entry-point group (pyproject.toml).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, Any

from kubricks.errors import KubricksError
from kubricks.settings import KubricksSettings

if TYPE_CHECKING:
    from flask import Flask, Response
    from mlflow.server.auth.client import AuthServiceClient

APP_NAME = "kubricks-auth"
ERROR_CODE = "PERMISSION_DENIED"
GATE_ROLE = "kubricks-gate"
# What the gate step does in every use case: a run of its own in the use case's experiment,
# and registering, tagging and moving aliases of its registered model (deleting an alias
# takes MANAGE in basic auth).
GATE_GRANTS = (("experiment", "EDIT"), ("registered_model", "MANAGE"))


class Move(Enum):
    """How a request can move an alias."""

    ALWAYS = "sets or deletes an alias"
    MODEL_ALIASES = "renames or deletes a model an alias points into"
    VERSION_ALIASES = "deletes a version an alias points at"


def guarded_routes() -> dict[tuple[str, str], Move]:
    """Every (path, method) of the REST and ajax APIs that can move an alias.

    Read from MLflow's own endpoint table, so both path families (``/api/2.0`` and
    ``/ajax-api/2.0``, with any static prefix) are covered as MLflow serves them.
    """
    from mlflow.protos.model_registry_pb2 import (
        DeleteModelVersion,
        DeleteRegisteredModel,
        DeleteRegisteredModelAlias,
        RenameRegisteredModel,
        SetRegisteredModelAlias,
    )
    from mlflow.server.handlers import get_endpoints

    kinds: dict[Any, Move] = {
        SetRegisteredModelAlias: Move.ALWAYS,
        DeleteRegisteredModelAlias: Move.ALWAYS,
        RenameRegisteredModel: Move.MODEL_ALIASES,
        DeleteRegisteredModel: Move.MODEL_ALIASES,
        DeleteModelVersion: Move.VERSION_ALIASES,
    }
    # get_endpoints calls the selector with each endpoint's request class; explicitly
    # defined endpoints come back with their view function instead, so keep only ours
    return {
        (path, method): kinds[handler]
        for path, handler, methods in get_endpoints(lambda cls: cls if cls in kinds else None)
        if handler in kinds
        for method in methods
    }


def moves_alias(move: Move, param: Callable[[str], str]) -> bool:
    """Whether this request would move an alias, given its parameters; a model or version
    that does not exist moves none (MLflow answers that one itself)."""
    if move is Move.ALWAYS:
        return True
    from mlflow.exceptions import MlflowException
    from mlflow.server.handlers import _get_model_registry_store

    store = _get_model_registry_store()
    try:
        if move is Move.MODEL_ALIASES:
            return bool(store.get_registered_model(param("name")).aliases)
        return bool(store.get_model_version(param("name"), param("version")).aliases)
    except MlflowException:
        return False


def refusal(gate_user: str, user: str | None, move: Move) -> dict[str, str]:
    """The JSON body of the 403, in MLflow's error shape (the client shows ``message``)."""
    who = f"user {user!r}" if user else "an unauthenticated request"
    return {
        "error_code": ERROR_CODE,
        "message": f"{who} may not move a registered model's alias (this request {move.value}):"
        f" only the gate's MLflow user {gate_user!r} or an admin may (kubricks-auth)",
    }


def alias_guard(gate_user: str, routes: dict[tuple[str, str], Move]) -> Callable[[], Any]:
    """A Flask before-request hook; it runs after basic auth accepted the request."""

    def guard() -> Response | None:
        from flask import g, jsonify, request
        from mlflow.server import auth

        move = routes.get((request.path, request.method))
        if move is None:
            return None
        user: str | None = g.get("mlflow_authenticated_user")
        if user == gate_user or (user and auth.store.get_user(user).is_admin):
            return None
        if not moves_alias(move, auth._get_request_param):
            return None
        response = jsonify(refusal(gate_user, user, move))
        response.status_code = 403
        return response

    return guard


def create_app(settings: KubricksSettings | None = None) -> Any:
    """MLflow's basic-auth app with the alias rule on top (the ``kubricks-auth`` app).

    The gate's user name is read here, when the server starts, never at import. The return
    value is whatever MLflow's basic-auth factory returns (FastAPI under uvicorn, else Flask).
    """
    settings = settings or KubricksSettings()
    gate_user = settings.tracking_gate_username
    if not gate_user:
        raise KubricksError(
            f"{APP_NAME}: KUBRICKS_TRACKING_GATE_USERNAME is not set: name the MLflow user"
            " that may move registered-model aliases (the gate's)"
        )
    from mlflow.server import app as flask_app
    from mlflow.server.auth import create_app as basic_auth_app

    wrapped = basic_auth_app(flask_app)
    # Flask runs before-request hooks in the order they were added: basic auth's first, so
    # this one only sees requests it let through
    hooks: Flask = flask_app
    hooks.before_request(alias_guard(gate_user, guarded_routes()))
    return wrapped


def ensure_gate_role(client: AuthServiceClient, username: str, workspace: str = "default") -> None:
    """Give ``username`` the gate's role (:data:`GATE_GRANTS` on every experiment and model),
    creating or correcting the role as needed; safe to re-run. ``client`` logs in as an admin.

    A role rather than per-model grants: the gate meets use cases (and their experiments,
    made by the pipelines' user) that did not exist when its user was created.
    """
    role = next((r for r in client.list_roles(workspace) if r.name == GATE_ROLE), None)
    if role is None:
        role = client.create_role(workspace, GATE_ROLE, "moves registered-model aliases")
    granted = {
        (p.resource_type, p.resource_pattern): p for p in client.list_role_permissions(role.id)
    }
    for resource_type, permission in GATE_GRANTS:
        existing = granted.get((resource_type, "*"))
        if existing is None:
            client.add_role_permission(role.id, resource_type, "*", permission)
        elif existing.permission != permission:
            client.update_role_permission(existing.id, permission)
    if role.id not in {r.id for r in client.list_user_roles(username)}:
        client.assign_role(username, role.id)
