"""argon2id hashes: verify, wrong passwords, unreadable hashes, rehash on new parameters."""

from __future__ import annotations

import time

from duetime.accounts.passwords import Argon2PasswordHasher

CHEAP = {"time_cost": 1, "memory_cost": 8 * 1024, "parallelism": 1}


async def test_a_hash_is_argon2id_with_its_parameters_and_verifies() -> None:
    hasher = Argon2PasswordHasher(**CHEAP)
    hashed = await hasher.hash("correct horse battery")
    assert hashed.startswith("$argon2id$v=19$m=8192,t=1,p=1$")
    assert "correct horse" not in hashed
    assert await hasher.verify(hashed, "correct horse battery")
    assert not await hasher.verify(hashed, "correct horse battery!")
    assert not await hasher.verify(hashed, "")
    assert await hasher.hash("correct horse battery") != hashed  # salted


async def test_an_unreadable_hash_is_a_mismatch_not_an_error() -> None:
    hasher = Argon2PasswordHasher(**CHEAP)
    for bad in ("", "plain text", "$argon2id$v=19$m=8192,t=1,p=1$bad$bad", "$2b$12$bcrypt"):
        assert not await hasher.verify(bad, "whatever")
        assert hasher.needs_rehash(bad)


async def test_new_parameters_ask_for_a_rehash_and_old_hashes_still_verify() -> None:
    old = Argon2PasswordHasher(**CHEAP)
    hashed = await old.hash("correct horse battery")
    assert not old.needs_rehash(hashed)
    stronger = Argon2PasswordHasher(time_cost=2, memory_cost=16 * 1024, parallelism=1)
    assert stronger.needs_rehash(hashed)
    assert await stronger.verify(hashed, "correct horse battery")
    fresh = await stronger.hash("correct horse battery")
    assert not stronger.needs_rehash(fresh) and "m=16384,t=2" in fresh


def test_the_defaults_are_argon2_cffi_s_rfc_9106_profile() -> None:
    assert Argon2PasswordHasher().parameters == (3, 65536, 4)


async def test_dummy_verify_costs_about_what_a_verify_costs() -> None:
    hasher = Argon2PasswordHasher(time_cost=2, memory_cost=32 * 1024, parallelism=1)
    hashed = await hasher.hash("correct horse battery")
    await hasher.dummy_verify("warm up")  # the dummy hash is made once
    real, dummy = [], []
    for _ in range(5):
        started = time.perf_counter()
        await hasher.verify(hashed, "wrong password")
        real.append(time.perf_counter() - started)
        started = time.perf_counter()
        await hasher.dummy_verify("wrong password")
        dummy.append(time.perf_counter() - started)
    assert 0.5 < sorted(dummy)[2] / sorted(real)[2] < 2.0
