"""The real `pyhibp` client (PyPI), its base-URL module constants pointed at a local
breachdex, gets the answers Have I Been Pwned would give for the fixture's dumps
(tests/clients/fixture). Run by scripts/client-tests.sh, which starts the server and sets
BREACHDEX_URL and HIBP_KEY."""

import hashlib
import os
import unittest

import pyhibp
import pyhibp.pwnedpasswords as pw

SERVER = os.environ["BREACHDEX_URL"].rstrip("/")
pyhibp.HIBP_API_BASE_URI = SERVER + "/api/v3/"
pw.PWNED_PASSWORDS_API_BASE_URI = SERVER + "/"
pyhibp.set_user_agent(ua="breachdex-client-tests")


class PwnedPasswords(unittest.TestCase):
    def test_counts_of_known_passwords(self):
        # hunter2: alice and carol in acme-2023, dave in forum-2021.
        self.assertEqual(pw.is_password_breached(password="hunter2"), 3)
        self.assertEqual(pw.is_password_breached(password="letmein"), 2)
        sha1 = hashlib.sha1(b"Password1").hexdigest()
        self.assertEqual(pw.is_password_breached(sha1_hash=sha1), 1)

    def test_unknown_password_is_zero_even_padded(self):
        self.assertEqual(pw.is_password_breached(password="never leaked 91b2"), 0)
        self.assertEqual(pw.is_password_breached(password="never leaked 91b2", add_padding=True), 0)

    def test_padded_suffix_search(self):
        prefix = hashlib.sha1(b"hunter2").hexdigest().upper()[:5]
        lines = pw.suffix_search(hash_prefix=prefix, add_padding=True)
        self.assertGreaterEqual(len(lines), 800)
        self.assertLessEqual(len(lines), 1000)
        real = [line for line in lines if not line.endswith(":0")]
        self.assertEqual(real, pw.suffix_search(hash_prefix=prefix))


if __name__ == "__main__":
    unittest.main()
