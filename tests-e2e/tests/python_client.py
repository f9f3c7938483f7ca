"""The whole MCP authorization flow with the official Python client (`mcp` on PyPI).

Run by python_client.test.mjs with MCPGATE_MCP_URL and MCPGATE_ADMIN_PASSWORD set; the
server runs with a short access-token lifetime so the client's own clock asks for a
refresh. Exits 0 when every step held; prints what failed otherwise.
"""

import asyncio
import http.cookiejar
import json
import os
import re
import sys
import time
import urllib.parse
import urllib.request

import httpx2
from mcp import Client
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider, TokenStorage
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

MCP_URL = os.environ["MCPGATE_MCP_URL"]
PASSWORD = os.environ["MCPGATE_ADMIN_PASSWORD"]
BASE = MCP_URL.rsplit("/mcp", 1)[0]
REDIRECT = "http://127.0.0.1:33419/callback"


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


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Browser:
    """A person's browser: cookies, the login form, the consent form."""

    def __init__(self, approve):
        self.approve = approve
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), NoRedirect)

    def fetch(self, url, form=None):
        data = urllib.parse.urlencode(form, doseq=True).encode() if form is not None else None
        try:
            r = self.opener.open(url, data=data)
            return r.status, r.headers, r.read().decode()
        except urllib.error.HTTPError as e:  # 3xx and 4xx arrive here
            return e.code, e.headers, e.read().decode()

    @staticmethod
    def field(html, name):
        return re.search(f'name="{name}" value="([^"]*)"', html).group(1).replace("&amp;", "&")

    def authorize(self, url):
        for _ in range(10):
            status, headers, html = self.fetch(url)
            if status in (302, 303):
                url = urllib.parse.urljoin(url, headers["Location"])
                if not url.startswith(BASE):
                    return url
                continue
            # forms are found by where they post, wherever the server is mounted
            actions = re.findall(r'<form method="post" action="([^"]+)"', html)
            login = next((a for a in actions if a.endswith("/login")), None)
            consent = next((a for a in actions if a.endswith("/consent")), None)
            if login:
                status, headers, _ = self.fetch(urllib.parse.urljoin(url, login), {
                    "csrf": self.field(html, "csrf"), "next": self.field(html, "next"),
                    "username": "admin", "password": PASSWORD})
                assert status == 303, f"login failed: {status}"
                url = urllib.parse.urljoin(url, headers["Location"])
                continue
            if consent:
                status, headers, _ = self.fetch(urllib.parse.urljoin(url, consent), {
                    "csrf": self.field(html, "csrf"), "request": self.field(html, "request"),
                    "decision": "approve", "scope_choice": self.approve})
                assert status == 303, f"consent failed: {status}"
                return headers["Location"]
            raise AssertionError(f"unexpected page {status} at {url}: {html[:300]}")
        raise AssertionError("too many redirects")


def raw_call(token, op="add"):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": {"name": "calculator", "arguments": {"operation": op, "a": 5, "b": 8}}}).encode()
    req = urllib.request.Request(MCP_URL, data=body, method="POST", headers={
        "authorization": f"Bearer {token}", "content-type": "application/json",
        "accept": "application/json, text/event-stream", "mcp-protocol-version": "2025-11-25"})
    try:
        return urllib.request.urlopen(req).status
    except urllib.error.HTTPError as e:
        return e.code


async def main():
    storage = Memory()
    callbacks = []
    redirects = []

    async def redirect_handler(url: str):
        redirects.append(url)
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
        assert q["resource"] == MCP_URL, q
        assert q["code_challenge_method"] == "S256"
        callbacks.append(await asyncio.to_thread(Browser(["op:add"]).authorize, url))

    async def callback_handler():
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(callbacks[-1]).query))
        return AuthorizationCodeResult(code=q["code"], state=q.get("state"), iss=q.get("iss"))

    provider = OAuthClientProvider(
        server_url=MCP_URL,
        client_metadata=OAuthClientMetadata(client_name="e2e python", redirect_uris=[REDIRECT],
                                            grant_types=["authorization_code", "refresh_token"],
                                            response_types=["code"], token_endpoint_auth_method="none"),
        storage=storage, redirect_handler=redirect_handler, callback_handler=callback_handler)

    async with httpx2.AsyncClient(auth=provider, timeout=30) as http:
        async with Client(streamable_http_client(MCP_URL, http_client=http)) as client:
            r = await client.call_tool("calculator", {"operation": "add", "a": 5, "b": 8})
            assert r.structured_content == {"result": 13}, r
            assert storage.tokens.scope == "op:add", storage.tokens
            assert len(redirects) == 1
            first = storage.tokens
            time.sleep(3)  # past the short access-token lifetime: the client refreshes
            r = await client.call_tool("calculator", {"operation": "add", "a": 1, "b": 1})
            assert r.structured_content == {"result": 2}, r
            assert storage.tokens.access_token != first.access_token, "refreshed"
            assert storage.tokens.refresh_token != first.refresh_token, "rotated"
            assert len(redirects) == 1, "no browser for a refresh"
            access = storage.tokens.access_token
            assert raw_call(access, "divide") == 403, "insufficient_scope"
            form = urllib.parse.urlencode({"token": storage.tokens.refresh_token,
                                           "client_id": storage.client.client_id}).encode()
            assert urllib.request.urlopen(urllib.request.Request(BASE + "/revoke", data=form)).status == 200
            assert raw_call(access) == 401, "revoked"
    print("python client: all steps passed")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except BaseException as e:  # print the whole group
        import traceback
        traceback.print_exception(e)
        sys.exit(1)
