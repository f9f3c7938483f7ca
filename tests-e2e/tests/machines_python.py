"""Machines and enterprises with the official Python client (`mcp` on PyPI): the
client_credentials grant with a secret (ClientCredentialsOAuthProvider) and with
private_key_jwt (PrivateKeyJWTOAuthProvider, SignedJWTParameters), and the ID-JAG
jwt-bearer grant (IdentityAssertionOAuthProvider).

Run by machines_python.test.mjs as `machines_python.py <mode>`; everything else comes
in the environment (never on the command line):
  MCPGATE_MCP_URL, MCPGATE_ISSUER   the calculator and the authorization server
  MCPGATE_CLIENT_ID, MCPGATE_CLIENT_SECRET  the client registered for this mode
  MCPGATE_AGENT_ID, MCPGATE_AGENT_SECRET    a confidential client presenting ID-JAGs
  MCPGATE_ID_JAGS                   a JSON list of ID-JAGs, each used once
  MCPGATE_SIGNERS                   a JSON list of {client_id, alg, key (PEM)}
  MCPGATE_SHORT_MCP_URL, MCPGATE_SHORT_ISSUER, MCPGATE_SHORT_CLIENT_ID,
  MCPGATE_SHORT_CLIENT_SECRET       a server issuing 2-second tokens
Prints one JSON line `{"mode":…, "token_requests":…, …}` of what it saw (no secrets),
then `<mode>: all steps passed`; exits 1 with the whole traceback otherwise.
"""

import asyncio
import json
import os
import sys
import urllib.parse

import httpx2
import jwt
from mcp import Client
from mcp.client.auth import TokenStorage
from mcp.client.auth.extensions.client_credentials import (
    ClientCredentialsOAuthProvider,
    PrivateKeyJWTOAuthProvider,
    SignedJWTParameters,
)
from mcp.client.auth.extensions.identity_assertion import IdentityAssertionOAuthProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken

MCP_URL = os.environ["MCPGATE_MCP_URL"]
ISSUER = os.environ["MCPGATE_ISSUER"]
ALL = {"op:add", "op:sub", "op:mult", "op:div"}


class Memory(TokenStorage):
    def __init__(self):
        self.tokens = None
        self.client = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client

    async def set_client_info(self, info: OAuthClientInformationFull):
        self.client = info


class Recorder:
    """Every request the client sends to the token endpoint, and the answer."""

    def __init__(self, token_endpoint_suffix="/token"):
        self.suffix = token_endpoint_suffix
        self.requests = []
        self.statuses = []

    async def on_request(self, request: httpx2.Request):
        if request.method == "POST" and request.url.path.endswith(self.suffix):
            form = dict(urllib.parse.parse_qsl(request.content.decode()))
            self.requests.append({"form": form, "authorization": request.headers.get("authorization")})

    async def on_response(self, response: httpx2.Response):
        if response.request.method == "POST" and response.request.url.path.endswith(self.suffix):
            self.statuses.append(response.status_code)

    def http(self, auth):
        return httpx2.AsyncClient(auth=auth, timeout=30, event_hooks={
            "request": [self.on_request], "response": [self.on_response]})

    def report(self, label=""):
        """What went to the token endpoint, on stderr, to explain a failure."""
        print(f"token requests {label}: {json.dumps(self.summary())}", file=sys.stderr)

    def summary(self):
        """The token requests, secrets and assertions left out."""
        out = []
        for r, status in zip(self.requests, self.statuses):
            form = {k: v for k, v in r["form"].items() if k not in ("client_secret", "client_assertion", "assertion")}
            form["status"] = status
            form["basic"] = bool(r["authorization"] and r["authorization"].startswith("Basic "))
            form["client_secret_in_body"] = "client_secret" in r["form"]
            out.append(form)
        return out


def claims_of(token):
    """The claims of a JWT, unverified (the server verified it; this reads them)."""
    return jwt.decode(token, options={"verify_signature": False})


async def add(client, a=5, b=8):
    r = await client.call_tool("calculator", {"operation": "add", "a": a, "b": b})
    assert not r.is_error, r
    assert r.structured_content == {"result": a + b}, r
    return r


async def refused(client, operation):
    """A tool call the token does not allow: the SDK surfaces the 403 as an error."""
    try:
        r = await client.call_tool("calculator", {"operation": operation, "a": 6, "b": 3})
    except Exception as e:  # noqa: BLE001 - any error the SDK raises for a refusal
        return repr(e)
    assert r.is_error, f"{operation} should have been refused, got {r}"
    return "tool error"


def check_client_credentials_request(req, *, basic):
    form = req["form"]
    assert form["grant_type"] == "client_credentials", form
    assert form["resource"] == MCP_URL, f"RFC 8707 resource: {form}"
    if basic:
        assert req["authorization"] and req["authorization"].startswith("Basic "), req
        assert "client_secret" not in form
    else:
        assert req["authorization"] is None, req
        assert form["client_id"] and form["client_secret"], "client_secret_post"


async def with_secret(method, url=MCP_URL, issuer=ISSUER, client_id=None, secret=None, scope=None, steps=None):
    """One ClientCredentialsOAuthProvider session: `steps(client, storage)`, then what
    went to the token endpoint."""
    storage = Memory()
    rec = Recorder()
    provider = ClientCredentialsOAuthProvider(
        server_url=url, storage=storage, client_id=client_id or os.environ["MCPGATE_CLIENT_ID"],
        client_secret=secret or os.environ["MCPGATE_CLIENT_SECRET"], token_endpoint_auth_method=method,
        scope=scope, issuer=issuer)
    try:
        async with rec.http(provider) as http:
            async with Client(streamable_http_client(url, http_client=http)) as client:
                await steps(client, storage)
    finally:
        rec.report()
    return storage, rec


def check_machine_token(t, client_id, scopes=ALL):
    assert t.refresh_token is None, "client_credentials: no refresh token"
    assert t.token_type.lower() == "bearer", t
    assert set(t.scope.split()) == scopes, t.scope
    c = claims_of(t.access_token)
    assert c["sub"] == client_id and c["client_id"] == client_id, f"the machine is its own subject: {c}"
    assert c["aud"] in (MCP_URL, [MCP_URL]), c
    assert c["iss"] == ISSUER, c


async def secret_basic_mode():
    """ClientCredentialsOAuthProvider with client_secret_basic; and, the token having no
    refresh token, a new one once it ends."""
    async def steps(client, storage):
        await add(client)
        await add(client, 1, 2)

    storage, rec = await with_secret("client_secret_basic", steps=steps)
    assert rec.statuses == [200], f"one token request, granted: {rec.summary()}"
    check_client_credentials_request(rec.requests[0], basic=True)
    check_machine_token(storage.tokens, os.environ["MCPGATE_CLIENT_ID"])
    seen = {"basic": rec.summary()}

    # Against a server issuing 2-second tokens: once one ends the SDK, holding no
    # refresh token, gets a new one with the same grant.
    async def expiring(client, storage):
        await add(client)
        first = storage.tokens.access_token
        await asyncio.sleep(3)
        await add(client, 2, 2)
        assert storage.tokens.access_token != first, "a new token once the first ended"

    _, rec = await with_secret(
        "client_secret_basic", url=os.environ["MCPGATE_SHORT_MCP_URL"], issuer=os.environ["MCPGATE_SHORT_ISSUER"],
        client_id=os.environ["MCPGATE_SHORT_CLIENT_ID"], secret=os.environ["MCPGATE_SHORT_CLIENT_SECRET"],
        steps=expiring)
    assert rec.statuses == [200, 200], rec.summary()
    assert all(r["form"]["grant_type"] == "client_credentials" for r in rec.requests), rec.summary()
    seen["expiry"] = rec.summary()
    return {"token_requests": seen}


async def secret_post_mode():
    """client_secret_post, which the metadata advertises: ClientCredentialsOAuthProvider
    asked for it, and IdentityAssertionOAuthProvider, whose default it is. Both are
    tried whatever the first gives."""
    async def steps(client, storage):
        await add(client)

    async def client_credentials():
        storage, rec = await with_secret("client_secret_post", steps=steps)
        assert rec.statuses == [200], f"one token request, granted: {rec.summary()}"
        check_client_credentials_request(rec.requests[0], basic=False)
        check_machine_token(storage.tokens, os.environ["MCPGATE_CLIENT_ID"])
        return rec.summary()

    async def id_jag():
        _, rec, _ = await with_id_jags(None, steps)
        assert rec.statuses == [200], rec.summary()
        assert rec.requests[0]["form"]["client_secret"] and rec.requests[0]["authorization"] is None
        return rec.summary()

    seen, failed = {}, []
    for name, part in (("client_credentials", client_credentials), ("id_jag", id_jag)):
        try:
            seen[name] = await part()
        except Exception as e:  # noqa: BLE001 - reported together below
            failed.append(e)
    if failed:
        raise ExceptionGroup("client_secret_post", failed)
    return {"token_requests": seen}


async def narrow_mode():
    """A machine the operator allowed op:add alone. The SDK asks for the scopes of the
    401 challenge (every scope of the resource) whatever `scope` it was given; the
    server may narrow what it grants (RFC 6749 §3.3) and says what it granted."""
    out = {}

    async def steps(client, storage):
        await add(client)
        assert storage.tokens.scope == "op:add", storage.tokens.scope
        out["divide"] = await refused(client, "divide")
        assert storage.tokens is None or "op:div" not in (storage.tokens.scope or "").split()

    _, rec = await with_secret("client_secret_basic", scope="op:add", steps=steps)
    assert rec.statuses[0] == 200, rec.summary()
    return {"token_requests": rec.summary(), **out}


async def private_key_jwt_mode():
    """PrivateKeyJWTOAuthProvider with SDK-signed assertions (RFC 7523 §2.2; the SDK's
    assertions carry no kid), one session per signer of MCPGATE_SIGNERS."""
    seen = {}
    for signer_cfg in json.loads(os.environ["MCPGATE_SIGNERS"]):
        client_id, alg = signer_cfg["client_id"], signer_cfg["alg"]
        storage = Memory()
        rec = Recorder()
        assertions = []
        signer = SignedJWTParameters(issuer=client_id, subject=client_id, signing_key=signer_cfg["key"],
                                     signing_algorithm=alg).create_assertion_provider()

        async def assertion_provider(audience, signer=signer, assertions=assertions):
            a = await signer(audience)
            assertions.append(a)
            return a

        provider = PrivateKeyJWTOAuthProvider(
            server_url=MCP_URL, storage=storage, client_id=client_id,
            assertion_provider=assertion_provider, issuer=ISSUER)
        try:
            async with rec.http(provider) as http:
                async with Client(streamable_http_client(MCP_URL, http_client=http)) as client:
                    await add(client)
                    await add(client, 3, 4)
        finally:
            rec.report(alg)
        assert rec.statuses == [200], f"{alg}: {rec.summary()}"
        req = rec.requests[0]
        form = req["form"]
        assert form["grant_type"] == "client_credentials", form
        assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", form
        assert form["resource"] == MCP_URL, form
        assert req["authorization"] is None and "client_secret" not in form, "no secret, the key instead"
        assert len(assertions) == 1 and form["client_assertion"] == assertions[0]
        header = jwt.get_unverified_header(assertions[0])
        assert header["alg"] == alg and "kid" not in header, header
        a = claims_of(assertions[0])
        assert a["iss"] == a["sub"] == client_id, a
        assert a["aud"] == ISSUER, f"the assertion's audience is the issuer: {a}"
        check_machine_token(storage.tokens, client_id)
        seen[alg] = rec.summary()
    return {"token_requests": seen}


async def with_id_jags(method, steps):
    """One IdentityAssertionOAuthProvider session for the agent, asking for op:add, the
    ID-JAGs of MCPGATE_ID_JAGS one per exchange; `method` None: the SDK's default."""
    id_jags = json.loads(os.environ["MCPGATE_ID_JAGS"])
    asked = []

    async def fetch_id_jag(audience, resource):
        asked.append({"audience": audience, "resource": resource})
        assert id_jags, "more ID-JAGs asked for than the test signed"
        return id_jags.pop(0)

    storage = Memory()
    rec = Recorder()
    provider = IdentityAssertionOAuthProvider(
        server_url=MCP_URL, storage=storage, client_id=os.environ["MCPGATE_AGENT_ID"],
        client_secret=os.environ["MCPGATE_AGENT_SECRET"], issuer=ISSUER, assertion_provider=fetch_id_jag,
        scope="op:add", **({"token_endpoint_auth_method": method} if method else {}))
    try:
        async with rec.http(provider) as http:
            async with Client(streamable_http_client(MCP_URL, http_client=http)) as client:
                await steps(client, storage)
    finally:
        rec.report()
    assert asked and all(a == {"audience": ISSUER, "resource": MCP_URL} for a in asked), asked
    return storage, rec, asked


async def id_jag_mode():
    """IdentityAssertionOAuthProvider (client_secret_basic): the organisation's provider
    asserted op:add and op:mult for this person and client; the client asks for op:add,
    steps up to op:mult on a 403, and never gets op:div, which the assertion lacks."""
    agent = os.environ["MCPGATE_AGENT_ID"]
    out = {}

    async def steps(client, storage):
        await add(client)
        t = storage.tokens
        out["first"] = t.scope
        assert t.scope == "op:add", f"asked op:add, asserted op:add op:mult: {t.scope}"
        assert t.refresh_token is None, "an ID-JAG gets no refresh token"
        c = claims_of(t.access_token)
        assert c["client_id"] == agent and c["aud"] in (MCP_URL, [MCP_URL]) and c["iss"] == ISSUER, c
        assert c["sub"] != agent, f"the person is the subject, not the client: {c}"
        out["subject"] = c["sub"]
        out["username"] = c.get("username")

        # op:mult: a 403 insufficient_scope, a fresh ID-JAG, the union of scopes.
        r = await client.call_tool("calculator", {"operation": "multiply", "a": 6, "b": 7})
        assert not r.is_error and r.structured_content == {"result": 42}, r
        out["stepped_up"] = storage.tokens.scope
        assert set(storage.tokens.scope.split()) == {"op:add", "op:mult"}, storage.tokens.scope

        # op:div: asked for with another fresh ID-JAG, but the assertion does not carry
        # it, so no token has it and the call is refused.
        out["divide"] = await refused(client, "divide")
        assert "op:div" not in storage.tokens.scope.split(), storage.tokens.scope
        out["after_divide"] = storage.tokens.scope
        # The token in hand still works for what it carries.
        await add(client, 10, 20)

    _, rec, _ = await with_id_jags("client_secret_basic", steps)
    forms = [r["form"] for r in rec.requests]
    assert rec.statuses == [200] * len(forms), rec.summary()
    assert len(forms) == 3, f"one exchange, one step-up, one step-up the assertion bounds: {rec.summary()}"
    for r in rec.requests:
        f = r["form"]
        assert f["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer", f
        assert f["resource"] == MCP_URL and f["client_id"] == agent, f
        assert r["authorization"].startswith("Basic ") and "client_secret" not in f, "client_secret_basic"
    assert len({f["assertion"] for f in forms}) == 3, "a fresh ID-JAG for every exchange"
    assert forms[0]["scope"] == "op:add"
    assert set(forms[1]["scope"].split()) == {"op:add", "op:mult"}, forms[1]
    assert "op:div" in forms[2]["scope"].split(), forms[2]
    return {"token_requests": rec.summary(), "steps": out}


MODES = {
    "secret-basic": secret_basic_mode,
    "secret-post": secret_post_mode,
    "narrow": narrow_mode,
    "private-key-jwt": private_key_jwt_mode,
    "id-jag": id_jag_mode,
}

if __name__ == "__main__":
    mode = sys.argv[1]
    try:
        result = asyncio.run(MODES[mode]())
        print(json.dumps({"mode": mode, **result}))
        print(f"{mode}: all steps passed")
    except BaseException as e:  # print the whole group
        import traceback
        traceback.print_exception(e)
        sys.exit(1)
