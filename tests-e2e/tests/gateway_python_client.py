"""The official Python client through mcpgate's gateway to a Python MCP server
(gateway_server.py over Streamable HTTP, identity = "headers"): the whole OAuth flow,
a tool call, and what the upstream received. Run by gateway_python.test.mjs with
MCPGATE_MCP_URL (the upstream's gateway URL) and MCPGATE_ADMIN_PASSWORD set.
"""

import asyncio
import json
import sys
import urllib.parse

import httpx2
from mcp import Client
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientMetadata

from python_client import MCP_URL, REDIRECT, Browser, Memory


async def main():
    storage = Memory()
    callbacks = []

    async def redirect_handler(url: str):
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
        assert q["resource"] == MCP_URL, q
        callbacks.append(await asyncio.to_thread(Browser(["py:math", "py:debug"]).authorize, url))

    async def callback_handler():
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(callbacks[-1]).query))
        return AuthorizationCodeResult(code=q["code"], state=q.get("state"), iss=q.get("iss"))

    provider = OAuthClientProvider(
        server_url=MCP_URL,
        client_metadata=OAuthClientMetadata(client_name="e2e python gateway", redirect_uris=[REDIRECT],
                                            grant_types=["authorization_code", "refresh_token"],
                                            response_types=["code"], token_endpoint_auth_method="none"),
        storage=storage, redirect_handler=redirect_handler, callback_handler=callback_handler)

    async with httpx2.AsyncClient(auth=provider, timeout=30) as http:
        async with Client(streamable_http_client(MCP_URL, http_client=http)) as client:
            r = await client.call_tool("add", {"a": 2, "b": 3})
            assert r.structured_content == {"result": 5}, r
            tools = sorted(t.name for t in (await client.list_tools()).tools)
            assert tools == ["add", "crash", "seen_headers", "slow"], tools
            seen = (await client.call_tool("seen_headers", {})).structured_content["result"]
            assert seen, "the upstream saw requests"
            for h in (h for h in seen if "x-e2e-probe" not in h):
                assert "authorization" not in h, f"token passed through: {json.dumps(h)}"
                assert h.get("x-forwarded-user") == "admin", h
                assert h.get("x-forwarded-scopes") == "py:debug py:math", h
    print("python gateway client: all steps passed")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except BaseException as e:
        import traceback
        traceback.print_exception(e)
        sys.exit(1)
