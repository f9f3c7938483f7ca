"""A Python MCP server (the official `mcp` package's MCPServer, formerly FastMCP) that
the gateway tests put behind mcpgate, over stdio or Streamable HTTP.

Over HTTP it records the headers of every request it receives (any method, any path),
so the tests can show what the gateway lets through; `crash` ends the process mid-call.

    python gateway_server.py stdio
    python gateway_server.py http PORT
"""

import asyncio
import os
import sys

from mcp.server.mcpserver import MCPServer

SEEN = []  # headers of every HTTP request, in order

server = MCPServer("gateway-python")


@server.tool()
def add(a: int, b: int) -> int:
    """Adds two integers."""
    return a + b


@server.tool()
def seen_headers() -> list[dict[str, str]]:
    """The headers of every HTTP request this server received so far."""
    return SEEN


@server.tool()
def crash() -> str:
    """Ends the server process at once, mid-call."""
    sys.stdout.flush()
    os._exit(3)


@server.tool()
async def slow(seconds: float) -> str:
    """Answers after a while."""
    await asyncio.sleep(seconds)
    return "done"


def recording(app):
    async def wrapped(scope, receive, send):
        if scope["type"] == "http":
            SEEN.append({k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
                        | {":method": scope["method"], ":path": scope["path"]})
        await app(scope, receive, send)
    return wrapped


if __name__ == "__main__":
    if sys.argv[1] == "stdio":
        print("gateway-python: serving over stdio", file=sys.stderr, flush=True)
        server.run("stdio")
    else:
        import uvicorn
        port = int(sys.argv[2])
        app = recording(server.streamable_http_app(host="127.0.0.1"))
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
