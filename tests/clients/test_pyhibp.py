"""The real `pyhibp` client (PyPI), its base-URL module constants pointed at a local
breachdex, gets the answers Have I Been Pwned would give for the fixture's dumps
(tests/clients/fixture): breaches, an account and passwords. Run by
scripts/client-tests.sh, which starts the server and sets BREACHDEX_URL and HIBP_KEY."""

import hashlib
import os
import unittest

import pyhibp
import pyhibp.pwnedpasswords as pw

SERVER = os.environ["BREACHDEX_URL"].rstrip("/")
pyhibp.HIBP_API_BASE_URI = SERVER + "/api/v3/"
pw.PWNED_PASSWORDS_API_BASE_URI = SERVER + "/"
pyhibp.set_user_agent(ua="breachdex-client-tests")
pyhibp.set_api_key(key=os.environ["HIBP_KEY"])


def names(breaches):
    return sorted(b["Name"] for b in breaches)


class Breaches(unittest.TestCase):
    def test_all_breaches_and_one_domain(self):
        self.assertEqual(names(pyhibp.get_all_breaches()), ["acme-2023", "forum-2021", "gadgets-2022"])
        self.assertEqual(names(pyhibp.get_all_breaches(domain="acme.example")), ["acme-2023"])

    def test_single_breach(self):
        acme = pyhibp.get_single_breach(breach_name="acme-2023")
        self.assertEqual(acme["Title"], "Acme Customer Database 2023")
        self.assertEqual(acme["PwnCount"], 3)
        self.assertFalse(pyhibp.get_single_breach(breach_name="no-such-breach"))

    def test_data_classes(self):
        self.assertIn("Passwords", pyhibp.get_data_classes())


class Account(unittest.TestCase):
    # pyhibp sends its booleans as Python spells them (True/False).
    def test_full_breaches_of_an_account(self):
        found = pyhibp.get_account_breaches(account="alice@example.com", include_unverified=True)
        self.assertEqual(names(found), ["acme-2023", "forum-2021", "gadgets-2022"])
        self.assertTrue(all("DataClasses" in b for b in found), "truncate_response=False gives full objects")

    def test_unverified_excluded_and_truncated(self):
        # include_unverified defaults to False in pyhibp: the forum is left out.
        found = pyhibp.get_account_breaches(account="alice@example.com", truncate_response=True)
        self.assertEqual(names(found), ["acme-2023", "gadgets-2022"])
        self.assertTrue(all(list(b) == ["Name"] for b in found))

    def test_domain_filter_and_unknown_account(self):
        found = pyhibp.get_account_breaches(account="alice@example.com", domain="acme.example")
        self.assertEqual(names(found), ["acme-2023"])
        self.assertEqual(pyhibp.get_account_breaches(account="nobody@nowhere.example"), [])


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
