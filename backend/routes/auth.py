"""Accounts: signup, login, logout, who-am-I, and demo sign-in.

A session is an HttpOnly, SameSite=Lax cookie holding a random token (stored as its sha256).
The CSRF token comes back in the body and in a readable `csrf_token` cookie; the UI sends it
as `X-CSRF-Token` on every state-changing request. Login and signup are rate limited per IP.

Demo mode (EXPLAINREC_DEMO_MODE=true, on for `explainrec demo`) adds POST /auth/demo, which
signs in as any shopper the model knows without a password, and GET /auth/demo-users to pick one.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from backend import security
from backend.deps import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    MaybePrincipalDep,
    PrincipalDep,
    RecommenderDep,
    SettingsDep,
    StateDep,
    StoreDep,
    client_ip,
    limit,
    stale_credentials,
)
from backend.errors import ERROR_RESPONSES, ErrorResponse
from backend.schemas import ProfileIn, ProfileOut
from backend.settings import Settings
from backend.store import UserExistsError, UserRecord

router = APIRouter(prefix="/api/v1/auth", tags=["auth"], responses=ERROR_RESPONSES)
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{2,39}$")


class SignupRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "username": "ada",
                    "password": "correct horse battery",
                    "profile": {"age": 31, "gender": "F", "occupation": "engineer", "interests": ["Books"]},
                }
            ]
        },
    )

    username: str = Field(min_length=3, max_length=40, description="Becomes the shopper's user_id.")
    password: str = Field(min_length=8, max_length=128)
    profile: ProfileIn = Field(default_factory=ProfileIn)

    @field_validator("username")
    @classmethod
    def _username_chars(cls, value: str) -> str:
        if not USERNAME_RE.match(value):
            raise ValueError("use 3-40 letters, digits, '.', '_' or '-', starting with a letter or digit")
        return value


class LoginRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"username": "ada", "password": "correct horse battery"}]},
    )
    username: str = Field(min_length=1, max_length=40)
    password: str = Field(min_length=1, max_length=128)


class DemoLoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"user_id": "u00"}]})
    user_id: str = Field(min_length=1, max_length=64)


class SessionResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "user_id": "ada",
                    "csrf_token": "3q2-...",
                    "known_to_model": False,
                    "profile": {"age": 31, "gender": "F", "interests": ["Books"]},
                }
            ]
        }
    )
    user_id: str
    csrf_token: str
    known_to_model: bool
    profile: ProfileOut


class DemoUser(BaseModel):
    user_id: str
    segment: int
    segment_name: str
    history_size: int


class DemoUsersResponse(BaseModel):
    users: list[DemoUser]


def _profile_out(user: UserRecord) -> ProfileOut:
    return ProfileOut(
        age=user.age,
        gender=user.gender,
        occupation=user.occupation,
        location=user.location,
        interests=list(user.interests),
    )


def _start_session(
    response: Response, user: UserRecord, store: StoreDep, settings: Settings, known: bool
) -> SessionResponse:
    ttl = timedelta(hours=settings.session_ttl_hours)
    token, csrf, _ = store.create_session(user.pk, ttl)
    max_age = int(ttl.total_seconds())
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
        path="/",
    )
    # Readable on purpose: the UI copies it into X-CSRF-Token (double submit).
    response.set_cookie(
        CSRF_COOKIE,
        csrf,
        max_age=max_age,
        httponly=False,
        samesite="lax",
        secure=settings.cookie_secure,
        path="/",
    )
    response.headers["Cache-Control"] = "no-store"
    return SessionResponse(
        user_id=user.user_id, csrf_token=csrf, known_to_model=known, profile=_profile_out(user)
    )


@router.post(
    "/signup",
    response_model=SessionResponse,
    status_code=201,
    summary="Create an account and sign in",
    responses={409: {"model": ErrorResponse, "description": "The username is taken."}},
)
def signup(
    request: Request,
    response: Response,
    body: SignupRequest,
    state: StateDep,
    store: StoreDep,
    settings: SettingsDep,
    recommender: RecommenderDep,
) -> SessionResponse:
    limit(state, "auth", "ip:" + client_ip(request))
    if recommender.knows_user(body.username):
        raise HTTPException(409, f"username {body.username!r} is taken")
    unknown = [c for c in body.profile.clean_interests() if c not in recommender.catalogue.categories]
    if unknown:
        raise HTTPException(
            422, f"unknown interest categories {unknown[:5]}; known: {recommender.catalogue.categories}"
        )
    try:
        user = store.create_user(
            body.username,
            body.profile.profile_fields(),
            body.profile.clean_interests(),
            security.hash_password(body.password),
        )
    except UserExistsError as exc:
        raise HTTPException(409, f"username {body.username!r} is taken") from exc
    return _start_session(response, user, store, settings, known=False)


@router.post("/login", response_model=SessionResponse, summary="Sign in with username and password")
def login(
    request: Request,
    response: Response,
    body: LoginRequest,
    state: StateDep,
    store: StoreDep,
    settings: SettingsDep,
    recommender: RecommenderDep,
) -> SessionResponse:
    limit(state, "auth", "ip:" + client_ip(request))
    found = store.user_with_password_hash(body.username)
    if not security.verify_password(found[1] if found else None, body.password) or found is None:
        raise HTTPException(401, "wrong username or password")
    user = found[0]
    return _start_session(response, user, store, settings, known=recommender.knows_user(user.user_id))


@router.post("/logout", status_code=204, summary="End the session (needs X-CSRF-Token)")
def logout(request: Request, response: Response, principal: MaybePrincipalDep, store: StoreDep) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if principal is not None and principal.kind == "session" and token:
        store.delete_session(token)
        stale_credentials.drop("s:" + token)
    out = Response(status_code=204)
    out.delete_cookie(SESSION_COOKIE, path="/")
    out.delete_cookie(CSRF_COOKIE, path="/")
    return out


@router.get(
    "/me",
    response_model=SessionResponse,
    summary="The signed-in shopper (and a fresh copy of the CSRF token)",
)
def me(principal: PrincipalDep, recommender: RecommenderDep) -> SessionResponse:
    if principal.user is None or principal.csrf_token is None:
        raise HTTPException(401, "no shopper is signed in (API keys have no session)")
    return SessionResponse(
        user_id=principal.user.user_id,
        csrf_token=principal.csrf_token,
        known_to_model=recommender.knows_user(principal.user.user_id),
        profile=_profile_out(principal.user),
    )


@router.post(
    "/demo",
    response_model=SessionResponse,
    summary="Demo mode only: sign in as a model shopper",
    responses={409: {"model": ErrorResponse, "description": "The shopper's record could not be created."}},
)
def demo_login(
    request: Request,
    response: Response,
    body: DemoLoginRequest,
    state: StateDep,
    store: StoreDep,
    settings: SettingsDep,
    recommender: RecommenderDep,
) -> SessionResponse:
    if not settings.demo_mode:
        raise HTTPException(404, "demo sign-in is off (set EXPLAINREC_DEMO_MODE=true)")
    limit(state, "auth", "ip:" + client_ip(request))
    if not recommender.knows_user(body.user_id):
        raise HTTPException(404, f"unknown demo shopper {body.user_id!r}")
    user = store.get_user(body.user_id)
    if user is None:
        profile = recommender.bundle_profile(body.user_id)
        try:
            # A password-less row: the session needs a user row; login stays impossible for it.
            user = store.create_user(body.user_id, profile, (), None)
        except UserExistsError:
            user = store.get_user(body.user_id)
        if user is None:
            raise HTTPException(409, "could not create the demo shopper's record; retry")
    return _start_session(response, user, store, settings, known=True)


@router.get("/demo-users", response_model=DemoUsersResponse, summary="Demo mode only: shoppers to pick from")
def demo_users(
    settings: SettingsDep,
    recommender: RecommenderDep,
    limit_: Annotated[int, Query(alias="limit", ge=1, le=100)] = 12,
) -> DemoUsersResponse:
    if not settings.demo_mode:
        raise HTTPException(404, "demo sign-in is off (set EXPLAINREC_DEMO_MODE=true)")
    labels = recommender.segments.labels
    per_segment: dict[int, list[int]] = {}
    for row, label in enumerate(labels):
        per_segment.setdefault(int(label), []).append(row)
    # Round-robin over segments so the picker shows different kinds of shoppers.
    rows: list[int] = []
    while len(rows) < limit_ and any(per_segment.values()):
        for members in per_segment.values():
            if members and len(rows) < limit_:
                rows.append(members.pop(0))
    ids = recommender.spec.user_ids
    return DemoUsersResponse(
        users=[
            DemoUser(
                user_id=ids[r],
                segment=int(labels[r]),
                segment_name=recommender.segment_names[int(labels[r])],
                history_size=len(recommender.bundle_history(ids[r])),
            )
            for r in rows
        ]
    )
