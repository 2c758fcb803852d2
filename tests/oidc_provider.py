"""A tiny OpenID Connect provider for the tests, on 127.0.0.1 only (a thread of this process).

It does what Streamlit's `st.login` (Authlib's Starlette client) asks of a provider, and checks it
as a real one would: the discovery document, an authorization endpoint that signs in `person` at
once (no page to click) and sends the browser back to the redirect_uri with a one-use code and the
given state, a token endpoint that wants the client's id and secret (HTTP Basic, Authlib's default),
the same redirect_uri and the PKCE verifier (S256), and answers with an RS256-signed id_token
(iss, aud, sub, email, name, nonce, iat, exp) whose key is in the JWKS; an end-session endpoint.

Every request it refused is in `errors`, for the test to show; `logins` and `logouts` count."""
import base64
import hashlib
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlparse

from joserfc import jwt
from joserfc.jwk import RSAKey

HOST = "127.0.0.1"


class OidcProvider:
    """`with OidcProvider(client_id, client_secret, person) as provider:` serves at `provider.url`."""

    def __init__(self, client_id: str, client_secret: str, person: dict):
        self.client_id, self.client_secret = client_id, client_secret
        self.person = person  # the claims of whoever signs in next: sub, email, name
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key", "use": "sig"})
        self.codes: dict[str, dict] = {}  # code -> what the token endpoint checks and signs
        self.errors: list[str] = []
        self.logins = self.logouts = 0
        self._server = ThreadingHTTPServer((HOST, 0), _handler(self))
        self.url = f"http://{HOST}:{self._server.server_address[1]}"
        self.metadata_url = self.url + "/.well-known/openid-configuration"

    def __enter__(self) -> "OidcProvider":
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def metadata(self) -> dict:
        return {"issuer": self.url, "authorization_endpoint": self.url + "/authorize",
                "token_endpoint": self.url + "/token", "jwks_uri": self.url + "/jwks",
                "end_session_endpoint": self.url + "/logout", "response_types_supported": ["code"],
                "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "email", "profile"], "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"]}

    def authorize(self, query: dict) -> str:
        """The redirect_uri with a fresh code and the state; raises ValueError for a bad request."""
        _require(query.get("client_id") == self.client_id, "unknown client_id")
        _require(query.get("response_type") == "code", "response_type must be code")
        _require("openid" in query.get("scope", "").split(), "scope lacks openid")
        _require(query.get("code_challenge_method") == "S256" and query.get("code_challenge"), "no S256 PKCE")
        for name in ("redirect_uri", "state", "nonce"):
            _require(query.get(name), f"no {name}")
        code = secrets.token_urlsafe(16)
        self.codes[code] = {"redirect_uri": query["redirect_uri"], "nonce": query["nonce"],
                            "challenge": query["code_challenge"], "person": dict(self.person)}
        return query["redirect_uri"] + "?" + urlencode({"code": code, "state": query["state"]})

    def token(self, form: dict, authorization: str) -> dict:
        """The tokens for a code; raises ValueError for a bad request."""
        _require(authorization == _basic(self.client_id, self.client_secret), "wrong client credentials")
        _require(form.get("grant_type") == "authorization_code", "grant_type must be authorization_code")
        grant = self.codes.pop(form.get("code", ""), None)  # one use only
        _require(grant is not None, "unknown or used code")
        _require(form.get("redirect_uri") == grant["redirect_uri"], "redirect_uri differs from the authorize one")
        _require(_s256(form.get("code_verifier", "")) == grant["challenge"], "PKCE verifier does not match")
        now = int(time.time())
        claims = {"iss": self.url, "aud": self.client_id, "iat": now, "exp": now + 300,
                  "nonce": grant["nonce"], **grant["person"]}
        self.logins += 1
        return {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "expires_in": 300,
                "scope": "openid email profile",
                "id_token": jwt.encode({"alg": "RS256", "kid": "test-key"}, claims, self.key)}

    def jwks(self) -> dict:
        return {"keys": [self.key.as_dict(private=False)]}

    def end_session(self, query: dict) -> str:
        _require(query.get("client_id") == self.client_id, "unknown client_id at logout")
        _require(query.get("post_logout_redirect_uri"), "no post_logout_redirect_uri")
        self.logouts += 1
        return query["post_logout_redirect_uri"]


def _require(condition, reason: str) -> None:
    if not condition:
        raise ValueError(reason)


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def _handler(provider: OidcProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            url = urlparse(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            routes = {"/.well-known/openid-configuration": lambda: self._json(provider.metadata()),
                      "/jwks": lambda: self._json(provider.jwks()),
                      "/authorize": lambda: self._redirect(provider.authorize(query)),
                      "/logout": lambda: self._redirect(provider.end_session(query))}
            self._answer(routes.get(url.path))

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            form = {k: v[0] for k, v in parse_qs(body).items()}
            token = lambda: self._json(provider.token(form, self.headers.get("Authorization", "")))  # noqa: E731
            self._answer(token if urlparse(self.path).path == "/token" else None)

        def _answer(self, route) -> None:
            try:
                _require(route is not None, f"no such endpoint {self.command} {self.path}")
                route()
            except ValueError as exc:
                provider.errors.append(f"{self.command} {urlparse(self.path).path}: {exc}")
                self._json({"error": "invalid_request", "error_description": str(exc)}, status=400)

        def _json(self, data: dict, status: int = 200) -> None:
            body = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _redirect(self, location: str) -> None:
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:  # quiet: failures are in provider.errors
            pass

    return Handler
