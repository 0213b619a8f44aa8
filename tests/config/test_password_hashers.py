"""The fast password hasher belongs to the test run only; deployments hash with PBKDF2."""

from django.conf import global_settings
from django.contrib.auth.hashers import check_password, get_hasher, make_password

import evalhub.config.settings as deployed


def test_deployed_settings_hash_passwords_with_pbkdf2():
    hashers = getattr(deployed, "PASSWORD_HASHERS", global_settings.PASSWORD_HASHERS)
    assert hashers[0] == "django.contrib.auth.hashers.PBKDF2PasswordHasher"


def test_the_test_run_hashes_with_md5_and_still_accepts_pbkdf2_hashes():
    # tests/conftest.py switches the hasher: a factory user then costs microseconds instead of
    # PBKDF2's 1,000,000 iterations. A hash made by a deployment still verifies.
    assert get_hasher().algorithm == "md5"
    assert make_password("pw").startswith("md5$")
    pbkdf2 = get_hasher("pbkdf2_sha256").encode("pw", "saltsaltsalt", iterations=1000)
    assert check_password("pw", pbkdf2) and not check_password("other", pbkdf2)
