"""Passwords for sign-in, as written in .streamlit/secrets.toml: plain text, or a PBKDF2 hash
made by `digits hash-password` (`pbkdf2_sha256$<iterations>$<salt hex>$<hash hex>`), so that the
file need not hold the password itself. Comparisons take the same time whatever matches."""
import hashlib
import hmac
import secrets

SCHEME = "pbkdf2_sha256"
ITERATIONS = 600_000  # OWASP's 2023 figure for PBKDF2-HMAC-SHA256


def hash_password(password: str, iterations: int = ITERATIONS) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"{SCHEME}${iterations}${salt.hex()}${digest.hex()}"


def matches(given: str, stored: str) -> bool:
    """Whether `given` is the password that `stored` (plain or hashed) describes."""
    if not stored:
        return False
    parts = stored.split("$")
    if len(parts) == 4 and parts[0] == SCHEME:
        try:
            iterations, salt, expected = int(parts[1]), bytes.fromhex(parts[2]), bytes.fromhex(parts[3])
        except ValueError:
            return False
        digest = hashlib.pbkdf2_hmac("sha256", given.encode(), salt, iterations)
        return hmac.compare_digest(digest, expected)
    return hmac.compare_digest(given.encode(), stored.encode())
