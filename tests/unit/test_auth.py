"""Bearer tokens: only valid HS256 tokens with a subject and a future expiry pass."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from duetime.auth import (
    AuthError,
    TokenCache,
    check_user_id,
    issue_token,
    load_or_create_secret,
    verify_token,
)
from duetime.settings import Settings

SECRET = "unit-secret-0123456789abcdef0123456789"
OTHER = "other-secret-0123456789abcdef012345"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
LATER = 2**40  # an `exp` far in the future


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _json(obj: object) -> str:
    return _b64(json.dumps(obj).encode())


def _hs256(header: bytes, payload: bytes, secret: str = SECRET) -> str:
    """A token signed by hand, so that claims PyJWT would never write can be tested."""
    signing_input = f"{_b64(header)}.{_b64(payload)}"
    mac = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


def _claims(claims: dict[str, object]) -> str:
    return _hs256(b'{"alg":"HS256","typ":"JWT"}', json.dumps(claims).encode())


def _token(user: str = "alice", *, ttl: timedelta = timedelta(hours=1), now: datetime = NOW) -> str:
    return issue_token(SECRET, user, ttl=ttl, now=now)


# -- issue and verify ----------------------------------------------------------------------


def test_round_trip() -> None:
    token = _token("alice")
    assert verify_token(SECRET, token, now=NOW + timedelta(minutes=59)) == "alice"
    claims = jwt.decode(  # NOW is not the wall clock: PyJWT's own time checks are off
        token, SECRET, algorithms=["HS256"], options={"verify_exp": False, "verify_iat": False}
    )
    assert claims == {
        "sub": "alice",
        "iat": int(NOW.timestamp()),
        "exp": int(NOW.timestamp()) + 3600,
    }
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


@pytest.mark.parametrize("user", ["alice", "a", "x" * 200, "user@example.com", "Zoë", "用户"])
def test_any_reasonable_user_id_round_trips(user: str) -> None:
    assert verify_token(SECRET, _token(user), now=NOW) == user


def test_expiry_is_honoured_with_a_few_seconds_of_leeway() -> None:
    token = _token(ttl=timedelta(hours=1))
    assert verify_token(SECRET, token, now=NOW + timedelta(hours=1, seconds=4)) == "alice"
    with pytest.raises(AuthError, match=r"^token expired$"):
        verify_token(SECRET, token, now=NOW + timedelta(hours=1, seconds=5))
    with pytest.raises(AuthError, match=r"^token expired$"):
        verify_token(SECRET, _token(ttl=timedelta(hours=1), now=NOW - timedelta(hours=2)), now=NOW)


def test_expiry_uses_the_given_now_not_the_wall_clock() -> None:
    long_ago = datetime(2001, 1, 1, tzinfo=UTC)
    token = _token(ttl=timedelta(minutes=1), now=long_ago)
    assert verify_token(SECRET, token, now=long_ago) == "alice"


def test_an_iat_in_the_future_is_fine() -> None:
    token = _token(now=NOW + timedelta(minutes=30))  # issued by a host whose clock is ahead
    assert verify_token(SECRET, token, now=NOW) == "alice"


def test_nbf_is_checked_against_now() -> None:
    token = _claims({"sub": "a", "exp": LATER, "nbf": int(NOW.timestamp()) + 60})
    with pytest.raises(AuthError, match="not valid yet"):
        verify_token(SECRET, token, now=NOW)
    assert verify_token(SECRET, token, now=NOW + timedelta(minutes=1)) == "a"


# -- the cache of verified tokens ----------------------------------------------------------


def test_a_cached_token_still_expires_exactly_when_verify_token_says() -> None:
    cache = TokenCache()
    token = _token(ttl=timedelta(hours=1))
    assert cache.verify(SECRET, token, now=NOW) == "alice"
    assert cache.verify(SECRET, token, now=NOW + timedelta(hours=1, seconds=4)) == "alice"
    with pytest.raises(AuthError, match="token expired"):
        cache.verify(SECRET, token, now=NOW + timedelta(hours=1, seconds=5))
    assert cache.verify(SECRET, token, now=NOW) == "alice"  # the caller's clock decides


def test_a_cached_token_is_checked_against_nbf_again() -> None:
    cache = TokenCache()
    token = _claims({"sub": "a", "exp": LATER, "nbf": int(NOW.timestamp()) + 60})
    assert cache.verify(SECRET, token, now=NOW + timedelta(minutes=1)) == "a"
    with pytest.raises(AuthError, match="not valid yet"):
        cache.verify(SECRET, token, now=NOW)


def test_the_cache_is_per_secret_and_remembers_no_refusal() -> None:
    cache = TokenCache()
    token = _token()
    assert cache.verify(SECRET, token, now=NOW) == "alice"
    with pytest.raises(AuthError, match="bad signature"):
        cache.verify(OTHER, token, now=NOW)
    expired = _token(ttl=timedelta(seconds=-60))
    for _ in range(2):
        with pytest.raises(AuthError, match="token expired"):
            cache.verify(SECRET, expired, now=NOW)
    with pytest.raises(ValueError, match="aware"):
        cache.verify(SECRET, token, now=NOW.replace(tzinfo=None))


def test_the_cache_keeps_at_most_max_entries() -> None:
    cache = TokenCache(max_entries=2)
    tokens = [_token(f"user{i}") for i in range(5)]
    for i, token in enumerate(tokens):
        assert cache.verify(SECRET, token, now=NOW) == f"user{i}"
    assert len(cache._entries) == 2
    assert cache.verify(SECRET, tokens[0], now=NOW) == "user0"  # verified again


@given(st.integers(min_value=-7200, max_value=7200), st.integers(min_value=-7200, max_value=7200))
def test_the_cache_answers_as_verify_token(exp_offset: int, nbf_offset: int) -> None:
    base = int(NOW.timestamp())
    token = _claims({"sub": "a", "exp": base + exp_offset, "nbf": base + nbf_offset})
    cache = TokenCache()
    for moment in (NOW - timedelta(hours=1), NOW, NOW + timedelta(minutes=30), NOW):
        try:
            expected: str | None = verify_token(SECRET, token, now=moment)
        except AuthError as exc:
            expected = f"error: {exc}"
        try:
            got: str | None = cache.verify(SECRET, token, now=moment)
        except AuthError as exc:
            got = f"error: {exc}"
        assert got == expected


# -- refused tokens ------------------------------------------------------------------------


def _alg_none() -> str:
    return f"{_json({'alg': 'none', 'typ': 'JWT'})}.{_json({'sub': 'a', 'exp': LATER})}."


def _alg_none_signed() -> str:
    header = _json({"alg": "none", "typ": "JWT"})
    return f"{header}.{_json({'sub': 'a', 'exp': LATER})}.{_token().split('.')[2]}"


def _rs256_looking() -> str:
    header = _json({"alg": "RS256", "typ": "JWT"})
    return f"{header}.{_json({'sub': 'a', 'exp': LATER})}.{_b64(b'x' * 256)}"


@pytest.mark.parametrize(
    ("token", "message"),
    [
        pytest.param(_alg_none(), "algorithm must be HS256", id="alg-none"),
        pytest.param(_alg_none_signed(), "algorithm must be HS256", id="alg-none-with-signature"),
        pytest.param(
            f"{_json({'alg': 'NONE'})}.{_json({'sub': 'a', 'exp': LATER})}.",
            "algorithm must be HS256",
            id="alg-NONE",
        ),
        pytest.param(
            jwt.encode({"sub": "a", "exp": LATER}, SECRET * 2, algorithm="HS512"),
            "algorithm must be HS256",
            id="hs512",
        ),
        pytest.param(_rs256_looking(), "algorithm must be HS256", id="rs256-looking"),
        pytest.param(
            f"{_json({'typ': 'JWT'})}.{_json({'sub': 'a', 'exp': LATER})}.{_b64(b'sig')}",
            "algorithm must be HS256",
            id="no-alg",
        ),
        pytest.param(
            issue_token(OTHER, "alice", ttl=timedelta(hours=1), now=NOW),
            "^bad signature: ",
            id="wrong-secret",
        ),
        pytest.param(_token()[:-4] + "AAAA", "^bad signature: ", id="bad-signature-bytes"),
        pytest.param(_token().rsplit(".", 1)[0] + ".", "^bad signature: ", id="no-signature"),
    ],
)
def test_wrong_algorithm_or_signature_is_refused(token: str, message: str) -> None:
    with pytest.raises(AuthError, match=message):
        verify_token(SECRET, token, now=NOW)


def test_tampered_payload_is_refused() -> None:
    header, _, signature = _token("alice").split(".")
    forged = f"{header}.{_json({'sub': 'admin', 'exp': LATER})}.{signature}"
    with pytest.raises(AuthError, match=r"^bad signature: "):
        verify_token(SECRET, forged, now=NOW)


def test_tampered_header_is_refused() -> None:
    _, payload, signature = _token("alice").split(".")
    forged = f"{_json({'alg': 'HS256', 'typ': 'JWT', 'kid': 'x'})}.{payload}.{signature}"
    with pytest.raises(AuthError, match=r"^bad signature: "):
        verify_token(SECRET, forged, now=NOW)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        "a.b",
        "a.b.c",
        "a.b.c.d",
        "...",
        "é.é.é",
        "Bearer x.y.z",
        f"{_b64(b'not json')}.{_json({'sub': 'a'})}.x",
        f"{_b64(b'[1]')}.{_json({'sub': 'a'})}.x",
        f"{_b64(b'[' * 10_000)}.{_json({'sub': 'a'})}.x",
        f"{_json({'alg': 'HS256'})}.!!!.x",
        _hs256(b'{"alg":"HS256"}', b"not json"),
        _hs256(b'{"alg":"HS256"}', b"[1, 2]"),
        _hs256(b'{"alg":"HS256"}', b"[" * 3000),
        "x" * 100_000,
    ],
)
def test_garbage_is_malformed(token: str) -> None:
    with pytest.raises(AuthError, match=r"^malformed token"):
        verify_token(SECRET, token, now=NOW)


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"exp": LATER}, "no 'sub' claim"),
        ({"sub": "a"}, "no 'exp' claim"),
        ({}, "no 'exp' claim"),
        ({"sub": "", "exp": LATER}, "'sub' must be a non-empty string"),
        ({"sub": None, "exp": LATER}, "'sub' must be a non-empty string"),
        ({"sub": 7, "exp": LATER}, "'sub' must be a non-empty string"),
        ({"sub": ["a"], "exp": LATER}, "'sub' must be a non-empty string"),
        ({"sub": "a\nb", "exp": LATER}, "'sub' is not a valid user id"),
        ({"sub": "x" * 201, "exp": LATER}, "'sub' is not a valid user id"),
        ({"sub": "a", "exp": "tomorrow"}, "'exp' is not a number"),
        ({"sub": "a", "exp": True}, "'exp' is not a number"),
        ({"sub": "a", "exp": None}, "'exp' is not a number"),
        ({"sub": "a", "exp": 10**400}, "'exp' is not a finite number"),
        ({"sub": "a", "exp": LATER, "nbf": "now"}, "'nbf' is not a number"),
        ({"sub": "a", "exp": LATER, "aud": "elsewhere"}, "'aud' claim"),
    ],
)
def test_bad_claims_are_refused_with_a_reason(claims: dict[str, object], message: str) -> None:
    with pytest.raises(AuthError, match=message):
        verify_token(SECRET, _claims(claims), now=NOW)


@pytest.mark.parametrize("value", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
def test_an_exp_that_is_not_a_finite_number_never_passes(value: bytes) -> None:
    token = _hs256(b'{"alg":"HS256"}', b'{"sub":"a","exp":' + value + b"}")
    with pytest.raises(AuthError, match="'exp'"):
        verify_token(SECRET, token, now=NOW)


def test_a_string_iat_is_ignored() -> None:
    assert verify_token(SECRET, _claims({"sub": "a", "exp": LATER, "iat": "x"}), now=NOW) == "a"


@given(st.text(max_size=300))
def test_no_string_gets_anything_but_auth_error(token: str) -> None:
    with pytest.raises(AuthError):
        verify_token(SECRET, token, now=NOW)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=10,
)


@given(
    st.dictionaries(
        st.sampled_from(["sub", "exp", "nbf", "iat", "aud", "iss", "jti"]) | st.text(max_size=5),
        _json_values,
    )
)
def test_signed_tokens_with_any_claims_pass_or_raise_auth_error(claims: dict[str, object]) -> None:
    token = _hs256(b'{"alg":"HS256","typ":"JWT"}', json.dumps(claims).encode())
    try:
        user = verify_token(SECRET, token, now=NOW)
    except AuthError:
        return
    assert user == claims["sub"]


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="aware"):
        verify_token(SECRET, _token(), now=NOW.replace(tzinfo=None))
    with pytest.raises(ValueError, match="aware"):
        issue_token(SECRET, "a", ttl=timedelta(hours=1), now=NOW.replace(tzinfo=None))


# -- user ids ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "message"),
    [
        ("", "empty"),
        ("x" * 201, "longer than 200"),
        ("with space", r"U\+0020"),
        ("tab\there", r"U\+0009"),
        ("line\nbreak", r"U\+000A"),
        ("del\x7f", r"U\+007F"),
        ("c1\x85", r"U\+0085"),
        ("nbsp\u00a0", r"U\+00A0"),
        ("zero\u200bwidth", r"U\+200B"),
        ("rtl\u202eoverride", r"U\+202E"),
        ("lone\ud800", r"U\+D800"),
    ],
)
def test_bad_user_ids_cannot_get_a_token(user: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_user_id(user)
    with pytest.raises(ValueError, match="user id"):
        issue_token(SECRET, user, ttl=timedelta(hours=1), now=NOW)


def test_a_ttl_past_the_year_9999_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="too long"):
        issue_token(SECRET, "a", ttl=timedelta(days=10**8), now=NOW)


def test_a_negative_ttl_gives_an_expired_token() -> None:
    with pytest.raises(AuthError, match="expired"):
        verify_token(SECRET, _token(ttl=timedelta(seconds=-60)), now=NOW)


# -- the secret ----------------------------------------------------------------------------


def _settings(data_dir: Path, jwt_secret: str | None = None) -> Settings:
    if jwt_secret is None:
        return Settings(data_dir=data_dir)  # DUETIME_JWT_SECRET, if set, still applies
    return Settings(data_dir=data_dir, jwt_secret=jwt_secret)


@pytest.fixture(autouse=True)
def _no_env_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DUETIME_JWT_SECRET", raising=False)


def test_secret_is_created_once_private_and_reused(tmp_path: Path) -> None:
    data = tmp_path / "missing" / "data"
    first = load_or_create_secret(_settings(data))
    path = data / "jwt-secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == first and len(first) >= 64
    assert load_or_create_secret(_settings(data)) == first
    assert os.listdir(data) == ["jwt-secret"]  # no temporary file left behind
    token = issue_token(first, "alice", ttl=timedelta(hours=1), now=NOW)
    assert verify_token(load_or_create_secret(_settings(data)), token, now=NOW) == "alice"


def test_env_secret_wins_and_writes_nothing(tmp_path: Path) -> None:
    env_secret = "from-the-environment-0123456789abcdef"
    assert load_or_create_secret(_settings(tmp_path, jwt_secret=env_secret)) == env_secret
    assert not (tmp_path / "jwt-secret").exists()
    load_or_create_secret(_settings(tmp_path))
    assert load_or_create_secret(_settings(tmp_path, jwt_secret=env_secret)) == env_secret


def test_env_secret_is_read_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DUETIME_JWT_SECRET", "env-var-secret-0123456789abcdef01234")
    assert load_or_create_secret(_settings(tmp_path)) == "env-var-secret-0123456789abcdef01234"


def test_a_short_secret_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="DUETIME_JWT_SECRET is shorter than 32 bytes"):
        load_or_create_secret(_settings(tmp_path, jwt_secret="short"))
    (tmp_path / "jwt-secret").write_text("\n")
    with pytest.raises(ValueError, match="jwt-secret is shorter than 32 bytes"):
        load_or_create_secret(_settings(tmp_path))


def test_racing_creators_all_get_the_same_secret(tmp_path: Path) -> None:
    for attempt in range(30):
        data = tmp_path / str(attempt)
        start = threading.Barrier(8)

        def create(data: Path = data, start: threading.Barrier = start) -> str:
            start.wait()
            return load_or_create_secret(_settings(data))

        with ThreadPoolExecutor(8) as pool:
            results = set(pool.map(lambda _: create(), range(8)))
        assert results == {(data / "jwt-secret").read_text()}
        assert os.listdir(data) == ["jwt-secret"]


def test_secret_without_hard_links_still_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(src: object, dst: object) -> None:
        raise PermissionError("hard links not supported")

    monkeypatch.setattr(os, "link", no_links)
    first = load_or_create_secret(_settings(tmp_path))
    assert load_or_create_secret(_settings(tmp_path)) == first
    assert stat.S_IMODE((tmp_path / "jwt-secret").stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["jwt-secret"]
